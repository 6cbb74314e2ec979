"""Time to first output and total time of `bbcodec compress`, as a user sees them.

Each case runs the CLI as a fresh process with stderr on a pseudo-terminal (so progress shows as it
would for a person) and records: seconds until the first byte on stderr, until the estimate line
(where the CLI prints one), and until exit. Cases: a one-tile file, a 5-image archive (the bundled
CIFAR-10 samples) and a 256x256 crop of a photo. Fresh cache folder per case, so the initial-bit
deficit is measured as on a first run.

    python bench/startup_timing.py --label after --out bench/results/startup_timing.json
    # the code before a change, from a worktree of that commit:
    git worktree add /tmp/before <commit>
    python bench/startup_timing.py --label before --bbcodec "/tmp/before/.venv/bin/python -m bbcodec.cli" \\
        --cwd /tmp/before --out bench/results/startup_timing.json

Rows are added to --out (one per label and case), with the git revision of the code timed.
"""
from __future__ import annotations

import argparse
import json
import os
import pty
import select
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "bbcodec" / "samples").glob("*.png"))
PHOTO = ROOT.parent / "shared" / "data" / "photos-full" / "mate_Dune.png"


def run_timed(cmd: list[str], cwd: str, env: dict, limit: float) -> dict:
    master, slave = pty.openpty()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    first = estimate = None
    text = b""
    while time.monotonic() - t0 < limit:
        r, _, _ = select.select([master], [], [], 0.05)
        if not r:
            if p.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child's side is closed
            chunk = b""
        if not chunk:
            break
        now = time.monotonic() - t0
        first = first if first is not None else now
        text += chunk
        if estimate is None and b"to encode" in text:
            estimate = now
    try:
        p.wait(timeout=max(0.0, limit - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    total = time.monotonic() - t0
    os.close(master)
    p.stdout.read()
    lines = [ln for ln in text.decode(errors="replace").replace("\r", "\n").splitlines() if ln.strip()]
    timed_out = p.returncode is not None and p.returncode < 0
    return {"returncode": p.returncode, "timed_out": timed_out, "first_output_s": first, "estimate_s": estimate,
            "total_s": None if timed_out else total,
            "last_line": lines[-1] if lines else ""}


def cases(work: Path, photo: Path) -> dict[str, list[str]]:
    one = SAMPLES[0]
    crop = work / "photo_256.png"
    with Image.open(photo) as im:
        w, h = im.size
        im.crop(((w - 256) // 2, (h - 256) // 2, (w + 256) // 2, (h + 256) // 2)).save(crop)
    return {"one tile (32x32)": [str(one)], "5-image archive (32x32 each)": [str(f) for f in SAMPLES[:5]],
            f"256x256 photo ({photo.stem} crop)": [str(crop)]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", required=True)
    ap.add_argument("--bbcodec", default=f"{sys.executable} -m bbcodec.cli", help="command that runs the CLI")
    ap.add_argument("--cwd", default=str(ROOT), help="where to run it (the checkout being timed)")
    ap.add_argument("--photo", default=str(PHOTO))
    ap.add_argument("--extra", default="", help="extra compress arguments, e.g. '--yes'")
    ap.add_argument("--limit", type=float, default=900.0, help="seconds before a case is killed (recorded)")
    ap.add_argument("--only", default="", help="run only the cases whose name contains this")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=a.cwd, capture_output=True, text=True).stdout.strip()
    out = Path(a.out)
    res = json.loads(out.read_text()) if out.exists() else {"command": "python bench/startup_timing.py", "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, inputs in cases(work, Path(a.photo)).items():
            if a.only not in name:
                continue
            env = dict(os.environ, BBCODEC_CACHE=str(work / f"cache-{len(res['rows'])}"), COLUMNS="120")
            target = work / "out.bbc"
            target.unlink(missing_ok=True)
            cmd = [*shlex.split(a.bbcodec), "compress", *inputs, "-o", str(target), *shlex.split(a.extra)]
            row = {"label": a.label, "extra_args": a.extra, "revision": rev, "case": name, **run_timed(cmd, a.cwd, env, a.limit),
                   "load_average_1min": os.getloadavg()[0]}
            print(json.dumps(row), flush=True)
            res["rows"] = [r for r in res["rows"] if not (r["label"] == a.label and r["case"] == name)] + [row]
            out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
