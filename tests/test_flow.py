"""The coupling flow (`flows.net`) and its local bits-back codec (`flows.codec`): tiny random flows, CPU.

Round trips must be bit-exact (pixels and the stack under them); the coded length must match the
path's ideal cost and the flow's own -log2 p; a changed stack must not decode quietly.
"""
import numpy as np
import pytest
import torch

from bbcodec.ans import Stack
from bbcodec.flows import Flow, FlowCodingParams, FlowNet, FlowStats, flow_codec
from bbcodec.flows.codec import bin_choice
from bbcodec.flows.net import FlowConfig, dequantize, squeeze, unsqueeze

torch.set_num_threads(1)


def seed_words(n: int, seed: int = 1) -> np.ndarray:
    """n random words with a non-zero top word: initial bits for the bits-back pops."""
    w = np.random.default_rng(seed).integers(1, 2 ** 32, n, dtype=np.uint64).astype(np.uint32)
    return w


def tiny_flow(channels=3, levels=2, split=True, bound=0.3, scale_std=3.0, shift_std=0.02, seed=0) -> Flow:
    """A random flow whose scales sit near +-bound (scale_std saturates the tanh), so that every
    coupling expands some coordinates and contracts others, with small shifts (z stays near N(0, 1))."""
    torch.manual_seed(seed)
    f = Flow(dict(in_channels=channels, levels=levels, couplings=4, hidden=8, res_blocks=1, split=split,
                  log_scale_bound=bound))
    with torch.no_grad():
        for step in f.steps:
            if hasattr(step, "out"):
                n = step.out.weight.shape[0] // 2  # the first half of the outputs are the log-scales
                step.out.weight[:n].normal_(std=scale_std)
                step.out.weight[n:].normal_(std=shift_std)
    return f


def images(b, c, h, w, seed=0) -> np.ndarray:
    """Smooth-ish random uint8 images [B, C, H, W] (sums of small steps, wrapped)."""
    rng = np.random.default_rng(seed)
    return (np.cumsum(np.cumsum(rng.integers(-3, 4, (b, c, h, w)), 2), 3) % 256).astype(np.uint8)


def encode(flow, x, params=FlowCodingParams(), words=40000, net=None):
    """(stack words after coding x, the seed, stats, the stack's low-water mark)."""
    seed = seed_words(words)
    st = Stack(seed)
    stats = FlowStats(len(x))
    flow_codec(flow, x.shape, params, net=net, stats=stats).push(st, x)
    return st.words(), seed, stats, st.low


def decode(flow, words, shape, params=FlowCodingParams(), net=None):
    st = Stack(words)
    x = flow_codec(flow, shape, params, net=net).pop(st)
    return x, st.words()


# -- the float flow ---------------------------------------------------------------------------------

def test_config_is_typed():
    with pytest.raises(ValueError, match="unknown"):
        FlowConfig.from_dict({"levles": 2})
    cfg = FlowConfig.from_dict({"levels": 1, "hidden": 8})
    assert Flow.from_config(cfg.to_dict()).config == cfg.to_dict()


def test_squeeze_inverts():
    y = torch.arange(2 * 3 * 4 * 6).reshape(2, 3, 4, 6)
    assert torch.equal(unsqueeze(squeeze(y)), y)
    assert squeeze(y)[0, 4 * 1 + 2 * 1 + 0, 1, 2].item() == y[0, 1, 3, 4].item()


def test_flow_inverse_and_logdet():
    """f^-1(f(y)) = y, and log|det| equals the brute-force Jacobian's on a 16-dimensional flow."""
    f = tiny_flow(channels=1, levels=2).double()
    y = torch.rand(1, 1, 4, 4, dtype=torch.float64) * 2 - 1
    z, logdet = f(y)
    assert torch.allclose(f.inverse(z, (1, 4, 4)), y, atol=1e-12)
    jac = torch.autograd.functional.jacobian(lambda v: f(v.reshape(1, 1, 4, 4))[0][0], y.reshape(-1))
    assert torch.allclose(torch.linalg.slogdet(jac)[1], logdet[0], atol=1e-9)
    assert logdet.abs().item() > 0.1  # the scales are not trivial


