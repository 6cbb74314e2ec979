"""The eps network in integer arithmetic: the same outputs, to the bit, on any machine.

A float network's last bits depend on the CPU's vector width, the BLAS and oneDNN kernels, the
thread count, the batch, the torch version and CPU against CUDA (bench/studies/
2026-12-04-arithmetic-audit), so a file it codes decodes only where it was made. `IntUNet` is the
same U-Net (`net.UNet`) with every value an integer times a power of two fixed per tensor, and every
operation defined on the integers:

- Activations are integers in [-2^20, 2^20) at a per-tensor exponent (value = n 2^-e), chosen from
  calibration so that the largest value seen is at most 2^18; every result is rounded (half to even)
  and clamped back into range, so the bounds below hold for any input, even a forged file's.
- Convolutions and linear layers: integer weights in [-128, 128) at a per-output-channel exponent,
  integer biases. A sum of K products is at most sum|w| 2^20 per output channel, which `_Conv`
  checks is below 2^50 for every part of every layer (with its rescaling) when a model is prepared,
  so float64 sums are exact in any order, with or without fused multiply-adds, in any blocking or
  thread split.
- The fast path (`torch._int_mm`, int8 x int8 -> int32) splits each activation into three 7-bit
  parts, each offset into [-128, 0), and adds the offsets' sums back exactly: every product is a
  product of integers and every int32 sum is below 2^31 (checked). Kernels without VNNI add pairs of
  u8 x s8 products in saturating int16 after shifting one operand by +128; with the activation part
  in [-128, 0) that operand is below 128, and 2 * 127 * 128 < 2^15, so nothing saturates. Which path
  runs is not part of the result: both give the same integers (tested), and `matmul_backend` uses the
  fast one only where it sums worst-case operands of the real ranges exactly.
- Without the fused loops below, 3 x 3 convolutions on that path skip im2col's 9-fold copy
  (`_shifted_matmul`): each padded row holds its 3 column neighbours, and output row (y, x) adds the
  products of rows (y + dy, x) with kernel row dy, three int8 products over row blocks shifted by dy
  image rows. The products are im2col's, summed in another order; every partial sum obeys the same
  bound.
- On the CPU, where numba is installed, the per-element work around the products (splitting into
  parts and writing im2col rows, joining the parts' sums with bias and time term and rounding, group
  norm with SiLU, the attention weights and quotients, skip additions) runs as fused loops
  (`intkernels`) on int32 activations: the same integer arithmetic, so the same integers (tested
  against the torch path). CPU calls run in pieces of at most CPU_PIECE_PIXELS pixels.
- Rescaling by powers of two (built with ldexp) is exact; rounding to an integer is exact.
- Group normalisation: sums of integers (exact), the mean by integer division, the variance in
  int64 (|d| < 2^21 and at most 2^20 values: checked), the standard deviation by an exact integer
  square root, and each channel's multiplier by integer division (below 2^31), so d * multiplier
  < 2^52 and normalised values are integer functions of the input.
- SiLU, the softmax's exponential and all sines and cosines are table lookups or `exact`'s
  functions (built from IEEE-754 basic operations only, so the same bits everywhere); the tables are
  built from `exact` when a model is loaded. The one other constant, ln(10000), is a literal.
- Attention: integer logits (exact sums below 2^40 C, C < 2^12 checked), exponentials from a table
  of round(2^20 e^(-i / 2^12)), and each output as the rounded integer quotient of two exact integer
  sums (below 2^40 HW, HW < 2^12 checked).

The result is the integer tensor of eps_hat at the output's exponent: a pure function of the model's
integers and the (exactly rounded) inputs, whatever device, thread count, batch or library version
computes it. Decoders may therefore split network calls freely (`EpsFn.call_tiles`).

`convert` builds one from a trained float VDM (post-training quantisation with calibration on
training images). Nothing here is trained.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import exact, intkernels

ARCH = "unet-int"
ACT_BITS = 20
ACT_LIMIT = 2 ** ACT_BITS       # activations: integers in [-2^20, 2^20)
ACT_TARGET = 2 ** 18            # calibration puts a tensor's largest value at or below this
WEIGHT_LIMIT = 2 ** 7           # weights: integers in [-2^7, 2^7)
NORM_EXP = 12                   # SiLU's input: multiples of 2^-12 ...
NORM_LIMIT = 2 ** 17            # ... in [-32, 32)
Z_EXP = 22                      # the latent, rounded to a multiple of 2^-22 ...
Z_LIMIT = 2 ** 26               # ... in [-16, 16)
Z_HI_EXP = 10                   # its coarse part (a multiple of 2^-10) and the rest feed the first conv
FEATURE_EXP = 13                # Fourier features and the time sinusoids: multiples of 2^-13
LOGIT_EXP = 12                  # attention logits below the row's largest, in steps of 2^-12 ...
LOGIT_SPAN = 2 ** 17            # ... cut at 32 (e^-32 < 1.3e-14)
PROB_EXP = 20                   # unnormalised attention weights round(2^20 e^-d)
STD_EXTRA_BITS = 8              # group norm: the std is taken to 2^-8 of an input unit
MUL_EXP = 24                    # group norm: fraction bits of each channel's multiplier
MUL_LIMIT = 2 ** 31             # ... whose size is capped so that d * multiplier < 2^52
EXACT_LIMIT = 2 ** 52           # every float64 sum stays below this (checked at build)
_NO_TABLE = np.zeros(1, np.int32)  # group norm without SiLU: the fused loops take a table they do not read
FUSED_ACT = torch.int32         # activations between the fused loops (|n| < 2^20): half float64's bytes
EMB_CACHE_ROWS = 4096           # time embeddings kept per network (one per distinct gamma)
CPU_PIECE_PIXELS = 8 * 32 * 32  # pixels per network call on the CPU (larger batches are split)
GN_EPS = 1e-5


# ---- the network's structure, shared by the float mirror and the integer network -------------

def layout(cfg: dict) -> dict:
    """The UNet's blocks in order, named as in the float module's state dict (`net.UNet`)."""
    channels, nrb, attn = list(cfg["channels"]), int(cfg["num_res_blocks"]), list(cfg["attn_levels"])
    down, up = [], []
    ch, skips, i = channels[0], [channels[0]], 0
    for lvl, c in enumerate(channels):
        for _ in range(nrb):
            down.append(("res", f"down.{i}.0", ch != c, f"down.{i}.1" if lvl in attn else None))
            ch = c
            skips.append(ch)
            i += 1
        if lvl != len(channels) - 1:
            down.append(("down", f"down.{i}.0", False, None))
            skips.append(ch)
            i += 1
    i = 0
    for lvl, c in reversed(list(enumerate(channels))):
        for _ in range(nrb + 1):
            cin = ch + skips.pop()
            up.append(("res", f"up.{i}.0", cin != c, f"up.{i}.1" if lvl in attn else None))
            ch = c
            i += 1
        if lvl != 0:
            up.append(("up", f"up.{i}.1", False, None))
            i += 1
    return {"down": down, "up": up}


def _resblock(ops, name, x, emb, skip):
    h = ops.conv(f"{name}.c1", ops.norm(f"{name}.n1", x, silu=True), emb=(emb, f"{name}.t"))
    h = ops.conv(f"{name}.c2", ops.norm(f"{name}.n2", h, silu=True))
    s = ops.conv(f"{name}.skip", x) if skip else x
    return ops.add(f"{name}.sum", s, h)


def run_unet(ops, lay: dict, z, gamma):
    """UNet.forward written against an arithmetic (`FloatOps` or `IntOps`)."""
    emb = ops.time(gamma)
    h = ops.conv("inp", ops.features(z))
    hs = [h]
    for kind, name, skip, att in lay["down"]:
        if kind == "res":
            h = _resblock(ops, name, h, emb, skip)
            if att:
                h = ops.attention(att, h)
        else:
            h = ops.conv(name, h, stride=2)
        hs.append(h)
    h = _resblock(ops, "mid.0", h, emb, False)
    h = ops.attention("mid.1", h)
    h = _resblock(ops, "mid.2", h, emb, False)
    for kind, name, skip, att in lay["up"]:
        if kind == "res":
            h = _resblock(ops, name, ops.cat(f"{name}.in", h, hs.pop()), emb, skip)
            if att:
                h = ops.attention(att, h)
        else:
            h = ops.conv(name, ops.upsample(h))
    return ops.output(ops.conv("out", ops.norm("out_norm", h, silu=True)))


# ---- the float mirror: calibration -------------------------------------------------------------

class FloatOps:
    """The float network through `run_unet` (NCHW), recording each named tensor's largest |value|."""

    def __init__(self, net):
        self.p = dict(net.named_parameters())
        self.net = net
        self.maxabs: dict[str, float] = {}

    def _rec(self, name, x):
        m = float(x.detach().abs().max())
        self.maxabs[name] = max(self.maxabs.get(name, 0.0), m)
        return x

    def time(self, gamma):
        t = (gamma.double() + 15.0) * 40.0
        half = self.net.temb_dim // 2
        freqs = torch.from_numpy(time_freqs(half))
        args = t[:, None] * freqs[None]
        emb = torch.cat([torch.sin(args), torch.cos(args)], 1).float()
        h = self._rec("temb.0", F.linear(emb, self.p["temb.0.weight"], self.p["temb.0.bias"]))
        h = self._rec("temb.act", F.silu(h))
        return self._rec("temb.2", F.linear(h, self.p["temb.2.weight"], self.p["temb.2.bias"]))

    def features(self, z):
        feats = [z]
        for n in self.net.fourier_n:
            feats += [torch.sin(z * (2 ** n * math.pi)), torch.cos(z * (2 ** n * math.pi))]
        return torch.cat(feats, 1)

    def conv(self, name, x, stride=1, emb=None):
        w, b = self.p[f"{name}.weight"], self.p[f"{name}.bias"]
        h = F.conv2d(x, w, b, stride=stride, padding=w.shape[-1] // 2)
        if emb is not None:
            e, tname = emb
            h = h + F.linear(e, self.p[f"{tname}.weight"], self.p[f"{tname}.bias"])[:, :, None, None]
        return self._rec(name, h)

    def norm(self, name, x, silu):
        g = 8 if x.shape[1] % 8 == 0 else 1
        y = F.group_norm(x, g, self.p[f"{name}.weight"], self.p[f"{name}.bias"], eps=GN_EPS)
        self._rec(f"{name}.norm", y)
        return self._rec(name, F.silu(y)) if silu else self._rec(name, y)

    def add(self, name, a, b):
        return self._rec(name, a + b)

    def cat(self, name, a, b):
        return self._rec(name, torch.cat([a, b], 1))

    def upsample(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def attention(self, name, x):
        b, c, hh, ww = x.shape
        a = self.norm(f"{name}.norm", x, silu=False)
        w, bias = self.p[f"{name}.qkv.weight"], self.p[f"{name}.qkv.bias"]
        qkv = F.conv2d(a, w, bias).reshape(b, 3, c, hh * ww)
        q, k, v = (self._rec(f"{name}.{s}", qkv[:, i]) for i, s in enumerate("qkv"))
        att = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / math.sqrt(c), dim=-1)
        mix = torch.einsum("bij,bcj->bci", att, v).reshape(b, c, hh, ww)
        o = self.conv(f"{name}.out", mix)
        return self.add(f"{name}.sum", x, o)

    def output(self, x):
        return x


LN_10000 = float.fromhex("0x1.26bb1bbb55516p+3")  # ln(10000), correctly rounded: not a libm call


def time_freqs(half: int) -> np.ndarray:
    """The time embedding's frequencies 10000^(-k/half), float64, the same bits everywhere."""
    return exact.exp(-LN_10000 * np.arange(half, dtype=np.float64) / half)


# ---- conversion ------------------------------------------------------------------------------

def _act_exp(maxabs: float) -> int:
    """The largest e with maxabs * 2^e <= ACT_TARGET."""
    if maxabs <= 0:
        return 0
    return int(math.floor(math.log2(ACT_TARGET / maxabs)))


def _quant_weights(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per output channel (dim 0): integers in [-WEIGHT_LIMIT, WEIGHT_LIMIT) and the exponent ew
    (w ~ n 2^-ew)."""
    w = w.detach().double()
    m = w.reshape(w.shape[0], -1).abs().amax(1).clamp_min(1e-30)
    ew = torch.floor(torch.log2((WEIGHT_LIMIT - 1) / m)).to(torch.int64)
    n = torch.round(w * pow2(ew).reshape(-1, *[1] * (w.dim() - 1)))
    return n.clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT - 1).to(torch.int8 if WEIGHT_LIMIT <= 128 else torch.int16), ew


class _QuantOps:
    """`run_unet` over exponents: each operation quantises its layer's parameters for the exponent
    of its input (the exponents of its outputs from the calibration maxima) and returns its output's
    exponent; the integer state dict fills in the order the network runs."""

    def __init__(self, net, config: dict, maxabs: dict):
        self.net, self.mx = net, maxabs
        self.mods = dict(net.named_modules())
        self.in_channels = config.get("in_channels", 3)
        self.sd: dict[str, torch.Tensor] = {}

    def _exp(self, name: str, e: int) -> int:
        self.sd[f"{name}.e"] = torch.tensor(int(e), dtype=torch.int64)
        return int(e)

    def _linear(self, name, w, b, e_in, e_out) -> int:
        """A conv/linear layer quantised for an input at exponent e_in (an int, or a list of
        (exponent, channel slice) parts, summed at each output channel's largest exponent)."""
        parts = e_in if isinstance(e_in, list) else [(e_in, slice(None))]
        ews = []
        for j, (e, sl) in enumerate(parts):
            n, ew = _quant_weights(w[:, sl])
            self.sd[f"{name}.p{j}.w"] = n
            self.sd[f"{name}.p{j}.ew"] = ew
            ews.append(ew + e)
        acc_exp = torch.stack(ews).amax(0)
        self.sd[f"{name}.acc"] = acc_exp
        self.sd[f"{name}.b"] = torch.round(b.detach().double() * pow2(acc_exp)).to(torch.int64)
        return self._exp(name, e_out)

    def time(self, gamma) -> int:
        net = self.net
        self._linear("temb.0", net.temb[0].weight, net.temb[0].bias, FEATURE_EXP, NORM_EXP)
        e_act = self._exp("temb.act", _act_exp(self.mx["temb.act"]))
        return self._linear("temb.2", net.temb[2].weight, net.temb[2].bias, e_act, _act_exp(self.mx["temb.2"]))

    def features(self, z) -> list:
        """The first conv's input parts: z's coarse part, z's fine part (the same weights), the
        Fourier features."""
        c, nf = self.in_channels, len(self.net.fourier_n)
        return [(Z_HI_EXP, slice(0, c)), (Z_EXP, slice(c, 2 * c)), (FEATURE_EXP, slice(2 * c, (2 + 2 * nf) * c))]

    def conv(self, name, x, stride=1, emb=None) -> int:
        m = self.mods[name]
        w = m.weight.detach()
        if isinstance(x, list):  # the input parts: z's weights twice, then the features'
            c = self.in_channels
            w = torch.cat([w[:, :c], w[:, :c], w[:, c:]], 1)
        e = self._linear(name, w, m.bias, x, _act_exp(self.mx[name]))
        if emb is not None:
            e_emb, tname = emb
            t = self.mods[tname]
            tn, tew = _quant_weights(t.weight)
            self.sd[f"{tname}.p0.w"], self.sd[f"{tname}.p0.ew"] = tn, tew
            self.sd[f"{tname}.acc"] = tew + e_emb
            self.sd[f"{tname}.b"] = torch.round(t.bias.detach().double() * pow2(tew + e_emb)).to(torch.int64)
        return e

    def norm(self, name, x: int, silu: bool) -> int:
        m = self.mods[name]
        g = m.weight.detach().double()
        eg = int(math.floor(math.log2((2 ** 15 - 1) / max(float(g.abs().max()), 1e-30))))
        self.sd[f"{name}.g"] = torch.round(g * _p2(eg)).to(torch.int64)
        self.sd[f"{name}.eg"] = torch.tensor(eg, dtype=torch.int64)
        e_y = NORM_EXP if silu else _act_exp(self.mx[name])
        self.sd[f"{name}.beta"] = torch.round(m.bias.detach().double() * _p2(e_y)).to(torch.int64)
        self.sd[f"{name}.eps"] = torch.tensor(max(1, round(GN_EPS * 4.0 ** x)), dtype=torch.int64)
        self.sd[f"{name}.groups"] = torch.tensor(m.num_groups, dtype=torch.int64)
        self.sd[f"{name}.ey"] = torch.tensor(e_y, dtype=torch.int64)
        return self._exp(name, _act_exp(self.mx[name]) if silu else e_y)

    def add(self, name, a: int, b: int) -> int:
        return self._exp(name, _act_exp(self.mx[name]))

    cat = add

    def upsample(self, x: int) -> int:
        return x

    def attention(self, name, x: int) -> int:
        a = self.norm(f"{name}.norm", x, False)
        m = self.mods[f"{name}.qkv"]
        c = m.weight.shape[1]
        for i, s in enumerate("qkv"):
            w = m.weight[i * c:(i + 1) * c].detach().double()
            b = m.bias[i * c:(i + 1) * c].detach().double()
            e_out = _act_exp(self.mx[f"{name}.{s}"])
            if s == "q":  # the logits' 1/sqrt(c), folded into q
                w, b = w / math.sqrt(c), b / math.sqrt(c)
                e_out = _act_exp(self.mx[f"{name}.q"] / math.sqrt(c))
            e_v = self._linear(f"{name}.{s}", w, b, a, e_out)
        out = self.mods[f"{name}.out"]
        self._linear(f"{name}.out", out.weight, out.bias, e_v, _act_exp(self.mx[f"{name}.out"]))
        return self.add(f"{name}.sum", x, None)

    def output(self, x: int) -> int:
        return x


@torch.no_grad()
def convert(vdm, calib_z: torch.Tensor, calib_gamma: torch.Tensor, batch: int = 32) -> dict:
    """The integer state dict of a float VDM: weights and exponents, calibrated on (z, gamma) pairs
    (float [N, C, H, W], [N]) drawn from training images. Returns {name: tensor} for `IntUNet`."""
    lay = layout(vdm.config)
    calib = FloatOps(vdm.net)
    for lo in range(0, len(calib_z), batch):
        run_unet(calib, lay, calib_z[lo:lo + batch].float(), calib_gamma[lo:lo + batch].float())
    quant = _QuantOps(vdm.net, vdm.config, calib.maxabs)
    run_unet(quant, lay, None, None)
    return quant.sd


# ---- the integer network -----------------------------------------------------------------------

def _p2(k: int) -> float:
    """2.0^k for an integer k, exactly (ldexp: no pow routine)."""
    return math.ldexp(1.0, int(k))


def pow2(k) -> torch.Tensor:
    """2^k (float64) for integer k (a tensor or int), exactly: ldexp, not a pow routine."""
    ks = k.reshape(-1).tolist() if isinstance(k, torch.Tensor) else [int(k)]
    out = torch.tensor([math.ldexp(1.0, int(v)) for v in ks], dtype=torch.float64)
    return out.reshape(k.shape) if isinstance(k, torch.Tensor) else out[0]


def _lookup(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """table[idx] for integer-valued float idx within the table (index_select on int32: 4x faster
    than advanced indexing on the CPU)."""
    return table.index_select(0, idx.reshape(-1).to(torch.int32)).reshape(idx.shape)


def _round_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """round(a / b) for int64 a and positive int64 b (halves up), exactly."""
    return torch.div(2 * a + b, 2 * b, rounding_mode="floor")


def isqrt(n: torch.Tensor) -> torch.Tensor:
    """floor(sqrt(n)) of int64 n >= 0 (n < 2^62), exactly: a float estimate corrected in integers."""
    r = torch.sqrt(n.double()).to(torch.int64)
    for _ in range(2):
        r = r - (r * r > n).to(torch.int64)
        r = r + ((r + 1) * (r + 1) <= n).to(torch.int64)
    return r


_BACKEND: dict = {}


def matmul_backend(device: str) -> str:
    """'int8' where `torch._int_mm` gives exact int32 sums here on worst-case operands of the real
    ranges (activation parts in [-128, 0), weights in [-128, 128)) and shapes, else 'float64'.
    Either gives the same integers; this only picks the faster that works."""
    if device in _BACKEND:
        return _BACKEND[device]
    choice = "float64"
    if device == "cpu" and hasattr(torch, "_int_mm"):
        try:
            g = torch.Generator().manual_seed(0)
            ok = True
            for m, k, n in ((3, 8, 8), (32, 72, 16), (96, 2304, 64), (3072, 288, 32)):
                a = torch.randint(-128, 0, (m, k), dtype=torch.int8, generator=g)
                b = torch.randint(-128, 128, (k, n), dtype=torch.int8, generator=g)
                a[: m // 3 + 1] = -128
                a[m // 3 + 1: 2 * m // 3 + 1] = -1
                b[:, : n // 4 + 1] = -128
                b[:, n // 4 + 1: n // 2 + 1] = 127
                ok &= torch.equal(torch._int_mm(a, b).double(), a.double() @ b.double())
            choice = "int8" if ok else "float64"
        except Exception:  # noqa: BLE001 (no int8 kernel here: the float64 path is as exact)
            choice = "float64"
    _BACKEND[device] = choice
    return choice


@dataclass
class Q:
    """An integer-valued tensor v (NHWC; float64, or int32 between the fused loops) and its exponent:
    the values are v * 2^-e. In the fused loops a group norm's output is left unapplied (v None,
    `norm` its input and statistics) until its consumer, a convolution, applies it straight into its
    input parts (`IntOps._parts_from`)."""
    v: torch.Tensor | None
    e: int
    norm: tuple | None = None

    @property
    def shape(self) -> torch.Size:
        """The values' shape (a pending group norm's input has it)."""
        return (self.v if self.v is not None else self.norm[0]).shape


class _Conv:
    """A conv or linear layer's integers prepared for both matmul paths, on one device."""

    def __init__(self, sd: dict, name: str, device: str, backend: str):
        self.name, self.device, self.backend = name, device, backend
        self.parts = []
        j = 0
        while f"{name}.p{j}.w" in sd:
            w = sd[f"{name}.p{j}.w"].to(torch.int64)
            k = w.shape[-1] if w.dim() == 4 else 1
            mat = (w.permute(2, 3, 1, 0).reshape(-1, w.shape[0]) if w.dim() == 4 else w.t()).contiguous()  # [K, N]
            if int(mat.max()) >= WEIGHT_LIMIT or int(mat.min()) < -WEIGHT_LIMIT:
                raise ValueError(f"{name}: weights outside [-{WEIGHT_LIMIT}, {WEIGHT_LIMIT})")
            l1 = mat.abs().sum(0)  # per output channel
            if int(l1.max()) * 128 >= 2 ** 31:
                raise ValueError(f"{name}: int8 part sums could exceed int32")
            prep = {"k": k, "w64": mat.double().to(device), "ew": sd[f"{name}.p{j}.ew"], "l1": l1.double()}
            if backend == "int8":
                prep["w8"] = F.pad(mat.to(torch.int8), (0, 0, 0, -mat.shape[0] % 8)).to(device)  # K to a multiple of 8
                # the chunks are offset by -64, -128, -128 (see _chunks): their sums come back here
                prep["offset"] = (mat.sum(0) * (64 * 2 ** 14 + 128 * 2 ** 7 + 128)).double().to(device)
                if k == 3:  # `_shifted_matmul`: one [3 C, N] block of the kernel per row offset dy, with
                    # the channels padded to a multiple of 8
                    c = mat.shape[0] // 9
                    wk = F.pad(mat.reshape(3, 3, c, -1), (0, 0, 0, -c % 8)).to(torch.int8)
                    prep["w3"] = [b.reshape(-1, b.shape[-1]).contiguous().to(device) for b in wk]
            self.parts.append(prep)
            j += 1
        self.acc = sd[f"{name}.acc"]
        b = sd[f"{name}.b"]
        if int(b.abs().max()) >= EXACT_LIMIT // 16:
            raise ValueError(f"{name}: bias too large for exact sums")
        self.bias = b.double().to(device)
        self.e = int(sd[f"{name}.e"]) if f"{name}.e" in sd else None
        if self.e is not None:
            self.out_scale = pow2(self.e - self.acc).to(device)
            self.bias_out = self.bias * self.out_scale
        self._in_scale: dict = {}

    def tscale(self, T: "_Conv") -> torch.Tensor:
        """2^(acc - T.acc): a time-embedding layer's sums brought to this layer's accumulator."""
        if "t" not in self._in_scale:
            sc = pow2(self.acc - T.acc)
            bound = (T.parts[0]["l1"] * ACT_LIMIT + T.bias.abs().cpu()) * sc
            if float(bound.max()) >= 2.0 ** 50:
                raise ValueError(f"{self.name}: time-embedding sums too large for exact arithmetic")
            self._in_scale["t"] = sc.to(self.device)
        return self._in_scale["t"]

    def in_scale(self, part: int, e_in: int):
        """2^(acc - e_in - ew) per output channel (None where all are 1): part j's sums at the
        common accumulator exponent."""
        key = (part, e_in)
        if key not in self._in_scale:
            sc = pow2(self.acc - e_in - self.parts[part]["ew"])
            if float((self.parts[part]["l1"] * ACT_LIMIT * sc).max()) >= 2.0 ** 50:
                raise ValueError(f"{self.name}: sums too large for exact arithmetic")
            self._in_scale[key] = None if bool((sc == 1).all()) else sc.to(self.device)
        return self._in_scale[key]

    def fused_scales(self, exps: tuple) -> tuple[list, torch.Tensor]:
        """For inputs at exponents `exps` (`IntOps._conv_fused`): each part's scale 2^(e - e_j - ew_j)
        per output channel (numpy), and bias_out plus the parts' offsets at those scales."""
        key = ("fused", exps)
        if key not in self._in_scale:
            scales, const = [], self.bias_out.clone()
            for j, e in enumerate(exps):
                sc = self.in_scale(j, e)
                sc = self.out_scale if sc is None else sc * self.out_scale
                const += self.parts[j]["offset"] * sc
                scales.append(sc.cpu().numpy())
            self._in_scale[key] = (scales, const)
        return self._in_scale[key]

    def sums(self, parts: list, stride: int = 1) -> torch.Tensor:
        """The exact sums (float64 [M, N]) at the accumulator exponent, before the bias."""
        acc = None
        for j, q in enumerate(parts):
            s = _exact_matmul(q.v, self.parts[j], stride, self.backend)
            sc = self.in_scale(j, q.e)
            if sc is not None:
                s = s * sc
            acc = s if acc is None else acc + s
        return acc


def _im2col(x: torch.Tensor, k: int, stride: int, pad: bool = True) -> torch.Tensor:
    """[..., H, W, C] -> [prod(...) * Ho * Wo, k * k * C] in (dy, dx, c) order, zero padding k // 2
    (or, with pad=False, x already padded)."""
    if k == 1 and stride == 1:
        return x.reshape(-1, x.shape[-1])
    if x.dtype == torch.int8 and x.shape[-1] % 8 == 0 and x.is_contiguous():
        # the same bytes moved as int64, 8 channels at a time (torch's strided int8 copy is slow)
        return _im2col(x.view(torch.int64), k, stride, pad).view(torch.int8)
    p = k // 2
    H, W, C = x.shape[-3:]
    xp = x.reshape(-1, H, W, C)
    if pad:
        xp = F.pad(xp, (0, 0, p, p, p, p))
    else:
        H, W = H - 2 * p, W - 2 * p
    Ho, Wo = (H + 2 * p - k) // stride + 1, (W + 2 * p - k) // stride + 1
    n, s = xp.shape[0], xp.stride()
    # in two copies, each with long contiguous runs (one 6-D strided copy is several times slower):
    # the k column neighbours side by side, then the k row neighbours; K stays in (dy, dx, c) order
    cols = xp.as_strided((n, xp.shape[1], Wo, k, C), (s[0], s[1], stride * s[2], s[2], s[3])).reshape(n, xp.shape[1], Wo, k * C)
    t = cols.stride()
    v = cols.as_strided((n, Ho, Wo, k, k * C), (t[0], stride * t[1], t[2], t[1], t[3]))
    return v.reshape(-1, k * k * C)


def _chunks(x: torch.Tensor, p: int, channels: int | None = None) -> torch.Tensor:
    """Integer x in [-2^20, 2^20) (float64 [B, H, W, C], or any shape where p = 0) as three int8 parts
    [3, B, H + 2p, W + 2p, C], zero-padded by p: x = (a + 64) 2^14 + (b + 128) 2^7 + (c + 128) with a, b, c in [-128, 0), int8
    operands whose u8 offset forms (+128) stay below 128, so no kernel's int16 pair sums can saturate.
    The padding holds the parts of 0; with `channels` > C (and p > 0), the extra channels are padding
    too."""
    xi = x.to(torch.int32)
    if p:
        B, H, W, C = xi.shape
        out = torch.zeros((3, B, H + 2 * p, W + 2 * p, channels or C), dtype=torch.int8, device=x.device)
        inner = out[:, :, p:p + H, p:p + W, :C]
    else:
        out = inner = torch.empty((3, *xi.shape), dtype=torch.int8, device=x.device)
    inner[0].copy_(xi >> 14)
    inner[1].copy_((xi >> 7) & 127)
    inner[2].copy_(xi & 127)
    out[0].sub_(64)
    out[1:].sub_(128)
    return out


def _exact_matmul(x: torch.Tensor, prep: dict, stride: int, backend: str) -> torch.Tensor:
    """sum_k x[.., k] w[k, n] exactly, as float64 [M, N], for integer x in [-2^20, 2^20)."""
    k = prep["k"]
    if backend != "int8":
        return _im2col(x, k, stride) @ prep["w64"]
    if k == 3 and stride == 1:
        return _shifted_matmul(x, prep)
    a = _im2col(_chunks(x, k // 2), k, stride, pad=False)
    if a.shape[1] % 8:
        a = F.pad(a, (0, -a.shape[1] % 8), value=0)
    y = torch._int_mm(a, prep["w8"]).double()
    m = y.shape[0] // 3
    acc = torch.add(torch.add(y[2 * m:], y[m:2 * m], alpha=_p2(7)), y[:m], alpha=_p2(14))
    return acc.add_(prep["offset"])


def _shifted_matmul(x: torch.Tensor, prep: dict) -> torch.Tensor:
    """The int8 path of a 3 x 3, stride 1 convolution without the 9-fold copy of im2col: the padded
    parts' rows hold their 3 column neighbours side by side, and output row (y, x) sums, for each dy,
    row (y + dy, x) times that row of the kernel, a contiguous block of rows shifted by dy W. The
    products and sums are those of `_im2col`'s path, in another order: every int32 partial sum is
    within the same bound, so the integers are the same."""
    B, H, W, _ = x.shape
    C = prep["w3"][0].shape[0] // 3  # the channels, padded to a multiple of 8 (zero weights)
    ch = _chunks(x, 1, C)  # [3, B, H + 2, W + 2, C]
    n = 3 * B * (H + 2)
    src = ch.view(n, W + 2, C).view(torch.int64)  # the bytes moved as int64, 8 channels at a time
    s = src.stride()
    cols = src.as_strided((n, W, 3, src.shape[-1]), (s[0], s[1], s[1], s[2])).reshape(n * W, -1)
    cols = cols.view(torch.int8)
    rows = n * W - 2 * W  # every output row (y < H) and the padding rows between them
    w3 = prep["w3"]
    y = torch._int_mm(cols[:rows], w3[0])
    y += torch._int_mm(cols[W:W + rows], w3[1])
    y += torch._int_mm(cols[2 * W:], w3[2])
    N = y.shape[1]
    yv = y.as_strided((3, B, H, W, N), (B * (H + 2) * W * N, (H + 2) * W * N, W * N, N, 1))  # the rows y < H
    acc = torch.add(yv[2].double(), yv[1], alpha=_p2(7))
    acc.add_(yv[0], alpha=_p2(14))
    return acc.reshape(B * H * W, -1).add_(prep["offset"])


class IntOps:
    """The integer arithmetic `run_unet` runs on (NHWC, float64 holding integers)."""

    def __init__(self, net: "IntUNet", device: str):
        self.net = net
        self.device = device
        # the fused loops (`intkernels`): the CPU's int8 path, where numba is installed
        self.fused = net.use_kernels and device == "cpu" and net._ready[1] == "int8" and intkernels.available()

    def _buffer(self, slot: str, shape: tuple, dtype) -> torch.Tensor:
        """A scratch tensor of that shape, kept on the network between calls and grown as needed: its
        contents are consumed within one layer, and reusing the memory spares the allocator's fresh
        pages (page faults took a third of the int8 products' time)."""
        numel, key = math.prod(shape), (threading.get_ident(), slot, dtype)  # one set per thread
        buf = self.net._scratch.get(key)
        if buf is None or buf.size < numel:
            buf = self.net._scratch[key] = torch.empty(numel, dtype=dtype).numpy()
        # kept as numpy memory: a tensor made under inference_mode could not be written outside it
        return torch.from_numpy(buf[:numel]).view(shape)

    def _values(self, q: Q) -> torch.Tensor:
        """q's values, applying a pending group norm (fused loops)."""
        if q.v is None:
            x, mean, mul, beta, silu, table = q.norm
            B, H, W, C = x.shape
            q.v = torch.empty((B, H, W, C), dtype=FUSED_ACT)
            intkernels.group_norm_apply(x.contiguous().numpy().reshape(B, H * W, C), mean, mul, beta, silu, table,
                                        ACT_LIMIT, q.v.numpy().reshape(B, H * W, C))
        return q.v

    def _parts_from(self, q: Q, p: int) -> torch.Tensor:
        """`_chunks(q's values, p)` in scratch memory: by `intkernels.split`, or for a pending group
        norm straight from its input (`group_norm_parts`)."""
        B, H, W, C = q.shape
        ch = self._buffer("parts", (3, B, H + 2 * p, W + 2 * p, C), torch.int8)
        if q.v is None:
            _, mean, mul, beta, silu, table = q.norm
            intkernels.group_norm_parts(q.norm[0].contiguous().numpy(), mean, mul, beta, silu, table, ACT_LIMIT, p,
                                        ch.numpy())
        else:
            intkernels.split(q.v.contiguous().numpy(), ch.numpy(), p)
        return ch

    def _act(self, v, e, limit=None):
        limit = limit or ACT_LIMIT
        return Q(torch.clamp(v, -limit, limit - 1), e)

    @staticmethod
    def _rescale(q: Q, e: int) -> torch.Tensor:
        return q.v if e == q.e else torch.round(q.v * _p2(e - q.e))

    def time(self, gamma: torch.Tensor) -> Q:
        """The time embedding of each gamma. Rows are computed once per distinct gamma and kept on the
        network (`_emb_cache`, with each block's term of it: `_emb_term`): a coding chain calls the
        network again and again at the same K times."""
        net = self.net
        g = gamma.detach().to("cpu", torch.float64).numpy()
        uniq, inv = np.unique(g, return_inverse=True)
        self._uniq, self._inv = uniq.tolist(), torch.from_numpy(inv).to(self.device)
        cache = net._emb_cache
        missing = [u for u in self._uniq if u not in cache]
        if missing:
            if len(cache) + len(missing) > EMB_CACHE_ROWS:
                cache.clear()
                missing = self._uniq
            t = (np.array(missing) + 15.0) * 40.0
            s, c = exact.sin_cos(t[:, None] * net.freqs[None, :])
            feats = torch.from_numpy(np.rint(np.concatenate([s, c], 1) * _p2(FEATURE_EXP))).to(self.device)
            h = self._linear("temb.0", Q(feats, FEATURE_EXP), NORM_LIMIT)
            h = self._silu(h, net.exps["temb.act"])
            emb = self._linear("temb.2", h)
            for i, u in enumerate(missing):
                cache[u] = {"": emb.v[i]}
        rows = torch.stack([cache[u][""] for u in self._uniq])
        return Q(rows[self._inv], net.exps["temb.2"])

    def _emb_term(self, L: "_Conv", emb: Q, tname: str) -> torch.Tensor:
        """round((T emb + T.bias) 2^(acc - T.acc)) per image [B, N]: block T's time term at conv L's
        accumulator exponent, from the distinct gammas' cached rows."""
        T = self.net.layers[tname]
        rows = []
        for u in self._uniq:
            entry = self.net._emb_cache[u]
            if tname not in entry:
                tb = T.sums([Q(entry[""][None], emb.e)]) + T.bias
                entry[tname] = torch.round(tb * L.tscale(T))[0]
            rows.append(entry[tname])
        return torch.stack(rows)[self._inv]

    def _linear(self, name, x: Q, limit=None) -> Q:
        L = self.net.layers[name]
        return self._act(torch.round(torch.addcmul(L.bias_out, L.sums([x]), L.out_scale)), L.e, limit)

    def _silu(self, x: Q, e_out: int) -> Q:
        return Q(_lookup(self.net.silu_table(e_out, self.device), x.v + NORM_LIMIT), e_out)

    def features(self, z: torch.Tensor) -> list[Q]:
        """z: float64 NCHW -> the first conv's input parts (NHWC)."""
        zq = torch.clamp(torch.round(z.permute(0, 2, 3, 1) * _p2(Z_EXP)), -Z_LIMIT, Z_LIMIT - 1)
        hi = torch.clamp(torch.round(zq * _p2(Z_HI_EXP - Z_EXP)), -ACT_LIMIT, ACT_LIMIT - 1)
        lo = zq - hi * _p2(Z_EXP - Z_HI_EXP)
        feats = []
        for n in self.net.fourier_n:
            tab = self.net.fourier_table(n, self.device)
            period = tab.shape[0]
            j = torch.remainder(zq, period)  # phase 2 pi j / period of 2^n pi z
            feats += [_lookup(tab, j), _lookup(tab, torch.remainder(j + period // 4, period))]
        return [Q(hi, Z_HI_EXP), Q(lo, Z_EXP), Q(torch.cat(feats, -1), FEATURE_EXP)]

    def conv(self, name, x, stride=1, emb=None) -> Q:
        L = self.net.layers[name]
        parts = x if isinstance(x, list) else [x]
        embterm = None if emb is None else self._emb_term(L, *emb)
        if self.fused:
            return self._conv_fused(L, parts, stride, embterm)
        B, H, W = parts[0].v.shape[:3]
        Ho, Wo = (H - 1) // stride + 1, (W - 1) // stride + 1
        acc = L.sums(parts, stride).reshape(B, Ho, Wo, -1)
        if embterm is not None:
            acc = acc + embterm[:, None, None, :]
        out = torch.addcmul(L.bias_out, acc, L.out_scale)  # (acc + bias) 2^(e - acc): exact
        return Q(torch.clamp_(torch.round_(out), -ACT_LIMIT, ACT_LIMIT - 1), L.e)

    def _conv_fused(self, L: "_Conv", parts: list, stride: int, embterm) -> Q:
        """`conv` on the CPU's int8 path with its per-element work in `intkernels`: one int8 product
        per input part over its im2col rows (the three activation parts stacked), then the sum over
        input parts j of raw_j 2^(e - e_j - ew_j), plus const = bias_out + the parts' offsets at the
        same scales (+ the time embedding's term), rounded: the same real number as `conv`'s
        (sum_j s_j + embterm + bias) 2^(e - acc), and every partial sum is an integer times
        2^(e - acc) below 2^52 of those units, so exact."""
        B, H, W = parts[0].shape[:3]
        Ho, Wo = (H - 1) // stride + 1, (W - 1) // stride + 1
        P, N = B * Ho * Wo, L.bias.shape[0]
        scales, const = L.fused_scales(tuple(q.e for q in parts))
        const = const.expand(B, N) if embterm is None else torch.addcmul(const, embterm, L.out_scale)
        const = np.ascontiguousarray(const.numpy())
        single = len(parts) == 1
        if single:
            out = torch.empty((B, Ho * Wo, N), dtype=FUSED_ACT)
        else:  # the parts' terms summed exactly, then rounded once
            out = torch.from_numpy(np.repeat(const[:, None, :], Ho * Wo, 1))
        for j, q in enumerate(parts):
            prep, C = L.parts[j], q.shape[-1]
            k, K8 = prep["k"], prep["w8"].shape[0]
            if k == 3 and C % 8 == 0:  # split once, then gather 8-channel words (stride 1 or 2)
                cols = self._buffer("cols", (3, P, K8), torch.int8)
                padded = self._parts_from(q, 1)
                intkernels.gather_cols(padded.view(3, B, H + 2, -1).view(torch.int64).numpy(), stride, Wo,
                                       cols.view(3, B, Ho * Wo, K8).view(torch.int64).numpy())
            elif k == 3 and stride == 1:  # a few channels (the first layer's inputs): split into place
                cols = self._buffer("cols", (3, P, K8), torch.int8)
                intkernels.split_cols(self._values(q).contiguous().numpy(), cols.numpy())
            else:  # 1 x 1 (and any other shape): torch's im2col over the split parts
                cols = _im2col(self._parts_from(q, k // 2), k, stride, pad=False)
                cols = F.pad(cols, (0, K8 - cols.shape[1]), value=0) if cols.shape[1] < K8 else cols
            y = torch._int_mm(cols.reshape(3 * P, K8), prep["w8"], out=self._buffer("y", (3 * P, N), torch.int32))
            if single:
                intkernels.finish(y.numpy(), P, scales[j], const, ACT_LIMIT, out.numpy())
            else:
                intkernels.accumulate(y.numpy(), P, scales[j], out.numpy())
        if not single:
            torch.clamp_(torch.round_(out), -ACT_LIMIT, ACT_LIMIT - 1)
        return Q(out.view(B, Ho, Wo, N), L.e)

    def norm(self, name, x: Q, silu: bool) -> Q:
        N = self.net.norms[name]
        self._values(x)
        B, H, W, C = x.v.shape
        G = N["groups"]
        cg = C // G
        n = H * W * cg
        if n >= 2 ** 20:
            raise ValueError("group norm over 2^20 values or more: not exact in int64")
        shift = N["ey"] - N["eg"] + STD_EXTRA_BITS + MUL_EXP
        if self.fused:  # statistics now; the values where they are used (`_values`, `_parts_from`)
            x3 = x.v.contiguous().numpy().reshape(B, H * W, C)
            mean, mul = np.empty((B, C)), np.empty((B, C))
            intkernels.group_norm_stats(x3, G, N["g_np"], shift, N["eps4"], MUL_LIMIT, _p2(-MUL_EXP), mean, mul)
            table = self.net.silu_table_i32(N["e"]) if silu else _NO_TABLE
            beta = N["beta_index"] if silu else N["beta"]
            return Q(None, N["e"] if silu else N["ey"], norm=(x.v, mean, mul, beta.numpy(), silu, table))
        xv = x.v.reshape(B, H * W, C)
        S = xv.sum(1).reshape(B, G, cg).sum(-1).to(torch.int64)  # exact: integers below 2^40
        m = _round_div(S, torch.full_like(S, n))
        d = xv - m.double().repeat_interleave(cg, 1)[:, None, :]  # [B, HW, C]
        # sum of squares per group: float64 sums of non-negative integers are exact while the total
        # stays below 2^53 (every partial sum is at most the total); past that, int64 (|d| < 2^21)
        sq = (d * d).sum(1).reshape(B, G, cg).sum(-1)
        if float(sq.max()) < 2.0 ** 52:
            ss = sq.to(torch.int64)
        else:
            di = d.to(torch.int64)
            ss = (di * di).sum(1).reshape(B, G, cg).sum(-1)
        V = torch.div(ss, n, rounding_mode="floor")
        r = isqrt((V + N["eps"]) * 4 ** STD_EXTRA_BITS)  # [B, G], >= 1
        num = N["g"].reshape(1, G, cg) * 2 ** shift  # int64 [1, G, cg]
        mul = _round_div(num.expand(B, G, cg), r.reshape(B, G, 1).expand(B, G, cg))
        mul = torch.clamp(mul, -MUL_LIMIT + 1, MUL_LIMIT - 1).double().reshape(B, 1, C) * _p2(-MUL_EXP)
        y = torch.round_(d.mul_(mul)).reshape(B, H, W, C)  # d * mul 2^24 < 2^52: exact, then scaled exactly
        if silu:  # the table's index: y + beta + 2^17, clamped to the table
            idx = torch.clamp_(y.add_(N["beta_index"]), 0, 2 * NORM_LIMIT - 1)
            return Q(_lookup(self.net.silu_table(N["e"], self.device), idx), N["e"])
        return self._act(y.add_(N["beta"]), N["ey"])

    def add(self, name, a: Q, b: Q) -> Q:
        e = self.net.exps[name]
        self._values(a)
        self._values(b)
        if self.fused:
            out = torch.empty(a.v.shape, dtype=FUSED_ACT)
            intkernels.rescale_add(a.v.contiguous().numpy().reshape(-1), _p2(e - a.e), b.v.contiguous().numpy().reshape(-1),
                                   _p2(e - b.e), ACT_LIMIT, out.numpy().reshape(-1))
            return Q(out, e)
        return self._act(self._rescale(a, e) + self._rescale(b, e), e)

    def cat(self, name, a: Q, b: Q) -> Q:
        e = self.net.exps[name]
        self._values(a)
        self._values(b)
        if self.fused:
            B, H, W, Ca = a.v.shape
            out = torch.empty((B, H, W, Ca + b.v.shape[-1]), dtype=FUSED_ACT)
            intkernels.rescale_cat(a.v.contiguous().numpy().reshape(B * H * W, -1), _p2(e - a.e),
                                   b.v.contiguous().numpy().reshape(B * H * W, -1), _p2(e - b.e), ACT_LIMIT,
                                   out.numpy().reshape(B * H * W, -1))
            return Q(out, e)
        return self._act(torch.cat([self._rescale(a, e), self._rescale(b, e)], -1), e)

    def upsample(self, x: Q) -> Q:
        self._values(x)
        return Q(x.v.repeat_interleave(2, 1).repeat_interleave(2, 2), x.e)

    def attention(self, name, x: Q) -> Q:
        self._values(x)
        B, H, W, C = x.v.shape
        a = self.norm(f"{name}.norm", x, silu=False)
        q, k, v = (self.conv(f"{name}.{s}", a) for s in "qkv")
        if C >= 2 ** 12 or H * W >= 2 ** 12:
            raise ValueError("attention over 2^12 channels or positions or more: not exact in float64")
        qv, kv, vv = (t.v.double().reshape(B, H * W, C) for t in (q, k, v))
        logits = qv @ kv.transpose(1, 2)  # exact, < 2^40 C
        table = self.net.exp_table(self.device)
        if self.fused:
            p = torch.empty_like(logits)
            intkernels.attention_weights(logits.numpy(), _p2(LOGIT_EXP - q.e - k.e), table.numpy(), p.numpy())
            num = p @ vv  # exact, < 2^20 2^20 HW
            mix = torch.empty_like(num)
            intkernels.round_div_rows(num.numpy(), p.sum(-1).numpy(), mix.numpy())
            mix = Q(mix.reshape(B, H, W, C), v.e)
        else:
            d = torch.round((logits.amax(-1, keepdim=True) - logits) * _p2(LOGIT_EXP - q.e - k.e))
            p = _lookup(table, torch.clamp(d, max=LOGIT_SPAN))
            num = (p @ vv).to(torch.int64)  # exact, < 2^20 2^20 HW
            den = p.sum(-1, keepdim=True).to(torch.int64)
            mix = Q(_round_div(num, den.expand_as(num)).double().reshape(B, H, W, C), v.e)
        return self.add(f"{name}.sum", x, self.conv(f"{name}.out", mix))

    def output(self, x: Q) -> torch.Tensor:
        """eps_hat as float64 NCHW (exact: an integer times a power of two)."""
        return (self._values(x).double() * _p2(-x.e)).permute(0, 3, 1, 2).contiguous()


class IntUNet(nn.Module):
    """eps_hat = net(z, gamma) in integer arithmetic (see the module docstring). Built from the float
    config plus the integer state dict that `convert` makes; its buffers are that state dict."""

    integer = True  # its outputs do not depend on the machine, the threads or the batch
    use_kernels = True  # the fused CPU loops where available (`intkernels`); False: torch only, same integers

    def __init__(self, in_channels=3, channels=(64, 128, 128), num_res_blocks=1, attn_levels=(2,),
                 fourier_n=(6, 7), **_ignored):
        super().__init__()
        self.cfg = {"in_channels": in_channels, "channels": list(channels), "num_res_blocks": num_res_blocks,
                    "attn_levels": list(attn_levels), "fourier_n": list(fourier_n)}
        self.fourier_n = list(fourier_n)
        self.lay = layout(self.cfg)
        self._ready = None
        self._tables: dict = {}
        self._scratch: dict = {}
        self._emb_cache: dict = {}

    @classmethod
    def from_config(cls, cfg: dict) -> "IntUNet":
        return cls(**cfg)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        own = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        for k, v in own.items():
            self.register_buffer(k, v.clone())
        self._ready = None

    def _state(self) -> dict:
        return {k.replace("__", "."): v for k, v in self.named_buffers()}

    def exact_at(self, tile: int) -> bool:
        """Whether a T x T tile stays within the bounds `attention` and `norm` check (so that it codes
        exactly rather than failing mid-file): fewer than 2^12 positions at each attention level, and
        fewer than 2^20 values per normalisation group, bounded by T^2 times the most channels per
        group of any norm (a norm at level l sees (T / 2^l)^2 positions)."""
        if tile % (2 ** (len(self.cfg["channels"]) - 1)):
            return False
        sd = self._state()
        per_group = max((int(sd[k[:-len(".groups")] + ".g"].numel()) // int(v)
                         for k, v in sd.items() if k.endswith(".groups")), default=1)
        return (all((tile >> lv) ** 2 < 2 ** 12 for lv in self.cfg["attn_levels"])
                and tile * tile * per_group < 2 ** 20)

    def _prepare(self, device: str):
        if self._ready is not None and self._ready[0] == device:
            return
        sd = {k: v.cpu() for k, v in self._state().items()}
        backend = matmul_backend(device)
        names = {k.rsplit(".", 2)[0] for k in sd if ".p0.w" in k}
        self.layers = {n: _Conv(sd, n, device, backend) for n in names}
        self.norms = {}
        for k in sd:
            if k.endswith(".groups"):
                n = k[: -len(".groups")]
                self.norms[n] = {"g": sd[f"{n}.g"].to(device), "eg": int(sd[f"{n}.eg"]), "ey": int(sd[f"{n}.ey"]),
                                 "beta": sd[f"{n}.beta"].double().to(device), "eps": int(sd[f"{n}.eps"]),
                                 "beta_index": (sd[f"{n}.beta"] + NORM_LIMIT).double().to(device),
                                 "groups": int(sd[k]), "e": int(sd[f"{n}.e"]),
                                 "g_np": sd[f"{n}.g"].numpy(),
                                 "eps4": np.array([int(sd[f"{n}.eps"]), 4 ** STD_EXTRA_BITS], dtype=np.int64)}
                N = self.norms[n]
                shift = N["ey"] - N["eg"] + STD_EXTRA_BITS + MUL_EXP
                if shift < 0 or int(N["g"].abs().max()) * 2 ** shift >= 2 ** 61:
                    raise ValueError(f"{n}: group norm scale out of exact range")
        self.exps = {k[:-2]: int(v) for k, v in sd.items() if k.endswith(".e") and v.dim() == 0}
        self.freqs = time_freqs(int(sd["temb.0.p0.w"].shape[1]) // 2)
        self._emb_cache = {}
        self._ready = (device, backend)

    # tables, built from `exact` (the same bits everywhere)
    def silu_table(self, e_out: int, device: str) -> torch.Tensor:
        key = ("silu", e_out, device)
        if key not in self._tables:
            x = np.arange(-NORM_LIMIT, NORM_LIMIT, dtype=np.float64) * _p2(-NORM_EXP)
            y = np.clip(np.rint(x * exact.sigmoid(x) * _p2(e_out)), -ACT_LIMIT, ACT_LIMIT - 1)
            self._tables[key] = torch.from_numpy(y).to(device)
        return self._tables[key]

    def silu_table_i32(self, e_out: int) -> np.ndarray:
        """`silu_table` as int32 (its values are integers below 2^20): half the bytes for the fused loops."""
        key = ("silu32", e_out)
        if key not in self._tables:
            self._tables[key] = self.silu_table(e_out, "cpu").numpy().astype(np.int32)
        return self._tables[key]

    def exp_table(self, device: str) -> torch.Tensor:
        key = ("exp", device)
        if key not in self._tables:
            i = np.arange(LOGIT_SPAN + 1, dtype=np.float64)
            self._tables[key] = torch.from_numpy(np.rint(exact.exp(-i * _p2(-LOGIT_EXP)) * _p2(PROB_EXP))).to(device)
        return self._tables[key]

    def fourier_table(self, n: int, device: str) -> torch.Tensor:
        """sin(2 pi j / P) * 2^13, rounded, for P = 2^(Z_EXP + 1 - n): the phase of 2^n pi z at z = j 2^-22."""
        key = ("sin", n, device)
        if key not in self._tables:
            period = 2 ** (Z_EXP + 1 - n)
            s, _ = exact.sin_cos(np.arange(period, dtype=np.float64) * (2.0 * math.pi / period))
            self._tables[key] = torch.from_numpy(np.rint(s * _p2(FEATURE_EXP))).to(device)
        return self._tables[key]

    @torch.no_grad()
    def forward(self, z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        device = z.device.type
        self._prepare(device)
        if gamma.dim() == 0:
            gamma = gamma.expand(z.shape[0])
        x = z.to(torch.float64)
        # on the CPU, in pieces of at most CPU_PIECE_PIXELS pixels (whole images): larger calls spill
        # the caches (per pixel at 64 x 64 tiles: 8.9 us in a call of 8, 7.1 in calls of 2). The
        # integers do not depend on the grouping.
        per = max(1, CPU_PIECE_PIXELS // (x.shape[2] * x.shape[3])) if device == "cpu" else len(x)
        outs = [run_unet(IntOps(self, device), self.lay, x[i:i + per], gamma[i:i + per]) for i in range(0, len(x), per)]
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        return out.to(z.dtype) if z.dtype != torch.float64 else out
