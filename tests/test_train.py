"""The training loop: runs, logs, checkpoints, resumes, and can start from a shipped model."""
import csv
import json

import numpy as np
import torch

from bbcodec.train import TrainOptions, evaluate_nelbo, export_model, train

from conftest import TINY


def _data(tmp_path, n=40):
    x = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    p = tmp_path / "d.npz"
    np.savez(p, x=x)
    return str(p)


def test_train_resume_and_export(tmp_path):
    data = _data(tmp_path)
    run = tmp_path / "run"
    opts = TrainOptions(data=data, run=str(run), minutes=0.03, batch=4, val_images=8, val_every_min=0.01,
                        log_every=2, threads=1)
    train(opts, TINY, progress=False)
    state = torch.load(run / "state.pt", weights_only=True)
    steps1 = json.loads(state["meta"])["step"]
    assert steps1 > 0
    train(opts, progress=False)  # resumes: the step counter goes on
    steps2 = json.loads(torch.load(run / "state.pt", weights_only=True)["meta"])["step"]
    assert steps2 > steps1
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert rows and any(r["val_bpd"] for r in rows)
    out = export_model(str(run), str(tmp_path / "models"), "m")
    sd = torch.load(out / "weights.pt", weights_only=True)
    assert any(v.dtype == torch.float16 for v in sd.values())
    # a new run from the exported weights starts where they are
    opts2 = TrainOptions(data=data, run=str(tmp_path / "run2"), minutes=0.01, batch=4, val_images=8,
                         threads=1, init_from=str(out))
    train(opts2, progress=False)
    assert (tmp_path / "run2" / "state.pt").exists()


def test_evaluate_nelbo_is_repeatable(tmp_path):
    from bbcodec.diffusion.net import VDM
    m = VDM(TINY)
    x = np.random.default_rng(1).integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    a, b = evaluate_nelbo(m, x, batch=3), evaluate_nelbo(m, x, batch=3)
    assert a == b and a["n"] == 6 and np.isfinite(a["bpd"])
