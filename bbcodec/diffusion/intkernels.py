"""Fused CPU loops for the integer network's per-element work (numba), where numba is installed.

`intnet` runs each layer as a few torch operations, and on the CPU most of its time outside the int8
matrix products went to the many passes over memory between them. These loops do the same work in one
pass each: the same integer arithmetic, so the same integers (the tests run both paths on the same
inputs and compare). Every operation here is on integers, or on float64 values that are integers times
powers of two far below 2^53, where no result is ever rounded; fused multiply-adds, vectorisation and
any order of evaluation therefore give the same bits.

- `split`: activations (integer-valued float64 in [-2^20, 2^20)) to the three int8 parts of
  `intnet._chunks`, into a buffer that already holds the parts of 0 in its padding.
- `finish`: the int32 sums of the parts' products (one array, or three whose rows are shifted by
  whole image rows: `intnet._shifted_matmul`), joined as y0 2^14 + y1 2^7 + y2, scaled by each output
  channel's power of two, plus a per-image, per-channel constant (bias, the parts' offsets, the
  time embedding, all at the output's scale), rounded half to even and clamped.
- `group_norm`: `intnet.IntOps.norm` with its SiLU table lookup, statistics in int64.
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
    def split_rows(x, out):
        """The parts laid out for `intnet._shifted_matmul` at once: out int8 [3, B, H + 2, W, 3, C']
        holds at (part, b, i, j, dx) the parts of x's zero-padded (by 1) pixel (i, j + dx)."""
        B, H, W, C = x.shape
        Cp = out.shape[5]
        for b in range(B):
            for i in range(H + 2):
                for j in range(W):
                    for dx in range(3):
                        jj = j + dx - 1
                        if 1 <= i <= H and 0 <= jj < W:
                            for c in range(C):
                                v = np.int32(x[b, i - 1, jj, c])
                                out[0, b, i, j, dx, c] = (v >> 14) - 64
                                out[1, b, i, j, dx, c] = ((v >> 7) & 127) - 128
                                out[2, b, i, j, dx, c] = (v & 127) - 128
                            c0 = C
                        else:
                            c0 = 0
                        for c in range(c0, Cp):  # padding: the parts of 0
                            out[0, b, i, j, dx, c] = -64
                            out[1, b, i, j, dx, c] = -128
                            out[2, b, i, j, dx, c] = -128

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
    def _joined(y0, y1, y2, shifted, part_rows, r, n):
        """The sums of one output (row r, channel n) joined over the three parts (part c at rows
        r + c part_rows): y0 2^14 + y1 2^7 + y2, each part's sum over y0, y1 and y2 where `shifted`
        (`intnet._shifted_matmul`'s three row offsets), else y0's alone."""
        r1, r2 = r + part_rows, r + 2 * part_rows
        s0, s1, s2 = np.int64(y0[r, n]), np.int64(y0[r1, n]), np.int64(y0[r2, n])
        if shifted:
            s0 += np.int64(y1[r, n]) + np.int64(y2[r, n])
            s1 += np.int64(y1[r1, n]) + np.int64(y2[r1, n])
            s2 += np.int64(y1[r2, n]) + np.int64(y2[r2, n])
        return np.float64(s0 * 16384 + s1 * 128 + s2)  # |sum| < 2^50: exact

    @_jit
    def finish(y0, y1, y2, shifted, part_rows, image_rows, row_stride, scale, const, limit, out):
        """out[b, i, j, n] = clamp(rint(acc * scale[n] + const[b, n]), -limit, limit - 1), where acc is
        `_joined` at row r = b image_rows + i row_stride + j."""
        B, Ho, Wo, N = out.shape
        for b in range(B):
            for i in range(Ho):
                for j in range(Wo):
                    r = b * image_rows + i * row_stride + j
                    for n in range(N):
                        v = np.rint(_joined(y0, y1, y2, shifted, part_rows, r, n) * scale[n] + const[b, n])
                        if v < -limit:
                            v = -limit
                        elif v > limit - 1:
                            v = limit - 1
                        out[b, i, j, n] = v

    @_jit
    def accumulate(y0, y1, y2, shifted, part_rows, image_rows, row_stride, scale, acc):
        """acc[b, i, j, n] += `_joined` times scale[n] (as `finish`, for a convolution with several
        input parts: no rounding until the last)."""
        B, Ho, Wo, N = acc.shape
        for b in range(B):
            for i in range(Ho):
                for j in range(Wo):
                    r = b * image_rows + i * row_stride + j
                    for n in range(N):
                        acc[b, i, j, n] += _joined(y0, y1, y2, shifted, part_rows, r, n) * scale[n]

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
    def group_norm(x, groups, g, shift, eps4, mul_limit, mul_exp_scale, beta, silu, table, limit, out):
        """x, out: [B, P, C] float64 integers. See `intnet.IntOps.norm` for the arithmetic; with
        `silu`, beta holds the table's index offset (beta + 2^17) and out the table's values."""
        B, P, C = x.shape
        cg = C // groups
        n = np.int64(P * cg)
        mul = np.empty(C, np.float64)
        mean = np.empty(C, np.float64)
        acc = np.empty(C, np.int64)
        acc2 = np.empty(C, np.int64)
        ssq = np.empty(groups, np.int64)
        idx = np.empty(C, np.int64)
        top = np.float64(table.shape[0] - 1)
        for b in range(B):
            acc[:] = 0
            acc2[:] = 0
            for q in range(P):
                for c in range(C):
                    v = np.int64(x[b, q, c])
                    acc[c] += v
                    acc2[c] += v * v  # |v| < 2^20, P < 2^20: below 2^60
            for gi in range(groups):
                s = np.int64(0)
                s2 = np.int64(0)
                for c in range(gi * cg, (gi + 1) * cg):
                    s += acc[c]
                    s2 += acc2[c]
                m = (2 * s + n) // (2 * n)  # round(s / n), halves up
                # sum (v - m)^2 = s2 - 2 m s + n m^2, every term below 2^62: exact in int64
                ssq[gi] = s2 - 2 * m * s + n * m * m
                for c in range(gi * cg, (gi + 1) * cg):
                    mean[c] = np.float64(m)
            for gi in range(groups):
                r = _isqrt((ssq[gi] // n + eps4[0]) * eps4[1])
                for c in range(gi * cg, (gi + 1) * cg):
                    num = g[c] << shift
                    k = (2 * num + r) // (2 * r)
                    if k < -mul_limit + 1:
                        k = -mul_limit + 1
                    elif k > mul_limit - 1:
                        k = mul_limit - 1
                    mul[c] = np.float64(k) * mul_exp_scale
            if silu:  # the indices of a row first, then the lookups: both loops vectorise
                for q in range(P):
                    for c in range(C):
                        y = np.rint((x[b, q, c] - mean[c]) * mul[c]) + beta[c]
                        idx[c] = np.int64(min(max(y, 0.0), top))
                    for c in range(C):
                        out[b, q, c] = table[idx[c]]
            else:
                for q in range(P):
                    for c in range(C):
                        y = np.rint((x[b, q, c] - mean[c]) * mul[c]) + beta[c]
                        out[b, q, c] = min(max(y, -limit), limit - 1)

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
