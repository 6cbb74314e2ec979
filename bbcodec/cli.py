"""The `bbcodec` command line: thin wrappers over api, registry and the file helpers.

Exit status: 0 success, 1 bad input (one line on stderr), 2 usage error, 130 interrupted.
"""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from . import defaults
from .errors import BbcError

DEFAULT_STEPS = defaults.STEPS
DEFAULT_GRID_BITS = defaults.GRID_BITS
DEFAULT_PARALLEL = defaults.PARALLEL


def _fail(msg: str, code: int = 1):
    click.echo(f"bbcodec: error: {msg}", err=True)
    sys.exit(code)


def _guard(fn):
    """Turn BbcError / OSError / Ctrl-C into one line and an exit status, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except BbcError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except OSError as e:
            _fail(f"{e.filename or ''}: {e.strerror or e}".lstrip(": "))
        except MemoryError:
            _fail("out of memory")
    return wrapper


def _show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _reporter(quiet: bool):
    """Progress on stderr: redrawn on a terminal, a plain line now and then otherwise; none with --quiet."""
    from .progress import Progress, Silent
    return Silent() if quiet else Progress()


def _threads_opt(f):
    return click.option("--threads", type=click.IntRange(1, 1024), default=defaults.THREADS, show_default=True,
                        help="torch threads of the network. An integer network's file decodes with any count; "
                             "a float network's file is decoded with this count (slower, never wrong, on a "
                             "machine with fewer cores)")(f)


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'s' * (count != 1)}"


def _summary(output: str, n_images: int, rep) -> str:
    """One line: bytes, bits/dim of the whole file and of the pixels alone, what the metadata cost, time."""
    meta = f", metadata {rep.metadata_bytes:,} bytes" if rep.metadata_bytes else ""
    how = f"{rep.model_tiles} tile{'s' * (rep.model_tiles != 1)} by the model"
    if rep.bootstrap_tiles:
        how += f", {rep.bootstrap_tiles} by {rep.boot_codec}"
    return (f"{n_images} image{'s' * (n_images != 1)} -> {output}: {rep.bytes:,} bytes, {rep.bpd:.4f} bits/dim "
            f"({rep.pixels_bpd:.4f} for the pixels alone{meta}); {how}; {rep.seconds:.1f} s")


def _model_opt(f):
    return click.option("--model", "model_name", default=None, help="registered model name or model folder "
                        "(default: for compress, the photo prior where most pixels are in images larger than one "
                        "32x32 tile, else the default prior (`bbcodec models`); for decompress, the file's model)")(f)


def _bootstrap_opt(f):
    return click.option("--bootstrap", default="auto", show_default=True,
                        help="classical codec for the first tiles, whose bytes give the bits-back chain its "
                             "initial bits: auto (jxl, else webp), jxl, webp, or none (random seed bits)")(f)


def _latents_opt(f):
    return click.option("--latents", type=click.Choice(["auto", "1", "2"]), default="auto", show_default=True,
                        callback=lambda ctx, param, v: None if v == "auto" else int(v),
                        help="latent coding version: 2 = push variances fitted to the model's error curve, "
                             "1 = the schedule's posterior variances (auto: 2 where the model ships its curve)")(f)


def _order_opt(f, repeatable: bool = False):
    return click.option("--order", "orders" if repeatable else "order", type=click.Choice(["bitswap", "bbans"]),
                        multiple=repeatable, default=["bitswap"] if repeatable else "bitswap", show_default=True,
                        help="the chain's composition" + (" (repeatable)" if repeatable else "") + ": bitswap, or "
                             "bbans (every latent popped before anything is pushed: about K times the initial bits; "
                             "for comparison only)")(f)


def _parallel_opt(f):
    return click.option("--parallel", type=click.IntRange(1, 65536), default=DEFAULT_PARALLEL, show_default=True,
                        help="tiles in flight (batches grow from one tile to N, so the initial bits do not "
                             "grow with N; more is faster up to about 8 on a CPU, more on a GPU)")(f)


def _tile_opt(f):
    return click.option("--tile", type=click.Choice([str(t) for t in defaults.TILES]), default=None,
                        help="diffusion models: tile size T (default: the model's coding tile, which `bbcodec models` "
                             "lists, for large images, else 32; the file records it); a larger tile gives each pixel "
                             "more context (docs/cli.md: the rule, and what 64 gains on photos)")(f)


def _bootstrap_arg(v: str) -> str | None:
    return None if v == "none" else v


def _device_opt(f):
    return click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]),
                        show_default=True, help="where the network runs")(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bbcodec")
def cli():
    """bbcodec: lossless image compression with a diffusion prior and bits-back ANS."""


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", default=None, help="output .bbc file ('-' for stdout)")
@_model_opt
@click.option("--steps", type=click.IntRange(1, 100_000), default=DEFAULT_STEPS, show_default=True,
              help="diffusion steps K")
@click.option("--grid", default=None, help="time grid: 'uniform' or one shipped with the model "
              "(default: the model's ELBO-optimal grid for the latent coding version: 'opt3' (else 'opt2') "
              "for 2, 'opt1' for 1, when it has one)")
@click.option("--grid-bits", type=click.IntRange(0, 8), default=DEFAULT_GRID_BITS, show_default=True,
              help="latent bin = step std / 2^b")
@_latents_opt
@_order_opt
@click.option("--flow-grid-bits", type=click.IntRange(8, 20), default=None,
              help=f"flow models: every layer's values on the grid 2^-k (default {defaults.FLOW_GRID_BITS}; "
                   "the rate does not depend on it, the initial bits grow with it)")
@click.option("--flow-scale-bits", type=click.IntRange(4, 16), default=None,
              help=f"flow models: coupling scales coded as R / 2^m (default {defaults.FLOW_SCALE_BITS})")
@_parallel_opt
@_tile_opt
@_bootstrap_opt
@_device_opt
@_threads_opt
@click.option("--force", is_flag=True, help="overwrite an existing output")
@click.option("--verify", is_flag=True, help="after writing, decode the file in memory and compare every image")
@click.option("-y", "--yes", is_flag=True, help=f"go ahead without asking when the estimated encode time is over "
              f"{defaults.CONFIRM_SECONDS / 60:.0f} min (without a terminal, such a run needs --yes)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object with the figures")
@click.option("--quiet", is_flag=True, help="no progress, estimate or summary")
@_guard
def compress(inputs, output, model_name, steps, grid, grid_bits, latents, order, flow_grid_bits, flow_scale_bits,
             parallel, tile, bootstrap, device, threads, force, verify, yes, as_json, quiet):
    """Compress images into one .bbc file: files, folders, or '-' for stdin.

    A folder contributes its PNG, JPEG, WebP, GIF, TIFF, BMP and PBM/PGM/PPM files (by suffix, sorted,
    sub-folders included); each image decompresses to a PNG of the same stem. Images are coded
    exactly or refused: 16-bit samples, CMYK, multi-frame files and the like get a one-line error.
    """
    from . import api, fileio
    from .progress import duration
    from .registry import default_model_for, load_model

    if output == "-" and _stdout_is_terminal():
        raise BbcError("refusing to write a binary .bbc file to a terminal (redirect stdout, or give -o FILE)")
    report = _reporter(quiet)
    images, sources = fileio.gather_images(inputs)
    for d in images:
        if d.dropped:
            click.echo(f"bbcodec: warning: {d.name}: not kept: {', '.join(d.dropped)}", err=True)
    if output is None:
        if len(inputs) != 1 or inputs[0] == "-" or os.path.isdir(inputs[0]):
            raise click.UsageError("-o/--output is required for stdin, folders and several inputs")
        output = str(Path(inputs[0]).with_suffix(".bbc"))
    fileio.check_output(output, force, sources)
    if model_name is None:
        model_name, why = default_model_for([d.width * d.height for d in images])
        report.note(f"model {model_name}: {why} (--model overrides)")
    model = load_model(model_name, device)
    if model.kind == "flow":
        params = api.flow_params(flow_grid_bits, flow_scale_bits)
        how = f"by local bits-back (k={params.grid_bits})"
    else:
        params = api.coding_params(model, steps, grid, grid_bits, latents, order)
        model.time_grid(params.grid, params.steps)  # an unknown grid or K is refused before any output
        how = f"at K={params.steps}"
    tile = api.check_tile(model, None if tile is None else int(tile), [(d.height, d.width) for d in images])
    pixels = sum(d.width * d.height for d in images)
    report.note(f"{len(images)} image{'s' * (len(images) != 1)}, {pixels / 1e6:.3f} MP, for {model.name}; "
                "timing the network")
    boot = _bootstrap_arg(bootstrap)
    batches = api.model_tile_batches(images, model, parallel, boot, tile)
    seconds = api.estimate_seconds(model, params, batches, nhwc=model.device == "cpu", threads=threads, tile=tile)
    report.note(f"{_n(sum(batches), f'{tile}x{tile} tile')} for {model.name} {how} on {model.device}, {threads} "
                f"thread{'s' * (threads != 1)}: about {duration(seconds)} to encode, as long to decode")
    if not model.integer and not quiet:
        click.echo(f"bbcodec: warning: {model.name} is a float network: the file decodes only under this "
                   "machine's arithmetic (torch build, CPU kernels, device); " +
                   ("flows have no integer version yet" if model.kind == "flow" else
                    "`bbcodec convert` makes an integer version whose files decode anywhere"), err=True)
    if seconds > defaults.CONFIRM_SECONDS and not yes:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise BbcError(f"this would take about {duration(seconds)} to encode and as long to decode; "
                           "add --yes to go ahead")
        if not click.confirm(f"About {duration(seconds)} to encode and as long to decode. Go ahead?", err=True):
            raise BbcError("cancelled")
    data, rep = api.compress(images, model, params, parallel=parallel, progress=report, bootstrap=boot,
                             threads=threads, tile=tile)
    if verify:
        report.note("verifying: decoding the file in memory")
        api.verify(data, model, images, progress=report)
    fileio.write_atomic(output, data, force)
    d = rep.as_dict()
    if model.kind == "flow":
        d.update(flow_grid_bits=params.grid_bits, flow_scale_bits=params.scale_bits)
    else:
        d.update(steps=steps, grid=params.grid, grid_bits=grid_bits, latents=params.latents, order=params.order)
    d.update(model=model.name, parallel=parallel, tile=tile, threads=threads, images=len(images), verified=verify)
    if as_json:
        click.echo(json.dumps(d), err=(output == "-"))
    elif not quiet:
        click.echo(_summary(output, len(images), rep) + ("; verified" if verify else ""), err=True)


def _decode_opts(f):
    f = click.option("--any-arithmetic", is_flag=True,
                     help="decode a file written under other arithmetic (torch build, CPU kernels, device) instead of "
                          "refusing it; a wrong result is still caught by the checksums")(f)
    return click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]), show_default=True,
                        help="where the network runs (auto: a GPU where there is one for an integer network's "
                             "file, which any device decodes; else where the encoder ran it, as the file says)")(f)


@cli.command()
@click.argument("input")
@click.option("-o", "--output", default=None,
              help="output PNG ('-' for stdout), or folder for a file holding several images")
@_model_opt
@_decode_opts
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help=f"torch threads of an integer network's file (default {defaults.THREADS}); a float "
                   "network's file is decoded with the thread count it was encoded with")
@click.option("--force", is_flag=True, help="overwrite existing outputs")
@click.option("--quiet", is_flag=True, help="no progress")
@_guard
def decompress(input, output, model_name, device, any_arithmetic, threads, force, quiet):
    """Decompress a .bbc file back to PNG, bit-exact."""
    from . import fileio
    from .format import container

    data = fileio.read_input(input)
    parsed = _parse(input, data)
    # every output is checked before the (long) decode
    targets = fileio.output_targets([im["name"] for im in container.image_records(parsed.header)], input, output,
                                    force)
    images = _decode(input, data, parsed, model_name, device, threads, quiet, any_arithmetic)
    fileio.write_images(images, targets, force)


def _parse(input: str, data: bytes):
    """The container of a .bbc file's bytes; errors name the file."""
    from .errors import FormatError
    from .format import container
    try:
        return container.parse(data)
    except FormatError as e:
        raise FormatError(f"{'stdin' if input == '-' else input}: {e}")


