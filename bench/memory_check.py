"""Peak memory of a 4096x4096 RGB round trip through the CLI (the aim: within 4 GiB).

Memory does not depend on K or on the network's size beyond its weights, so this uses K=1 and,
by default, the shipped model at --parallel 8 (about 16k tiles each way). `--model tiny` uses a
random-weight two-level network instead (the pipeline's memory without the wait).
The image is synthetic and photo-like (smooth fields plus noise). Each of compress and
decompress runs as its own process; its peak resident set size is read from the kernel.

    .venv/bin/python bench/memory_check.py [--size 4096] [--model NAME|FOLDER] [--out JSON]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def photo_like(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([128 + 90 * np.sin(6 * x + c) * np.cos(4 * y - c) for c in (0.0, 1.0, 2.0)], axis=-1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def tiny_model(folder: Path) -> str:
    import torch
    from bbcodec.diffusion.net import DEFAULT_CONFIG, VDM
    cfg = dict(DEFAULT_CONFIG, channels=[8, 8], attn_levels=[1])
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(VDM(cfg).state_dict(), folder / "weights.pt")
    (folder / "config.json").write_text(json.dumps(cfg))
    return str(folder)


def peak_rss_mib(cmd: list[str]) -> tuple[float, float]:
    """Run cmd as a child; (peak RSS of that child in MiB, seconds)."""
    t = time.time()
    code = f"import resource, subprocess, sys; r = subprocess.run({cmd!r}); " \
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(p.stderr[-2000:])
    return int(p.stdout.strip().splitlines()[-1]) / 1024, time.time() - t


def main():
    from bbcodec.bench import environment

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--model", default=None)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "memory_4096.json"))
    a = ap.parse_args()
    bb = [sys.executable, "-m", "bbcodec.cli"]
    with tempfile.TemporaryDirectory() as d:
        model = ["--model", tiny_model(Path(d) / "tiny") if a.model == "tiny" else a.model] if a.model else []
        src, bbc, back = Path(d) / "big.png", Path(d) / "big.bbc", Path(d) / "back.png"
        img = photo_like(a.size)
        Image.fromarray(img).save(src)
        enc_mib, enc_s = peak_rss_mib(bb + ["compress", str(src), "-o", str(bbc), "--steps", "1", "--grid", "uniform",
                                            "--parallel", str(a.parallel), "--quiet", *model])
        dec_mib, dec_s = peak_rss_mib(bb + ["decompress", str(bbc), "-o", str(back), "--quiet", *model])
        same = np.array_equal(np.asarray(Image.open(back)), img)
        res = {"size": [a.size, a.size], "pixels": a.size * a.size, "steps": 1, "parallel": a.parallel,
               "model": a.model or "default", "bbc_bytes": bbc.stat().st_size, "bit_exact": bool(same),
               "encode_peak_rss_mib": enc_mib, "decode_peak_rss_mib": dec_mib, "encode_s": enc_s, "decode_s": dec_s,
               "command": "python bench/memory_check.py " + " ".join(sys.argv[1:]), "env": environment((a.out,))}
    print(json.dumps(res, indent=1))
    if not same:
        raise SystemExit("round trip is not bit-exact")
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
