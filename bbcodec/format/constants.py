"""Values that are part of the format. Frozen per version; pinned by value in tests/test_golden.py.

Version 1 and 2 files draw the seed words and the pad noise from numpy's PCG64 Generator (seeds
below), whose stream numpy promises only per release: the golden test pins the values so that a
numpy that changes them fails loudly instead of making files undecodable in silence.
"""
from __future__ import annotations

import numpy as np

SEED_WORDS_SEED = 0x5EED   # PCG64 seed of the stack's seed words
PAD_NOISE_SEED = 0xB0B5    # PCG64 seed of the pad noise
Q_RADIUS_STDS = 8.0        # q pops cover +-8 std of the step (the edge bins take the tails)


def seed_words(n: int) -> np.ndarray:
    """The fixed pseudo-random words that seed an encoder's stack (uint32 [n], none zero).

    Only the part the encoder consumes is stored in a file; the decoder regenerates the rest, so
    the seed's size costs nothing but what is drawn from it (the initial bits).
    """
    rng = np.random.Generator(np.random.PCG64(SEED_WORDS_SEED))
    return rng.integers(1, 2**32, size=n, dtype=np.uint64).astype(np.uint32)


def pad_noise(shape: tuple[int, ...]) -> np.ndarray:
    """The fixed noise field of uncoded subpixels (padding, missing colour channels).  float64 [C, H, W]"""
    return np.random.Generator(np.random.PCG64(PAD_NOISE_SEED)).standard_normal(shape)
