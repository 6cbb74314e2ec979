"""Architecture comparison: validation NELBO against CPU time, same budget, same data.

Candidates (one thread each on the 2-core CPU, batch 16, lr 5e-4, EMA 0.995, CIFAR-10 train
with the last 1000 images held out for validation):
  unet-32-64-128   the shipped U-Net: 32->16->8 with 32/64/128 channels, attention at 8x8
  resnet-48-nodown VDM's layout scaled to this CPU: no downsampling, 48 channels at 32x32,
                   2 residual blocks per side, attention only in the middle
Logs are copied into results/ beside this script (runs/ is not committed). Writes arch_compare.md,
arch_compare.json and arch_compare.png there.

    .venv/bin/python bench/studies/2026-11-29-architecture/arch_compare.py
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results"
CANDIDATES = {
    "unet-32-64-128": {"log": "unet-32-64-128_log.csv", "config": {"channels": [32, 64, 128], "num_res_blocks": 1,
                                                                   "attn_levels": [2]}},
    "resnet-48-nodown": {"log": "resnet-48-nodown_log.csv", "config": {"channels": [48], "num_res_blocks": 2,
                                                                       "attn_levels": []}},
}


def params(cfg: dict) -> int:
    from bbcodec.diffusion.net import DEFAULT_CONFIG, VDM
    return sum(p.numel() for p in VDM(dict(DEFAULT_CONFIG, **cfg)).parameters())


def main():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {}
    for name, c in CANDIDATES.items():
        rows = [r for r in csv.DictReader(open(OUT / c["log"])) if r["val_bpd"]]
        curves[name] = [(float(r["seconds"]) / 3600, int(r["images"]), float(r["val_bpd"]), float(r["val_se"]))
                        for r in rows]
    budget = min(max(h for h, *_ in v) for v in curves.values())
    lines = ["| candidate | parameters | images/s | " + " | ".join(f"val at {m} min" for m in (10, 20, 30, 40)) +
             " | best within the budget |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    summary = {}
    for name, pts in curves.items():
        within = [p for p in pts if p[0] <= budget + 1e-9]

        def at(minutes):  # linear between the validation points around it
            import numpy as np
            h = [p[0] * 60 for p in within]
            if not h[0] - 1 <= minutes <= h[-1] + 1:
                return "–"
            return f"{np.interp(minutes, h, [p[2] for p in within]):.3f}"
        best = min(within, key=lambda p: p[2])
        rate = within[-1][1] / (within[-1][0] * 3600)
        summary[name] = {"best_val_bpd": best[2], "at_hours": best[0], "images_per_s": rate}
        lines.append(f"| {name} | {params(CANDIDATES[name]['config']):,} | {rate:.1f} | "
                     + " | ".join(at(m) for m in (10, 20, 30, 40)) + f" | {best[2]:.3f} ± {best[3]:.3f} |")
    (OUT / "arch_compare.md").write_text(
        f"Budget: {budget * 60:.0f} minutes of one thread each (validation: 1000 held-out training images, "
        "continuous NELBO, EMA weights; values between validation points are interpolated linearly).\n\n" + "\n".join(lines) + "\n")
    (OUT / "arch_compare.json").write_text(json.dumps({"budget_hours": budget, "candidates": summary}, indent=1) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, pts in curves.items():
        axes[0].errorbar([p[0] for p in pts], [p[2] for p in pts], yerr=[p[3] for p in pts], marker="o", ms=3, label=name)
        axes[1].plot([p[1] for p in pts], [p[2] for p in pts], marker="o", ms=3, label=name)
    axes[0].set_xlabel("CPU-hours (one thread)")
    axes[1].set_xlabel("training images seen")
    for ax in axes:
        ax.set_ylabel("validation NELBO (bits/dim)")
        ax.set_ylim(top=6)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "arch_compare.png", dpi=120)
    print((OUT / "arch_compare.md").read_text())


if __name__ == "__main__":
    main()
