"""The fine-tuning runs' own validation figure for any model: the mean over a run's coding settings of
NELBO_K with the variances recorded in RUN/coding_steps.json, one sampled step per image, on the last
1,000 images of the training file (`train.evaluate_nelbo(coding=...)`, fixed seed: the same draws as the
run's validations). Used for the starting models and for the control run (continuous-time fine-tuning
at the same learning rate), whose own validation is the continuous NELBO.

    python bench/studies/2026-12-05-discrete-fine-tuning/validation_nelbo_k.py --run runs/cifar-dt1 \
        --data ../shared/data/cifar10/train.npz --models cifar10-vdm-s7 runs/cifar-ct1-export --out results/cifar10_control.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bbcodec.bench import environment
from bbcodec.diffusion.vdm import CodingSteps
from bbcodec.registry import load_model
from bbcodec.train import evaluate_nelbo, load_images

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="a discrete-time run folder (its coding_steps.json)")
    ap.add_argument("--data", required=True, help="the training .npz (its last 1,000 images)")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cs = [CodingSteps.from_json(d) for d in json.loads((Path(a.run) / "coding_steps.json").read_text())["settings"]]
    x = load_images(a.data)[-1000:]
    out = {"run": a.run, "steps": [c.steps for c in cs], "images": len(x), "models": {}, "env": environment()}
    for name in a.models:
        m = load_model(name)
        out["models"][name] = {"sha256": m.sha256, "val_nelbo_k_fitted_bpd": evaluate_nelbo(m.vdm, x, coding=cs)["bpd"],
                               "val_nelbo_bpd": evaluate_nelbo(m.vdm, x)["bpd"]}
        print(name, out["models"][name], flush=True)
    (HERE / a.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
