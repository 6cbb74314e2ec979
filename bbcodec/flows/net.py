"""A RealNVP/Glow-style coupling flow for 8-bit images, and its dequantization bound.

Pixel convention.  A subpixel value k in {0..255} owns the model-space bin
    [2k/256 - 1, 2(k+1)/256 - 1)          (width w = 2/256 = 2^-7)
and uniform dequantization draws y = 2(k + u)/256 - 1, u ~ U[0, 1): the same bins whose centres are
`diffusion.vdm.pixel_to_model`'s s(k).  For an image x of D subpixels,
    -log2 P(x) <= E_u[-log2 p(y)] - D log2 w = E_u[-log2 p(y)] + 7 D        (bits per image)
(Jensen on P(x) = integral of p over the pixel's bin), the dequantization bound that training
minimises and that local bits-back coding achieves (`flows.codec`).

The flow z = f(y) is a sequence of steps on a state (the active tensor [B, C, H, W] plus the
coordinates already factored out):
    Squeeze   space to depth, [B, C, H, W] -> [B, 4C, H/2, W/2]; a permutation, log-det 0
    Coupling  an affine coupling: coordinates in a mask pass through; each other coordinate
              y -> a y + t with log a = b tanh(h_s / b) (|log a| < b, b = `log_scale_bound`) and
              (h_s, t) computed by a small ResNet from the masked input only, so the Jacobian is
              triangular with log |det| = sum of log a (nats)
    Split     the first half of the active channels leaves for the latent (multi-scale, Dinh et al.
              2017); a permutation, log-det 0
Each level is a squeeze, `couplings` couplings (masks cycling checkerboard, inverse checkerboard,
first channel half, second channel half), then a split unless it is the last level.  The latent
z [B, D] is the factored-out parts in the order they left, then the final active tensor, each
flattened in C order; its prior is N(0, I).  -log2 p(y) = (1/2 |z|^2 + D/2 ln 2 pi - log|det|) / ln 2.

Built only from a config dict stored beside the weights (`Flow.from_config`, a typed `FlowConfig`:
a misspelt key fails).  No coding code here: the codec reads `Coupling.scale_shift`, the masks
and the step list.  No normalisation layer depends on the batch, so a coordinate's (a, t) depends
only on its own image (what the codec needs: the decoder sees one batch like the encoder's, but
the training and coding batches differ).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

LN2 = math.log(2.0)
PIXEL_BITS = 8                 # 256 values per subpixel
BIN_LOG2 = 1 - PIXEL_BITS      # log2 of a pixel bin's width in model space: 2/256 = 2^-7
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class FlowConfig:
    """The flow's architecture.  Every field is stored in the model's config.json."""
    arch: str = "realnvp"
    in_channels: int = 3
    levels: int = 2             # squeezes; H and W must be multiples of 2^levels
    couplings: int = 4          # affine couplings per level
    hidden: int = 64            # channels of each coupling's ResNet
    res_blocks: int = 1         # residual blocks per coupling ResNet
    log_scale_bound: float = 2.0  # b: |log a| < b for every coupling scale a
    split: bool = True          # factor out half the channels after every level but the last
    tile: int = 32              # the coder's tile size (the training crops'); a multiple of 2^levels

    @classmethod
    def from_dict(cls, cfg: dict) -> "FlowConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"unknown flow config keys: {sorted(unknown)}")
        c = cls(**cfg)
        if c.arch != "realnvp":
            raise ValueError(f"not a flow config (arch {c.arch!r})")
        if c.levels < 1 or c.couplings < 1 or not c.log_scale_bound > 0:
            raise ValueError("a flow needs levels >= 1, couplings >= 1 and log_scale_bound > 0")
        if c.tile < 2 ** c.levels or c.tile % 2 ** c.levels:
            raise ValueError("a flow's tile must be a multiple of 2^levels")
        return c

    def to_dict(self) -> dict:
        return asdict(self)


def dequantize(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Model-space point 2(x + u)/256 - 1 of pixels x (uint8) at offsets u in [0, 1)."""
    return 2.0 * (x.to(u.dtype) + u) / 2 ** PIXEL_BITS - 1.0


