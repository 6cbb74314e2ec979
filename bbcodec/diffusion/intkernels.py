"""Fused CPU loops for the integer network's per-element work (numba), where numba is installed.

`intnet` runs each layer as a few torch operations, and on the CPU most of its time outside the int8
matrix products went to the many passes over memory between them. These loops do the same work in one
pass each: the same integer arithmetic, so the same integers (the tests run both paths on the same
inputs and compare). Every operation here is on integers, or on float64 values that are integers times
powers of two far below 2^53, where no result is ever rounded; fused multiply-adds, vectorisation and
any order of evaluation therefore give the same bits.

- `split`, `split_cols`, `gather_cols`: activations (integers in [-2^20, 2^20), float64 or int32) to
  the three int8 parts of `intnet._chunks`, zero-padded; and the im2col rows of a 3 x 3
  convolution over them, gathered as 8-channel int64 words (or split into place for a few channels).
- `finish`, `accumulate`: the int32 sums of the parts' products joined as y0 2^14 + y1 2^7 + y2,
  scaled by each output channel's power of two, plus a per-image, per-channel constant (bias, the
  parts' offsets, the time embedding, all at the output's scale), rounded half to even and clamped
  (`accumulate`: summed over several input parts first).
- `group_norm_stats`, `group_norm_apply`, `group_norm_parts`: `intnet.IntOps.norm` (statistics in
  int64) with its SiLU table lookup, the last straight into the next convolution's input parts.
- `rescale_add`, `rescale_cat`: skip additions and concatenations at a common exponent.
- `attention_weights`, `round_div_rows`: the attention's table-lookup weights and its rounded
  quotients, the latter from the float quotient corrected in exact integer arithmetic.
"""
from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # the torch path gives the same integers
    numba = None


def available() -> bool:
    return numba is not None


