"""Round trips on every code path and the rate test, with a tiny random-weight model."""
import functools
import numpy as np
import pytest

from bbcodec import api, encode
from bbcodec.format import constants, plan
from bbcodec.format.container import VERSION
from bbcodec.errors import BbcError
from bbcodec.diffusion.codec import ChainSpec, CodingParams, EpsFn

from conftest import chain_rate, cifar_samples, image_data

seed_words = functools.partial(constants.seed_words, version=VERSION)  # the current format's


def _round_trip(images, model, boots=(None, "auto"), **kw):
    """Round trip with every tile coded by the prior (bootstrap None) and with the first tiles
    coded classically (auto): both code paths, every time."""
    params = CodingParams(steps=kw.pop("steps", 4), grid_bits=kw.pop("grid_bits", 1), grid=kw.pop("grid", "uniform"),
                          latents=kw.pop("latents", 1), order=kw.pop("order", "bitswap"))
    for boot in boots:
        data, rep = api.compress(images, model, params, bootstrap=boot, **kw)
        out, header = api.decompress(data, model)
        assert len(out) == len(images)
        for a, b in zip(images, out):
            assert (a.mode, a.width, a.height, a.name) == (b.mode, b.width, b.height, b.name)
            assert np.array_equal(a.main, b.main)
            assert (a.alpha is None) == (b.alpha is None)
            if a.alpha is not None:
                assert np.array_equal(a.alpha, b.alpha)
            assert a.palette == b.palette and a.transparency == b.transparency
    return data, rep


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "1", "P"])
def test_every_mode_round_trips(tiny_model, mode):
    _round_trip([image_data(mode, 37, 21)], tiny_model)


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1), (32, 32), (33, 65), (2000, 1), (1, 70)])
def test_edge_sizes_round_trip(tiny_model, size):
    w, h = size
    _round_trip([image_data("RGB", w, h)], tiny_model, steps=2)


def test_palette_with_transparency(tiny_model):
    d = image_data("P", 20, 10)
    d.transparency = 3
    _round_trip([d], tiny_model)
    d.transparency = bytes(range(10))
    _round_trip([d], tiny_model)


@pytest.mark.parametrize("parallel", [1, 2, 5])
def test_archive_of_mixed_images_and_parallel_tiles(tiny_model, parallel):
    imgs = [image_data("RGB", 40, 33, 1, "a.png"), image_data("L", 5, 70, 2, "b.png"),
            image_data("RGBA", 32, 32, 3, "c.png"), image_data("RGB", 1, 1, 4, "d.png")]
    _round_trip(imgs, tiny_model, parallel=parallel)


@pytest.mark.parametrize("steps,grid_bits", [(1, 0), (3, 0), (8, 2), (20, 4)])
def test_steps_and_grids_round_trip(tiny_model, steps, grid_bits):
    _round_trip([image_data("RGB", 32, 32, 5)], tiny_model, steps=steps, grid_bits=grid_bits)


def test_cifar_tiles_round_trip(tiny_model):
    from bbcodec.images import ImageData
    x = cifar_samples()[:3]
    imgs = [ImageData(f"{i}.png", "RGB", 32, 32, np.ascontiguousarray(a.transpose(2, 0, 1))) for i, a in enumerate(x)]
    _round_trip(imgs, tiny_model, steps=10, parallel=2)


def test_encoding_is_deterministic(tiny_model):
    imgs = [image_data("RGB", 40, 40, 7)]
    a, _ = api.compress(imgs, tiny_model, CodingParams(steps=5))
    b, _ = api.compress(imgs, tiny_model, CodingParams(steps=5))
    assert a == b


def test_rate_matches_nelbo_of_the_sampled_chain(tiny_model):
    """Achieved bits (net of the seed) within 1% of the NELBO_K accumulated along the very chain
    that was coded: the coder wastes nothing measurable over the model."""
    x = cifar_samples()[:4].transpose(0, 3, 1, 2).copy()
    spec = ChainSpec(tiny_model.schedule, CodingParams(steps=100, grid_bits=2))
    achieved, nelbo = chain_rate(tiny_model, spec, x, seed_words)
    assert abs(achieved / nelbo - 1) < 0.01, (achieved, nelbo)