def test_nll_bits_is_the_dequantization_bound():
    """nll_bits = -log2 p(y) + 7 D, and an identity flow gives the N(0, 1) density of y exactly."""
    f = Flow(dict(in_channels=1, levels=1, couplings=2, hidden=4)).double()  # zero output layers: identity
    x = torch.from_numpy(images(2, 1, 4, 4))
    u = torch.rand(x.shape, dtype=torch.float64)
    y = dequantize(x, u)
    expect = (0.5 * y.square().flatten(1).sum(1) + 16 * 0.5 * np.log(2 * np.pi)) / np.log(2) + 7 * 16
    assert torch.allclose(f.nll_bits(x, u), expect)


# -- the codec ----------------------------------------------------------------------------------------

def test_affine_step_is_exact_and_costs_minus_log2_a():
    """One affine map per coordinate on the integer grid, a = R / S over [e^-2, e^2]: pop the target
    bin, push the source bin; the decoder inverts it exactly and the stack grows by sum log2 (S / R)."""
    rng = np.random.default_rng(3)
    n, S = 4000, 2 ** 16
    Y = rng.integers(-2 ** 17, 2 ** 17, n)
    R = np.rint(np.exp(rng.uniform(-2, 2, n)) * S).astype(np.int64)
    T = rng.integers(-2 ** 30, 2 ** 30, n)
    seed = seed_words(20000)
    st = Stack(seed)
    q = bin_choice(R * Y + T, R, S)
    Yn = q.pop(st)
    bin_choice(S * Yn - T, np.full(n, S), R).push(st, Y)
    grown = st.num_bits() - Stack(seed).num_bits()
    ideal = np.sum(np.log2(S / R))
    assert abs(grown - ideal) < 0.002 * np.abs(np.log2(S / R)).sum() + 64

    dec = Stack(st.words())
    Yd = bin_choice(S * Yn - T, np.full(n, S), R).pop(dec)
    bin_choice(R * Yd + T, R, S).push(dec, Yn)
    assert np.array_equal(Yd, Y)
    assert np.array_equal(dec.words(), seed)


@pytest.mark.parametrize("channels,levels,split", [(1, 2, True), (3, 2, True), (3, 1, False), (1, 3, False)])
def test_round_trip_is_bit_exact(channels, levels, split):
    f = tiny_flow(channels=channels, levels=levels, split=split)
    size = 2 ** levels * 2
    x = images(3, channels, size, size, seed=channels)
    words, seed, _, _ = encode(f, x)
    out, rest = decode(f, words, x.shape)
    assert out.dtype == np.uint8 and np.array_equal(out, x)
    assert np.array_equal(rest, seed)


def test_round_trip_float32_network():
    f = tiny_flow(channels=3)
    x = images(2, 3, 8, 8)
    params = FlowCodingParams(grid_bits=12, scale_bits=12, top_bits=4)
    words, seed, _, _ = encode(f, x, params, net=FlowNet(f, params, dtype=torch.float32))
    out, rest = decode(f, words, x.shape, params, net=FlowNet(f, params, dtype=torch.float32))
    assert np.array_equal(out, x) and np.array_equal(rest, seed)


@pytest.mark.parametrize("channels", [1, 3])
def test_rate_matches_the_flow(channels):
    """Bits the stack grew by (net of the initial bits, which are paid back) against the path's ideal
    cost (tight: only ANS rounding and its head), the flow's -log2 p at the popped points (the
    discretisation of the couplings) and at a fresh dequantization draw (Monte Carlo)."""
    f = tiny_flow(channels=channels)
    x = images(4, channels, 16, 16, seed=5)
    words, seed, stats, low = encode(f, x)
    grown = 32 * (len(words) - len(seed))
    with torch.no_grad():
        fresh = f.double().nll_bits(torch.from_numpy(x)).sum().item()
    d = x.size
    assert stats.couplings_abs.sum() > 0.2 * d  # the couplings move bits (their net cost may cancel)
    assert abs(grown - stats.total.sum()) < 0.002 * grown + 64
    assert abs(stats.total.sum() / stats.flow_bits.sum() - 1) < 0.005
    assert abs(grown / fresh - 1) < 0.02
    initial = 32 * (len(seed) - low) / d
    assert 8 < initial < 12  # about k - 7 = 9 bits per subpixel of dequantization, popped first


