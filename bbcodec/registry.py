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
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda: no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise ModelError(f"unknown device {device!r} (auto, cpu or cuda)")
    return device


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
    m = LoadedModel(name=name, sha256=sha[:16], config=config, vdm=vdm, schedule=vdm.gamma.frozen(),
                    tile=int(config.get("tile", 32)), device=device, card=card)
    _CACHE[key] = m
    return m