def test_initial_bits_are_counted_and_paid_once(tiny_model):
    one = [image_data("RGB", 32, 32, 1)]
    _, r1 = api.compress(one, tiny_model, CodingParams(steps=10), bootstrap=None)
    _, r4 = api.compress(one * 1 + [image_data("RGB", 32, 32, s, f"{s}.png") for s in (2, 3, 4)],
                         tiny_model, CodingParams(steps=10), bootstrap=None)
    assert r1.initial_bits > 0
    # an archive pays the initial bits of its first tile only, not per image
    assert r4.initial_bits <= 1.5 * r1.initial_bits
    assert 8 * r1.bytes >= r1.initial_bits


def test_optimal_grid_round_trip_and_unknown_grid(tiny_model):
    from bbcodec.errors import ModelError
    t = [0.0, 0.1, 0.5, 0.8, 1.0]
    tiny_model.grids["opt1"] = {"4": t}
    try:
        _round_trip([image_data("RGB", 20, 20)], tiny_model, steps=4, grid="opt1")
        with pytest.raises(ModelError):
            api.compress([image_data("RGB", 8, 8)], tiny_model, CodingParams(steps=5, grid="opt1"))
    finally:
        del tiny_model.grids["opt1"]


def test_growing_batches_keep_initial_bits_of_one_tile(tiny_model):
    imgs = [image_data("RGB", 32, 32, s, f"{s}.png") for s in range(12)]
    _, r1 = api.compress(imgs, tiny_model, CodingParams(steps=6), parallel=1, bootstrap=None)
    _, r8 = _round_trip(imgs, tiny_model, boots=(None,), steps=6, parallel=8)
    assert r8.initial_bits <= 1.5 * r1.initial_bits


def test_png_metadata_survives(tiny_model, tmp_path):
    """ICC profile, text chunks (latin-1 and UTF-8), gamma, chromaticities, sRGB, dpi and EXIF."""
    import io
    from PIL import Image, PngImagePlugin
    from bbcodec.images import png_bytes, read_image
    from conftest import pil_image
    im = pil_image("RGB", 12, 9)
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a test")
    info.add_itxt("Comment", "ünïcode ✓")
    info.add(b"gAMA", (45455).to_bytes(4, "big"))
    info.add(b"cHRM", b"".join(v.to_bytes(4, "big") for v in (31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)))
    exif = Image.Exif()
    exif[0x010E] = "described"
    buf = io.BytesIO()
    im.save(buf, "PNG", pnginfo=info, icc_profile=b"not-a-real-icc" * 20, dpi=(300, 300), exif=exif.tobytes())
    d = read_image("m.png", data=buf.getvalue(), name="m.png")
    assert d.icc and d.exif and d.meta["text"]["Comment"] == "ünïcode ✓"
    (out,), _ = api.decompress(api.compress([d], tiny_model, CodingParams(steps=2))[0], tiny_model)
    back = Image.open(io.BytesIO(png_bytes(out)))
    back.load()
    orig = Image.open(io.BytesIO(buf.getvalue()))
    orig.load()
    assert back.info["icc_profile"] == orig.info["icc_profile"]
    assert back.text == orig.text
    for k in ("gamma", "chromaticity", "dpi", "exif"):
        assert back.info[k] == orig.info[k], k
    assert np.array_equal(np.asarray(back), np.asarray(orig))


