"""Bits-back compositions of codecs: one Markov hierarchy x <- z_0 <- z_1 <- ... <- z_K, two orders.

Both take the same per-step codec constructors, so a step is written once and only the order of
the pops and pushes differs:
    posterior0(x)        q(z_0 | x)            (popped by the encoder)
    likelihood(z_0)      p(x | z_0)
    posterior(i, z_{i-1}) q(z_i | z_{i-1})     i = 1..K (popped)
    prior(i, z_i)        p(z_{i-1} | z_i)      i = 1..K
    top                  p(z_K)

`bitswap_chain` (Kingma et al. 2019, the product): each latent's pop is paid back by the very next
push, so the stack's deficit stays near one step's worth. Encoding (the decoder runs it backwards):
    pop  z_0 with posterior0(x)
    push x   with likelihood(z_0)
    for i = 1..K: pop z_i with posterior(i, z_{i-1}); push z_{i-1} with prior(i, z_i)
    push z_K with top

`bbans_chain` (Townsend et al. 2019), for comparison only: every latent is popped before anything
is pushed, so the encoder needs initial bits for all K + 1 latents at once (about K times Bit-Swap's):
    pop  z_0 with posterior0(x); for i = 1..K: pop z_i with posterior(i, z_{i-1})
    push x with likelihood(z_0); for i = 1..K: push z_{i-1} with prior(i, z_i)
    push z_K with top
Both code the same symbols with the same models, so they differ only in initial bits (and in the
ANS coder's rounding), not in the rate net of them.
"""
from __future__ import annotations

from typing import Callable

from .codecs import Codec


# The step codecs both orders compose: a conditional codec given one value, or given a step and a value.
Given = Callable[[object], Codec]
GivenStep = Callable[[int, object], Codec]


def bitswap_chain(num_steps: int, posterior0: Given, likelihood: Given, posterior: GivenStep, prior: GivenStep,
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


def bbans_chain(num_steps: int, posterior0: Given, likelihood: Given, posterior: GivenStep, prior: GivenStep,
                top: Codec) -> Codec:
    # holds all K + 1 latents at once (the decoder too): K times one latent's memory
    def push(stack, x):
        z = [posterior0(x).pop(stack)]
        for i in range(1, num_steps + 1):
            z.append(posterior(i, z[i - 1]).pop(stack))
        likelihood(z[0]).push(stack, x)
        for i in range(1, num_steps + 1):
            prior(i, z[i]).push(stack, z[i - 1])
        top.push(stack, z[num_steps])

    def pop(stack):
        z = [None] * (num_steps + 1)
        z[num_steps] = top.pop(stack)
        for i in range(num_steps, 0, -1):
            z[i - 1] = prior(i, z[i]).pop(stack)
        x = likelihood(z[0]).pop(stack)
        for i in range(num_steps, 0, -1):
            posterior(i, z[i - 1]).push(stack, z[i])
        posterior0(x).push(stack, z[0])
        return x

    return Codec(push, pop)


# the header's `coding.order` -> composition (`format.container.ORDERS` names the same)
CHAINS = {"bitswap": bitswap_chain, "bbans": bbans_chain}
