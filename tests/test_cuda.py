"""CUDA paths: run only where a GPU is present (bench/cuda_check.sh runs them with the figures)."""
import numpy as np
import pytest
import torch

from bbcodec import api
from bbcodec.diffusion.codec import CodingParams
from bbcodec.errors import ModelError
from bbcodec.registry import load_model, resolve_device

from conftest import cifar_samples

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_cuda_request_without_a_gpu_is_a_clean_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ModelError, match="no CUDA device"):
        resolve_device("cuda")


@cuda
@pytest.mark.parametrize("parallel", [1, 8])
def test_cuda_round_trip(tiny_model_dir, parallel):
    from bbcodec.images import ImageData
    m = load_model(str(tiny_model_dir), "cuda")
    imgs = [ImageData(f"{i}.png", "RGB", 32, 32, np.ascontiguousarray(a.transpose(2, 0, 1)))
            for i, a in enumerate(cifar_samples()[:6])]
    data, rep = api.compress(imgs, m, CodingParams(steps=20), parallel=parallel)
    out, header = api.decompress(data, m)
    assert header["coding"]["device"] == "cuda"
    for a, b in zip(imgs, out):
        assert np.array_equal(a.main, b.main)


def _samples(n):
    from bbcodec.images import ImageData
    return [ImageData(f"{i}.png", "RGB", 32, 32, np.ascontiguousarray(a.transpose(2, 0, 1)))
            for i, a in enumerate(cifar_samples()[:n])]


@cuda
@pytest.mark.parametrize("which", ["tiny", "shipped"])
@pytest.mark.parametrize("enc,dec", [("cuda", "cpu"), ("cpu", "cuda")])
def test_an_integer_network_file_crosses_devices(tiny_int_model_dir, which, enc, dec):
    """Encoded on one device, decoded on the other, bit-exact: the integer network's outputs are the
    same integers on CUDA (float64 sums below 2^52) and on the CPU (int8 or float64 sums)."""
    name = str(tiny_int_model_dir) if which == "tiny" else "cifar10-vdm-s7-int"
    imgs = _samples(6)
    m_enc, m_dec = load_model(name, enc), load_model(name, dec)
    data, _ = api.compress(imgs, m_enc, api.coding_params(m_enc, 8 if which == "tiny" else 100), parallel=4)
    out, header = api.decompress(data, m_dec)
    assert header["arithmetic"]["network"] == "integer"
    for a, b in zip(imgs, out):
        assert np.array_equal(a.main, b.main)


@cuda
def test_the_shipped_integer_network_gives_the_same_integers_on_cuda():
    rng = np.random.default_rng(0)
    z = torch.from_numpy(rng.standard_normal((5, 3, 32, 32)))
    g = torch.from_numpy(rng.uniform(-12, 4, 5))
    cpu = load_model("cifar10-vdm-s7-int", "cpu").vdm.net(z, g)
    gpu = load_model("cifar10-vdm-s7-int", "cuda").vdm.net(z.cuda(), g.cuda()).cpu()
    assert torch.equal(cpu, gpu)
