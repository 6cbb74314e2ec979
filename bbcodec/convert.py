"""A float VDM to an integer one (`diffusion.intnet`): a new model folder whose files decode anywhere.

Post-training quantisation: the float network is run on (z_t, gamma_t) pairs drawn from TRAINING
images at uniform random times, each named tensor's largest |value| fixes its exponent, and the
weights are rounded per output channel. Nothing is trained; the schedule, the time grids and the error
curve are the float model's (grids.json is copied byte for byte).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from .diffusion import intnet
from .diffusion.net import VDM
from .diffusion.vdm import pixel_to_model
from .registry import build_vdm, file_sha256, read_model

CALIBRATION_IMAGES = 512
CALIBRATION_SEED = 0


def calibration_pairs(vdm: VDM, x: np.ndarray, seed: int = CALIBRATION_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(z_t, gamma_t) for uint8 images x [N, C, H, W]: one uniform random time and noise draw per image."""
    g = torch.Generator().manual_seed(seed)
    f = pixel_to_model(torch.from_numpy(x))
    t = torch.rand(len(f), generator=g)
    with torch.no_grad():
        gamma = vdm.gamma(t)
    a = torch.sqrt(torch.sigmoid(-gamma)).view(-1, 1, 1, 1)
    s = torch.sqrt(torch.sigmoid(gamma)).view(-1, 1, 1, 1)
    return a * f + s * torch.randn(f.shape, generator=g), gamma