def _decode(input: str, data: bytes, parsed, model_name, device, threads, quiet, any_arithmetic=False):
    """Decode a parsed .bbc file, with the estimate and progress on stderr; errors name the file."""
    from . import api
    from .errors import FormatError
    from .progress import duration
    from .registry import model_for_header

    name = "stdin" if input == "-" else input
    header, cod = parsed.header, parsed.header["coding"]
    integer = api.integer_network(header)  # any device and thread count reproduce its probabilities
    if device == "auto" and not integer:
        import torch
        device = cod["device"]
        if device == "cuda" and not torch.cuda.is_available():
            raise BbcError(f"{name} was encoded on a CUDA device and this machine has none (its probabilities "
                           "come from a GPU's arithmetic; --device cpu --any-arithmetic tries the CPU)")
    if threads is not None and threads != cod["threads"] and not quiet and not integer:
        click.echo(f"bbcodec: note: --threads {threads} is not used: this file is decoded with the "
                   f"{cod['threads']} thread{'s' * (cod['threads'] != 1)} it was encoded with "
                   "(the network's float results depend on it)", err=True)
    report = _reporter(quiet)
    model = model_for_header(header["model"], device, override=model_name)
    api.check_model(header, model)
    differs = api.UNCHECKED  # with --any-arithmetic, decompress takes the probe (for its mismatch message)
    if not any_arithmetic:
        try:
            differs = api.check_arithmetic(parsed, model)
        except BbcError as e:
            raise type(e)(f"{name}: {e}")
    try:
        plan = api.decode_plan(header, model)
        if model.kind == "flow":
            params = api.flow_params(cod["grid_bits"], cod["scale_bits"])
            how = "by local bits-back"
        else:
            params = api.coding_params(model, cod["steps"], cod["grid"], cod["grid_bits"], cod.get("latents", 1),
                                       cod.get("order", "bitswap"))
            how = f"at K={cod['steps']}"
        seconds = api.estimate_seconds(model, params, plan, nhwc=bool(cod.get("nhwc", 0)),
                                       threads=(threads or defaults.THREADS) if integer else cod["threads"],
                                       tile=cod["tile"])
    except BbcError:
        seconds = None  # a damaged header: decompress says what is wrong
    if seconds is not None:
        T = cod["tile"]
        report.note(f"{_n(sum(plan), f'{T}x{T} tile')} for {model.name} {how} on {model.device}: "
                    f"about {duration(seconds)} to decode")
    try:
        images, _ = api.decompress(data, model, progress=report, any_arithmetic=any_arithmetic, threads=threads,
                                   differs=differs)
    except FormatError as e:
        raise FormatError(f"{name}: {e}")
    return images


