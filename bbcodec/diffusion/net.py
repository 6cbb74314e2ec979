"""The eps-prediction network: a small U-Net with Fourier-feature inputs. No probability code here.

Built only from a config dict stored beside the weights (`UNet.from_config`), so loading never
depends on flags that must happen to match.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

DEFAULT_CONFIG = {
    "arch": "unet",
    "in_channels": 3,
    "channels": [64, 128, 128],  # per resolution level; level i runs at size / 2^i
    "num_res_blocks": 1,
    "attn_levels": [2],
    "fourier_n": [6, 7],
    "gamma_min_init": -13.3,
    "gamma_max_init": 5.0,
}


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(8 if ch % 8 == 0 else 1, ch)


def time_embedding(gamma: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of gamma rescaled to roughly [0, 1000].  [B] -> [B, dim]"""
    t = (gamma + 15.0) / 25.0 * 1000.0
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=gamma.device, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int):
        super().__init__()
        self.n1 = _norm(cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.t = nn.Linear(temb, cout)
        self.n2 = _norm(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.c1(F.silu(self.n1(x)))
        h = h + self.t(temb)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.norm = _norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.out = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        a = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / math.sqrt(c), dim=-1)
        return x + self.out(torch.einsum("bij,bcj->bci", a, v).reshape(b, c, h, w))


class UNet(nn.Module):
    """eps_hat = net(z, gamma).  z: [B, C, H, W] (H, W multiples of 2^(levels-1)), gamma: [B]."""

    def __init__(self, in_channels=3, channels=(64, 128, 128), num_res_blocks=1, attn_levels=(2,),
                 fourier_n=(6, 7), **_ignored):
        super().__init__()
        self.fourier_n = list(fourier_n)
        temb = channels[0] * 4
        self.temb_dim = channels[0]
        self.temb = nn.Sequential(nn.Linear(channels[0], temb), nn.SiLU(), nn.Linear(temb, temb))
        cin = in_channels * (1 + 2 * len(self.fourier_n))
        self.inp = nn.Conv2d(cin, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        skips = [channels[0]]
        ch = channels[0]
        for lvl, c in enumerate(channels):
            for _ in range(num_res_blocks):
                blk = nn.ModuleList([ResBlock(ch, c, temb)])
                if lvl in attn_levels:
                    blk.append(Attention(c))
                self.down.append(blk)
                ch = c
                skips.append(ch)
            if lvl != len(channels) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
        self.mid = nn.ModuleList([ResBlock(ch, ch, temb), Attention(ch), ResBlock(ch, ch, temb)])
        self.up = nn.ModuleList()
        for lvl, c in reversed(list(enumerate(channels))):
            for _ in range(num_res_blocks + 1):
                blk = nn.ModuleList([ResBlock(ch + skips.pop(), c, temb)])
                if lvl in attn_levels:
                    blk.append(Attention(c))
                self.up.append(blk)
                ch = c
            if lvl != 0:
                self.up.append(nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"),
                                              nn.Conv2d(ch, ch, 3, padding=1)]))
        self.out_norm = _norm(ch)
        self.out = nn.Conv2d(ch, in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.downsample = 2 ** (len(channels) - 1)

    @classmethod
    def from_config(cls, cfg: dict) -> "UNet":
        return cls(**cfg)

    def forward(self, z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        if gamma.dim() == 0:
            gamma = gamma.expand(z.shape[0])
        emb = self.temb(time_embedding(gamma, self.temb_dim))
        feats = [z]
        for n in self.fourier_n:
            feats += [torch.sin(z * (2**n * math.pi)), torch.cos(z * (2**n * math.pi))]
        h = self.inp(torch.cat(feats, dim=1))
        hs = [h]
        for blk in self.down:
            if isinstance(blk[0], ResBlock):
                h = blk[0](h, emb)
                for extra in blk[1:]:
                    h = extra(h)
            else:
                h = blk[0](h)
            hs.append(h)
        h = self.mid[0](h, emb)
        h = self.mid[1](h)
        h = self.mid[2](h, emb)
        for blk in self.up:
            if isinstance(blk[0], ResBlock):
                h = blk[0](torch.cat([h, hs.pop()], dim=1), emb)
                for extra in blk[1:]:
                    h = extra(h)
            else:
                h = blk[1](blk[0](h))
        return self.out(F.silu(self.out_norm(h)))


class VDM(nn.Module):
    """Network plus learned schedule: the unit that is trained, saved and loaded."""

    def __init__(self, config: dict):
        super().__init__()
        from .schedule import LearnedLinearSchedule

        self.config = dict(config)
        if config.get("arch") == "unet-int":  # the integer network (`intnet`): exact on any machine
            from .intnet import IntUNet
            self.net = IntUNet.from_config(config)
        else:
            self.net = UNet.from_config(config)
        self.gamma = LearnedLinearSchedule(config.get("gamma_min_init", -13.3), config.get("gamma_max_init", 5.0))
