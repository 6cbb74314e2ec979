"""The shipped default model: registry checks always; round trips on CIFAR-10 images when slow."""
import numpy as np
import pytest

from bbcodec import api, encode
from bbcodec.images import ImageData
from bbcodec.registry import list_models, load_model

from conftest import cifar_samples


def test_registry_verifies_the_shipped_weights():
    ms = list_models()
    assert any(m["default"] for m in ms)
    m = load_model()
    assert m.sha256 and m.card.get("test_nelbo_bpd")
    # the optimal grids it ships are valid time grids
    for name, table in m.grids.items():
        for k, t in table.items():
            assert len(t) == int(k) + 1 and t[0] == 0.0 and t[-1] == 1.0 and np.all(np.diff(t) > 0)


@pytest.mark.slow
@pytest.mark.parametrize("grid_bits,parallel,boot,latents", [(1, 1, None, None), (0, 2, None, None), (0, 1, "auto", None),
                                                              (0, 2, "auto", 1)])
def test_shipped_model_round_trip_on_cifar(grid_bits, parallel, boot, latents):
    m = load_model()
    x = cifar_samples()[:3]
    imgs = [ImageData(f"{i}.png", "RGB", 32, 32, np.ascontiguousarray(a.transpose(2, 0, 1))) for i, a in enumerate(x)]
    # the model's own defaults (latent coding version 2 on its fitted grid), and version 1 on its grid
    params = api.coding_params(m, 25, None, grid_bits, latents)
    assert params.latents == (latents or m.default_latents)
    data, rep = api.compress(imgs, m, params, parallel=parallel, bootstrap=boot)
    out, _ = api.decompress(data, m)
    for a, b in zip(imgs, out):
        assert np.array_equal(a.main, b.main)
    # the stack's own bits (header excluded: it weighs 0.2 bits/dim on three 32x32 images) stay
    # within 3% of the NELBO of the chain that was coded
    from bbcodec.format import container
    stack_bits = 8 * len(container.parse(data).payload) - rep.initial_bits
    assert stack_bits < 1.03 * (rep.nelbo_bits + rep.bootstrap_bits)


@pytest.mark.slow
def test_bench_cli_small(tmp_path):
    from click.testing import CliRunner
    from bbcodec.cli import cli
    npz = tmp_path / "d.npz"
    np.savez(npz, x=cifar_samples()[:2])
    out = tmp_path / "r.json"
    r = CliRunner().invoke(cli, ["bench", str(npz), "--steps", "8", "--grid", "uniform", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "archive" in out.with_suffix(".md").read_text()


@pytest.mark.slow
def test_batches_that_outgrow_the_stack_are_retried_with_a_slower_ramp(monkeypatch):
    """A smooth image leaves few bits per tile on the stack; batches as large as what is done (ramp 1)
    then draw seed words (5,792 bits measured), and the encoder's retry with ramp 2 draws none
    beyond the ANS head."""
    m = load_model()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:96, 0:256] / 64
    base = np.stack([128 + 60 * np.sin(2 * x + c) * np.cos(1.5 * y - c) for c in (0.0, 1.0, 2.0)])
    img = ImageData("s.png", "RGB", 256, 96, np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8))
    params = api.coding_params(m, 100)
    monkeypatch.setattr(encode, "RAMPS", (1,))
    _, fast = api.compress([img], m, params, parallel=16)
    assert fast.initial_bits > 32 * encode.HEAD_WORDS
    monkeypatch.setattr(encode, "RAMPS", (1, 2))
    data, rep = api.compress([img], m, params, parallel=16)
    assert rep.initial_bits <= 32 * encode.HEAD_WORDS and rep.bytes < fast.bytes
    # the ramp-1 try stopped at the batch that dipped into the seed, before the image's end
    assert rep.encodes == 2 and rep.tiles_coded < 2 * rep.model_tiles
    out, _ = api.decompress(data, m)
    assert np.array_equal(out[0].main, img.main)


def test_the_shipped_flow_is_registered_with_its_card():
    from bbcodec import defaults
    m = load_model(defaults.FLOW_MODEL)
    assert m.kind == "flow" and m.card.get("kind") == "flow" and m.card.get("test_nll_bpd")


@pytest.mark.slow
@pytest.mark.parametrize("boot", [None, "auto"])
def test_shipped_flow_round_trip_on_cifar(boot):
    """The shipped flow on CIFAR-10 samples: bit-exact, and the stack's bits (header and initial bits
    excluded) within 1% of the flow's own bound on the path coded."""
    from bbcodec import defaults
    from bbcodec.format import container
    m = load_model(defaults.FLOW_MODEL)
    x = cifar_samples()[:4]
    imgs = [ImageData(f"{i}.png", "RGB", 32, 32, np.ascontiguousarray(a.transpose(2, 0, 1))) for i, a in enumerate(x)]
    data, rep = api.compress(imgs, m, parallel=2, bootstrap=boot)
    out, _ = api.decompress(data, m)
    for a, b in zip(imgs, out):
        assert np.array_equal(a.main, b.main)
    stack_bits = 8 * len(container.parse(data).payload) - rep.initial_bits - rep.bootstrap_bits
    assert rep.model_tiles > 0
    assert abs(stack_bits / (rep.nelbo_bits - 8 * len(container.parse(data).side)) - 1) < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("tile", [32, 64])
def test_shipped_photo_prior_is_picked_for_photos_and_round_trips(tile):
    """The shipped photo prior: compress's choice for a photo (not for a CIFAR-10 image), bit-exact at its
    own tile and at 64, with the stack's bits close to the NELBO of the chain coded."""
    from pathlib import Path

    from PIL import Image

    from bbcodec.format import container
    from bbcodec.images import from_pil
    from bbcodec.registry import _registry, default_model_for

    crop = np.asarray(Image.open(Path(__file__).parent / "golden" / "astronaut-64x40.png"))
    photo = np.concatenate([crop, crop[:, ::-1]], axis=1)  # 128x40 of photo content
    name, _ = default_model_for([photo.shape[0] * photo.shape[1]])
    reg = _registry()
    assert name == reg["photo_default"] != reg["default"] == default_model_for([32 * 32] * 3)[0]
    m = load_model(name)
    assert m.integer and m.card["domain"] == "photos"
    imgs = [from_pil(Image.fromarray(photo), "photo.png")]
    data, rep = api.compress(imgs, m, api.coding_params(m, 25), parallel=2, bootstrap=None, tile=tile)
    assert container.parse(data).header["coding"]["tile"] == tile
    out, _ = api.decompress(data, m)
    assert np.array_equal(out[0].main, imgs[0].main)
    stack_bits = 8 * len(container.parse(data).payload) - rep.initial_bits
    assert rep.model_tiles > 0 and stack_bits < 1.03 * rep.nelbo_bits