@cli.command()
@click.argument("input")
@click.argument("originals", nargs=-1)
@_model_opt
@_decode_opts
@click.option("--quiet", is_flag=True, help="no progress")
@_guard
def verify(input, originals, model_name, device, any_arithmetic, quiet):
    """Decode a .bbc file in memory and check it: against ORIGINALS (files or folders, matched by
    name) when given, else against the pixel checksums stored in the file. Writes nothing."""
    from . import fileio
    from .format import container
    from .images import same_image

    data = fileio.read_input(input)
    parsed = _parse(input, data)
    stored = [im["name"] for im in container.image_records(parsed.header)]
    given, _ = fileio.gather_images(originals) if originals else ([], [])
    for g in given:  # every original is read and matched by name before the (long) decode
        if g.name not in stored:
            raise BbcError(f"{g.name}: not in {input} (it holds: {', '.join(stored[:5])}"
                           f"{', ...' if len(stored) > 5 else ''})")
    images = _decode(input, data, parsed, model_name, device, None, quiet, any_arithmetic)
    if not originals:
        click.echo(f"{input}: {len(images)} image{'s' * (len(images) != 1)} decoded and match the stored "
                   "pixel checksums")
        return
    by_name = {d.name: d for d in images}
    for g in given:
        d = by_name[g.name]
        if not same_image(d, g):
            raise BbcError(f"{g.name}: differs from the image decoded from {input}")
    missing = len(images) - len(given)
    click.echo(f"{input}: {len(given)} image{'s' * (len(given) != 1)} bit-exact against the originals"
               + (f" ({missing} more in the file, not given)" if missing else ""))