def convert_model(source: str, train_npz: str, out: str, images: int = CALIBRATION_IMAGES,
                  seed: int = CALIBRATION_SEED) -> dict:
    """Write the integer version of model `source` (a registered name or folder) to folder `out`,
    calibrated on the first `images` images of train_npz; returns its card."""
    from .train import load_images

    files = read_model(source)
    if files.config.get("arch") == "realnvp":
        raise ValueError(f"model {files.name} is a coupling flow: only diffusion models have an integer version")
    if files.config.get("arch") == intnet.ARCH:
        raise ValueError(f"model {files.name} is an integer network already")
    vdm = build_vdm(files)
    x = load_images(train_npz)[:images]
    z, gamma = calibration_pairs(vdm, x, seed)
    sd = intnet.convert(vdm, z, gamma)
    state = {"net." + k.replace(".", "__"): v for k, v in sd.items()}
    state.update({k: v.detach().clone() for k, v in vdm.state_dict().items() if k.startswith("gamma.")})
    dst = Path(out)
    dst.mkdir(parents=True, exist_ok=True)
    torch.save(state, dst / "weights.pt")
    config = dict(files.config, arch=intnet.ARCH)
    (dst / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    if (files.folder / "grids.json").exists():
        shutil.copyfile(files.folder / "grids.json", dst / "grids.json")
    card = {
        "name": dst.name, "sha256": file_sha256(dst / "weights.pt")[:16],
        "converted_from": {"name": files.name, "sha256": files.sha256[:16],
                           **({} if files.registered else {"folder": str(files.folder)})},
        "calibration": {"data": f"{Path(train_npz).name}[:{len(x)}]", "images": len(x), "seed": seed,
                        "times": "one uniform random t per image"},
        "arithmetic": {"weights": f"integers in [-{intnet.WEIGHT_LIMIT}, {intnet.WEIGHT_LIMIT}) per output channel "
                                  "times a power of two",
                       "activations": f"integers in [-2^{intnet.ACT_BITS}, 2^{intnet.ACT_BITS}) times a power of two "
                                      "per tensor"},
        "data": files.card.get("data", ""), "architecture": config,
        "parameters": sum(int(p.numel()) for p in vdm.parameters()),  # the same ones, as integers
        "schedule": files.card.get("schedule"), "training": files.card.get("training"),
        **({"grids_sha256": file_sha256(dst / "grids.json")} if (dst / "grids.json").exists() else {}),
        **{k: files.card[k] for k in ("domain", "training_note") if k in files.card},
    }
    (dst / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    return card


def render_integer_card(c: dict) -> str:
    from .modelcard import discrete_time_text
    src = c["converted_from"]
    cal = c["calibration"]
    ar = c["arithmetic"]
    lines = [f"# {c['name']}", "",
             f"- **What**: the integer version of `{src['name']}` (sha256 `{src['sha256']}…`): the same U-Net with "
             "every value an integer times a power of two and every operation exact, so its outputs, and the "
             "files it codes, are the same on any machine, device, thread count and batch "
             "(`bbcodec/diffusion/intnet.py`). Format version 4 files name it.",
             f"- **Arithmetic**: weights {ar['weights']}; activations {ar['activations']}.",
             f"- **Conversion**: post-training quantisation, calibrated on {cal['images']} training images "
             f"({cal['data']}, {cal['times']}, seed {cal['seed']}); nothing retrained. The schedule, the time grids "
             "and the error curve are the float model's.",
             f"- **Data** (of the float model): {c['data']}."]
    t = c.get("training") or {}
    if "images_seen_at_best" in t and "val_nelbo_bpd" in c and c.get("float_val_nelbo_bpd"):
        lines.append(f"- **Training** (of the float model): {t['images_seen_at_best']:,} images in "
                     f"{t['wall_seconds_at_best'] / 3600:.2f} h on {t.get('threads', 1)} CPU thread(s) "
                     f"({t['hardware']})" + (f", from `{t['init_from']['model']}`" if t.get("init_from") else "")
                     + (f"; then {discrete_time_text(t['coding_steps'], c.get('grids_sha256'))}"
                        if t.get("coding_steps") else "")
                     + (f"; {c['training_note']}" if c.get("training_note") else "")
                     + f". **Validation NELBO** ({c.get('val_data', 'the last 1,000 training images')}): "
                     f"{c['val_nelbo_bpd']:.4f} bits/dim (the float model, same draws: "
                     f"{c['float_val_nelbo_bpd']:.4f}).")
    if "test_nelbo_bpd" in c:
        what = c.get("test_data", f"first {c['test_images']:,} CIFAR-10 test images")
        lines.append(f"- **Test NELBO** ({what}, {c['test_nelbo_note']}): "
                     f"**{c['test_nelbo_bpd']:.4f} ± {c['test_nelbo_se']:.4f} bits/dim**"
                     + (f"; the float model, same draws: {c['float_test_nelbo_bpd']:.4f}" if "float_test_nelbo_bpd" in c
                        else "") + ".")
    if "coded" in c:
        from .modelcard import coded_line
        lines.append(coded_line(c["coded"]))
    lines += [f"- **Weights**: `weights.pt`, a state dict of integer tensors (loaded with weights_only=True), "
              f"sha256 `{c['sha256']}…` checked by the registry.", "",
              f"Regenerate: `bbcodec convert {src.get('folder', src['name'])} --data {cal['data'].split('[')[0]} "
              f"--images {cal['images']} --out FOLDER` (see docs/models.md).", ""]
    return "\n".join(lines)


def add_nelbo_figures(name: str, test: str, train_npz: str, n_test: int = 1000, repeats: int = 4) -> dict:
    """Put the integer model's validation and test NELBO on its card, beside its float source's on
    the same draws (same seed: the difference is the conversion's alone). test: a test .npz (its
    first n_test images), or a dataset name or folder whose images' full 32x32 tiles are the test set
    (`bench.dataset_tiles`: the photo prior is tested on the photos-full tiles). The source is found
    by its sha256 among the registered models, or is the folder the card's `converted_from` names."""
    from . import registry
    from .bench import dataset_tiles
    from .modelcard import _read_registry, render_card
    from .registry import find_by_sha256, load_model
    from .train import evaluate_nelbo, load_images

    model = load_model(name)
    folder = registry.MODELS_DIR / _read_registry()["models"][name]["path"]
    card = json.loads((folder / "card.json").read_text())
    src_ref = card["converted_from"]
    src = load_model(find_by_sha256(src_ref["sha256"]) or src_ref.get("folder") or src_ref["sha256"])
    if test.endswith(".npz"):
        x = load_images(test)[:n_test]
        what = f"first {len(x):,} CIFAR-10 test images" if "cifar" in str(Path(test).resolve()).lower() \
            else f"first {len(x):,} images of {Path(test).name}"
    else:
        x = dataset_tiles(test)
        what = f"all {len(x):,} full 32x32 tiles of {Path(test).name}"
    val = load_images(train_npz)[-1000:]
    t = evaluate_nelbo(model.vdm, x, repeats=repeats)
    card.update(val_nelbo_bpd=evaluate_nelbo(model.vdm, val)["bpd"], test_nelbo_bpd=t["bpd"],
                val_data=f"the last 1,000 images of {Path(train_npz).name}",
                test_nelbo_se=t["se"], test_images=len(x), test_data=what,
                test_nelbo_note=f"continuous-time NELBO, mean of {repeats} antithetic time samples per image, fixed seed",
                float_test_nelbo_bpd=evaluate_nelbo(src.vdm, x, repeats=repeats)["bpd"],
                float_val_nelbo_bpd=evaluate_nelbo(src.vdm, val)["bpd"])
    (folder / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    (folder / "MODEL_CARD.md").write_text(render_card(card))
    return card
