"""Shared fixtures: tiny random-weight models (fast, CPU) and small images of every kind."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from bbcodec.diffusion.net import DEFAULT_CONFIG, VDM
from bbcodec.images import from_pil
from bbcodec.registry import load_model

# One intra-op thread, as the coder's default: tiny networks gain nothing from more, and beside another busy
# process (a training run) OpenMP's spinning threads made single tests minutes long.
torch.set_num_threads(1)

TINY = dict(DEFAULT_CONFIG, channels=[8, 8], attn_levels=[1], tile=32)


def make_tiny_model(folder, seed=0, out_std=1e-3):
    """A tiny VDM with random weights whose eps-prediction is small but not zero, so that the
    network's output (and its exact floating-point values) matters to every coded symbol, while
    x_hat stays a sensible denoiser for rate tests."""
    torch.manual_seed(seed)
    m = VDM(TINY)
    torch.nn.init.normal_(m.net.out.weight, std=out_std)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(m.state_dict(), folder / "weights.pt")
    (folder / "config.json").write_text(json.dumps(TINY))
    return folder


TINY_FLOW = {"arch": "realnvp", "hidden": 8, "res_blocks": 1, "couplings": 2, "levels": 2, "tile": 8}


def make_tiny_flow(folder, seed=0, noise=0.05):
    """A tiny coupling flow (8x8 tiles) with random weights: every coupling's scale and shift depend
    on its input (a fresh flow's output layers are zero, an identity, which would test nothing)."""
    from bbcodec.flows import Flow
    torch.manual_seed(seed)
    f = Flow(TINY_FLOW)
    with torch.no_grad():
        for p in f.parameters():
            p.add_(noise * torch.randn_like(p))
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(f.state_dict(), folder / "weights.pt")
    (folder / "config.json").write_text(json.dumps(f.config))
    return folder


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """The library's cache folder (measured start-up constants) per test session, never the user's."""
    import os
    os.environ["BBCODEC_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-a")


@pytest.fixture(scope="session")
def other_model_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-b", seed=1)


@pytest.fixture(scope="session")
def tiny_flow_dir(tmp_path_factory):
    return make_tiny_flow(tmp_path_factory.mktemp("flow") / "tiny-flow")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    return load_model(str(tiny_model_dir))


def chain_rate(model, spec, x: np.ndarray, seed_words) -> tuple[int, float]:
    """Code tiles x (uint8 [N, 3, 32, 32]) one after another on one stack: (bits the stack grew by,
    the NELBO the encoder recorded along those chains, in bits)."""
    from bbcodec.ans import Stack
    from bbcodec.diffusion.codec import ChainStats, EpsFn, tile_batch_codec
    W = 20000
    st = Stack(seed_words(W))
    nelbo = 0.0
    for j in range(len(x)):
        xb, mask = x[j:j + 1], np.ones((1, 3, 32, 32), dtype=bool)
        stats = ChainStats(1)
        tile_batch_codec(spec, EpsFn(model.vdm.net), mask, x_true=xb, stats=stats).push(st, xb[mask])
        nelbo += stats.total.sum()
    return 32 * (len(st.words()) - W), nelbo


def cifar_samples():
    """The CIFAR-10 test images bundled with the package (uint8 [N, 32, 32, 3])."""
    from bbcodec.demo import SAMPLES
    return np.stack([np.asarray(Image.open(f)) for f in sorted(SAMPLES.glob("*.png"))])


def pil_image(mode, w, h, seed=0):
    """A smooth-ish random image of a Pillow mode (natural-ish content keeps rates sane)."""
    rng = np.random.default_rng(seed)
    base = np.cumsum(np.cumsum(rng.integers(-3, 4, (h, w, 4)), 0), 1)
    arr = (base % 256).astype(np.uint8)
    if mode == "RGB":
        return Image.fromarray(arr[..., :3], "RGB")
    if mode == "RGBA":
        return Image.fromarray(arr, "RGBA")
    if mode == "L":
        return Image.fromarray(arr[..., 0], "L")
    if mode == "LA":
        return Image.fromarray(arr[..., :2], "LA")
    if mode == "1":
        return Image.fromarray(arr[..., 0] > 127)
    if mode == "P":
        im = Image.fromarray(arr[..., :3], "RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=17)
        return im
    raise ValueError(mode)


def image_data(mode, w, h, seed=0, name=None):
    return from_pil(pil_image(mode, w, h, seed), name or f"{mode}_{w}x{h}.png")


def make_tiny_int_model(folder, source, tmp):
    """The integer version (`bbcodec convert`) of a tiny float model, calibrated on the bundled samples."""
    from bbcodec.convert import convert_model
    npz = tmp / "calibration.npz"
    np.savez(npz, x=cifar_samples())
    convert_model(str(source), str(npz), str(folder), images=10)
    return folder


@pytest.fixture(scope="session")
def tiny_int_model_dir(tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny-int")
    return make_tiny_int_model(tmp / "tiny-int", tiny_model_dir, tmp)


@pytest.fixture(scope="session")
def tiny_int_model(tiny_int_model_dir):
    return load_model(str(tiny_int_model_dir))