@cli.command()
@click.argument("input")
@click.option("--json", "as_json", is_flag=True)
@_guard
def info(input, as_json):
    """Show a .bbc file's header."""
    from . import fileio
    from .format import container

    data = fileio.read_input(input)
    h = _parse(input, data).header
    records = container.image_records(h)
    from .images import mode_channels
    sub = sum(im["width"] * im["height"] * mode_channels(im["mode"]) for im in records)
    out = dict(h, images=records, bytes=len(data), subpixels=sub, bpd=8.0 * len(data) / sub)
    if as_json:
        click.echo(json.dumps(out))
    else:
        c = h["coding"]
        click.echo(f"{input}: {len(data)} bytes, {out['bpd']:.4f} bits/dim, {len(records)} image(s)")
        order = f" order={c['order']}" if "order" in c else ""
        if h["codec"] == "flow-lbb":
            click.echo(f"  model {h['model']['name']} ({h['model']['sha256']}), flow by local bits-back: "
                       f"grid_bits={c['grid_bits']} scale_bits={c['scale_bits']} top_bits={c['top_bits']} "
                       f"tile={c['tile']} parallel={c['parallel']}")
        else:
            click.echo(f"  model {h['model']['name']} ({h['model']['sha256']}), K={c['steps']} grid={c['grid']} "
                       f"grid_bits={c['grid_bits']} tile={c['tile']} parallel={c['parallel']}{order}")
        a = h.get("arithmetic")
        if a is not None:
            where = ("integer network: decodes on any machine" if a.get("network") == "integer" else
                     "float network: decodes under this arithmetic only: " +
                     ", ".join(f"{k} {v}" for k, v in sorted(a.items()) if k != "network_probe"))
            click.echo(f"  format version {_parse(input, data).version}, {where}")
        for im in records:
            click.echo(f"  {im['name']}: {im['width']}x{im['height']} {im['mode']}")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@_guard
