"""Where models live, and the only place that loads their weights.

models/registry.json lists shipped models by name with the sha256 of their weights file; a
model is a folder with weights.pt (a plain state dict, loaded with weights_only=True) and
config.json (everything needed to build the network: nothing is taken from command-line flags).
The sha256 is checked before the weights are unpickled. A folder path works too (for models
being trained); its sha256 is computed and recorded in the files it codes.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .diffusion.net import VDM
from .diffusion.schedule import Schedule
from .errors import ModelError

MODELS_DIR = Path(os.environ.get("BBCODEC_MODELS", Path(__file__).resolve().parent.parent / "models"))


@dataclass
class LoadedModel:
    name: str
    sha256: str          # first 16 hex digits of weights.pt's sha256
    config: dict
    vdm: VDM
    schedule: Schedule
    tile: int
    device: str
    card: dict
    grids: dict          # name -> {str(K): [t_0 .. t_K]}, frozen with the model (grids.json)
    mse_curve: tuple | None = None  # (t, E (s(x) - x_hat(z_t))^2 per dim) on training images (grids.json)

    def time_grid(self, name: str, steps: int):
        """The K+1 times of a named grid: 'uniform', or a grid shipped with this model."""
        import numpy as np
        from .diffusion.codec import time_grid

        if name == "uniform":
            return time_grid(name, steps)
        if name not in self.grids:
            raise ModelError(f"model {self.name} has no time grid {name!r} "
                             f"(has: uniform{''.join(', ' + g for g in self.grids)})")
        table = self.grids[name]
        if str(steps) not in table:
            ks = ", ".join(sorted(table, key=int))
            raise ModelError(f"grid {name!r} of model {self.name} has no {steps}-step grid (K = {ks}; "
                             f"or --grid uniform)")
        return np.array(table[str(steps)], dtype=np.float64)

    @property
    def default_grid(self) -> str:
        return "opt1" if "opt1" in self.grids else "uniform"

    @property
    def default_latents(self) -> int:
        """Latent coding version 2 (analytic push variances) needs the model's mse curve."""
        return 2 if self.mse_curve is not None else 1


def _registry() -> dict:
    path = MODELS_DIR / "registry.json"
    if not path.exists():
        return {"default": None, "models": {}}
    return json.loads(path.read_text())


def default_model_name() -> str:
    name = _registry().get("default")
    if not name:
        raise ModelError(f"no default model registered in {MODELS_DIR / 'registry.json'}")
    return name


def list_models() -> list[dict]:
    reg = _registry()
    return [dict(name=k, default=(k == reg.get("default")), **v) for k, v in reg["models"].items()]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_device(device: str) -> str:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda: no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise ModelError(f"unknown device {device!r} (auto, cpu or cuda)")
    if device == "cuda":
        deterministic_cuda()
    return device


def deterministic_cuda() -> None:
    """The decoder must reproduce the encoder's floats: deterministic kernels only, no TF32."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True)


_CACHE: dict = {}


def load_model(name_or_path: str | None = None, device: str = "cpu") -> LoadedModel:
    """Load a registered model by name (sha256-verified) or a model folder by path."""
    device = resolve_device(device)
    reg = _registry()
    name_or_path = name_or_path or default_model_name()
    if name_or_path in reg["models"]:
        entry = reg["models"][name_or_path]
        folder = MODELS_DIR / entry["path"]
        expected = entry["sha256"]
        name = name_or_path
    else:
        folder = Path(name_or_path)
        if not (folder / "weights.pt").exists():
            known = ", ".join(reg["models"]) or "none"
            raise ModelError(f"unknown model {name_or_path!r} (registered: {known}; or a folder with weights.pt)")
        expected = None
        name = folder.name
    weights = folder / "weights.pt"
    key = (str(weights.resolve()), device)
    if key in _CACHE:
        return _CACHE[key]
    try:
        sha = file_sha256(weights)
    except OSError as e:
        raise ModelError(f"model {name}: cannot read weights ({e.strerror})")
    if expected is not None and sha != expected:
        raise ModelError(f"model {name}: weights fail their sha256 check (expected {expected[:16]}, got {sha[:16]})")
    try:
        config = json.loads((folder / "config.json").read_text())
        sd = torch.load(weights, map_location="cpu", weights_only=True)
        vdm = VDM(config)
        # Weights may be stored in float16: the model IS the rounded weights, evaluated in float32.
        vdm.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
    except Exception as e:
        raise ModelError(f"model {name}: cannot load ({type(e).__name__})")
    vdm.eval().to(device)
    card_path = folder / "card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    grids, mse_curve = {}, None
    grids_path = folder / "grids.json"
    if grids_path.exists():
        want = reg["models"].get(name, {}).get("grids_sha256") if expected is not None else None
        if want is not None and file_sha256(grids_path) != want:
            raise ModelError(f"model {name}: grids.json fails its sha256 check")
        gj = json.loads(grids_path.read_text())
        grids = gj["grids"]
        if "curve" in gj:
            import numpy as np
            mse_curve = (np.array(gj["curve"]["t"], dtype=np.float64), np.array(gj["curve"]["mse_per_dim"], dtype=np.float64))
    m = LoadedModel(name=name, sha256=sha[:16], config=config, vdm=vdm, schedule=vdm.gamma.frozen(),
                    tile=int(config.get("tile", 32)), device=device, card=card, grids=grids, mse_curve=mse_curve)
    _CACHE[key] = m
    return m
