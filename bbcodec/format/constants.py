"""Values that are part of the format. Frozen per version; pinned by value in tests/test_golden.py.

Versions 1 and 2 draw the seed words and the pad noise from numpy's PCG64 Generator (seeds
below), whose stream numpy promises only per release. Version 3 derives both from SplitMix64 in
numpy's uint64 arithmetic (exact, wrapping) and, for the noise, a sum of twelve uniforms made from
53-bit integers, added elementwise in a fixed order: every operation is an exact integer operation
or one IEEE float64 addition, so the values are the same on any machine and any numpy.
"""
from __future__ import annotations

import numpy as np

SEED_WORDS_SEED = 0x5EED   # seed of the stack's seed words
PAD_NOISE_SEED = 0xB0B5    # seed of the pad noise
Q_RADIUS_STDS = 8.0        # q pops cover +-8 std of the step (the edge bins take the tails)
SPLITMIX_VERSION = 3       # the first format version with the SplitMix64 constants
# flow files ("flow-lbb"): the integer weights of the bits-back distribution q of a subpixel outside
# the image around its edge-replicated centre (`priors.pad_codec`): a triangle over 2W - 1 values
FLOW_PAD_WEIGHTS = {"space": (1, 2, 3, 4, 3, 2, 1),   # padding of edge tiles (W = 4)
                    "channel": (1, 2, 1)}             # channels a grey image lacks (W = 2)

_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(seed: int, n: int) -> np.ndarray:
    """The first n outputs of SplitMix64 from `seed` (uint64 [n]; Steele, Lea, Flood 2014)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + _GOLDEN_GAMMA * np.arange(1, n + 1, dtype=np.uint64)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def seed_words(n: int, version: int) -> np.ndarray:
    """The fixed pseudo-random words that seed an encoder's stack (uint32 [n], none zero).

    Only the part the encoder consumes is stored in a file; the decoder regenerates the rest, so
    the seed's size costs nothing but what is drawn from it (the initial bits).
    """
    if version < SPLITMIX_VERSION:
        rng = np.random.Generator(np.random.PCG64(SEED_WORDS_SEED))
        return rng.integers(1, 2**32, size=n, dtype=np.uint64).astype(np.uint32)
    w = (splitmix64(SEED_WORDS_SEED, n) >> np.uint64(32)).astype(np.uint32)
    return np.where(w == 0, np.uint32(1), w)


def pad_noise(shape: tuple[int, ...], version: int) -> np.ndarray:
    """The fixed noise field of uncoded subpixels (padding, missing colour channels): zero mean,
    unit variance.  float64 [C, H, W]"""
    n = int(np.prod(shape))
    if version < SPLITMIX_VERSION:
        return np.random.Generator(np.random.PCG64(PAD_NOISE_SEED)).standard_normal(shape)
    u = (splitmix64(PAD_NOISE_SEED, 12 * n) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53  # exact
    u = u.reshape(12, n)
    acc = u[0].copy()
    for k in range(1, 12):
        acc = acc + u[k]   # elementwise IEEE additions, in this order
    return (acc - 6.0).reshape(shape)