def test_coarser_grid_needs_fewer_initial_bits():
    f = tiny_flow(channels=3)
    x = images(2, 3, 8, 8, seed=2)
    fine = encode(f, x)
    coarse = encode(f, x, FlowCodingParams(grid_bits=10, top_bits=4))
    assert np.array_equal(decode(f, coarse[0], x.shape, FlowCodingParams(grid_bits=10, top_bits=4))[0], x)
    assert len(coarse[1]) - coarse[3] < len(fine[1]) - fine[3]
    assert abs(len(coarse[0]) / len(fine[0]) - 1) < 0.01


def test_changed_stack_or_model_does_not_decode_quietly():
    """A flipped bit near the top of the stack, or other weights, decodes to an error or to a
    different stack under the image (the container's seed and CRC checks then refuse it)."""
    f = tiny_flow(channels=3)
    x = images(2, 3, 8, 8)
    words, seed, _, _ = encode(f, x)
    bad = words.copy()
    bad[-3] ^= 1 << 7
    for flow, stream in ((f, bad), (tiny_flow(channels=3, seed=9), words)):
        try:
            out, rest = decode(flow, stream, x.shape)
        except (ValueError, OverflowError):
            continue
        assert not (np.array_equal(out, x) and np.array_equal(rest, seed))


def test_latent_out_of_range_raises():
    f = Flow(dict(in_channels=1, levels=1, couplings=1, hidden=4))
    with torch.no_grad():
        f.steps[1].out.bias[4:].fill_(5.0)  # shift every transformed coordinate by 5
    x = images(1, 1, 4, 4)
    with pytest.raises(OverflowError):
        encode(f, x, FlowCodingParams(top_range=2.0))
    words, seed, _, _ = encode(f, x)  # within the default range it codes
    assert np.array_equal(decode(f, words, x.shape)[0], x)


def test_pixels_outside_the_range_are_refused():
    """An identity flow (z = y) decoding words it did not write: the N(0, 1) latent it pops leaves the
    pixel range [-1, 1) somewhere, and the decoder raises instead of wrapping the value around."""
    f = Flow(dict(in_channels=1, levels=1, couplings=1, hidden=4))  # zero output layer: identity
    with pytest.raises(ValueError, match="pixel range"):
        decode(f, seed_words(1000, seed=4), (2, 1, 8, 8))


# ---- the flow in the archive coder (`priors.FlowPrior`, codec "flow-lbb"), the CLI and the container ----

from bbcodec import api  # noqa: E402
from bbcodec.errors import BbcError, FormatError, ModelError  # noqa: E402
from bbcodec.format import container  # noqa: E402
from bbcodec.images import same_image  # noqa: E402
from bbcodec.priors import replicate_edges  # noqa: E402
from bbcodec.registry import load_model  # noqa: E402
from conftest import image_data  # noqa: E402

MODES = [("RGB", 20, 13), ("RGBA", 10, 12), ("L", 33, 9), ("LA", 7, 7), ("P", 12, 12), ("1", 9, 17)]


@pytest.fixture(scope="module")
def flow_model(tiny_flow_dir):
    return load_model(str(tiny_flow_dir))


