"""The GPU session in one prepared script: CUDA checks, then a short training stretch of a prior on
the GPU, its evaluation, and its weights and card written to an output folder.

A lent GPU machine is short-lived (minutes) and sees only the working tree and what is carried to it
(64 MiB), so the data travels as one compressed .npz made here beforehand:

    python bench/gpu_recipe.py prepare --out runs/gpu_data.npz        # CIFAR-10 train subset + test slice
    # on the GPU machine (the device tool: carry runs/gpu_data.npz; $OUT comes back):
    python bench/gpu_recipe.py run --data runs/gpu_data.npz --out $OUT --minutes 4

`run` does, in order:
1. on CUDA, the CUDA tests (tests/test_cuda.py: round trips, and the integer network's files crossing
   devices, encoded on CUDA and decoded on the CPU and the reverse);
2. `bbcodec train` for --minutes on the carried training images, from --init-from (default: the
   float source of the default model) or from --config (a larger prior from scratch);
3. the continuous-time NELBO of the trained EMA weights and of the starting model on the carried test
   slice (same seed, same draws);
4. the weights (`export_model`: float16 storage, config) and `gpu_run.json` (figures, hardware,
   minutes, commands) written to --out.

Ship the result only where it beats the shipped prior on the full test set (docs/models.md). The
default test suite runs it on the CPU at toy size (tests/test_gpu_recipe.py).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def prepare(train_npz: str, test_npz: str, out: str, n_train: int, n_test: int) -> dict:
    """The carried data: the first n_train training images and the first n_test test images
    (uint8 [N, H, W, C] each), compressed into one .npz."""
    with np.load(train_npz) as f:
        train = f["x"][:n_train]
    with np.load(test_npz) as f:
        test = f["x"][:n_test]
    np.savez_compressed(out, train=train, test=test)
    return {"out": out, "bytes": Path(out).stat().st_size, "train": len(train), "test": len(test)}


def run(data: str, out: str, minutes: float, device: str, init_from: str | None, config: str | None,
        batch: int, val_images: int, checks: bool, repeats: int = 4) -> dict:
    import torch

    from bbcodec.diffusion.net import DEFAULT_CONFIG
    from bbcodec.registry import build_vdm, default_model_name, read_model
    from bbcodec.train import TrainOptions, evaluate_nelbo, export_model, train

    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    report: dict = {"device": device, "minutes": minutes, "data": data}
    if device == "cuda":
        report["gpu"] = torch.cuda.get_device_name(0)
        if checks:
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"],
                               cwd=ROOT, capture_output=True, text=True)
            report["cuda_tests"] = {"returncode": r.returncode, "tail": r.stdout[-1500:]}
    with np.load(data) as f:
        train_x, test_x = f["train"], f["test"]
    cfg = None
    if config:
        cfg = dict(DEFAULT_CONFIG, **json.loads(Path(config).read_text()))
        init_from = None
    elif init_from is None:
        default = read_model(default_model_name())
        src = default.card.get("converted_from")  # an integer default: train its float source
        init_from = src["sha256"] if src else default.name
    with tempfile.TemporaryDirectory() as tmp:
        tr = Path(tmp) / "train.npz"
        np.savez(tr, x=train_x)
        opts = TrainOptions(data=str(tr), run=str(dest / "run"), minutes=minutes, batch=batch, threads=1,
                            val_images=val_images, init_from=init_from, device=device)
        train(opts, cfg, progress=True)
    model_dir = export_model(str(dest / "run"), str(dest), "model")
    files = read_model(str(model_dir))
    trained = build_vdm(files).to(device)
    x = np.ascontiguousarray(test_x.transpose(0, 3, 1, 2))
    report["trained_test_nelbo"] = evaluate_nelbo(trained, x, repeats=repeats)
    if init_from:
        start = read_model(init_from)
        m0 = build_vdm(start).to(device)
        report["start_model"] = {"name": start.name, "sha256": start.sha256[:16]}
        report["start_test_nelbo"] = evaluate_nelbo(m0, x, repeats=repeats)
    meta = json.loads(torch.load(dest / "run" / "state.pt", weights_only=True)["meta"])
    report.update(train_images=len(train_x), test_images=len(test_x), images_seen=meta["images"],
                  steps=meta["step"], config=files.config, weights_sha256=files.sha256[:16],
                  wall_seconds=round(time.time() - t0, 1),
                  note="test NELBO: continuous time, mean of %d antithetic draws per image, fixed seed" % repeats)
    (dest / "gpu_run.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="make the carried data (on this machine)")
    p.add_argument("--train", default=str(ROOT.parent / "shared/data/cifar10/train.npz"))
    p.add_argument("--test", default=str(ROOT.parent / "shared/data/cifar10/test.npz"))
    p.add_argument("--n-train", type=int, default=12000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--out", required=True)
    r = sub.add_parser("run", help="checks, training, evaluation, weights and card (on the GPU machine)")
    r.add_argument("--data", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--minutes", type=float, default=4.0)
    r.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    r.add_argument("--init-from", default=None, help="a model to continue (default: the default model's float source)")
    r.add_argument("--config", default=None, help="a model config JSON: train a new (larger) prior from scratch")
    r.add_argument("--batch", type=int, default=128)
    r.add_argument("--val-images", type=int, default=500)
    r.add_argument("--no-checks", action="store_true")
    a = ap.parse_args()
    if a.cmd == "prepare":
        print(json.dumps(prepare(a.train, a.test, a.out, a.n_train, a.n_test)))
    else:
        rep = run(a.data, a.out, a.minutes, a.device, a.init_from, a.config, a.batch, a.val_images, not a.no_checks)
        print(json.dumps({k: rep[k] for k in rep if "nelbo" in k or k in ("images_seen", "wall_seconds")}))


if __name__ == "__main__":
    main()