def models(as_json):
    """List the registered models."""
    from .registry import list_models

    ms = list_models()
    if as_json:
        click.echo(json.dumps(ms))
        return
    big = f"{defaults.PHOTO_PRIOR_ABOVE_PIXELS:,}"
    split = any(m["photo_default"] for m in ms)  # with a photo prior, the default is the small images' prior

    def role(m: dict) -> str:
        T = m.get("coding_tile")
        tiles = f"; {T}x{T} tiles for large images" if T else ""
        if m["photo_default"]:
            return f"[compress's default for images of more than {big} pixels{tiles}] "
        if m["default"] and split:
            return f"[compress's default for images of at most {big} pixels{tiles}] "
        return f"[{tiles[2:]}] " if T else ""

    for m in sorted(ms, key=lambda m: (not m["default"], not m["photo_default"])):  # the defaults first
        click.echo(f"{'*' if m['default'] or m['photo_default'] else ' '} {m['name']}: {role(m)}{m.get('description', '')}")


@cli.command()
@_model_opt
@click.option("--steps", type=click.IntRange(1, 100_000), default=DEFAULT_STEPS, show_default=True)
@click.option("--grid", default=None)
@click.option("--grid-bits", type=click.IntRange(0, 8), default=DEFAULT_GRID_BITS, show_default=True)
@_latents_opt
@_parallel_opt
@_device_opt
@click.option("--quiet", is_flag=True)
@_guard
def demo(model_name, steps, grid, grid_bits, latents, parallel, device, quiet):
    """Compress and decompress the bundled CIFAR-10 samples; check bit-exactness; print bits vs NELBO."""
    from .demo import run_demo

    run_demo(model_name, steps, grid, grid_bits, device, progress=_show_progress(quiet), latents=latents,
             parallel=parallel)


