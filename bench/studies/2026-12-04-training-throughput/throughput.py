"""Training throughput: float32 against bf16 autocast, one thread against two, for equal wall time.

Each configuration trains the same start (the photo run p1's best weights, `runs/photo-p1-best`) on
the photo training set v2 for the same minutes, alone on the machine (the background training run
stopped with SIGSTOP meanwhile), then validates on the 1,000 held-out crops. Written to
results/throughput.json and printed as a table.

    python bench/studies/2026-12-04-training-throughput/throughput.py --minutes 4
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
CONFIGS = [("float32", 1), ("bf16", 1), ("float32", 2), ("bf16", 2)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--data", default=str(ROOT / "runs" / "photos_train_v2.npz"))
    ap.add_argument("--init-from", default=str(ROOT / "runs" / "photo-p1-best"))
    a = ap.parse_args(argv)
    rows = []
    for precision, threads in CONFIGS:
        run = Path(tempfile.mkdtemp()) / "run"
        t0 = time.time()
        subprocess.run([sys.executable, "-m", "bbcodec.cli", "train", "--data", a.data, "--run-dir", str(run),
                        "--init-from", a.init_from, "--minutes", str(a.minutes), "--threads", str(threads),
                        "--precision", precision, "--lr", "1e-4", "--val-images", "1000"],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        log = list(csv.DictReader(open(run / "log.csv")))
        last = log[-1]
        val = [r for r in log if r["val_bpd"]][-1]
        rows.append({"precision": precision, "threads": threads, "minutes": a.minutes,
                     "images": int(last["images"]), "train_seconds": float(last["seconds"]),
                     "images_per_second": int(last["images"]) / float(last["seconds"]),
                     "val_bpd": float(val["val_bpd"]), "val_se": float(val["val_se"]),
                     "wall_seconds_with_validation": time.time() - t0,
                     "last_loss_bpd": float(last["loss_bpd"])})
        print(json.dumps(rows[-1]), flush=True)
        shutil.rmtree(run.parent, ignore_errors=True)
    import torch
    out = {"command": "python bench/studies/2026-12-04-training-throughput/throughput.py --minutes "
                      f"{a.minutes:g}", "torch": torch.__version__,
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "rows": rows}
    (HERE / "results" / "throughput.json").write_text(json.dumps(out, indent=1) + "\n")
    print("| precision | threads | images/s | validation NELBO after equal time |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['precision']} | {r['threads']} | {r['images_per_second']:.1f} | "
              f"{r['val_bpd']:.4f} ± {r['val_se']:.4f} |")


if __name__ == "__main__":
    main()
