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