@cli.command()
@click.option("--data", required=True, help=".npz with x uint8 [N, H, W, C]; the last --val-images are held out")
@click.option("--run", "--run-dir", "run_dir", required=True,
              help="run folder: resumed if it exists (--run-dir under torchrun, whose own --run-path clashes)")
@click.option("--minutes", type=float, default=defaults.TRAIN_MINUTES, show_default=True,
              help="wall-clock budget of this stretch")
@click.option("--config", "config_json", default=None, help="model config JSON (new runs only)")
@click.option("--batch", type=int, default=defaults.TRAIN_BATCH, show_default=True)
@click.option("--lr", type=float, default=defaults.TRAIN_LR, show_default=True,
              help="peak learning rate (not stored in the run: give it again when resuming)")
@click.option("--ema", type=float, default=defaults.TRAIN_EMA, show_default=True)
@click.option("--threads", type=int, default=defaults.THREADS, show_default=True)
@click.option("--val-images", type=int, default=defaults.TRAIN_VAL_IMAGES, show_default=True)
@click.option("--init-from", default=None, help="start a new run from a model's weights: a registered NAME or a model folder (sha256-checked)")
@click.option("--device", default="cpu", type=click.Choice(["auto", "cpu", "cuda"]), show_default=True,
              help="under torchrun, each process takes the GPU of its LOCAL_RANK")
@click.option("--cooldown-images", type=click.IntRange(0), default=None,
              help="final decay: the learning rate falls linearly to --cooldown-to x --lr over this many images "
                   "from here, then stays; kept by later stretches of the run (0 clears it)")
@click.option("--cooldown-to", type=click.FloatRange(0, 1), default=0.1, show_default=True)
@click.option("--precision", type=click.Choice(["float32", "bf16"]), default="float32", show_default=True,
              help="bf16: forward and backward under bfloat16 autocast (weights, optimizer, validation in float32)")
@click.option("--coding-steps", default=None,
              help="discrete-time fine-tuning: train for what the coder pays at these K (comma-separated, e.g. "
                   "100,32; each image of a batch at one in turn), on the --init-from model's grid with latent "
                   "coding version 2's variances, the schedule frozen; validation is then their mean NELBO_K")
@click.option("--coding-grid", default=None, help="the grid of --coding-steps (default: opt3)")
@_guard
def train(data, run_dir, minutes, config_json, batch, lr, ema, threads, val_images, init_from, device,
          cooldown_images, cooldown_to, precision, coding_steps, coding_grid):
    """Train (or resume) a VDM prior, or a flow (a --config with "arch": "realnvp")."""
    from .diffusion.net import DEFAULT_CONFIG
    from .train import TrainOptions, train as run_train

    cfg = json.loads(Path(config_json).read_text()) if config_json else None
    try:
        ks = tuple(int(k) for k in coding_steps.split(",")) if coding_steps else ()
    except ValueError:
        raise BbcError(f"--coding-steps: comma-separated step counts, not {coding_steps!r}")
    if any(k < 1 for k in ks):
        raise BbcError("--coding-steps: step counts must be >= 1")
    if coding_grid and not ks:
        raise BbcError("--coding-grid goes with --coding-steps")
    if cfg is not None and cfg.get("arch") != "realnvp":  # a flow's config has its own defaults (FlowConfig)
        cfg = dict(DEFAULT_CONFIG, **cfg)
    run_train(TrainOptions(data=data, run=run_dir, minutes=minutes, batch=batch, lr=lr, ema=ema,
                           threads=threads, val_images=val_images, init_from=init_from, device=device,
                           cooldown_images=cooldown_images, cooldown_to=cooldown_to, precision=precision,
                           coding_steps=ks, **({"coding_grid": coding_grid} if coding_grid else {})), cfg)


@cli.command()
@click.argument("source")
@click.option("--data", required=True, help="TRAINING images to calibrate on (.npz with x uint8 [N, H, W, C]); "
              "never the test set")
@click.option("--out", required=True, help="the new model folder")
@click.option("--images", "n_images", type=click.IntRange(1), default=512, show_default=True,
              help="calibrate on the first N images")
@click.option("--register", "register_as", default=None,
              help="add the folder to the registry under this name (it must be inside the models folder)")
