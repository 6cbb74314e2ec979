"""Portable files: an integer network's probabilities, and so its files, are the same bits under any
CPU kernels, numpy dispatch, thread count, grouping of network calls and memory layout.

Each setting runs in its own process (ATen and oneDNN read their variables once, at start-up): a file
encoded under one setting is decoded under another and must give the original pixels, bit-exact.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from bbcodec import api
from bbcodec.diffusion import intnet
from bbcodec.diffusion.codec import EpsFn
from bbcodec.images import from_pil
from bbcodec.registry import load_model
from conftest import cifar_samples, pil_image

SETTINGS = {
    "default": {},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "aten-avx512": {"ATEN_CPU_CAPABILITY": "avx512"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "onednn-avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "numpy-no-avx512": {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL"},
}

_SCRIPT = r"""
import json, sys, hashlib
import numpy as np, torch
from bbcodec import api
from bbcodec.images import from_pil
from bbcodec.registry import load_model
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
model = load_model(args["model"])
if args["do"] == "encode":
    from PIL import Image
    images = [from_pil(Image.open(p), p.rsplit("/", 1)[-1]) for p in args["images"]]
    params = api.coding_params(model, args["steps"])
    data, _ = api.compress(images, model, params, parallel=args["parallel"], threads=args["threads"])
    open(args["file"], "wb").write(data)
else:
    from bbcodec.diffusion.intnet import matmul_backend
    out, _ = api.decompress(open(args["file"], "rb").read(), model, threads=args["threads"],
                            call_tiles=args.get("call_tiles"))
    h = hashlib.sha256()
    for d in out:
        h.update(d.main.tobytes())
        h.update(b"" if d.alpha is None else d.alpha.tobytes())
    each = {d.name: hashlib.sha256(d.main.tobytes() + (b"" if d.alpha is None else d.alpha.tobytes())
                                   + (d.palette or b"")).hexdigest() for d in out}
    print(json.dumps({"pixels": h.hexdigest(), "each": each, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "matmul": matmul_backend("cpu")}))