def squeeze(y: torch.Tensor) -> torch.Tensor:
    """Space to depth: [B, C, H, W] -> [B, 4C, H/2, W/2]; channel 4c + 2i + j holds y[c, 2h+i, 2w+j]."""
    b, c, h, w = y.shape
    y = y.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return y.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(y: torch.Tensor) -> torch.Tensor:
    """The inverse of `squeeze`."""
    b, c, h, w = y.shape
    y = y.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return y.reshape(b, c // 4, 2 * h, 2 * w)


MASK_KINDS = ("checker", "checker-inv", "channel", "channel-inv")


def coupling_mask(kind: str, c: int, h: int, w: int) -> torch.Tensor:
    """bool [C, H, W]: True where a coordinate passes through the coupling unchanged."""
    if kind.startswith("checker"):
        hw = (torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2 == 0
        m = hw.expand(c, h, w)
    else:
        m = (torch.arange(c) < c // 2)[:, None, None].expand(c, h, w)
    return ~m if kind.endswith("-inv") else m.clone()


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, h):
        return h + self.c2(F.relu(self.c1(F.relu(h))))


class Coupling(nn.Module):
    """One affine coupling on C channels.  The output convolution starts at zero: an identity flow."""

    def __init__(self, channels: int, kind: str, hidden: int, res_blocks: int, log_scale_bound: float):
        super().__init__()
        self.kind = kind
        self.bound = float(log_scale_bound)
        self.inp = nn.Conv2d(channels + 1, hidden, 3, padding=1)  # + the mask's first plane (the checkerboard)
        self.blocks = nn.Sequential(*[ResBlock(hidden) for _ in range(res_blocks)])
        self.out = nn.Conv2d(hidden, 2 * channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def mask(self, y: torch.Tensor) -> torch.Tensor:
        """bool [C, H, W] for a state y [B, C, H, W]: True = passes through."""
        return coupling_mask(self.kind, *y.shape[1:]).to(y.device)

    def scale_shift(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log a, t), each [B, C, H, W] in y's dtype, zero where the mask passes through.

        Only y's pass-through coordinates are read (the others are multiplied by zero), so the
        codec can hand in the state before or after the coupling and get the same values."""
        m = self.mask(y).to(y.dtype)
        h = self.inp(torch.cat([y * m, m[:1].expand(y.shape[0], 1, *y.shape[2:])], dim=1))
        h = self.out(F.relu(self.blocks(h)))
        raw_s, t = h.chunk(2, dim=1)
        log_a = self.bound * torch.tanh(raw_s / self.bound)
        keep = 1.0 - m
        return log_a * keep, t * keep

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a y + t, log|det| [B] in nats)."""
        log_a, t = self.scale_shift(y)
        return y * torch.exp(log_a) + t, log_a.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        log_a, t = self.scale_shift(y)
        return (y - t) * torch.exp(-log_a)


class Squeeze(nn.Module):
    pass


class Split(nn.Module):
    pass


class Flow(nn.Module):
    """z = f(y) for y [B, C, H, W] in model space; see the module docstring for the steps."""

    def __init__(self, config: dict | FlowConfig):
        super().__init__()
        cfg = config if isinstance(config, FlowConfig) else FlowConfig.from_dict(config)
        self.cfg = cfg
        self.config = cfg.to_dict()
        steps: list[nn.Module] = []
        c = cfg.in_channels
        for level in range(cfg.levels):
            steps.append(Squeeze())
            c *= 4
            for j in range(cfg.couplings):
                steps.append(Coupling(c, MASK_KINDS[j % 4], cfg.hidden, cfg.res_blocks, cfg.log_scale_bound))
            if cfg.split and level < cfg.levels - 1:
                steps.append(Split())
                c -= c // 2
        self.steps = nn.ModuleList(steps)

    @classmethod
    def from_config(cls, cfg: dict) -> "Flow":
        return cls(cfg)

    @property
    def tile_multiple(self) -> int:
        """H and W must be multiples of this."""
        return 2 ** self.cfg.levels

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z [B, D], log|det df/dy| [B] in nats)."""
        outs: list[torch.Tensor] = []
        logdet = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
        for step in self.steps:
            if isinstance(step, Squeeze):
                y = squeeze(y)
            elif isinstance(step, Split):
                half = y.shape[1] // 2
                outs.append(y[:, :half].flatten(1))
                y = y[:, half:]
            else:
                y, ld = step(y)
                logdet = logdet + ld
        return torch.cat(outs + [y.flatten(1)], dim=1), logdet

    def inverse(self, z: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        """y [B, *shape] from z [B, D] (sampling and tests)."""
        shapes, c, h, w = [], *shape
        for step in self.steps:  # the active shape before each step
            shapes.append((c, h, w))
            if isinstance(step, Squeeze):
                c, h, w = 4 * c, h // 2, w // 2
            elif isinstance(step, Split):
                c -= c // 2
        end = z.shape[1]
        y = z[:, end - c * h * w:].reshape(z.shape[0], c, h, w)
        end -= c * h * w
        for step, (c0, h0, w0) in zip(reversed(self.steps), reversed(shapes)):
            if isinstance(step, Squeeze):
                y = unsqueeze(y)
            elif isinstance(step, Split):
                n = (c0 // 2) * h0 * w0
                y = torch.cat([z[:, end - n:end].reshape(z.shape[0], c0 // 2, h0, w0), y], dim=1)
                end -= n
            else:
                y = step.inverse(y)
        return y

    def log_prob_bits(self, y: torch.Tensor) -> torch.Tensor:
        """-log2 p(y) [B], bits per image, of the continuous density at model-space points y."""
        z, logdet = self(y)
        nats = 0.5 * z.square().sum(1) + z.shape[1] * HALF_LOG_2PI - logdet
        return nats / LN2

    def nll_bits(self, x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """The dequantization bound -log2 p(y) + 7 D [B], bits per image, of pixels x (uint8
        [B, C, H, W]) at one uniform dequantization draw u (fresh when not given).  Its mean over u is
        the bound on -log2 P(x) that training minimises and local bits-back coding achieves."""
        dtype = next(self.parameters()).dtype
        if u is None:
            u = torch.rand(x.shape, dtype=dtype, device=x.device)
        d = x[0].numel()
        return self.log_prob_bits(dequantize(x, u)) - d * BIN_LOG2

    def bpd(self, x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """`nll_bits` per subpixel [B]: the training loss."""
        return self.nll_bits(x, u) / x[0].numel()
