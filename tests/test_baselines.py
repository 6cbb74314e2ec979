"""Every available classical baseline gives back exactly the array it was given."""
import numpy as np
import pytest

from bbcodec import baselines
from bbcodec.errors import BbcError, ImageError

# Which channel counts each format can hold; the rest must be refused, not silently changed.
CHANNELS = {"png": {1, 3, 4}, "webp": {3, 4}, "jxl": {1, 3, 4}, "jxl-e9": {1, 3, 4}, "jxl-e10": {1, 3, 4},
            "jpegls": {1, 3, 4},
            "jp2k": {1, 3, 4}}


def _image(shape, seed=0, alpha=None):
    rng = np.random.default_rng(seed)
    # Noise plus a smooth ramp: noise alone is stored raw by some coders, the ramp exercises prediction.
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    ramp = (np.arange(shape[1]) * 9 % 256).astype(np.uint8)
    a[: shape[0] // 2] = ramp.reshape(1, -1, *[1] * (len(shape) - 2))
    if alpha is not None:
        a[..., 3] = alpha
    return a


CASES = {
    "rgb32": ((32, 32, 3), None),
    "rgb-odd": ((7, 5, 3), None),
    "gray-hw1": ((16, 16, 1), None),
    "gray-hw": ((16, 16), None),
    "rgba": ((8, 8, 4), None),
    # Fully transparent pixels still carry RGB that must survive; fully opaque RGBA must stay RGBA.
    "rgba-clear": ((8, 8, 4), 0),
    "rgba-opaque": ((8, 8, 4), 255),
}


@pytest.fixture(params=sorted(baselines.BASELINES))
def codec(request):
    b = baselines.BASELINES[request.param]
    if not b.available():
        pytest.skip(f"{b.name}: library not installed")
    return b


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_is_exact(codec, case):
    shape, alpha = CASES[case]
    a = _image(shape, seed=len(case), alpha=alpha)
    c = 1 if len(shape) == 2 else shape[2]
    if c not in CHANNELS[codec.name]:
        with pytest.raises(ImageError):
            codec.encode(a)
        pytest.skip(f"{codec.name} has no {c}-channel mode")
    data = codec.encode(a)
    assert isinstance(data, bytes) and data
    back = codec.decode(data)
    want = a[:, :, 0] if shape[-1:] == (1,) and len(shape) == 3 else a  # gray comes back [H, W]
    assert back.dtype == np.uint8
    assert back.shape == want.shape
    assert np.array_equal(back, want)


def test_encode_is_deterministic(codec):
    a = _image((32, 32, 3), seed=3)
    assert codec.encode(a) == codec.encode(a)


def test_rejects_bad_arrays(codec):
    with pytest.raises(ImageError):
        codec.encode(np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(ImageError):
        codec.encode(np.zeros((4, 4, 5), np.uint8))


def test_metadata():
    assert set(baselines.BASELINES) == set(CHANNELS)
    for name, b in baselines.BASELINES.items():
        assert b.name == name and b.description
        assert isinstance(b.version, str) and b.version
        assert baselines.get(name) is b


def test_unknown_codec():
    with pytest.raises(BbcError, match="unknown codec 'nope'.*known: png"):
        baselines.get("nope")
