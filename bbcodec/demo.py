"""`bbcodec demo`: the main job on the bundled default model and samples, end to end."""
from __future__ import annotations

import time
from pathlib import Path

import click

from . import defaults
from .errors import BbcError
from .images import read_image, same_image

SAMPLES = Path(__file__).resolve().parent / "samples"


def run_demo(model_name, steps, grid, grid_bits, device, progress, latents=None, parallel=defaults.PARALLEL):
    from . import api
    from .registry import load_model

    files = sorted(SAMPLES.glob("*.png"))
    images = [read_image(str(f), name=f.name) for f in files]
    model = load_model(model_name, device)
    if model.kind == "flow":
        raise BbcError(f"demo compares the diffusion prior with its NELBO; {model.name} is a flow: "
                       f"`bbcodec compress --model {model.name}` or `bbcodec bench --codec flow`")
    params = api.coding_params(model, steps, grid, grid_bits, latents)
    grid = params.grid
    click.echo(f"model {model.name} ({model.sha256}) on {model.device}; {len(images)} CIFAR-10 test images "
               f"(32x32 RGB) as one archive, K={steps}, grid={grid}, grid_bits={grid_bits}, latents v{params.latents}, "
               f"parallel {parallel}")
    data, rep = api.compress(images, model, params, parallel=parallel, progress=progress)
    t0 = time.time()
    out, _ = api.decompress(data, model, progress=progress)
    t_dec = time.time() - t0
    for a, b in zip(images, out):
        if not same_image(a, b):
            raise BbcError(f"{a.name}: round trip is NOT bit-exact")
    png_bits = sum(f.stat().st_size for f in files) * 8
    click.echo(f"bit-exact round trip: yes ({len(images)} images)")
    from .diffusion.reference import model_nelbo_k
    refs = model_nelbo_k(model, params, images, fitted=params.latents == 2)
    ref = float(refs[0].sum() if params.latents == 2 else refs.sum())
    n = rep.subpixels
    click.echo(f"archive             {rep.bytes:8d} bytes  {rep.bpd:.4f} bits/dim (everything included: header, "
               f"first tiles, initial bits)")
    tile = 3 * model.tile ** 2  # the samples are whole RGB tiles
    click.echo(f"  first tiles       {rep.bootstrap_tiles:8d} tiles  {rep.bootstrap_bits / 8:8.0f} bytes of JPEG XL "
               f"({rep.bootstrap_bits / (max(1, rep.bootstrap_tiles) * tile):.4f} bits/dim on them): the chain's initial bits")
    click.echo(f"  by the model      {rep.model_tiles:8d} tiles  {rep.nelbo_bits / 8:8.0f} bytes of NELBO along the "
               f"coded chain ({rep.nelbo_bits / (max(1, rep.model_tiles) * tile):.4f} bits/dim on them)")
    click.echo(f"  seed bits drawn   {rep.initial_bits:8d} bits   {rep.initial_bits / n:.4f} bits/dim")
    click.echo(f"model NELBO_K       {ref / n:17.4f} bits/dim   (all images, fresh latents, no coder)")
    if params.latents == 2:  # the reference version 2 codes against: the same with its fitted variances
        ref = float(refs[1].sum())
        click.echo(f"  fitted variances  {ref / n:17.4f} bits/dim   (the variances latent coding version 2 pushes with)")
    click.echo(f"file / NELBO_K      {8 * rep.bytes / ref:17.4f}")
    click.echo(f"PNG (the samples)   {png_bits / rep.subpixels:17.4f} bits/dim")
    click.echo(f"time                encode {rep.seconds:.1f} s, decode {t_dec:.1f} s")
