"""Codecs: pairs of push/pop operations on a `Stack`, composed into bigger codecs.

`push(stack, symbols)` adds symbols; `pop(stack) -> symbols` removes and returns exactly what
the last matching push added (LIFO). Conditional codecs are functions that return a codec.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .ans import Stack


@dataclass(frozen=True)
class Codec:
    push: Callable[[Stack, np.ndarray], None]
    pop: Callable[[Stack], np.ndarray]


def uniform(n: int, size: int) -> Codec:
    """n symbols, each uniform over [0, size)."""
    return Codec(lambda st, x: st.push_uniform(x, size), lambda st: st.pop_uniform(n, size))


def categorical(probs: np.ndarray) -> Codec:
    """One symbol per row of probs [N, S]."""
    return Codec(lambda st, x: st.push_categorical(x, probs), lambda st: st.pop_categorical(probs))


def grid_gaussian(delta: float, mean: np.ndarray, std: np.ndarray, radius: int) -> Codec:
    """Gaussian N(mean, std^2) discretized on the grid {n * delta}; symbols are the int64 grid indices n.

    The coded symbol is n - rint(mean / delta), in [-radius, radius] (the two edge bins absorb
    the tails), so the probability table follows the mean and the symbol range stays small.
    Pushing an index farther than `radius` from its centre is a bug in the caller's range bound:
    it raises rather than writing a stream that cannot be decoded.
    """
    scaled = mean / delta
    centre = np.rint(scaled)
    frac = scaled - centre
    std_s = std / delta if np.ndim(std) else np.full(mean.shape, std / delta)

    def push(st: Stack, n: np.ndarray) -> None:
        sym = n - centre.astype(np.int64)
        if sym.size and np.abs(sym).max() > radius:
            raise OverflowError("latent outside its coding range")
        st.push_gaussian(sym, -radius, radius, frac, std_s)

    def pop(st: Stack) -> np.ndarray:
        return st.pop_gaussian(-radius, radius, frac, std_s).astype(np.int64) + centre.astype(np.int64)

    return Codec(push, pop)


def serial(codecs: list[Codec]) -> Codec:
    """Codec for a tuple of symbol arrays, one per codec; pushed in reverse so pops run forward."""
    def push(st, xs):
        for c, x in reversed(list(zip(codecs, xs))):
            c.push(st, x)

    def pop(st):
        return [c.pop(st) for c in codecs]

    return Codec(push, pop)