def test_animated_images_are_refused(tmp_path):
    from PIL import Image
    from bbcodec.errors import ImageError
    from bbcodec.images import read_image
    frames = [Image.new("RGB", (4, 4), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="animated"):
        read_image(str(tmp_path / "a.png"))


def test_decoding_under_another_thread_count(tiny_model):
    """The decoder replays the encoder's batches; the torch thread count must not matter."""
    import torch
    imgs = [image_data("RGB", 70, 40, 9)]
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        data, _ = api.compress(imgs, tiny_model, CodingParams(steps=5), parallel=3)
        torch.set_num_threads(1)
        out, _ = api.decompress(data, tiny_model)
    finally:
        torch.set_num_threads(n)
    assert np.array_equal(out[0].main, imgs[0].main)


# --- bootstrap: the first tiles coded classically give the chain its initial bits ----------

def _cifar_images(n):
    from bbcodec.images import ImageData
    return [ImageData(f"{i}.png", "RGB", 32, 32, np.ascontiguousarray(a.transpose(2, 0, 1)))
            for i, a in enumerate(cifar_samples()[:n])]


def test_bootstrap_replaces_the_seed_bits(tiny_model):
    imgs = _cifar_images(6)
    _, seeded = _round_trip(imgs, tiny_model, boots=(None,), steps=10, grid_bits=0)
    data, boot = _round_trip(imgs, tiny_model, boots=("auto",), steps=10, grid_bits=0, parallel=3)
    assert seeded.bootstrap_tiles == 0 and seeded.initial_bits > 3000
    assert 1 <= boot.bootstrap_tiles < len(imgs) and boot.model_tiles == len(imgs) - boot.bootstrap_tiles
    assert boot.initial_bits <= 64  # at most the two words of the ANS head
    # the file pays the first tile's classical bytes instead of its model bits plus the seed bits
    assert boot.bytes < seeded.bytes


def test_one_tile_is_coded_classically_and_the_header_is_small(tiny_int_model):
    from bbcodec import baselines, bootstrap
    img = _cifar_images(1)
    data, rep = _round_trip(img, tiny_int_model, boots=("auto",), steps=5)
    assert rep.model_tiles == 0 and rep.bootstrap_tiles == 1
    classical = len(baselines.get(bootstrap.default_codec()).encode(img[0].main.transpose(1, 2, 0)))
    assert rep.bytes - classical < 130, (rep.bytes, classical)  # header and ANS head


def test_webp_bootstrap_of_gray_and_partial_tiles(tiny_model):
    imgs = [image_data("L", 45, 70, 3, "g.png"), image_data("RGB", 7, 50, 4, "c.png")]
    data, rep = _round_trip(imgs, tiny_model, boots=("webp",), steps=3)
    assert rep.bootstrap_tiles >= 1


def test_a_missing_bootstrap_library_is_a_clean_error(tiny_model, monkeypatch):
    from bbcodec import bootstrap
    data, _ = api.compress(_cifar_images(1), tiny_model, CodingParams(steps=3), bootstrap="jxl")
    real = bootstrap.get_baseline

    class Missing:
        def __init__(self, b):
            self.b = b

        def available(self):
            return False

    monkeypatch.setattr(bootstrap, "get_baseline", lambda n: Missing(real(n)))
    with pytest.raises(BbcError, match="not installed"):
        api.decompress(data, tiny_model)


@pytest.fixture
def curve_model(tiny_model):
    """The tiny model with an mse curve, as shipped models have one (grids.json): latent coding v2."""
    import dataclasses
    t = np.linspace(0, 1, 11)
    return dataclasses.replace(tiny_model, mse_curve=(t, 0.02 + 0.3 * t))


@pytest.mark.parametrize("steps,grid_bits,parallel", [(1, 0, 1), (4, 0, 2), (10, 1, 1), (6, 2, 3)])
def test_latent_version_2_round_trips(curve_model, steps, grid_bits, parallel):
    imgs = [image_data("RGB", 40, 33, 1, "a.png"), image_data("L", 32, 32, 2, "b.png")]
    data, _ = _round_trip(imgs, curve_model, steps=steps, grid_bits=grid_bits, latents=2, parallel=parallel)
    from bbcodec.format import container
    assert container.parse(data).header["coding"]["latents"] == 2


def test_latent_version_is_chosen_by_the_model_and_checked(tiny_model, curve_model):
    from bbcodec.errors import BbcError
    assert api.coding_params(curve_model, 10).latents == 2
    assert api.coding_params(tiny_model, 10).latents == 1
    assert api.coding_params(curve_model, 10, latents=1).latents == 1
    with pytest.raises(BbcError, match="mse curve"):
        api.coding_params(tiny_model, 10, latents=2)
    # version 1 files stay version 1: no field in the header, decoded as before
    data, _ = api.compress([image_data("RGB", 20, 20)], curve_model, CodingParams(steps=3), bootstrap=None)
    from bbcodec.format import container
    assert "latents" not in container.parse(data).header["coding"]
    with pytest.raises(ValueError):
        ChainSpec(tiny_model.schedule, CodingParams(steps=3, latents=2))  # no curve
    with pytest.raises(ValueError):
        ChainSpec(tiny_model.schedule, CodingParams(steps=3, latents=3), mse_curve=curve_model.mse_curve)


def test_version_2_push_variance():
    """With an exact network (M = 0) version 2 pushes s_p^2 - delta^2/12 (the binning's widening
    removed, as for the pops); a larger network error widens the push by c_x^2 M."""
    from bbcodec.diffusion.schedule import Schedule
    sc = Schedule(-10.0, 5.0)
    t = np.linspace(0, 1, 5)
    p = CodingParams(steps=50, latents=2)
    exact = ChainSpec(sc, p, mse_curve=(t, np.zeros(5)))
    v1 = ChainSpec(sc, CodingParams(steps=50))
    assert np.allclose(exact.push_std[1:] ** 2, v1.s_p[1:] ** 2 - v1.delta[:-1] ** 2 / 12)
    noisy = ChainSpec(sc, p, mse_curve=(t, np.full(5, 0.1)))
    assert np.allclose(noisy.push_std[1:] ** 2 - exact.push_std[1:] ** 2, 0.1 * v1.c_x[1:] ** 2)
    assert np.array_equal(v1.push_std, v1.s_p, equal_nan=True)


def test_default_grid_follows_the_latent_version(curve_model):
    import dataclasses
    m = dataclasses.replace(curve_model, grids={"opt1": {"4": [0, .2, .5, .8, 1]}, "opt2": {"4": [0, .3, .6, .9, 1]}})
    assert api.coding_params(m, 4).grid == "opt2"
    assert api.coding_params(m, 4, latents=1).grid == "opt1"
    assert api.coding_params(m, 4, grid="uniform").grid == "uniform"
    _round_trip([image_data("RGB", 20, 20)], m, steps=4, grid="opt2", latents=2)
    m.grids["opt3"] = {"4": [0, .25, .55, .85, 1]}  # the smoothed-curve grid wins where shipped
    assert api.coding_params(m, 4).grid == "opt3"
    assert api.coding_params(m, 4, latents=1).grid == "opt1"
    _round_trip([image_data("RGB", 20, 20)], m, steps=4, grid="opt3", latents=2)


def test_slower_ramp_is_written_and_decoded(tiny_model, monkeypatch):
    """A retried encode records its ramp in the header and the decoder replays those batches.
    (Forcing the retries: with HEAD_WORDS = -1 every encode counts as having drawn seed words.)"""
    from bbcodec.format import container
    imgs = [image_data("RGB", 32, 32, s, f"{s}.png") for s in range(20)]
    monkeypatch.setattr(encode, "HEAD_WORDS", -1)
    data, rep = api.compress(imgs, tiny_model, CodingParams(steps=4), parallel=16, bootstrap="auto")
    assert container.parse(data).header["coding"]["ramp"] == encode.RAMPS[-1] == rep.ramp
    assert rep.encodes > 1  # the report says what the retry cost
    assert [len(b) for b in plan.batches(20, 16, ramp=16)] != [len(b) for b in plan.batches(20, 16)]
    out, _ = api.decompress(data, tiny_model)
    assert all(np.array_equal(a.main, b.main) for a, b in zip(imgs, out))


def test_a_doomed_encode_stops_early_and_leaves_nothing_behind(tiny_model, monkeypatch):
    """Once a batch dips into the seed beyond the head, the encode moves on to the next ramp at once.
    With HEAD_WORDS = -1 every plan is rejected; a slack below any dip makes each plan but the last
    stop after its first batch (one tile). The file must be byte-identical to whole retries."""
    imgs = [image_data("RGB", 32, 32, s, f"{s}.png") for s in range(20)]
    params = CodingParams(steps=4)
    monkeypatch.setattr(encode, "RAMPS", (2, 4, encode.RAMPS[-1]))
    monkeypatch.setattr(encode, "HEAD_WORDS", -1)
    monkeypatch.setattr(encode, "LOW_WATER_SLACK", 10 ** 9)  # never stops early: every plan coded whole
    whole, ref = api.compress(imgs, tiny_model, params, parallel=16, bootstrap="auto")
    assert ref.encodes == 3 and ref.tiles_coded == 3 * ref.model_tiles
    monkeypatch.setattr(encode, "LOW_WATER_SLACK", -10 ** 9)
    data, rep = api.compress(imgs, tiny_model, params, parallel=16, bootstrap="auto")
    assert data == whole and rep.ramp == ref.ramp == encode.RAMPS[-1]
    assert rep.encodes == 3 and rep.tiles_coded == rep.model_tiles + 2


def test_default_ramp_is_not_written(tiny_model):
    from bbcodec.format import container
    imgs = [image_data("RGB", 32, 32, s, f"{s}.png") for s in range(3)]
    data, rep = api.compress(imgs, tiny_model, CodingParams(steps=4), parallel=2, bootstrap=None)
    assert "ramp" not in container.parse(data).header["coding"] and (rep.ramp, rep.encodes) == (2, 1)
    assert rep.tiles_coded == rep.model_tiles


def test_channels_last_network_is_one_function_of_the_batch(tiny_model, monkeypatch):
    """EpsFn(nhwc) gives the eager channels-last module's outputs exactly, whatever batch comes first
    (the encoder and decoder meet the batches in opposite orders), with or without the traced graph."""
    import copy
    import torch
    net = tiny_model.vdm.net
    cl = copy.deepcopy(net).eval().to(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    zs = [rng.standard_normal((b, 3, 32, 32)) for b in (3, 8, 1)]

    def eager(z, g):
        with torch.inference_mode():
            zt = torch.from_numpy(z.astype(np.float32)).contiguous(memory_format=torch.channels_last)
            return cl(zt, torch.full((len(z),), g)).double().numpy()

    want = [eager(z, 0.5) for z in zs]
    for order in ((0, 1, 2), (2, 1, 0)):
        fn = EpsFn(net, nhwc=True)
        got = {i: fn(zs[i], 0.5) for i in order}
        assert all(np.array_equal(got[i], want[i]) for i in range(3))
    assert isinstance(fn._nhwc_net, torch.jit.ScriptModule)
    assert EpsFn(net, nhwc=True)._channels_last((3, 32, 32)) is fn._nhwc_net  # traced once per network
    monkeypatch.setattr(torch.jit, "trace", lambda *a, **k: 1 / 0)
    from bbcodec.diffusion import codec
    monkeypatch.setattr(codec, "_NHWC_CACHE", codec.weakref.WeakKeyDictionary())
    fn = EpsFn(net, nhwc=True)
    assert np.array_equal(fn(zs[0], 0.5), want[0]) and not isinstance(fn._nhwc_net, torch.jit.ScriptModule)


def test_files_of_the_plain_network_still_decode(tiny_model, monkeypatch):
    """CPU encoders write coding.nhwc = 1; files without it (the plain module's) decode with it."""
    from bbcodec.format import container
    imgs = [image_data("RGB", 40, 36, s, f"{s}.png") for s in range(2)]
    params = CodingParams(steps=4)
    data, _ = api.compress(imgs, tiny_model, params, parallel=2, bootstrap=None)
    assert container.parse(data).header["coding"]["nhwc"] == 1
    old, _ = api.compress(imgs, tiny_model, params, parallel=2, bootstrap=None, nhwc=False)
    assert "nhwc" not in container.parse(old).header["coding"] and old != data
    for f in (data, old):
        out, _ = api.decompress(f, tiny_model)
        assert all(np.array_equal(a.main, b.main) for a, b in zip(imgs, out))
    c = container.parse(data)
    bad = container.Container(dict(c.header, coding=dict(c.header["coding"], nhwc=2)), c.payload, c.side)
    with pytest.raises(BbcError, match="nhwc"):
        api.decompress(bad.to_bytes(), tiny_model)


# --- chain order: BB-ANS order (comparison only) codes the same steps, all latents popped first ------

def test_both_orders_of_a_toy_chain_round_trip_and_leave_the_stack_as_found():
    """bitsback's two compositions of the same small codecs: pop(push(x)) gives back x and the stack,
    and BB-ANS order draws more from the stack before its first push than Bit-Swap order does."""
    from bbcodec.ans import Stack
    from bbcodec.bitsback import CHAINS
    from bbcodec.codecs import grid_gaussian
    rng = np.random.default_rng(0)
    K, n = 6, 50
    x = rng.integers(0, 40, n)

    def g(mean, std):  # a Gaussian on the unit grid
        return grid_gaussian(1.0, np.asarray(mean, dtype=np.float64), std, 200)

    parts = (lambda x: g(x * 1.0, 4.0), lambda z: g(z * 1.0, 5.0), lambda i, z: g(z * 0.9, 4.0),
             lambda i, z: g(z * 1.0, 6.0), g(np.zeros(n), 60.0))
    low = {}
    for order, chain in CHAINS.items():
        seed = seed_words(2000)
        st = Stack(seed)
        chain(K, *parts).push(st, x)
        low[order] = st.low
        assert np.array_equal(chain(K, *parts).pop(st), x)
        assert np.array_equal(st.words(), seed)
    assert low["bbans"] < low["bitswap"] - n * K // 32  # at least a bit per symbol and step more drawn


@pytest.mark.parametrize("parallel", [1, 3])
def test_bbans_order_round_trips_rgb_grey_partial_tiles_and_archives(tiny_model, parallel):
    from bbcodec.format import container
    imgs = [image_data("RGB", 40, 33, 1, "a.png"), image_data("L", 5, 70, 2, "b.png"),
            image_data("RGBA", 32, 32, 3, "c.png"), image_data("RGB", 1, 1, 4, "d.png")]
    for order in ("bitswap", "bbans"):
        params = CodingParams(steps=4, grid_bits=1, order=order)
        for boot in (None, "auto"):
            data, _ = api.compress(imgs, tiny_model, params, parallel=parallel, bootstrap=boot)
            out, header = api.decompress(data, tiny_model)
            assert header["coding"].get("order", "bitswap") == order
            assert all(np.array_equal(a.main, b.main) for a, b in zip(imgs, out))
            # the default is left out, so Bit-Swap files keep their bytes (tests/test_golden.py pins them)
            assert ("order" in container.parse(data).header["coding"]) == (order == "bbans")


def test_bbans_order_needs_about_k_times_the_initial_bits(tiny_model):
    """Same steps, same models, another order: the initial bits grow with K in BB-ANS order only, while
    the rate net of them stays that of a chain sampled from the same q (a few % apart: other samples)."""
    imgs = [image_data("RGB", 32, 32, 1), image_data("L", 32, 32, 2, "g.png")]
    rep = {}
    for order in ("bitswap", "bbans"):
        for steps in (5, 20):
            data, r = api.compress(imgs[:1], tiny_model, CodingParams(steps=steps, order=order), bootstrap=None)
            rep[order, steps] = r
            (out,), _ = api.decompress(data, tiny_model)
            assert np.array_equal(out.main, imgs[0].main)
        _round_trip(imgs[1:], tiny_model, boots=(None,), steps=5, order=order)
    for steps in (5, 20):
        assert rep["bbans", steps].initial_bits > 2 * rep["bitswap", steps].initial_bits
    assert rep["bbans", 20].bpd_without_initial == pytest.approx(rep["bitswap", 20].bpd_without_initial, rel=0.1)
    assert rep["bbans", 20].initial_bits > 2.5 * rep["bbans", 5].initial_bits
    assert rep["bitswap", 20].initial_bits < 1.5 * rep["bitswap", 5].initial_bits


def test_an_unknown_order_is_refused(tiny_model):
    from bbcodec.bitsback import CHAINS
    from bbcodec.format import container
    from bbcodec.errors import FormatError
    assert tuple(CHAINS) == container.ORDERS
    with pytest.raises(BbcError, match="chain order"):
        api.coding_params(tiny_model, 4, order="bitback")
    with pytest.raises(ValueError):
        ChainSpec(tiny_model.schedule, CodingParams(steps=3, order="bitback"))
    data, _ = api.compress([image_data("RGB", 8, 8)], tiny_model, CodingParams(steps=2, order="bbans"), bootstrap=None)
    c = container.parse(data)
    bad = container.Container(dict(c.header, coding=dict(c.header["coding"], order="bitback")), c.payload, c.side)
    with pytest.raises(FormatError, match="order"):
        api.decompress(bad.to_bytes(), tiny_model)
