"""Where models live, and the only place that loads their weights.

The shipped models are package data: `bbcodec/models/registry.json` and one folder per model beside
it, so an installed wheel carries them (`BBCODEC_MODELS` points elsewhere). A model folder holds
weights.pt (a plain state dict, loaded with weights_only=True) and config.json (everything needed to
build the network: nothing is taken from command-line flags).

registry.json (format 2):

    {"format": 2, "default": NAME, "photo_default": NAME, "models": {NAME: ENTRY, ...}}

    "default" is the prior for small images (and for everything where no "photo_default" is given);
    "photo_default", optional, the prior for photographs: `default_model_for` picks between them by
    the sizes of the images to code (an older reader ignores the key and uses "default").

    shipped ENTRY: {"path": folder under the registry's folder, "sha256": of weights.pt,
                    "grids_sha256": of grids.json, "description": ...,
                    "coding_tile": optional, a larger tile than the trained one that it codes large
                    images with by default (`api.default_tile`; `bbcodec convert --register NAME
                    --coding-tile T`, with the measurement in docs/decisions.md)}
    retired ENTRY: {"retired": true, "sha256", "grids_sha256", "description",
                    "last_commit": the last commit of the repository that ships it (40 hex digits),
                    "last_path": its folder at that commit, "figures": its card's figures, for the docs}

A file's header names its model and the first 16 hex digits of the weights' sha256; a model is
found by either (`model_for_header`), and a retired one is named with the commit that has it.

Every load reads weights.pt once, checks the sha256 of those bytes against the registry where the
model is registered (by name, by sha256 prefix, or by the path of its folder), and unpickles the
same bytes. A free folder (a model being trained) is loaded with its sha256 computed, which the
files it codes and the runs it starts record.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .diffusion.net import VDM
from .diffusion.schedule import Schedule
from .errors import ModelError

PACKAGE_MODELS = Path(__file__).resolve().parent / "models"
MODELS_DIR = Path(os.environ.get("BBCODEC_MODELS") or PACKAGE_MODELS)
REGISTRY_FORMAT = 2
SHA_PREFIX_DIGITS = 16  # what a file's header keeps of the weights' sha256
_HEX = re.compile(r"[0-9a-f]{%d,64}" % SHA_PREFIX_DIGITS)


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
    flow: object | None = None  # a `flows.Flow` (config arch "realnvp"): then vdm and schedule are None
    coding_tile: int | None = None  # the tile it codes large images with by default (registry "coding_tile"; None: tile)

    @property
    def kind(self) -> str:
        """"flow" for a coupling flow (coded by local bits-back), "diffusion" for a VDM."""
        return "flow" if self.flow is not None else "diffusion"

    @property
    def integer(self) -> bool:
        """The network is an integer network: its files decode on any machine."""
        return self.vdm is not None and bool(getattr(self.vdm.net, "integer", False))

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


@dataclass
class ModelFiles:
    """A model folder's files as read and checked: what `train --init-from` and the model card
    tool start from, and what `load_model` builds its network from."""
    name: str
    folder: Path
    sha256: str          # full hex sha256 of the weights.pt bytes that were unpickled
    registered: bool     # True: checked against the registry; False: a free folder, sha256 computed
    config: dict
    state_dict: dict     # float32: float16-stored weights upcast (the model IS the rounded weights)
    card: dict


def registry_path() -> Path:
    return MODELS_DIR / "registry.json"


def _registry() -> dict:
    path = registry_path()
    if not path.exists():
        return {"format": REGISTRY_FORMAT, "default": None, "models": {}}
    reg = json.loads(path.read_text())
    if reg.get("format", 1) > REGISTRY_FORMAT:
        raise ModelError(f"{path}: registry format {reg['format']} is newer than this bbcodec reads "
                         f"({REGISTRY_FORMAT}): upgrade bbcodec")
    return reg


def default_model_name() -> str:
    name = _registry().get("default")
    if not name:
        raise ModelError(f"no default model registered in {registry_path()}")
    return name


def default_model_for(pixels: list[int]) -> tuple[str, str]:
    """(the model `compress` uses without --model, why) for images of these pixel counts: the
    registry's photo prior where most of the pixels are in images of more than
    `defaults.PHOTO_PRIOR_ABOVE_PIXELS` pixels, else its default."""
    from .defaults import PHOTO_PRIOR_ABOVE_PIXELS

    reg = _registry()
    photo = reg.get("photo_default")
    large = sum(p for p in pixels if p > PHOTO_PRIOR_ABOVE_PIXELS)
    if photo and 2 * large > sum(pixels):
        return photo, f"the photo prior: most pixels are in images larger than {PHOTO_PRIOR_ABOVE_PIXELS} pixels"
    if photo:
        return default_model_name(), f"the default prior: most pixels are in images of at most {PHOTO_PRIOR_ABOVE_PIXELS} pixels"
    return default_model_name(), "the default prior"


def list_models(include_retired: bool = False) -> list[dict]:
    """Registered models, the shipped ones (and with include_retired, the retired ones too)."""
    reg = _registry()
    return [dict(name=k, default=(k == reg.get("default")), photo_default=(k == reg.get("photo_default")), **v)
            for k, v in reg["models"].items() if include_retired or not v.get("retired")]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_by_sha256(prefix: str) -> str | None:
    """The registered model (shipped or retired) whose weights' sha256 starts with `prefix`
    (at least 16 hex digits, as a file's header holds), or None."""
    prefix = prefix.lower()
    if not _HEX.fullmatch(prefix):
        return None
    hits = [k for k, v in _registry()["models"].items() if v["sha256"].startswith(prefix)]
    return hits[0] if len(hits) == 1 else None


def retired_text(entry: dict) -> str:
    c = entry["last_commit"]
    return f"retired from this release; it ships with bbcodec at commit {c[:12]} (git checkout {c[:12]})"


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


def _locate(name_or_path: str | None) -> tuple[str, Path, dict | None]:
    """(name, folder, registry entry or None for a free folder) of a registered name, a sha256
    prefix of registered weights, or a folder path."""
    reg = _registry()
    models = reg["models"]
    name = name_or_path or default_model_name()
    if name not in models and not Path(name).exists():
        name = find_by_sha256(name) or name
    if name in models:
        entry = models[name]
        if entry.get("retired"):
            raise ModelError(f"model {name} is {retired_text(entry)}")
        return name, MODELS_DIR / entry["path"], entry
    folder = Path(name)
    if not (folder / "weights.pt").exists():
        known = ", ".join(m["name"] for m in list_models()) or "none"
        moved = ""
        if folder.name in models and folder.parent != Path("."):  # a path of the old models/ layout
            e = models[folder.name]
            moved = (f"; model {folder.name} is {retired_text(e)}" if e.get("retired") else
                     f"; the shipped models are inside the package now: give the name {folder.name}")
        raise ModelError(f"unknown model {name!r} (registered: {known}; or a folder with weights.pt){moved}")
    here = folder.resolve()
    for k, entry in models.items():  # a registered model's own folder given by path: checked as by name
        if not entry.get("retired") and (MODELS_DIR / entry["path"]).resolve() == here:
            return k, folder, entry
    return folder.name, folder, None


def _read_checked(path: Path, name: str, what: str, expected: str | None) -> tuple[bytes, str]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"model {name}: cannot read {what} ({e.strerror})")
    sha = hashlib.sha256(data).hexdigest()
    if expected is not None and sha != expected:
        fail = "fail their" if what == "weights" else "fails its"
        raise ModelError(f"model {name}: {what} {fail} sha256 check (expected {expected[:16]}, got {sha[:16]})")
    return data, sha


