"""Add the fitted-variance NELBO_K reference (what latent coding version 2 codes against) to bench
JSONs whose version 2 runs predate it. Same steps and noise draws as `bbcodec bench` (same seed).

    .venv/bin/python bench/add_fitted_reference.py bench/results/k_sweep_coded_v2/n100/*.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bbcodec.bench import _image_data, load_dataset, model_nelbo_k  # noqa: E402
from bbcodec.diffusion.codec import CodingParams  # noqa: E402
from bbcodec.registry import load_model  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    for path in map(Path, sys.argv[1:]):
        res = json.loads(path.read_text())
        names, arrays = load_dataset(res["dataset"], res["images"], res["offset"])
        imgs = [_image_data(n, a) for n, a in zip(names, arrays)]
        changed = False
        for run in res["runs"]:
            o, s = run.get("options", {}), run.get("summary")
            if run.get("codec") != "vdm" or o.get("latents") != 2 or not s or "model_nelbo_k_fitted_bpd" in s:
                continue
            model = load_model(run["model"])
            params = CodingParams(steps=o["steps"], grid=o["grid"], grid_bits=o["grid_bits"], latents=2)
            fit = model_nelbo_k(model, params, imgs, s.get("model_nelbo_k_sampled_steps"), fitted=True)[1]
            s["model_nelbo_k_fitted_bpd"] = float(fit.sum() / s["subpixels"])
            s["ratio_to_model_nelbo_k_fitted"] = s["bpd"] / s["model_nelbo_k_fitted_bpd"]
            for p, v in zip(run["per_image"], fit):
                p["model_nelbo_k_fitted_bits"] = float(v)
            changed = True
            print(f"{path}: {run['key']}: fitted NELBO_K {s['model_nelbo_k_fitted_bpd']:.4f}", flush=True)
        if changed:
            path.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
