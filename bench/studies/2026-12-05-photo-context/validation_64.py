"""Validation NELBO_K (the mean over K=100 and 32: the training's statistic, the same draws) of models on the
64x64 validation crops of runs/photos_train_v2_64.npz, to pair with run photo-t64's own validation rows:

    python bench/studies/2026-12-05-photo-context/validation_64.py runs/photo-vdm-p2-dt
"""
import json, sys
import numpy as np, torch
torch.set_num_threads(1)
from bbcodec.registry import read_model, build_vdm
from bbcodec.diffusion.vdm import CodingSteps
from bbcodec.train import evaluate_nelbo
x = np.load("runs/photos_train_v2_64.npz")["x"][-1000:]
x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
coding = [CodingSteps.from_json(d) for d in json.loads(open("runs/photo-t64/coding_steps.json").read())["settings"]]
for src in sys.argv[1:]:
    vdm = build_vdm(read_model(src))
    with torch.no_grad():
        r = evaluate_nelbo(vdm, x, coding=coding)
    print(src, r, flush=True)