def test_edge_replication_fills_only_outside_the_image():
    x = np.zeros((3, 8, 8), dtype=np.uint8)
    x[0, :5, :3] = np.arange(15).reshape(5, 3) + 1
    mask = np.zeros(x.shape, dtype=bool)
    mask[:1, :5, :3] = True
    y = replicate_edges(x, mask)
    assert np.array_equal(y[mask], x[mask])
    assert np.array_equal(y[0, :5, 3:], np.repeat(x[0, :5, 2:3], 5, axis=1))  # last column to the right
    assert np.array_equal(y[0, 5:], np.repeat(y[0, 4:5], 3, axis=0))         # last row downwards
    assert np.array_equal(y[1], y[0]) and np.array_equal(y[2], y[0])          # grey into the colour channels


@pytest.mark.parametrize("bootstrap", ["auto", None])
def test_archive_of_every_mode_round_trips(flow_model, bootstrap):
    ims = [image_data(m, w, h, seed=i) for i, (m, w, h) in enumerate(MODES)]
    data, rep = api.compress(ims, flow_model, parallel=3, bootstrap=bootstrap)
    c = container.parse(data)
    assert c.header["codec"] == "flow-lbb" and c.version == 4
    assert c.header["coding"]["grid_bits"] == api.flow_params().grid_bits
    assert "network" not in c.header["arithmetic"] and "network_probe" in c.header["arithmetic"]
    assert rep.model_tiles > 0 and (rep.bootstrap_tiles > 0) == (bootstrap is not None)
    out, _ = api.decompress(data, flow_model)
    assert all(same_image(a, b) for a, b in zip(ims, out))
    # the flow's own bits cover every coded subpixel of every model tile (padding and grey channels too)
    assert rep.nelbo_bits > 0


def test_flow_precision_is_in_the_header_and_replayed(flow_model):
    ims = [image_data("RGB", 16, 16)]
    p = api.flow_params(grid_bits=16, scale_bits=12)
    data, _ = api.compress(ims, flow_model, p, parallel=2, bootstrap=None)
    cod = container.parse(data).header["coding"]
    assert (cod["grid_bits"], cod["scale_bits"]) == (16, 12)
    out, _ = api.decompress(data, flow_model)
    assert same_image(ims[0], out[0])
    with pytest.raises(BbcError, match="grid_bits"):
        api.flow_params(grid_bits=30)


def test_models_of_the_other_kind_are_refused(flow_model, tiny_model):
    ims = [image_data("RGB", 8, 8)]
    data, _ = api.compress(ims, flow_model, bootstrap=None)
    with pytest.raises(ModelError):
        api.decompress(data, tiny_model)
    with pytest.raises(BbcError, match="flow model"):
        api.compress(ims, flow_model, api.coding_params(tiny_model, 3))


def _with_coding(data: bytes, **change) -> bytes:
    c = container.parse(data)
    h = dict(c.header, coding=dict(c.header["coding"], **change))
    return container.Container(h, c.payload, c.side, c.version).to_bytes()


@pytest.mark.parametrize("change, msg", [
    (dict(grid_bits=7), "grid_bits"), (dict(scale_bits=17), "scale_bits"), (dict(top_bits=9), "top_bits"),
    (dict(top_range=1e6), "top_range"), (dict(top_range="x"), "top_range"), (dict(steps=100), "steps"),
    (dict(tile=10), "tile")])
def test_flow_header_fields_are_validated(flow_model, change, msg):
    data, _ = api.compress([image_data("RGB", 8, 8)], flow_model, bootstrap=None)
    with pytest.raises(FormatError, match=msg):
        container.parse(_with_coding(data, **change))


def test_flow_codec_needs_format_version_4(flow_model):
    data, _ = api.compress([image_data("RGB", 8, 8)], flow_model, bootstrap=None)
    c = container.parse(data)
    with pytest.raises(FormatError, match="unknown codec"):
        container.validate_header(c.header, 3)
    with pytest.raises(FormatError, match="arithmetic"):  # a float flow cannot claim an integer network
        container.validate_header(dict(c.header, arithmetic={"network": "integer", "constriction": "0.5.0"}), 4)


