"""Bits-back compositions of codecs.

`bitswap_chain` codes x under a Markov hierarchy x <- z_0 <- z_1 <- ... <- z_K in Bit-Swap order
(Kingma et al. 2019): each latent's pop is paid back by the very next push, so the stack's
deficit stays near one step's worth instead of K steps' worth as in BB-ANS order.

Encoding (the decoder runs the same code backwards):
    pop  z_0 with posterior0(x)
    push x   with likelihood(z_0)
    for i = 1..K: pop z_i with posterior(i, z_{i-1}); push z_{i-1} with prior(i, z_i)
    push z_K with top
"""
from __future__ import annotations

from typing import Callable

from .codecs import Codec


def bitswap_chain(num_steps: int,
                  posterior0: Callable[[object], Codec],
                  likelihood: Callable[[object], Codec],
                  posterior: Callable[[int, object], Codec],
                  prior: Callable[[int, object], Codec],
                  top: Codec) -> Codec:
    def push(stack, x):
        z = posterior0(x).pop(stack)
        likelihood(z).push(stack, x)
        for i in range(1, num_steps + 1):
            z_next = posterior(i, z).pop(stack)
            prior(i, z_next).push(stack, z)
            z = z_next
        top.push(stack, z)

    def pop(stack):
        z = top.pop(stack)
        for i in range(num_steps, 0, -1):
            z_prev = prior(i, z).pop(stack)
            posterior(i, z_prev).push(stack, z)
            z = z_prev
        x = likelihood(z).pop(stack)
        posterior0(x).push(stack, z)
        return x

    return Codec(push, pop)
