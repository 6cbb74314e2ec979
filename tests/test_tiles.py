"""Tile sizes: a diffusion network is convolutional, so the coder cuts images into T x T tiles for any
T of `defaults.TILES`; the header records T and the decoder follows it. A flow codes its own tile only."""
import numpy as np
import pytest

from bbcodec import api, defaults
from bbcodec.errors import BbcError, FormatError
from bbcodec.format import container
from conftest import image_data


def _images():
    return [image_data("RGB", 70, 40), image_data("RGBA", 33, 65, 1), image_data("L", 20, 9, 2)]


@pytest.mark.parametrize("which, tile", [("tiny_model", 64), ("tiny_model", 128), ("tiny_int_model", 64)])
def test_every_tile_size_round_trips_and_is_recorded(request, which, tile):
    model = request.getfixturevalue(which)
    imgs = _images()
    params = api.coding_params(model, 3)
    data, rep = api.compress(imgs, model, params, parallel=2, tile=tile)
    h = container.parse(data).header
    assert h["coding"]["tile"] == tile
    # the tiles are T x T: 70x40 is 2x1 tiles at 64, one at 128; and so on
    want = sum(-(-d.height // tile) * -(-d.width // tile) for d in imgs)
    assert rep.model_tiles + rep.bootstrap_tiles == want
    out, _ = api.decompress(data, model)
    for a, b in zip(imgs, out):
        assert np.array_equal(a.main, b.main) and (a.alpha is None or np.array_equal(a.alpha, b.alpha))


def test_an_integer_networks_tiles_keep_its_attention_exact(tiny_int_model):
    from bbcodec.registry import load_model
    # the tiny network attends at half resolution: 64x64 positions at T = 128, which is not exact
    assert tiny_int_model.config["attn_levels"] == [1] and api.tile_sizes(tiny_int_model) == (32, 64)
    with pytest.raises(BbcError, match="--tile 128: model .* codes tiles of 32, 64$"):
        api.compress(_images(), tiny_int_model, api.coding_params(tiny_int_model, 3), tile=128)
    assert api.tile_sizes(load_model("photo-vdm-p2-int")) == (32, 64, 128)  # attention at quarter resolution


def test_a_larger_tile_is_a_different_file_and_the_default_is_the_models(tiny_model):
    imgs = _images()
    params = api.coding_params(tiny_model, 3)
    default, _ = api.compress(imgs, tiny_model, params, parallel=2)
    same, _ = api.compress(imgs, tiny_model, params, parallel=2, tile=tiny_model.tile)
    other, _ = api.compress(imgs, tiny_model, params, parallel=2, tile=64)
    assert default == same != other
    assert container.parse(default).header["coding"]["tile"] == tiny_model.tile == 32


def test_unsupported_tiles_are_refused_in_one_line(tiny_model, tiny_flow_dir):
    from bbcodec.registry import load_model
    with pytest.raises(BbcError, match=r"--tile 48: model .* codes tiles of 32, 64, 128"):
        api.compress(_images(), tiny_model, api.coding_params(tiny_model, 3), tile=48)
    flow = load_model(str(tiny_flow_dir))
    with pytest.raises(BbcError, match=rf"--tile 64: model .* codes tiles of {flow.tile}$"):
        api.compress(_images(), flow, tile=64)
    # a header naming another tile size is refused before decoding
    data, _ = api.compress(_images(), tiny_model, api.coding_params(tiny_model, 3), parallel=2, tile=64)
    c = container.parse(data)
    for bad in (48, 256):
        forged = container.Container(dict(c.header, coding=dict(c.header["coding"], tile=bad)), c.payload, c.side,
                                     c.version).to_bytes()
        with pytest.raises(FormatError, match=f"tile size {bad}"):
            api.decompress(forged, tiny_model)
    assert defaults.TILES == (32, 64, 128)
    for bad in (64.0, "64", True):  # the Python API: a one-line error, before any work
        with pytest.raises(BbcError, match="is not an integer tile size"):
            api.compress(_images(), tiny_model, api.coding_params(tiny_model, 3), tile=bad)
    data, _ = api.compress(_images(), tiny_model, api.coding_params(tiny_model, 3), parallel=2, tile=np.int64(64))
    assert container.parse(data).header["coding"]["tile"] == 64


def test_cli_tile_option(tiny_model_dir, tmp_path):
    from click.testing import CliRunner
    from bbcodec.cli import cli
    from conftest import pil_image

    pil_image("RGB", 70, 50).save(tmp_path / "a.png")
    r = CliRunner().invoke(cli, ["compress", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--steps", "2",
                                 "--tile", "64", "--json"])
    assert r.exit_code == 0, r.output
    assert '"tile": 64' in r.stderr + r.output and "64x64 tile" in r.stderr
    r = CliRunner().invoke(cli, ["decompress", str(tmp_path / "a.bbc"), "-o", str(tmp_path / "b.png"),
                                 "--model", str(tiny_model_dir)])
    assert r.exit_code == 0, r.output
    from PIL import Image
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))
    r = CliRunner().invoke(cli, ["compress", str(tmp_path / "a.png"), "-o", str(tmp_path / "c.bbc"), "--tile", "48"])
    assert r.exit_code == 2 and not (tmp_path / "c.bbc").exists()


