"""The model's NELBO_K on images, with no coder: the reference a coded file is judged against.

It mirrors the diffusion codec (`codec.tile_batch_codec`): the same tiles, padding noise and time
grid, the same per-step KLs (`vdm.nelbo_k_bits`), with fresh continuous latents at every step
instead of latents popped from the stack.
"""
from __future__ import annotations

import numpy as np


def model_nelbo_k(model, params, imgs, sampled_steps: int | None = None, fitted: bool = False,
                  stratified: bool = False, tile: int | None = None) -> np.ndarray:
    """The model's NELBO_K (bits per image) with fresh continuous samples at every step: the
    reference the coder is judged against. Images are cut into the coder's tiles; padding and
    missing channels are held at the coder's fixed noise and do not count. [len(imgs)]; with fitted,
    [2, len(imgs)]: this reference and the one with the fitted variances of latent coding version 2
    (the model's mse curve), from the same draws and network evaluations. With sampled_steps and
    stratified, each tile's steps come one from each of sampled_steps runs of the K (unbiased, and
    far less noisy per image than drawing them at random). tile: the coder's tile size (None: the model's)."""
    from ..format.constants import pad_noise
    from ..format.plan import make_tiles
    from .vdm import fitted_push_var, nelbo_k_bits

    T = tile or model.tile
    tiles = [t for i, d in enumerate(imgs) for t in make_tiles(i, d.main, d.height, d.width, d.main.shape[0], T)]
    x = np.stack([t.x for t in tiles])
    mask = np.stack([t.mask for t in tiles])
    times = model.time_grid(params.grid, params.steps)
    push_vars = [None, fitted_push_var(model.schedule, times, model.mse_curve)] if fitted else None
    bits = nelbo_k_bits(model.vdm.net, model.schedule, x, times, sampled_steps=sampled_steps, stratified=stratified,
                        mask=None if mask.all() else mask, pad=pad_noise(x.shape[1:], params.format_version), push_vars=push_vars)
    per_image = lambda b: np.bincount([t.image for t in tiles], weights=b, minlength=len(imgs))  # noqa: E731
    return np.stack([per_image(b) for b in bits]) if fitted else per_image(bits)
