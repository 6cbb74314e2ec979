"""Initial bits from the image itself: the first tiles coded classically onto the stack.

A bits-back chain must pop latents before it has pushed anything, so the first tile needs
bits already on the stack (its *deficit*: about 16k bits for a 32x32x3 tile at K = 100).
Random seed words pay for them in full. As in HiLLoC, the first tiles are instead coded with
a classical lossless codec, and its bytes are pushed onto the stack as uniform symbols: the
chain of the next tiles pops them as its initial bits, and the decoder, once it has undone
every chain, pops the bytes back and decodes them classically. Those tiles cost their
classical size (a little above the model's rate) instead of model rate plus deficit.

A bootstrap tile is pushed as: its valid region [h, w, c] coded by a `baselines` codec, the
bytes as uniform 8-bit symbols, then the byte count as three more. Nothing about it goes into
the header except the codec's name and the number of bootstrap tiles.
"""
from __future__ import annotations

import numpy as np

from .baselines import get as get_baseline
from .codecs import Codec, uniform
from .errors import BbcError, FormatError

# Codecs a file may name, in order of preference for new files. Decoding needs the named one.
CODECS = ("jxl", "webp")
_LEN_BYTES = 3


def default_codec() -> str | None:
    for name in CODECS:
        if get_baseline(name).available():
            return name
    return None


def check_codec(name: str) -> None:
    if name not in CODECS:
        raise FormatError(f"corrupted header (unknown bootstrap codec {name!r})")
    if not get_baseline(name).available():
        raise BbcError(f"this file's first tiles are coded with {name}, whose library is not installed "
                       "(pip install imagecodecs)")


def _region(mask: np.ndarray) -> tuple[int, int, int]:
    """(channels, height, width) of a tile's valid region: masks are leading rectangles."""
    c = int(mask.any(axis=(1, 2)).sum())
    h = int(mask[0].any(axis=1).sum())
    w = int(mask[0].any(axis=0).sum())
    return c, h, w


def encode_tile(name: str, x: np.ndarray, mask: np.ndarray) -> bytes:
    """Classical bytes of one tile's valid region (x uint8 [3, T, T]); checked to decode exactly."""
    c, h, w = _region(mask)
    a = np.ascontiguousarray(x[:c, :h, :w].transpose(1, 2, 0))
    if name == "webp" and c == 1:
        a = np.ascontiguousarray(np.repeat(a, 3, axis=2))  # WebP has no gray mode
    b = get_baseline(name)
    data = b.encode(a)
    if not np.array_equal(_decode(name, data, c, h, w), x[:c, :h, :w]):
        raise BbcError(f"{name} did not round-trip a tile losslessly")
    return data


def _decode(name: str, data: bytes, c: int, h: int, w: int) -> np.ndarray:
    """uint8 [c, h, w] or a FormatError."""
    try:
        a = np.asarray(get_baseline(name).decode(data))
    except Exception:
        raise FormatError("corrupted payload (a bootstrap tile does not decode)")
    if a.ndim == 2:
        a = a[:, :, None]
    if name == "webp" and c == 1 and a.ndim == 3 and a.shape[2] == 3:
        a = a[:, :, :1]
    if a.dtype != np.uint8 or a.shape != (h, w, c):
        raise FormatError("corrupted payload (a bootstrap tile has the wrong shape)")
    return a.transpose(2, 0, 1)


def tile_codec(name: str, mask: np.ndarray, data: bytes | None = None) -> Codec:
    """Codec for one tile (symbols: uint8 [3, T, T], zero outside the mask).

    The encoder may pass the tile's bytes from `encode_tile` so they are not computed twice.
    """
    c, h, w = _region(mask)
    n_len = uniform(_LEN_BYTES, 256)

    def push(stack, x):
        d = data if data is not None else encode_tile(name, x, mask)
        if len(d) >= 256 ** _LEN_BYTES:
            raise BbcError("bootstrap tile too large")
        uniform(len(d), 256).push(stack, np.frombuffer(d, dtype=np.uint8).astype(np.int32))
        n_len.push(stack, np.array([(len(d) >> (8 * k)) & 255 for k in range(_LEN_BYTES)], dtype=np.int32))

    def pop(stack):
        n = sum(int(v) << (8 * k) for k, v in enumerate(n_len.pop(stack)))
        if n == 0 or n > 8 * mask.size + 4096:
            raise FormatError("corrupted payload (bad bootstrap tile length)")
        d = uniform(n, 256).pop(stack).astype(np.uint8).tobytes()
        x = np.zeros(mask.shape, dtype=np.uint8)
        x[:c, :h, :w] = _decode(name, d, c, h, w)
        return x

    return Codec(push, pop)


def bits(data: bytes) -> int:
    """What a bootstrap tile costs on the stack."""
    return 8 * (len(data) + _LEN_BYTES)