@click.option("--default", "make_default", is_flag=True, help="with --register: make it the default model")
@click.option("--photo-default", "photo_default", is_flag=True,
              help="with --register: make it the prior for photographs")
@click.option("--coding-tile", type=click.Choice(["64", "128"]), default=None,
              help="with --register: the larger tile it codes large images with by default (measure it first: "
                   "docs/decisions.md)")
@click.option("--description", default=None, help="with --register: the registry's description "
              "(default: \"integer version of SOURCE (portable: exact on any machine)\")")
@_guard
def convert(source, data, out, n_images, register_as, make_default, photo_default, coding_tile, description):
    """Make the integer version of a float model (post-training quantisation): its files decode
    bit-exact on any machine, device and thread count."""
    from .convert import convert_model
    from .modelcard import check_registrable, register, render_card

    if (make_default or photo_default or coding_tile or description) and not register_as:
        raise BbcError("--default, --photo-default, --coding-tile and --description go with --register")
    try:
        if register_as:
            check_registrable(register_as, Path(out))
        card = convert_model(source, data, out, n_images)
    except ValueError as e:
        raise BbcError(str(e))
    Path(out, "MODEL_CARD.md").write_text(render_card(card))
    click.echo(f"wrote {out} (integer version of {card['converted_from']['name']}, sha256 {card['sha256']})")
    if register_as:
        try:
            register(register_as, Path(out), description or f"integer version of {card['converted_from']['name']} "
                     "(portable: exact on any machine)", make_default, int(coding_tile) if coding_tile else None,
                     photo_default)
        except ValueError as e:
            raise BbcError(f"{e} ({out} is written, not registered)")
        roles = [r for r, on in (("the default model", make_default), ("the photo prior", photo_default)) if on]
        click.echo(f"registered {register_as}" + (f" as {' and '.join(roles)}" if roles else "")
                   + (f", coding {coding_tile}x{coding_tile} tiles" if coding_tile else ""))


@cli.command()
@_model_opt
@click.option("--data", default=None, help="TRAINING images (.npz with x uint8 [N, H, W, C]); never the test set")
@click.option("--images", "n_images", type=int, default=10000, show_default=True, help="use the first N images")
@click.option("--batch", type=int, default=64, show_default=True, help="images per curve point")
@click.option("--points", type=int, default=81, show_default=True, help="curve points in [0, 1]")
@click.option("--out", default=None, help="where to write grids.json (default: print only)")
@click.option("--add", "add", default=None, type=click.Choice(["opt1", "opt2", "opt3"]),
              help="instead: add this grid to the registered model's grids.json, from its frozen curve "
                   "(no --data; existing grids are unchanged)")
@click.option("--threads", type=int, default=None)
@_guard
def schedule(model_name, data, n_images, batch, points, out, add, threads):
    """Measure the model's per-step rates and compute ELBO-optimal K-step time grids (Watson et al.)."""
    import torch
    from .diffusion.grids import build_grids
    from .registry import load_model
    from .train import load_images

    if add:
        from .modelcard import add_shipped_grid
        from .registry import default_model_name
        name = model_name or default_model_name()
        try:
            add_shipped_grid(name, add)
        except ValueError as e:
            raise BbcError(f"model {name}: {e}")
        click.echo(f"added grid {add} to {name}")
        return
    if data is None:
        raise BbcError("schedule needs --data (training images), or --add GRID")
    if threads:
        torch.set_num_threads(threads)
    model = load_model(model_name, "cpu")
    if model.kind == "flow":
        raise BbcError(f"{model.name} is a flow: time grids are for diffusion models")
    x = load_images(data)[:n_images]
    g = build_grids(model.vdm.net, model.schedule, x, n_curve=points, batch=batch,
                    source=f"{Path(data).name}[:{len(x)}]")
    click.echo(f"continuous diffusion term: {g['continuous_diffusion_bpd']:.4f} bits/dim (expected, from the curve)")
    click.echo("expected diffusion bits/dim; posterior variances (latents 1): uniform, opt1; "
               "fitted variances (latents 2): uniform, opt2; on the smoothed curve: uniform, opt3")
    for k, row in g["expected_diffusion_bpd"].items():
        click.echo(f"{int(k):5d}  {row['uniform_bpd']:.4f}  {row['opt1_bpd']:.4f}   "
                   f"{row['uniform_fitted_bpd']:.4f}  {row['opt2_bpd']:.4f}   "
                   f"{row['uniform_smooth_bpd']:.4f}  {row['opt3_bpd']:.4f}")
    if out:
        from .fileio import write_atomic
        write_atomic(out, (json.dumps(g, indent=1) + "\n").encode(), force=True)