def test_changed_payload_or_arithmetic_is_caught(flow_model):
    ims = [image_data("RGB", 16, 8)]
    data, _ = api.compress(ims, flow_model, bootstrap=None)
    c = container.parse(data)
    words = bytearray(c.payload)
    words[len(words) // 2] ^= 0x10
    bad = container.Container(c.header, bytes(words), c.side, c.version).to_bytes()
    with pytest.raises(FormatError):
        api.decompress(bad, flow_model)
    a = dict(c.header["arithmetic"], network_probe="0" * 16)
    other = container.Container(dict(c.header, arithmetic=a), c.payload, c.side, c.version).to_bytes()
    with pytest.raises(BbcError, match="network_probe"):
        api.decompress(other, flow_model)


def test_cli_compresses_and_decompresses_with_a_flow(tiny_flow_dir, tmp_path):
    from click.testing import CliRunner

    from bbcodec.cli import cli
    from conftest import pil_image
    pil_image("RGB", 20, 13).save(tmp_path / "a.png")
    pil_image("L", 9, 5, 1).save(tmp_path / "g.png")
    r = CliRunner()
    res = r.invoke(cli, ["compress", str(tmp_path / "a.png"), str(tmp_path / "g.png"), "-o", str(tmp_path / "x.bbc"),
                         "--model", str(tiny_flow_dir), "--flow-grid-bits", "14", "--verify"])
    assert res.exit_code == 0, res.output
    assert "local bits-back" in res.output and "float network" in res.output
    res = r.invoke(cli, ["info", str(tmp_path / "x.bbc")])
    assert "flow by local bits-back: grid_bits=14" in res.output
    res = r.invoke(cli, ["decompress", str(tmp_path / "x.bbc"), "-o", str(tmp_path / "out"), "--model", str(tiny_flow_dir)])
    assert res.exit_code == 0, res.output
    from PIL import Image
    for n in ("a", "g"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / f"{n}.png")), np.asarray(Image.open(tmp_path / f"{n}.png")))


def test_padding_is_chosen_by_bits_back_and_given_back(flow_model):
    """An edge tile's padding and a grey image's missing channels: popped from q around the replicated
    edge by the encoder (their -log2 q given back in the stats), pushed back by the decoder."""
    from bbcodec.priors import FlowPrior, pad_groups
    from bbcodec.flows import FlowStats
    x = np.zeros((2, 3, 8, 8), dtype=np.uint8)
    mask = np.zeros(x.shape, dtype=bool)
    mask[0, :, :5, :6] = True   # an edge tile of a colour image
    mask[1, :1, :, :3] = True   # an edge tile of a grey image
    x[mask] = np.random.default_rng(0).integers(0, 256, int(mask.sum()))
    groups = pad_groups(x, mask)
    assert [len(i) for i, _, _ in groups] == [3 * 34 + 40, 2 * 64]  # space: both tiles; channel: the grey one
    for idx, start, p in groups:
        assert np.all((start >= 0) & (start + len(p) <= 256)) and abs(p.sum() - 1) < 1e-12
    prior = FlowPrior(flow_model.flow, api.flow_params())
    seed = np.random.default_rng(1).integers(1, 2 ** 32, 4000, dtype=np.uint64).astype(np.uint32)
    st = Stack(seed.copy())
    stats = FlowStats(2)
    prior.codec(mask, stats=stats).push(st, x)
    assert np.all(stats.padding < 0)
    y = prior.codec(mask).pop(st)
    assert np.array_equal(y[mask], x[mask]) and np.array_equal(st.words(), seed)


def test_python_api_codes_with_a_flow(tiny_flow_dir):
    import bbcodec
    a = np.random.default_rng(3).integers(0, 256, (10, 13, 3), dtype=np.uint8)
    data = bbcodec.compress(a, model=str(tiny_flow_dir))
    assert container.parse(data).header["codec"] == "flow-lbb"
    assert np.array_equal(bbcodec.decompress(data, arrays=True, model=str(tiny_flow_dir))[0], a)
