"""Run photo-t64's validation curve: NELBO_K (the mean over K=100 and 32) on the held-out photos' 1,000 64x64
crops against 64x64 crops seen since its start (photo-vdm-p2-dt, measured by validation_64.py), from the run's
log as exported to results/photo-t64/train_log.csv; dotted lines where a stretch ended.

    python bench/studies/2026-12-05-photo-context/t64_curve.py
"""
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "photo-t64"
START_IMAGES = 894_528  # the counters continue photo-p2's
START_BPD = float((HERE / "results" / "validation_64.txt").read_text().split("'bpd': ")[1].split(",")[0])
STRETCH_ENDS = (940_408, 960_984)  # images seen when the first and second stretches stopped
MINUTES = "80 + 33 + 45"


def main():
    with open(OUT / "train_log.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["val_bpd"]]
    x = [0] + [int(r["images"]) - START_IMAGES for r in rows]
    y = [START_BPD] + [float(r["val_bpd"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(x, y, marker="o")
    for end in STRETCH_ENDS:
        ax.axvline(end - START_IMAGES, ls=":", lw=0.8, color="grey")
    ax.set_title(f"run photo-t64 ({MINUTES} min, one CPU thread)", fontsize=10)
    ax.set_xlabel("64x64 crops since the start (photo-vdm-p2-dt); dotted: a stretch ended", fontsize=9)
    ax.set_ylabel("validation NELBO_K, K=100/32 mean", fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "validation_curve.png", dpi=100)


if __name__ == "__main__":
    main()
