"""Local bits-back coding of a coupling flow (`flows.net.Flow`), layer by layer, on the ANS stack.

In the spirit of Ho, Lohn & Abbeel 2019 ("Compression with flows via local bits-back coding"), but
with each coupling coded exactly on integer grids, so that no Gaussian approximation of a layer
is needed.

Grid.  Every coordinate of every layer's state is an integer Y standing for the model-space bin
[Y delta, (Y + 1) delta), delta = 2^-k (k = `grid_bits`, 16 by default).  The network reads a
bin by its centre (Y + 1/2) delta.

The chain.  A flow with steps 1..K is coded with `bitsback.bitswap_chain`: each step's state is a
latent, the dequantized image is z_0, the flow's output z_K:
    pop  Y_0 given x          dequantization: each subpixel's 2^(k-7) bins inside its pixel bin,
                              uniform (bits back: k - 7 per subpixel)
    push x given Y_0          deterministic (x = the pixel bin Y_0 lies in): no bits
    for each step i:
        pop  Y_i given Y_{i-1}, push Y_{i-1} given Y_i (below; squeeze and split are permutations
                              of coordinates and cost nothing)
    push Y_K                  discretized N(0, 1): the coarse bin (2^-c wide, c = `top_bits`) with
                              its Gaussian mass (`codecs.grid_gaussian`), the low k - c bits uniform

One coupling coordinate.  The pass-through half is the same integers before and after the
coupling, so encoder and decoder evaluate the network on identical inputs and get the same
(log a, t).  The codec rounds them to a = R / S (S = 2^m, m = `scale_bits`, R a positive integer)
and t = T delta / S (T an integer).  Measured in units of delta / S, the source bin Y is the
integer interval [R Y + T, R Y + R + T) after the map y -> a y + t, and a target bin Y' is
[S Y', S Y' + S); c(Y, Y') = the integer length of their overlap.  Treating the point as uniform
in its bin (the dequantization's assumption, carried layer to layer):
    pop  Y' with q(Y' | Y) = c(Y, Y') / R       (which target bin the image of Y's bin lands in)
    push Y  with p(Y | Y') = c(Y, Y') / S       (which source bin the preimage of Y' came from)
Both are categoricals over the few bins that overlap (about a + 1 for q, 1/a + 1 for p), with
integer masses from (Y, R, T) or (Y', R, T) alone; the decoder pops Y with p and pushes Y' back
with q.  The cost is exactly
    -log2 p(Y | Y') + log2 q(Y' | Y) = -log2 (c / S) + log2 (c / R) = log2 S - log2 R = -log2 a
bits per coordinate, for every pair (Y, Y') the encoder can reach: an expanding map (a > 1) pops
a choice among about a bins, a contracting one pushes the index among about 1/a bins.  This is the
bin-overlap form of the "modular" integer scaling (iFlow's MST), but it pops only the
bin choice, never a full remainder of log2 R bits, so a layer's initial bits stay at about
log2 (a + 1) per coordinate.

Why decoding inverts encoding exactly.  Every probability the coder uses is a function of integers
that both sides hold at that moment: q's rows of (Y, R, T), p's rows of (Y', R, T), R and T of the
pass-through integers through one deterministic network call (same batch, same dtype, same
machine), the dequantization and top codecs of x and nothing.  ANS pops return exactly what the
matching push added, and `bitswap_chain` runs the same steps in reverse order, so the decoder
recovers Y_{i-1} from Y_i step by step and finally x.  (A float network ties the files to the
machine's arithmetic, as the diffusion prior's float models do; `FlowNet` fixes dtype and batch.)

Expected cost.  Summing the per-step costs,
    bits = -log2 N(z in its coarse bin) + (k - c) D   (top)
           - (k - 7) D                                (dequantization, bits back)
           + sum over couplings and coordinates of (m - log2 R)
         ~ -log2 p(z) - k D - sum log2 a - (k - 7) D + k D = -log2 p(y_0) + 7 D,
the flow's dequantization bound at the popped point y_0 (`Flow.nll_bits`).  What separates them:
the rounding of a to R / 2^m (|error| < 2^-(m+1) / a nats per coordinate per layer, mean near 0),
the network reading bin centres instead of the continuous path (O(delta)), the coarse top bins
(O(2^-2c)), ANS's quantized probabilities and its two head words.  `FlowStats` records the exact
per-image ideal cost of the path taken, and the flow's own -log2 p at the popped points.

Initial bits.  The chain pops (k - 7) bits per subpixel for dequantization before anything is
pushed; each coupling pops its bin choices (about log2 (a + 1) bits per transformed coordinate)
before it pushes, and a run of expanding layers adds their net refunds to the deficit; the final
push repays everything (about k + 2 bits per subpixel).  `Stack.low` measures it.  Measured on a
flow overfitted for 75 s to the 8 bundled CIFAR-10 samples (3.25 bits/dim): 15.0, 11.0 and 9.0
bits per subpixel at k = 16, 12 and 10, with the same rate (3.255, 3.258, 3.254 bits/dim against
the flow's 3.255, 3.257, 3.253 on the coded paths): the coupling cost does not depend on k, only
the network's view of bin centres does, so k is a trade between initial bits and that view.

The final latent's Gaussian is leaky (every symbol of its range keeps at least 2^-24, constriction's
precision): the range of 2 top_range 2^c bins costs about 2 top_range 2^c / 2^24 / ln 2 bits per
subpixel (3.5e-4 at the defaults), and a latent beyond about 5.5 standard deviations costs up to
24 + k - c bits instead of its Gaussian mass.

Failures are loud: a latent beyond `top_range` standard deviations raises OverflowError in the
encoder (never an undecodable file); a decoder reading a changed stack raises where a value leaves
its range (pixels outside 0..255, a state or shift past 2^16 in model space, a scale past 2^8, a
non-finite network output) and otherwise ends on a different stack, which the container's checks
catch.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from ..bitsback import bitswap_chain
from ..codecs import Codec, grid_gaussian, serial, uniform
from .net import BIN_LOG2, PIXEL_BITS, Coupling, Flow, Split, Squeeze, squeeze, unsqueeze

# Ranges that keep every integer product below 2^62 (k <= 20, m <= 16): |y| and |t| < 2^16 in model
# space, so |Y| < 2^36 and |T| < 2^52, and R < 2^(m + 8), i.e. |log a| < 8 ln 2.  A flow state past
# them is a corrupt stream or a broken model, never a sane latent (the prior is N(0, 1)).
VALUE_LIMIT_LOG2 = 16
SCALE_LIMIT_LOG2 = 8


@dataclass(frozen=True)
class FlowCodingParams:
    """The codec's precision; each is recorded in the file header when the flow is integrated.

    grid_bits  k: every layer's coordinates live on the grid 2^-k (model space); >= 8
    scale_bits m: coupling scales are coded as R / 2^m, shifts in units of 2^-(k+m)
    top_bits   c: the final latent's Gaussian bins are 2^-c wide; the k - c bits below are uniform
    top_range  the final latent must lie within +-top_range (its prior is N(0, 1)), else the encoder
               raises OverflowError
    """
    grid_bits: int = 16
    scale_bits: int = 16
    top_bits: int = 5
    top_range: float = 64.0

    def check(self) -> None:
        if not 8 <= self.grid_bits <= 20:
            raise ValueError("grid_bits must be in 8..20")
        if not 4 <= self.scale_bits <= 16:
            raise ValueError("scale_bits must be in 4..16")
        if not 0 <= self.top_bits <= min(self.grid_bits - 1, 8):
            raise ValueError("top_bits must be in 0..min(grid_bits - 1, 8)")
        if not 1.0 <= self.top_range or self.top_range * 2.0 ** (self.top_bits + 1) > 2.0 ** 16:
            raise ValueError("top_range must be >= 1 with 2 top_range 2^top_bits <= 2^16 bins (leakiness)")


class FlowStats:
    """Per-image bits of the path the encoder took (encoder only; statistics, never coded).

    dequant: -(k - 7) per subpixel (bits back); couplings: sum of m - log2 R; top: -log2 of the
    coarse Gaussian mass + (k - c) per subpixel; total: their sum, the ideal code length of the path.
    flow_bits: the flow's own float -log2 p(y_0) + 7 D at the popped bin centres y_0.
    padding: minus the bits that choosing the padding by bits-back popped (filled in by `priors.FlowPrior`).
    couplings_abs: sum of |m - log2 R|, the bits the couplings moved either way (a diagnostic: the
    couplings' net cost often cancels to near zero while each layer pushes and pops many bits).
    """

    def __init__(self, batch: int):
        self.dequant = np.zeros(batch)
        self.couplings = np.zeros(batch)
        self.couplings_abs = np.zeros(batch)
        self.top = np.zeros(batch)
        self.flow_bits = np.zeros(batch)
        self.padding = np.zeros(batch)  # bits given back by the padding's bits-back pops (`priors`), <= 0

    @property
    def total(self) -> np.ndarray:
        return self.dequant + self.couplings + self.top


def bin_choice(start: np.ndarray, size: np.ndarray, cell: np.ndarray | int) -> Codec:
    """Codec for J, the cell [J cell, (J + 1) cell) that a point uniform on the integer interval
    [start, start + size) falls in: P(J) = (length of the overlap) / size.  All int64 [N].

    Symbols are int64 [N].  Only cells that overlap are coded (so no symbol has probability 0, and
    a popped J always overlaps); rows are grouped by their number of cells, a row of one cell is
    certain and costs nothing.  Pops run through the groups by ascending length, pushes descending.
    """
    cell = np.broadcast_to(np.asarray(cell, dtype=np.int64), start.shape)
    first = np.floor_divide(start, cell)
    count = np.floor_divide(start + size - 1, cell) - first + 1
    width = int(count.max()) if count.size else 1
    j = first[:, None] + np.arange(width)[None, :]
    lo = np.maximum(start[:, None], j * cell[:, None])
    hi = np.minimum((start + size)[:, None], (j + 1) * cell[:, None])
    probs = np.maximum(hi - lo, 0) / size[:, None].astype(np.float64)  # exact integers / integer
    groups = [(n, np.flatnonzero(count == n)) for n in range(2, width + 1)]
    groups = [(n, idx) for n, idx in groups if idx.size]

    def push(st, J: np.ndarray) -> None:
        sym = J - first
        if sym.size and (sym.min() < 0 or np.any(sym >= count)):
            raise ValueError("bin_choice: symbol outside its overlapping cells (a caller bug)")
        for n, idx in reversed(groups):
            st.push_categorical(sym[idx].astype(np.int32), probs[idx, :n])

    def pop(st) -> np.ndarray:
        J = first.copy()
        for n, idx in groups:
            J[idx] += st.pop_categorical(probs[idx, :n]).astype(np.int64)
        return J

    return Codec(push, pop)


class FlowNet:
    """Deterministic evaluation of a flow's couplings for the codec: a copy of the flow in `dtype`,
    in eval mode, one call per coupling and batch, on the bin centres of the pass-through integers.

    Returns the rounded (R, T) of the transformed coordinates; caches the last call, because the
    chain asks for the same step's parameters twice (posterior, then prior) on the same inputs."""

    def __init__(self, flow: Flow, params: FlowCodingParams, dtype=torch.float64, device: str = "cpu"):
        self.flow = copy.deepcopy(flow).to(device=device, dtype=dtype).eval()
        self.params = params
        self.dtype = dtype
        self.device = device
        self._last = None

    def coefficients(self, coupling: Coupling, i: int, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sel, R, T) for coupling step i on the integer state Y [B, C, H, W]: sel bool [B, C, H, W]
        marks the transformed coordinates; R, T int64 [n] are theirs in C order (a = R / 2^m,
        t = T 2^-(k+m))."""
        mask = coupling_mask_np(coupling, Y.shape)
        key = np.where(mask, Y, 0)
        if self._last is not None and self._last[0] == i and np.array_equal(self._last[1], key):
            return self._last[2]
        k, m = self.params.grid_bits, self.params.scale_bits
        centre = np.where(mask, (Y.astype(np.float64) + 0.5) * 2.0 ** -k, 0.0)  # exact; +0.0 elsewhere
        with torch.inference_mode():
            y = torch.from_numpy(centre).to(device=self.device, dtype=self.dtype)
            log_a, t = coupling.scale_shift(y)
        log_a = log_a.to("cpu", torch.float64).numpy()
        t = t.to("cpu", torch.float64).numpy()
        sel = ~mask
        log_a, t = log_a[sel], t[sel]
        if (not (np.all(np.isfinite(log_a)) and np.all(np.isfinite(t)))
                or np.abs(t).max(initial=0) >= 2.0 ** VALUE_LIMIT_LOG2
                or np.abs(log_a).max(initial=0) >= SCALE_LIMIT_LOG2 * np.log(2.0)):
            raise OverflowError("flow coupling outside its range (corrupt stream or broken model)")
        R = np.rint(np.exp(log_a) * 2.0 ** m).astype(np.int64)
        T = np.rint(t * 2.0 ** (k + m)).astype(np.int64)
        out = (sel, np.maximum(R, 1), T)
        self._last = (i, key, out)
        return out


def coupling_mask_np(coupling: Coupling, shape: tuple[int, ...]) -> np.ndarray:
    """The coupling's pass-through mask, broadcast to a state of `shape` [B, C, H, W] (bool)."""
    return np.broadcast_to(coupling.mask(torch.zeros((1, *shape[1:]))).numpy(), shape)


def _check_state(Y: np.ndarray, k: int) -> np.ndarray:
    if Y.size and np.abs(Y).max() >= 2 ** (k + VALUE_LIMIT_LOG2):
        raise OverflowError("flow state outside its range (corrupt stream or broken model)")
    return Y


def _per_image(values: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """Sum of values (one per True of sel [B, ...], C order) per image [B]."""
    image = np.broadcast_to(np.arange(sel.shape[0]).reshape(-1, *[1] * (sel.ndim - 1)), sel.shape)[sel]
    return np.bincount(image, weights=values, minlength=sel.shape[0])


def _torch_int(f, Y: np.ndarray) -> np.ndarray:
    """An integer array through one of net.py's permutations (the same code as the float flow)."""
    return f(torch.from_numpy(np.ascontiguousarray(Y))).numpy().copy()


def flow_codec(flow: Flow, shape: tuple[int, int, int, int], params: FlowCodingParams = FlowCodingParams(),
               net: FlowNet | None = None, stats: FlowStats | None = None) -> Codec:
    """Codec for a batch of images, symbols uint8 [B, C, H, W] = shape (H, W multiples of
    `flow.tile_multiple`), by local bits-back along the flow (see the module docstring).

    net: the deterministic evaluator, made from this flow and these params (made here when not
    given; pass one to share its copy between calls).  The chain's state is (the active integer
    tensor [B, C', H', W'], the factored-out integers [B, n] in the order `Flow.forward` flattens them).
    stats: given by the encoder, filled with the path's per-image bits (`FlowStats`)."""
    params.check()
    B, C, H, W = shape
    if C != flow.cfg.in_channels or H % flow.tile_multiple or W % flow.tile_multiple:
        raise ValueError(f"flow codec: shape {shape} does not fit the flow")
    net = net or FlowNet(flow, params)
    if net.params != params:
        raise ValueError("flow codec: the evaluator was made for other coding parameters")
    k, m, c = params.grid_bits, params.scale_bits, params.top_bits
    D = C * H * W
    sub = k + BIN_LOG2           # log2 of grid bins per pixel bin: k - 7
    offset = 2 ** k              # model space -1 is grid index -2^k
    S = 2 ** m
    low_bits = k - c
    radius = int(np.ceil(params.top_range * 2.0 ** c)) + 1
    steps = list(net.flow.steps)
    final_shape, n_out = _final_layout(steps, (C, H, W))  # the top's columns: factored-out, then active

    def posterior0(x):  # dequantization: pop Y_0 uniform inside each pixel bin
        base = (x.astype(np.int64) << sub) - offset
        inner = uniform(x.size, 2 ** sub)

        def pop(st):
            Y0 = base + inner.pop(st).astype(np.int64).reshape(x.shape)
            if stats is not None:
                centre = torch.from_numpy((Y0 + 0.5) * 2.0 ** -k).to(net.device, net.dtype)
                with torch.inference_mode():
                    stats.flow_bits += (net.flow.log_prob_bits(centre) - D * BIN_LOG2).to("cpu", torch.float64).numpy()
                stats.dequant -= sub * D
            return Y0, np.zeros((B, 0), dtype=np.int64)

        return Codec(lambda st, z: inner.push(st, (z[0] - base).reshape(-1)), pop)

    def likelihood(z):  # the pixel is the bin Y_0 lies in
        def pop(st):
            x = (z[0] + offset) >> sub
            if x.min() < 0 or x.max() >= 2 ** PIXEL_BITS:
                raise ValueError("flow codec: a decoded value lies outside the pixel range (corrupt stream)")
            return x.astype(np.uint8)

        return Codec(lambda st, x: None, pop)

    def permutation(forward: bool, i: int, z) -> tuple[np.ndarray, np.ndarray]:
        """State after (forward) or before step i, which is a squeeze or a split."""
        Y, out = z
        if isinstance(steps[i - 1], Squeeze):
            return _torch_int(squeeze if forward else unsqueeze, Y), out
        if forward:
            half = Y.shape[1] // 2
            return Y[:, half:].copy(), np.concatenate([out, Y[:, :half].reshape(B, -1)], axis=1)
        c_prev = 2 * Y.shape[1]  # Split keeps c - c // 2 = c / 2 of an even c
        n = (c_prev // 2) * Y.shape[2] * Y.shape[3]
        left = out[:, out.shape[1] - n:].reshape(B, c_prev // 2, Y.shape[2], Y.shape[3])
        return np.concatenate([left, Y], axis=1), out[:, :out.shape[1] - n].copy()

    def posterior(i, z_prev):  # pop the state after step i
        step = steps[i - 1]
        if isinstance(step, (Squeeze, Split)):
            return Codec(lambda st, z: None, lambda st: permutation(True, i, z_prev))
        Y, out = z_prev
        sel, R, T = net.coefficients(step, i, Y)
        q = bin_choice(R * Y[sel] + T, R, S)

        def pop(st):
            Yn = Y.copy()
            Yn[sel] = q.pop(st)
            if stats is not None:
                cost = m - np.log2(R)
                stats.couplings += _per_image(cost, sel)
                stats.couplings_abs += _per_image(np.abs(cost), sel)
            return _check_state(Yn, k), out

        return Codec(lambda st, z: q.push(st, z[0][sel]), pop)

    def prior(i, z_next):  # push the state before step i
        step = steps[i - 1]
        if isinstance(step, (Squeeze, Split)):
            return Codec(lambda st, z: None, lambda st: permutation(False, i, z_next))
        Yn, out = _check_state(z_next[0], k), z_next[1]
        sel, R, T = net.coefficients(step, i, Yn)
        p = bin_choice(S * Yn[sel] - T, np.full(R.shape, S, dtype=np.int64), R)

        def pop(st):
            Y = Yn.copy()
            Y[sel] = p.pop(st)
            return _check_state(Y, k), out

        return Codec(lambda st, z: p.push(st, z[0][sel]), pop)

    # the final latent: coarse index H = Y >> (k - c) with N(0, 1) mass of [H 2^-c, (H + 1) 2^-c)
    # (grid_gaussian's bins are centred on its grid, hence the mean of minus half a bin), then the
    # low bits Y - (H << (k - c)) uniform
    coarse = grid_gaussian(2.0 ** -c, np.full(B * D, -2.0 ** -(c + 1)), 1.0, radius)
    top_inner = serial([coarse, uniform(B * D, 2 ** low_bits)])

    def top_push(st, z):
        Y = np.concatenate([z[1], z[0].reshape(B, -1)], axis=1).reshape(-1)
        hi = Y >> low_bits
        if stats is not None:
            stats.top += _gauss_bin_bits(hi, c).reshape(B, D).sum(1) + low_bits * D
        top_inner.push(st, [hi, (Y - (hi << low_bits)).astype(np.int32)])

    def top_pop(st):
        hi, lo = top_inner.pop(st)
        Y = ((hi.astype(np.int64) << low_bits) + lo.astype(np.int64)).reshape(B, D)
        return Y[:, n_out:].reshape(B, *final_shape).copy(), Y[:, :n_out].copy()

    return bitswap_chain(len(steps), posterior0, likelihood, posterior, prior, Codec(top_push, top_pop))


def _final_layout(steps, shape: tuple[int, int, int]) -> tuple[tuple[int, int, int], int]:
    """(the active tensor's [C, H, W] after all steps, the number of factored-out coordinates)."""
    c, h, w = shape
    n_out = 0
    for step in steps:
        if isinstance(step, Squeeze):
            c, h, w = 4 * c, h // 2, w // 2
        elif isinstance(step, Split):
            n_out += (c // 2) * h * w
            c -= c // 2
    return (c, h, w), n_out


def _gauss_bin_bits(hi: np.ndarray, c: int) -> np.ndarray:
    """-log2 of N(0, 1)'s mass on [hi 2^-c, (hi + 1) 2^-c) (float64; statistics only)."""
    a = torch.from_numpy(hi.astype(np.float64) * 2.0 ** -c)
    b = a + 2.0 ** -c
    # mass = Phi(b) - Phi(a) = Phi(-a) - Phi(-b), in logs on the tail side (no cancellation, no underflow)
    near, far = torch.where(a > 0, -b, a), torch.where(a > 0, -a, b)  # the tail: Phi(far) - Phi(near)
    log_far, log_near = torch.special.log_ndtr(far), torch.special.log_ndtr(near)
    log_mass = log_far + torch.log1p(-torch.exp(log_near - log_far))
    return (-log_mass / np.log(2.0)).numpy()