if numba is not None:
    _jit = numba.njit(cache=True, nogil=True)

    @_jit
    def split(x, out, p):
        """x: [B, H, W, C] float64 integers -> out: int8 [3, B, H + 2p, W + 2p, C'] (C' >= C), the
        padding (and channels past C) holding the parts of 0."""
        B, H, W, C = x.shape
        Cp = out.shape[4]
        for b in range(B):
            for i in range(H + 2 * p):
                for j in range(W + 2 * p):
                    if p <= i < H + p and p <= j < W + p:
                        for c in range(C):
                            v = np.int32(x[b, i - p, j - p, c])
                            out[0, b, i, j, c] = (v >> 14) - 64
                            out[1, b, i, j, c] = ((v >> 7) & 127) - 128
                            out[2, b, i, j, c] = (v & 127) - 128
                        c0 = C
                    else:
                        c0 = 0
                    for c in range(c0, Cp):  # padding: the parts of 0
                        out[0, b, i, j, c] = -64
                        out[1, b, i, j, c] = -128
                        out[2, b, i, j, c] = -128

    @_jit
    def split_cols(x, out):
        """im2col of a 3 x 3 convolution (zero padding 1) on the parts at once: out int8 [3, B H W, K']
        holds at (part, pixel (b, i, j), (dy, dx, c)) the part of x's pixel (i + dy - 1, j + dx - 1),
        channel c; columns past 9 C (K' is a multiple of 8) hold the parts of 0."""
        B, H, W, C = x.shape
        K = out.shape[2]
        for b in range(B):
            for i in range(H):
                for j in range(W):
                    r = (b * H + i) * W + j
                    for t in range(9):
                        ii, jj = i + t // 3 - 1, j + t % 3 - 1
                        k0 = t * C
                        if 0 <= ii < H and 0 <= jj < W:
                            for c in range(C):
                                v = np.int32(x[b, ii, jj, c])
                                out[0, r, k0 + c] = (v >> 14) - 64
                                out[1, r, k0 + c] = ((v >> 7) & 127) - 128
                                out[2, r, k0 + c] = (v & 127) - 128
                        else:
                            for c in range(C):
                                out[0, r, k0 + c] = -64
                                out[1, r, k0 + c] = -128
                                out[2, r, k0 + c] = -128
                    for k in range(9 * C, K):
                        out[0, r, k] = -64
                        out[1, r, k] = -128
                        out[2, r, k] = -128

    @_jit
    def gather_cols(rows, stride, Wo, out):
        """im2col of a 3 x 3 convolution on parts already split and zero-padded by 1 (`split`), moved as
        int64 words (8 channels each): rows int64 [3, B, H + 2, (W + 2) C / 8] -> out int64
        [3, B, Ho Wo, 9 C / 8] holding at (part, b, output pixel (i, j)) the padded pixels
        (s i + dy, s j .. s j + 2) for dy = 0, 1, 2, in (dy, dx, c) order (s: the stride; Wo output
        pixels per row)."""
        B = rows.shape[1]
        Ho = out.shape[2] // Wo
        w = out.shape[3] // 9  # words per pixel
        for part in range(3):
            for b in range(B):
                for i in range(Ho):
                    for j in range(Wo):
                        q = i * Wo + j
                        for dy in range(3):
                            src = stride * j * w
                            for k in range(3 * w):
                                out[part, b, q, dy * 3 * w + k] = rows[part, b, stride * i + dy, src + k]

    @_jit
    def rescale_add(a, sa, b, sb, limit, out):
        """out = clamp(rint(a sa) + rint(b sb)) elementwise (flat float64 arrays; sa, sb powers of two)."""
        for k in range(out.shape[0]):
            v = np.rint(a[k] * sa) + np.rint(b[k] * sb)
            out[k] = min(max(v, -limit), limit - 1)

    @_jit
    def rescale_cat(a, sa, b, sb, limit, out):
        """out[q] = clamp(rint([a[q], b[q]] scale)) for [P, Ca], [P, Cb] -> [P, Ca + Cb]."""
        P, Ca = a.shape
        Cb = b.shape[1]
        for q in range(P):
            for c in range(Ca):
                out[q, c] = min(max(np.rint(a[q, c] * sa), -limit), limit - 1)
            for c in range(Cb):
                out[q, Ca + c] = min(max(np.rint(b[q, c] * sb), -limit), limit - 1)

    @numba.njit(cache=True, nogil=True, inline="always")
    def _joined(y, rows, r, n):
        """Output r's sums joined over the three activation parts (part c at row r + c rows):
        y0 2^14 + y1 2^7 + y2, |sum| < 2^50: exact in float64."""
        return np.float64(np.int64(y[r, n]) * 16384 + np.int64(y[r + rows, n]) * 128 + np.int64(y[r + 2 * rows, n]))

    @_jit
    def finish(y, rows, scale, const, limit, out):
        """out[b, p, n] = clamp(rint(`_joined`(r = b P + p) scale[n] + const[b, n]), -limit, limit - 1).
        y: int32 [3 rows, N], the products' sums; out: [B, P, N] with B P = rows."""
        B, P, N = out.shape
        lo, hi = np.float64(-limit), np.float64(limit - 1)
        for b in range(B):
            for p in range(P):
                r = b * P + p
                for n in range(N):
                    v = np.rint(_joined(y, rows, r, n) * scale[n] + const[b, n])
                    out[b, p, n] = min(max(v, lo), hi)

    @_jit
    def accumulate(y, rows, scale, acc):
        """acc[b, p, n] += `_joined` scale[n]: `finish` for a convolution with several input parts,
        not rounded until all are in."""
        B, P, N = acc.shape
        for b in range(B):
            for p in range(P):
                r = b * P + p
                for n in range(N):
                    acc[b, p, n] += _joined(y, rows, r, n) * scale[n]

    @_jit
    def _isqrt(n):
        """floor(sqrt(n)) for 0 <= n < 2^62: a float estimate corrected in integers (`intnet.isqrt`)."""
        r = np.int64(np.sqrt(np.float64(n)))
        for _ in range(2):
            if r * r > n:
                r -= 1
            if (r + 1) * (r + 1) <= n:
                r += 1
        return r

    @_jit
    def group_norm_stats(x, groups, g, shift, eps4, mul_limit, mul_exp_scale, mean, mul):
        """`intnet.IntOps.norm`'s statistics of x [B, P, C] (float64 or int32 integers): each channel's
        group mean and multiplier (mul_k 2^-24), float64 [B, C]. Sums in int64: |v| < 2^20 and
        P C / groups < 2^20, so the sums of squares stay below 2^60."""
        B, P, C = x.shape
        cg = C // groups
        n = np.int64(P * cg)
        acc = np.empty(C, np.int64)
        acc2 = np.empty(C, np.int64)
        for b in range(B):
            acc[:] = 0
            acc2[:] = 0
            for q in range(P):
                for c in range(C):
                    v = np.int64(x[b, q, c])
                    acc[c] += v
                    acc2[c] += v * v
            for gi in range(groups):
                s = np.int64(0)
                s2 = np.int64(0)
                for c in range(gi * cg, (gi + 1) * cg):
                    s += acc[c]
                    s2 += acc2[c]
                m = (2 * s + n) // (2 * n)  # round(s / n), halves up
                ssq = s2 - 2 * m * s + n * m * m  # sum (v - m)^2, every term below 2^62: exact
                r = _isqrt((ssq // n + eps4[0]) * eps4[1])
                for c in range(gi * cg, (gi + 1) * cg):
                    num = g[c] << shift
                    k = (2 * num + r) // (2 * r)
                    k = min(max(k, -mul_limit + 1), mul_limit - 1)
                    mul[b, c] = np.float64(k) * mul_exp_scale
                    mean[b, c] = np.float64(m)

    @numba.njit(cache=True, nogil=True, inline="always")
    def _normed(x, mean, mul, beta, b, c):
        """rint((x - mean) mul) + beta: exact (|x - mean| < 2^21, mul < 2^31 2^-24)."""
        return np.rint((x - mean[b, c]) * mul[b, c]) + beta[c]

    @_jit
    def group_norm_apply(x, mean, mul, beta, silu, table, limit, out):
        """The normalised values [B, P, C]: with `silu`, table[clamp(y, 0, len - 1)] (beta then holds the
        table's index offset), else clamp(y, -limit, limit - 1)."""
        B, P, C = x.shape
        top = np.float64(table.shape[0] - 1)
        lo, hi = np.float64(-limit), np.float64(limit - 1)
        idx = np.empty(C, np.int64)
        for b in range(B):
            for q in range(P):
                if silu:  # the indices of a row first, then the lookups: both loops vectorise
                    for c in range(C):
                        idx[c] = np.int64(min(max(_normed(x[b, q, c], mean, mul, beta, b, c), 0.0), top))
                    for c in range(C):
                        out[b, q, c] = table[idx[c]]
                else:
                    for c in range(C):
                        out[b, q, c] = min(max(_normed(x[b, q, c], mean, mul, beta, b, c), lo), hi)

    @_jit
    def group_norm_parts(x, mean, mul, beta, silu, table, limit, p, out):
        """`group_norm_apply` straight into a convolution's input parts (`split`'s layout): x [B, H, W, C]
        -> out int8 [3, B, H + 2p, W + 2p, C], the padding holding the parts of 0."""
        B, H, W, C = x.shape
        top = np.float64(table.shape[0] - 1)
        lo, hi = np.float64(-limit), np.float64(limit - 1)
        idx = np.empty(C, np.int64)
        val = np.empty(C, np.int32)
        for b in range(B):
            for i in range(H + 2 * p):
                for j in range(W + 2 * p):
                    if p <= i < H + p and p <= j < W + p:
                        if silu:
                            for c in range(C):
                                idx[c] = np.int64(min(max(_normed(x[b, i - p, j - p, c], mean, mul, beta, b, c), 0.0), top))
                            for c in range(C):
                                val[c] = np.int32(table[idx[c]])
                        else:
                            for c in range(C):
                                val[c] = np.int32(min(max(_normed(x[b, i - p, j - p, c], mean, mul, beta, b, c), lo), hi))
                        for c in range(C):
                            v = val[c]
                            out[0, b, i, j, c] = (v >> 14) - 64
                            out[1, b, i, j, c] = ((v >> 7) & 127) - 128
                            out[2, b, i, j, c] = (v & 127) - 128
                    else:
                        for c in range(C):
                            out[0, b, i, j, c] = -64
                            out[1, b, i, j, c] = -128
                            out[2, b, i, j, c] = -128

    @_jit
    def attention_weights(logits, scale, table, out):
        """out[b, i, j] = table[min(rint((max_j logits[b, i, :] - logits[b, i, j]) scale), len - 1)]:
        `intnet.IntOps.attention`'s unnormalised weights (logits: exact integers, scale a power of two)."""
        B, P, Q = logits.shape
        span = np.float64(table.shape[0] - 1)
        for b in range(B):
            for i in range(P):
                m = logits[b, i, 0]
                for j in range(1, Q):
                    m = max(m, logits[b, i, j])
                for j in range(Q):
                    out[b, i, j] = table[np.int64(min(np.rint((m - logits[b, i, j]) * scale), span))]

    @_jit
    def round_div_rows(num, den, out):
        """out[b, i, c] = round(num[b, i, c] / den[b, i]), halves up, exactly: floor((2n + d) / 2d) from
        the float quotient, corrected in exact float64 integer arithmetic (|2n + d| < 2^48, 2d < 2^28)."""
        B, P, C = num.shape
        for b in range(B):
            for i in range(P):
                d2 = 2.0 * den[b, i]
                for c in range(C):
                    n2 = 2.0 * num[b, i, c] + den[b, i]
                    q = np.floor(n2 / d2)
                    if q * d2 > n2:
                        q -= 1.0
                    elif (q + 1.0) * d2 <= n2:
                        q += 1.0
                    out[b, i, c] = q
