"""The prepared GPU session (bench/gpu_recipe.py), run end to end on the CPU at toy size: no device
was lent to check it on CUDA, so this is what keeps it working until one is."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import TINY, make_tiny_model

ROOT = Path(__file__).resolve().parent.parent


def test_the_gpu_recipe_runs_end_to_end_at_toy_size(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("train", 40), ("test", 12)):
        np.savez(tmp_path / f"{name}.npz", x=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))
    data = tmp_path / "carried.npz"
    script = str(ROOT / "bench" / "gpu_recipe.py")
    subprocess.run([sys.executable, script, "prepare", "--train", str(tmp_path / "train.npz"), "--test",
                    str(tmp_path / "test.npz"), "--n-train", "30", "--n-test", "8", "--out", str(data)], check=True,
                   capture_output=True)
    start = make_tiny_model(tmp_path / "start")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, script, "run", "--data", str(data), "--out", str(out), "--minutes", "0.02",
                        "--device", "cpu", "--init-from", str(start), "--batch", "4", "--val-images", "6"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((out / "gpu_run.json").read_text())
    assert rep["images_seen"] > 0 and rep["test_images"] == 8
    assert rep["trained_test_nelbo"]["bpd"] > 0 and rep["start_test_nelbo"]["bpd"] > 0
    assert (out / "model" / "weights.pt").exists() and json.loads((out / "model" / "config.json").read_text())
    assert json.loads((out / "model" / "config.json").read_text())["channels"] == TINY["channels"]