def _read(name: str, folder: Path, entry: dict | None) -> ModelFiles:
    data, sha = _read_checked(folder / "weights.pt", name, "weights", entry["sha256"] if entry else None)
    try:
        config = json.loads((folder / "config.json").read_text())
        sd = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    except Exception as e:
        raise ModelError(f"model {name}: cannot load ({type(e).__name__})")
    card_path = folder / "card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    return ModelFiles(name=name, folder=folder, sha256=sha, registered=entry is not None, config=config,
                      state_dict=sd, card=card)


def is_flow_config(config: dict) -> bool:
    return config.get("arch") == "realnvp"


def build_flow(files: ModelFiles):
    """The coupling flow a folder's files describe (config arch "realnvp"), weights loaded, eval mode."""
    from .flows import Flow
    flow = Flow.from_config(files.config)
    flow.load_state_dict(files.state_dict)
    return flow.eval()


def build_vdm(files: ModelFiles) -> VDM:
    """The model a folder's files describe, its weights loaded, in eval mode (on the CPU)."""
    vdm = VDM(files.config)
    vdm.load_state_dict(files.state_dict)
    return vdm.eval()


def read_model(name_or_path: str | None = None) -> ModelFiles:
    """A model's weights (sha256-checked where registered), config and card, without building it:
    by registered name, sha256 prefix, or folder path."""
    return _read(*_locate(name_or_path))


