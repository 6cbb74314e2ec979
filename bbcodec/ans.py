"""The ANS stack. The only module that imports constriction.

A `Stack` is LIFO: what is pushed last is popped first. Symbols are int32 arrays; a call
pushes or pops a whole array, and a pop returns the array in the same order that the matching
push was given (constriction's encode_reverse / decode pairing).

The compressed state is an array of uint32 words, index 0 at the bottom of the stack.
"""
from __future__ import annotations

import numpy as np
import constriction

_model = constriction.stream.model
_CATEGORICAL = _model.Categorical(perfect=False)


class Stack:
    def __init__(self, words: np.ndarray | None = None):
        if words is None or len(words) == 0:
            self._c = constriction.stream.stack.AnsCoder()
        else:
            words = np.ascontiguousarray(words, dtype=np.uint32)
            if words[-1] == 0:
                # constriction requires a non-zero top word; such a stream was not written by us.
                raise ValueError("invalid ANS stream (top word is zero)")
            self._c = constriction.stream.stack.AnsCoder(words)
        self.low = self.num_words()  # the low-water mark: fewest words the stack has held after a pop

    # -- state ---------------------------------------------------------------------------
    def words(self) -> np.ndarray:
        """The whole stack as uint32 words, bottom first. Does not change the stack."""
        return np.asarray(self._c.get_compressed(), dtype=np.uint32).copy()

    def num_bits(self) -> int:
        return int(self._c.num_bits())

    def num_words(self) -> int:
        return int(self._c.num_words())

    def _popped(self, symbols: np.ndarray) -> np.ndarray:
        self.low = min(self.low, self.num_words())
        return symbols

    # -- quantized Gaussian over the integers [lo, hi]; the edge symbols absorb the tails ----
    def push_gaussian(self, symbols: np.ndarray, lo: int, hi: int, means: np.ndarray, stds: np.ndarray) -> None:
        if symbols.size:
            self._c.encode_reverse(np.ascontiguousarray(symbols, dtype=np.int32),
                                   _model.QuantizedGaussian(int(lo), int(hi)),
                                   np.ascontiguousarray(means, dtype=np.float64),
                                   np.ascontiguousarray(stds, dtype=np.float64))

    def pop_gaussian(self, lo: int, hi: int, means: np.ndarray, stds: np.ndarray) -> np.ndarray:
        if means.size == 0:
            return np.zeros(0, dtype=np.int32)
        return self._popped(np.asarray(self._c.decode(_model.QuantizedGaussian(int(lo), int(hi)),
                                                      np.ascontiguousarray(means, dtype=np.float64),
                                                      np.ascontiguousarray(stds, dtype=np.float64)), dtype=np.int32))

    # -- categorical with one probability row per symbol ----------------------------------
    def push_categorical(self, symbols: np.ndarray, probs: np.ndarray) -> None:
        if symbols.size:
            self._c.encode_reverse(np.ascontiguousarray(symbols, dtype=np.int32), _CATEGORICAL,
                                   np.ascontiguousarray(probs, dtype=np.float64))

    def pop_categorical(self, probs: np.ndarray) -> np.ndarray:
        if probs.shape[0] == 0:
            return np.zeros(0, dtype=np.int32)
        return self._popped(np.asarray(self._c.decode(_CATEGORICAL, np.ascontiguousarray(probs, dtype=np.float64)),
                                       dtype=np.int32))

    # -- uniform over [0, size) ------------------------------------------------------------
    def push_uniform(self, symbols: np.ndarray, size: int) -> None:
        if symbols.size:
            self._c.encode_reverse(np.ascontiguousarray(symbols, dtype=np.int32), _model.Uniform(int(size)))

    def pop_uniform(self, n: int, size: int) -> np.ndarray:
        if n == 0:
            return np.zeros(0, dtype=np.int32)
        return self._popped(np.asarray(self._c.decode(_model.Uniform(int(size)), int(n)), dtype=np.int32))