@cli.command()
@click.argument("dataset")
@click.option("--codec", "codecs", multiple=True, default=["vdm"], show_default=True,
              help="vdm, flow, png, webp, jxl, jxl-e9, jxl-e10, jpegls, jp2k (repeatable)")
@click.option("--flow-model", default=None, help=f"the flow of --codec flow (default {defaults.FLOW_MODEL})")
@click.option("--flow-grid-bits", type=click.IntRange(8, 20), default=None,
              help=f"--codec flow: grid 2^-k (default {defaults.FLOW_GRID_BITS})")
@click.option("--limit", type=int, default=None, help="first N images")
@click.option("--offset", type=int, default=0)
@_model_opt
@click.option("--steps", type=click.IntRange(1, 100_000), default=DEFAULT_STEPS, show_default=True)
@click.option("--grid", default=None)
@click.option("--grid-bits", type=click.IntRange(0, 8), default=DEFAULT_GRID_BITS, show_default=True)
@_latents_opt
@functools.partial(_order_opt, repeatable=True)
@_parallel_opt
@_tile_opt
@click.option("--mode", "modes", multiple=True, type=click.Choice(["archive", "per-file"]),
              default=["archive", "per-file"], show_default=True)
@click.option("--out", default=None, help="JSON results (source of truth); a .md table is written beside it")
@click.option("--resume", is_flag=True, help="continue a partial --out: finished runs are kept, an "
              "unfinished one goes on after its last complete file")
@_bootstrap_opt
@click.option("--chunk", type=click.IntRange(1, 100_000), default=None,
              help="archive mode: images per archive (default: all in one)")
@click.option("--nelbo-steps", type=click.IntRange(1, 100_000), default=None,
              help="steps per tile for the model's NELBO_K reference, one from each of that many runs "
              "of the K (stratified: unbiased, cheaper, a little noisy per image; default: all K)")
@click.option("--no-summary", is_flag=True, help="learned codecs: code and check the files only, and leave the "
              "summary (with its NELBO reference) to a later --resume, e.g. over slices joined by bench/merge.py")
@click.option("--threads", type=click.IntRange(1, 1024), default=defaults.THREADS, show_default=True,
              help="torch threads of the network (coding and the NELBO reference)")
@_device_opt
@click.option("--quiet", is_flag=True)
@_guard
def bench(dataset, codecs, flow_model, flow_grid_bits, limit, offset, model_name, steps, grid, grid_bits, latents, orders,
          parallel, tile, modes, out, resume, bootstrap, chunk, nelbo_steps, no_summary, threads, device, quiet):
    """Benchmark codecs on a dataset: decoded and compared, then bits, NELBO and seconds."""
    import torch
    from . import bench as B

    torch.set_num_threads(threads)
    res = B.run(dataset, list(codecs), limit, offset, out, model_name, steps, grid, grid_bits, parallel,
                list(modes), resume=resume, device=device, show_progress=_show_progress(quiet),
                bootstrap=_bootstrap_arg(bootstrap), chunk=chunk, nelbo_steps=nelbo_steps,
                latents=latents, summarize=not no_summary, orders=tuple(orders), flow_model=flow_model,
                flow_grid_bits=flow_grid_bits, tile=None if tile is None else int(tile))
    md = B.markdown(res)
    if out:
        Path(out).with_suffix(".md").write_text(md)
    click.echo(md)


def main(argv=None):
    cli.main(args=argv, prog_name="bbcodec", standalone_mode=True)


if __name__ == "__main__":
    main()