_CACHE: dict = {}


def load_model(name_or_path: str | None = None, device: str = "cpu") -> LoadedModel:
    """Load a registered model by name or sha256 prefix, or a model folder by path; registered
    weights and grids are sha256-checked (also when their folder is given by path)."""
    device = resolve_device(device)
    name, folder, entry = _locate(name_or_path)
    key = (str((folder / "weights.pt").resolve()), device)
    if key in _CACHE:
        return _CACHE[key]
    files = _read(name, folder, entry)
    if is_flow_config(files.config):
        try:
            flow = build_flow(files)
        except Exception as e:
            raise ModelError(f"model {name}: cannot load ({type(e).__name__})")
        m = LoadedModel(name=name, sha256=files.sha256[:SHA_PREFIX_DIGITS], config=files.config, vdm=None,
                        schedule=None, tile=flow.cfg.tile, device=device, card=files.card, grids={},
                        flow=flow.to(device))
        _CACHE[key] = m
        return m
    try:
        vdm = build_vdm(files)
    except Exception as e:
        raise ModelError(f"model {name}: cannot load ({type(e).__name__})")
    vdm.to(device)
    grids, mse_curve = {}, None
    grids_path = folder / "grids.json"
    if grids_path.exists():
        data, _ = _read_checked(grids_path, name, "grids.json", entry.get("grids_sha256") if entry else None)
        gj = json.loads(data)
        grids = gj["grids"]
        if "curve" in gj:
            import numpy as np
            mse_curve = (np.array(gj["curve"]["t"], dtype=np.float64), np.array(gj["curve"]["mse_per_dim"], dtype=np.float64))
    m = LoadedModel(name=name, sha256=files.sha256[:SHA_PREFIX_DIGITS], config=files.config, vdm=vdm,
                    schedule=vdm.gamma.frozen(), tile=int(files.config.get("tile", 32)), device=device,
                    card=files.card, grids=grids, mse_curve=mse_curve,
                    coding_tile=(entry or {}).get("coding_tile"))
    _CACHE[key] = m
    return m


def model_for_header(header_model: dict, device: str = "cpu", override: str | None = None) -> LoadedModel:
    """The model a file's header names ({"name", "sha256": first 16 hex digits}): the registered
    weights with that sha256 prefix whatever their name, else the name. `override` (a name or
    folder the user gave) is loaded as it is; the caller checks it against the header."""
    if override:
        return load_model(override, device)
    name, sha = header_model["name"], header_model["sha256"]
    models = _registry()["models"]
    found = find_by_sha256(sha)
    if found is not None and models[found].get("retired"):
        raise ModelError(f"file was coded with model {name} ({sha}), {retired_text(models[found])}")
    if found is not None:
        return load_model(found, device)
    if name in models:
        raise ModelError(f"file was coded with model {name} ({sha}), which this release does not have "
                         f"(its {name} is {models[name]['sha256'][:SHA_PREFIX_DIGITS]}); give the model's folder with --model")
    raise ModelError(f"file was coded with model {name} ({sha}), which is not registered here; "
                     "give the model's folder with --model")
