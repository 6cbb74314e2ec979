"""The photo prior's validation curve: NELBO on the 1,000 crops of the 4 held-out photos against
training images seen since s7, one line per run (logs in results/)."""
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
S7_START = 3.0053  # s7 on the same crops before fine-tuning (docs/photo_prior_training.md)


def rows(path):
    with open(path) as f:
        return [r for r in csv.DictReader(f) if r["val_bpd"]]


def main():
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for log in sorted((HERE / "results").glob("*_log.csv")):
        r = rows(log)
        img0 = 748_688 if log.name.startswith("photo-p1") else 0  # p1's counters continue s7's
        x = [0] + [int(v["images"]) - img0 for v in r]
        # p1 starts from s7; p2 from p1's best EMA weights (their validation: p1's best row)
        start = S7_START if log.name.startswith("photo-p1") else min(
            float(v["val_bpd"]) for v in rows(log.with_name("photo-p1_log.csv")))
        y = [start] + [float(v["val_bpd"]) for v in r]
        ax.plot(x, y, marker="o", ms=3, label=log.name.replace("_log.csv", ""))
    ax.set_xlabel("training images seen (since the run's start)")
    ax.set_ylabel("validation NELBO, bits/dim")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(HERE / "results" / "validation_curve.png", dpi=120)


if __name__ == "__main__":
    main()