"""


def _run(setting: dict, **args) -> str:
    env = dict(os.environ, **setting)
    r = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(args)], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip()


@pytest.fixture(scope="module")
def images_on_disk(tmp_path_factory):
    d = tmp_path_factory.mktemp("portable")
    paths = []
    for i, (mode, w, h) in enumerate([("RGB", 40, 30), ("RGBA", 10, 12), ("L", 33, 9), ("P", 12, 12)]):
        p = d / f"{i}-{mode}.png"
        pil_image(mode, w, h, i).save(p)
        paths.append(str(p))
    return d, paths


def _pixels_hash(paths) -> str:
    import hashlib
    from PIL import Image
    h = hashlib.sha256()
    for p in paths:
        d = from_pil(Image.open(p), p)
        h.update(d.main.tobytes())
        h.update(b"" if d.alpha is None else d.alpha.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("enc,dec", [("default", "aten-avx2"), ("default", "aten-avx512"), ("default", "aten-default"),
                                     ("default", "onednn-avx2"), ("default", "numpy-no-avx512"),
                                     ("onednn-avx2", "default")])
def test_a_file_decodes_bit_exact_under_other_cpu_settings(tiny_int_model_dir, images_on_disk, enc, dec):
    d, paths = images_on_disk
    f = str(d / f"{enc}.bbc")
    if not os.path.exists(f):
        _run(SETTINGS[enc], do="encode", model=str(tiny_int_model_dir), images=paths, file=f, steps=4, parallel=2,
             threads=1)
    out = json.loads(_run(SETTINGS[dec], do="decode", model=str(tiny_int_model_dir), file=f, threads=1))
    assert out["pixels"] == _pixels_hash(paths)
    assert out["matmul"] in ("int8", "float64")  # which one ran (int8 where its check passed)
    want = SETTINGS[dec].get("ATEN_CPU_CAPABILITY")
    if want and out["cpu_capability"].lower() != want:
        if want == "avx512":
            pytest.skip(f"decoded, but this CPU has no AVX-512 ({out['cpu_capability']})")
        assert out["cpu_capability"].lower() == want, out  # the setting took effect


@pytest.mark.parametrize("fname", ["cifar10-vdm-s7-dt-int-v4.bbc", "photo-vdm-t64-int-tile64-v4.bbc"])
def test_the_shipped_defaults_golden_files_decode_without_avx512(fname):
    """The default prior's golden file, and the photo prior's at 64x64 tiles (attention over 4x the positions),
    made on this machine, decode to their pinned pixels (hashed as test_golden pins them) with AVX2 kernels only."""
    from pathlib import Path
    golden = Path(__file__).resolve().parent / "golden"
    entry = json.loads((golden / "golden.json").read_text())[fname]
    out = json.loads(_run(SETTINGS["onednn-avx2"], do="decode", model=entry["model"], file=str(golden / fname), threads=1))
    assert out["each"] == entry["images"] and out["cpu_capability"].lower() == "avx2"


@pytest.mark.parametrize("threads,call_tiles", [(2, None), (1, 1), (2, 3)])
def test_a_file_decodes_bit_exact_with_other_threads_and_call_groupings(tiny_int_model_dir, images_on_disk,
                                                                         threads, call_tiles):
    d, paths = images_on_disk
    f = str(d / "grouping.bbc")
    if not os.path.exists(f):
        _run({}, do="encode", model=str(tiny_int_model_dir), images=paths, file=f, steps=4, parallel=4, threads=1)
    out = json.loads(_run({}, do="decode", model=str(tiny_int_model_dir), file=f, threads=threads,
                          call_tiles=call_tiles))
    assert out["pixels"] == _pixels_hash(paths)


def _random_inputs(n, seed=0, size=32):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3, size, size)) * rng.uniform(0.1, 3, (n, 1, 1, 1))
    return z, rng.uniform(-12, 4, n)


@pytest.mark.parametrize("which", ["tiny", "shipped"])
def test_integer_network_is_the_same_in_any_grouping_layout_and_matmul_path(which, tiny_int_model_dir):
    model = load_model(str(tiny_int_model_dir) if which == "tiny" else "cifar10-vdm-s7-int")
    net = model.vdm.net
    z, g = _random_inputs(6)
    zt, gt = torch.from_numpy(z), torch.from_numpy(g)
    whole = net(zt, gt)
    parts = torch.cat([net(zt[:1], gt[:1]), net(zt[1:3], gt[1:3]), net(zt[3:], gt[3:])])
    assert torch.equal(whole, parts)
    # 64 x 64 tiles: a call of three runs in pieces on the CPU (intnet.CPU_PIECE_PIXELS)
    z64, g64 = (torch.from_numpy(a) for a in _random_inputs(3, seed=1, size=64))
    assert 64 * 64 * 3 > intnet.CPU_PIECE_PIXELS
    assert torch.equal(net(z64, g64), torch.cat([net(z64[i:i + 1], g64[i:i + 1]) for i in range(3)]))
    assert torch.equal(whole, net(zt.contiguous(memory_format=torch.channels_last), gt))
    # the int8 path (where it passes its check here) and the float64 path give the same integers
    saved = dict(intnet._BACKEND)
    try:
        intnet._BACKEND["cpu"] = "float64" if intnet.matmul_backend("cpu") == "int8" else "int8"
        net._ready = None
        other = net(zt, gt)
    finally:
        intnet._BACKEND.clear()
        intnet._BACKEND.update(saved)
        net._ready = None
    assert torch.equal(whole, other)


@pytest.mark.parametrize("which", ["tiny", "shipped"])
def test_the_fused_cpu_loops_give_the_torch_paths_integers(which, tiny_int_model_dir):
    """`intkernels` (numba, a dependency) does the integer network's per-element work on the CPU; the
    plain torch operations give the same integers, on ordinary, extreme and larger inputs."""
    from bbcodec.diffusion import intkernels
    assert intkernels.available()
    model = load_model(str(tiny_int_model_dir) if which == "tiny" else "cifar10-vdm-s7-int")
    net = model.vdm.net
    z, g = _random_inputs(5, seed=3)
    cases = [(torch.from_numpy(z), torch.from_numpy(g)),
             (torch.from_numpy(z[:2] * 40), torch.tensor([-40.0, 25.0], dtype=torch.float64)),
             (torch.from_numpy(_random_inputs(2, seed=4, size=64)[0]), torch.tensor([-3.0, -3.0], dtype=torch.float64))]
    try:
        for zt, gt in cases:
            net.use_kernels, net._ready = True, None
            fused = net(zt, gt)
            assert intnet.IntOps(net, "cpu").fused or intnet.matmul_backend("cpu") != "int8"
            net.use_kernels, net._ready = False, None
            assert torch.equal(fused, net(zt, gt))
    finally:
        net.use_kernels, net._ready = True, None


def test_the_integer_network_runs_in_and_out_of_inference_mode_in_turn(tiny_int_model_dir):
    """Its scratch memory and caches outlive a call: made under inference_mode, they are used again
    (written, for the scratch) by a plain call, and the reverse."""
    net = load_model(str(tiny_int_model_dir)).vdm.net
    net._ready = None
    z, g = (torch.from_numpy(a) for a in _random_inputs(3, seed=6))
    with torch.inference_mode():
        a = net(z, g)
    b = net(z, g)
    with torch.inference_mode():
        c = net(z, g)
    assert torch.equal(a, b) and torch.equal(a, c)


def test_the_shipped_integer_network_stays_close_to_its_float_source():
    """Post-training quantisation costs little: eps_hat within a few 1e-3 (relative rms) of the float
    network on training-like inputs, and its error against the true noise up by well under 1%."""
    from bbcodec.convert import calibration_pairs
    fmodel, imodel = load_model("cifar10-vdm-s7"), load_model("cifar10-vdm-s7-int")
    x = cifar_samples().transpose(0, 3, 1, 2)
    z, gamma = calibration_pairs(fmodel.vdm, x, seed=5)
    with torch.no_grad():
        ref = fmodel.vdm.net(z, gamma).double()
    out = imodel.vdm.net(z.double(), gamma.double())
    rel = float((out - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt())
    assert rel < 0.03
    # against the true noise of those draws: the integer network's error is within 1% of the float one's
    a = torch.sqrt(torch.sigmoid(-gamma)).view(-1, 1, 1, 1).double()
    s = torch.sqrt(torch.sigmoid(gamma)).view(-1, 1, 1, 1).double()
    from bbcodec.diffusion.vdm import pixel_to_model
    eps = (z.double() - a * pixel_to_model(torch.from_numpy(x)).double()) / s
    assert float((out - eps).pow(2).mean() / (ref - eps).pow(2).mean()) < 1.01


def test_exact_integer_helpers():
    n = torch.tensor([0, 1, 2, 3, 4, 15, 16, 17, 2 ** 52 - 1, 2 ** 52, 2 ** 61 + 12345, 2 ** 62 - 1])
    r = intnet.isqrt(n)
    import math
    assert [int(v) for v in r] == [math.isqrt(int(v)) for v in n]
    a = torch.tensor([-7, -6, -5, 5, 6, 7, 2 ** 40 + 1])
    b = torch.tensor([2, 4, 2, 2, 4, 2, 3])
    assert [int(v) for v in intnet._round_div(a, b)] == [math.floor(x / y + 0.5) for x, y in zip(a.tolist(), b.tolist())]


def test_a_saturating_int8_kernel_is_not_used(monkeypatch):
    """An _int_mm whose int16 pair sums saturate (as x86 kernels without VNNI do on full-range
    operands) fails the check, and the float64 path is used instead."""
    def saturating(a, b):
        prods = a.to(torch.int32)[:, :, None] * b.to(torch.int32)[None]  # [M, K, N]
        k = prods.shape[1] // 2 * 2
        pairs = (prods[:, 0:k:2] + prods[:, 1:k:2]).clamp(-2 ** 15, 2 ** 15 - 1)
        return pairs.sum(1) + (prods[:, k:].sum(1) if k < prods.shape[1] else 0)

    monkeypatch.setattr(intnet, "_BACKEND", {})
    monkeypatch.setattr(torch, "_int_mm", lambda a, b: saturating(a.to(torch.int32) + 128, b) - 128 * b.to(torch.int32).sum(0))
    assert intnet.matmul_backend("cpu") == "int8"  # shifted activations stay below 128: no pair saturates
    monkeypatch.setattr(intnet, "_BACKEND", {})
    monkeypatch.setattr(torch, "_int_mm", lambda a, b: saturating(a, b))  # signed pairs of -128 * -128 overflow
    assert intnet.matmul_backend("cpu") == "float64"


def test_extreme_latents_give_the_same_integers_on_both_matmul_paths(tiny_int_model_dir):
    """Forged or extreme inputs stay inside the exact ranges (everything is clamped): the two paths
    still agree, and the output is finite."""
    net = load_model(str(tiny_int_model_dir)).vdm.net
    z = torch.zeros(4, 3, 32, 32, dtype=torch.float64)
    z[0] = 1e30
    z[1] = -1e30
    z[2, :, ::2] = 1e9
    z[3] = 0.25  # constant: zero variance in every group
    g = torch.tensor([-30.0, 30.0, 0.0, 4.0], dtype=torch.float64)
    saved = dict(intnet._BACKEND)
    try:
        outs = []
        for backend in ("int8", "float64"):
            intnet._BACKEND["cpu"] = backend
            net._ready = None
            outs.append(net(z, g))
    finally:
        intnet._BACKEND.clear()
        intnet._BACKEND.update(saved)
        net._ready = None
    assert torch.equal(outs[0], outs[1]) and torch.isfinite(outs[0]).all()


def test_headers_naming_an_integer_network_are_validated(tiny_int_model):
    from bbcodec.errors import BbcError, FormatError
    from bbcodec.format import container
    import dataclasses
    images = [from_pil(pil_image("RGB", 40, 30), "a.png")]
    data, _ = api.compress(images, tiny_int_model, api.coding_params(tiny_int_model, 3), parallel=2, bootstrap=None)
    c = container.parse(data)
    for version, network in ((3, "integer"), (4, "float")):
        h = dict(c.header, arithmetic=dict(c.header["arithmetic"], network=network))
        with pytest.raises(FormatError, match="arithmetic"):
            container.validate_header(h, version)
    params = dataclasses.replace(api.coding_params(tiny_int_model, 3), format_version=3)
    with pytest.raises(BbcError, match="integer network"):
        api.compress(images, tiny_int_model, params, parallel=2, bootstrap=None)


def test_a_float_model_does_not_take_a_forged_integer_header_at_its_word(tiny_model, tiny_int_model):
    """A file that says "integer" but names a float model's weights is refused before decoding (the
    float model's own record differs), and still caught by the checksums with --any-arithmetic."""
    from bbcodec.errors import ArithmeticMismatchError, FormatError
    from bbcodec.format import container
    images = [from_pil(pil_image("RGB", 40, 30), "a.png")]
    data, _ = api.compress(images, tiny_model, api.coding_params(tiny_model, 3), parallel=2, bootstrap=None)
    c = container.parse(data)
    forged = container.Container(dict(c.header, arithmetic={"network": "integer", "constriction":
                                                              c.header["arithmetic"]["constriction"]}),
                                 c.payload, c.side, 4).to_bytes()
    with pytest.raises(ArithmeticMismatchError):
        api.decompress(forged, tiny_model)


def test_float_and_integer_files_record_what_their_arithmetic_depends_on(tiny_model_dir, tiny_int_model_dir):
    from bbcodec.format import container
    images = [from_pil(pil_image("RGB", 40, 30), "a.png")]
    for folder, integer in ((tiny_model_dir, False), (tiny_int_model_dir, True)):
        model = load_model(str(folder))
        data, _ = api.compress(images, model, api.coding_params(model, 3), parallel=2, bootstrap=None)
        c = container.parse(data)
        assert c.version == 4
        a = c.header["arithmetic"]
        assert (a.get("network") == "integer") == integer
        assert ("torch" in a) != integer and ("cpu_capability" in a) != integer
        assert api.integer_network(c.header) == integer
