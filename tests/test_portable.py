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
    out, _ = api.decompress(open(args["file"], "rb").read(), model, threads=args["threads"],
                            call_tiles=args.get("call_tiles"))
    h = hashlib.sha256()
    for d in out:
        h.update(d.main.tobytes())
        h.update(b"" if d.alpha is None else d.alpha.tobytes())
    print(h.hexdigest())
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
    assert _run(SETTINGS[dec], do="decode", model=str(tiny_int_model_dir), file=f, threads=1) == _pixels_hash(paths)


@pytest.mark.parametrize("threads,call_tiles", [(2, None), (1, 1), (2, 3)])
def test_a_file_decodes_bit_exact_with_other_threads_and_call_groupings(tiny_int_model_dir, images_on_disk,
                                                                         threads, call_tiles):
    d, paths = images_on_disk
    f = str(d / "grouping.bbc")
    if not os.path.exists(f):
        _run({}, do="encode", model=str(tiny_int_model_dir), images=paths, file=f, steps=4, parallel=4, threads=1)
    out = _run({}, do="decode", model=str(tiny_int_model_dir), file=f, threads=threads, call_tiles=call_tiles)
    assert out == _pixels_hash(paths)


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
    assert rel < 0.05


def test_exact_integer_helpers():
    n = torch.tensor([0, 1, 2, 3, 4, 15, 16, 17, 2 ** 52 - 1, 2 ** 52, 2 ** 61 + 12345, 2 ** 62 - 1])
    r = intnet.isqrt(n)
    import math
    assert [int(v) for v in r] == [math.isqrt(int(v)) for v in n]
    a = torch.tensor([-7, -6, -5, 5, 6, 7, 2 ** 40 + 1])
    b = torch.tensor([2, 4, 2, 2, 4, 2, 3])
    assert [int(v) for v in intnet._round_div(a, b)] == [math.floor(x / y + 0.5) for x, y in zip(a.tolist(), b.tolist())]


def test_int8_kernel_check_catches_saturating_operands():
    """The fast path is used only where _int_mm sums worst-case operands exactly; weights outside
    [-128, 128) never reach it (they are int8), and a chunked activation is in [-128, 0)."""
    assert intnet.matmul_backend("cpu") in ("int8", "float64")
    a = torch.full((32, 2304), -128, dtype=torch.int8)
    b = torch.full((2304, 16), -128, dtype=torch.int8)
    if intnet.matmul_backend("cpu") == "int8":
        assert torch.equal(torch._int_mm(a, b).double(), a.double() @ b.double())


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
