"""Context beyond the tile, the cheapest way: the same network on larger tiles.

The photo prior's U-Net is convolutional (its attention at the 8x8 level of a 32x32 tile becomes
attention over 16x16 at 64x64), so it runs on any tile size that is a multiple of 4; a larger tile
lets each pixel see more of its neighbourhood and leaves fewer tile edges. This measures what that is
worth in the continuous-time NELBO of the nine test photos, PAIRED: each photo is cropped to whole
128x128 blocks from its top-left corner; for each block and repeat one time t (antithetic over the
blocks) and one noise draw give one z_t, which is cut into T x T tiles for T = 32, 64, 128, run
through the network tile by tile and put back together. The reconstruction and prior terms do not
involve the network, so the difference of the diffusion terms (1/2 gamma'(t) ||eps - eps_hat||^2,
in bits per subpixel) between tile sizes is the difference of the NELBOs, with the time and noise
variance cancelled. Nothing is trained or chosen on photos-full: it is evaluated here only.

    python bench/studies/2026-12-05-photo-context/tile_size_nelbo.py --out results/tile_size_nelbo.json
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from bbcodec.bench import environment, full_tiles, load_dataset
from bbcodec.diffusion.vdm import pixel_to_model
from bbcodec.registry import load_model

HERE = Path(__file__).resolve().parent
BLOCK = 128


def retile(z: torch.Tensor, T: int) -> torch.Tensor:
    """[B, C, S, S] -> [B (S/T)^2, C, T, T], block-major, row-major within a block."""
    B, C, S, _ = z.shape
    n = S // T
    return z.reshape(B, C, n, T, n, T).permute(0, 2, 4, 1, 3, 5).reshape(B * n * n, C, T, T)


def untile(t: torch.Tensor, B: int, S: int) -> torch.Tensor:
    T = t.shape[-1]
    n = S // T
    C = t.shape[1]
    return t.reshape(B, n, n, C, T, T).permute(0, 3, 1, 4, 2, 5).reshape(B, C, S, S)


def diffusion_bits(vdm, blocks: np.ndarray, tiles: list[int], repeats: int, batch: int, seed: int) -> dict:
    """Per (repeat, block): the diffusion term in bits per subpixel for each tile size, same t and noise."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        g0, g1 = (float(vdm.gamma(torch.tensor(v))) for v in (0.0, 1.0))
    out = {T: [] for T in tiles}
    for r in range(repeats):
        u = torch.rand((), generator=g)
        t_all = torch.remainder(u + torch.arange(len(blocks)) / len(blocks), 1.0)
        for i in range(0, len(blocks), batch):
            f = pixel_to_model(torch.from_numpy(blocks[i:i + batch]))
            t = t_all[i:i + batch]
            with torch.no_grad():
                gt = vdm.gamma(t)
            a = torch.sqrt(torch.sigmoid(-gt)).view(-1, 1, 1, 1)
            s = torch.sqrt(torch.sigmoid(gt)).view(-1, 1, 1, 1)
            eps = torch.randn(f.shape, generator=g)
            z = a * f + s * eps
            for T in tiles:
                k = (BLOCK // T) ** 2
                with torch.no_grad():
                    eh = untile(vdm.net(retile(z, T), gt.repeat_interleave(k)), len(f), BLOCK)
                w = 0.5 * (g1 - g0)
                bits = w * (eps - eh).square().flatten(1).sum(1) / (f[0].numel() * math.log(2))
                out[T].append(bits.double().numpy())
    return {T: np.concatenate(v) for T, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["runs/photo-vdm-p2"])
    ap.add_argument("--tiles", nargs="+", type=int, default=[32, 64, 128])
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--batch", type=int, default=8, help="128x128 blocks per network call group")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    names, arrays = load_dataset("photos-full")
    blocks = np.concatenate([full_tiles(x, BLOCK) for x in arrays if x.ndim == 3 and x.shape[2] == 3])
    out = {"block": BLOCK, "blocks": len(blocks), "repeats": a.repeats, "seed": a.seed, "models": [],
           "env": environment()}
    for name in a.models:
        m = load_model(name)
        t0 = time.perf_counter()
        d = diffusion_bits(m.vdm, blocks, a.tiles, a.repeats, a.batch, a.seed)
        base = d[a.tiles[0]]
        rows = []
        for T in a.tiles:
            diff = d[T] - base
            rows.append({"tile": T, "diffusion_bpd": float(d[T].mean()),
                         "minus_first_bpd": float(diff.mean()),
                         "minus_first_se": float(diff.std(ddof=1) / math.sqrt(len(diff)))})
        out["models"].append({"model": m.name, "sha256": m.sha256, "rows": rows,
                              "seconds": time.perf_counter() - t0})
        print(json.dumps(out["models"][-1]), flush=True)
    (HERE / a.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