def test_cli_refuses_a_tile_the_model_cannot_code_in_one_line(tiny_flow_dir, tmp_path):
    from click.testing import CliRunner
    from bbcodec.cli import cli
    from conftest import pil_image

    pil_image("RGB", 16, 16).save(tmp_path / "a.png")
    r = CliRunner().invoke(cli, ["compress", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.bbc"),
                                 "--model", str(tiny_flow_dir), "--tile", "64"])
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 1 and lines[-1].startswith("bbcodec: error: --tile 64: model tiny-flow codes tiles of")
    assert "Traceback" not in r.output and not (tmp_path / "a.bbc").exists()


def test_a_models_coding_tile_is_the_default_where_most_pixels_fill_it(tiny_model, tiny_flow_dir):
    import dataclasses
    from bbcodec.registry import load_model
    wide = dataclasses.replace(tiny_model, coding_tile=64)
    assert defaults.LARGE_TILE_MIN_TILES == 9
    assert api.default_tile(tiny_model, [(500, 400)]) == 32  # no coding tile: its own
    assert api.default_tile(wide, [(500, 400)]) == 64  # 8 x 7 tiles of 64
    assert api.default_tile(wide, iter([(500, 400)])) == 64  # any iterable of sizes
    assert api.default_tile(wide, [(192, 128), (32, 32)]) == 32  # 3 x 2 + 1 tiles: too few for 64
    assert api.default_tile(wide, [(192, 160), (32, 32)]) == 64  # 3 x 3 + 1
    assert api.default_tile(wide, [(63, 5000)]) == 32  # too short for one 64-row band: padding for nothing
    assert api.default_tile(wide, [(400, 400)] + [(32, 32)] * 160) == 32  # half the pixels is not most
    assert api.default_tile(dataclasses.replace(tiny_model, coding_tile=32), [(500, 400)]) == 32
    flow = load_model(str(tiny_flow_dir))
    assert api.default_tile(dataclasses.replace(flow, coding_tile=64), [(500, 400)]) == flow.tile
    # compress without a tile codes with that default, and the header records it
    big, small = [image_data("RGB", 330, 300)], [image_data("RGB", 200, 100)]
    params = api.coding_params(wide, 2)
    for imgs, T in ((big, 64), (small, 32)):
        data, _ = api.compress(imgs, wide, params, parallel=8)
        assert container.parse(data).header["coding"]["tile"] == T
        assert data == api.compress(imgs, wide, params, parallel=8, tile=T)[0]
        assert np.array_equal(api.decompress(data, wide)[0][0].main, imgs[0].main)
        assert sum(api.model_tile_batches(imgs, wide, 8, "jxl")) + 1 == api.plan.tile_count(*imgs[0].main.shape[1:], T)


def test_the_shipped_registry_names_coding_tiles_it_can_code():
    from bbcodec.registry import list_models, load_model

    tiles = {m["name"]: m.get("coding_tile") for m in list_models()}
    assert tiles["photo-vdm-p2-dt-int"] == 64  # docs/decisions.md: the photo prior codes photos with 64x64 tiles
    assert tiles["photo-vdm-t64-int"] == 64  # ... and the one trained on 64x64 crops
    for name, T in tiles.items():
        model = load_model(name)
        assert T is None or (T > model.tile and T in api.tile_sizes(model))
