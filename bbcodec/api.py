"""compress(images, model) -> bytes and decompress(bytes) -> images: the library entry points.

Images are cut into tiles and the tiles coded on ONE ANS stack (`format.plan`), so initial bits are
paid once per archive, not per image: the leading tiles by a classical bootstrap codec, the rest by
the model `parallel` at a time (`encode`). The stack starts on fixed seed words; only the part the
encoder consumed is stored, and the decoder, replaying the batches in reverse, must end on exactly
the seed and on the pixel checksums of the header: any difference is an error, never a wrong
picture. The bytes are `format`'s business; this module only puts the pieces together.
"""
from __future__ import annotations

import functools
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from . import bootstrap as boot
from . import defaults, encode
from .ans import Stack
from .diffusion.codec import ChainSpec, CodingParams, EpsFn
from .flows.codec import FlowCodingParams
from .errors import ArithmeticMismatchError, BbcError, FormatError, ModelError
from .format import container, plan
from .format.constants import seed_words
from .format.header import (CODEC_ID, FLOW_CODEC_ID, Coding, FlowCoding, arithmetic, arithmetic_mismatch, coding_from_header,
                             image_record, side_chunks, side_length,
                             split_side, transparency_from_json)
from .images import ImageData, archive_checksum
from .priors import DiffusionPrior, FlowPrior
from .progress import Progress, Silent
from .registry import LoadedModel


@dataclass
class Report:
    bytes: int
    subpixels: int
    nelbo_bits: float
    initial_bits: int
    seconds: float
    per_image_nelbo_bits: list = field(default_factory=list)
    bootstrap_bits: int = 0       # classical bytes of the bootstrap tiles (bootstrap.py), on the stack
    bootstrap_tiles: int = 0
    model_tiles: int = 0
    per_image_bootstrap_bits: list = field(default_factory=list)
    ramp: int = plan.DEFAULT_RAMP  # the batch ramp the file was coded with
    encodes: int = 1              # encodes started (more when the slower-ramp retry fired)
    tiles_coded: int = 0          # tile chains coded over all of them (model_tiles when none was retried)
    metadata_bytes: int = 0       # what ICC profiles, EXIF and text/colour tags add to the file
    boot_codec: str | None = None
    payload_bytes: int = 0        # the ANS stack's stored words (the file less header, framing and side data)

    @property
    def bpd(self) -> float:
        return 8.0 * self.bytes / self.subpixels

    @property
    def nelbo_bpd(self) -> float:
        """NELBO of the chains coded, plus side data: the model's share of the file."""
        return self.nelbo_bits / self.subpixels

    @property
    def expected_bits(self) -> float:
        """What the file should cost without coder overhead: chain NELBO + bootstrap bytes + side data."""
        return self.nelbo_bits + self.bootstrap_bits

    @property
    def pixels_bpd(self) -> float:
        """Bits per subpixel of the file without its metadata: what cjxl or the bench compare."""
        return 8.0 * (self.bytes - self.metadata_bytes) / self.subpixels

    @property
    def bpd_without_initial(self) -> float:
        return (8.0 * self.bytes - self.initial_bits) / self.subpixels

    def as_dict(self) -> dict:
        return {"bytes": self.bytes, "subpixels": self.subpixels, "bpd": self.bpd,
                "metadata_bytes": self.metadata_bytes, "pixels_bpd": self.pixels_bpd, "boot_codec": self.boot_codec,
                "nelbo_bpd": self.nelbo_bpd, "bootstrap_bits": self.bootstrap_bits,
                "bootstrap_tiles": self.bootstrap_tiles, "model_tiles": self.model_tiles,
                "expected_bpd": self.expected_bits / self.subpixels,
                "overhead_pct": 100.0 * (8.0 * self.bytes / self.expected_bits - 1.0),
                "initial_bits": self.initial_bits, "bpd_without_initial": self.bpd_without_initial,
                "seconds": self.seconds, "ramp": self.ramp, "encodes": self.encodes,
                "tiles_coded": self.tiles_coded, "payload_bytes": self.payload_bytes}


@contextmanager
def torch_threads(n: int):
    """Run the network with exactly n intra-op threads: on the CPU its float results depend on
    how reductions are split between threads, so the decoder must use the encoder's count."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _progress(progress: Progress | bool | None) -> Progress:
    """A Progress from what the caller gave: one, True (stderr), or False/None (silent)."""
    if isinstance(progress, Progress):
        return progress
    return Progress() if progress else Silent()


# Coder-side time (ANS, bin masses) on top of the network's: under 10% in the committed profile.
CODER_SHARE = 1.1


def estimate_seconds(model: LoadedModel, params: CodingParams, batches: list[int], nhwc: bool, threads: int,
                     tile: int | None = None) -> float:
    """Seconds the network (and coder) should take for these batch sizes at K steps, from the time of
    one call on one tile and on the largest batch, measured now after a warm-up call (about a second;
    the warm-up also builds the channels-last graph the coding then uses)."""
    if not batches:
        return 0.0
    if model.kind == "flow":
        return _estimate_flow_seconds(model, params, batches, threads)
    eps_fn = EpsFn(model.vdm.net, model.device, nhwc=nhwc)
    T = tile or model.tile

    def timed(n: int) -> float:
        z = np.zeros((n, 3, T, T))
        t = time.perf_counter()
        eps_fn(z, 0.0)
        return time.perf_counter() - t

    with torch.inference_mode(), torch_threads(threads):
        big = max(batches)
        # TorchScript's profiling executor optimizes the graph over its first calls, which run slower:
        # warm up both shapes, then take the faster of two timings of each
        for n in (1, big, 1, big):
            timed(n)
        one = min(timed(1), timed(1))
        per_tile = (min(timed(big), timed(big)) - one) / (big - 1) if big > 1 else one / 2
    per_tile = max(per_tile, 0.0)
    base = max(one - per_tile, 0.0)
    return CODER_SHARE * params.steps * sum(base + per_tile * n for n in batches)


def model_tile_batches(images: list[ImageData], model: LoadedModel, parallel: int, bootstrap: str | None,
                       tile: int | None = None) -> list[int]:
    """Batch sizes an encode of these images will code with the model (at the default ramp; a one-tile
    bootstrap is assumed, the usual case): what `estimate_seconds` and progress are given."""
    T = check_tile(model, tile, [(d.height, d.width) for d in images])
    n = sum(plan.tile_count(d.height, d.width, T) for d in images)
    n_boot = min(n, 1) if bootstrap is not None else 0
    return [len(b) for b in plan.batches(n - n_boot, parallel)]


def _estimate_flow_seconds(model: LoadedModel, params: FlowCodingParams, batches: list[int], threads: int) -> float:
    """Seconds a flow's encode (or decode) of these batches should take: one tile and the largest batch
    coded now, timed (coder included), and the rest scaled from them."""
    prior = FlowPrior(model.flow, params, model.device)
    T = model.tile

    # a textured tile: a flat one codes several times faster than images do (fewer bins per coupling)
    tile = np.rint(127.5 + 100 * np.sin(np.arange(3 * T * T) * 0.37)).astype(np.uint8).reshape(3, T, T)

    def timed(n: int) -> float:
        x = np.broadcast_to(tile, (n, 3, T, T)).copy()
        st = Stack(seed_words(prior.seed_size(n, T), prior.format_version))
        t = time.perf_counter()
        prior.codec(np.ones(x.shape, dtype=bool)).push(st, x)
        return time.perf_counter() - t

    with torch.inference_mode(), torch_threads(threads):
        big = max(batches)
        timed(1)
        one = min(timed(1), timed(1))
        per_tile = (timed(big) - one) / (big - 1) if big > 1 else one / 2
    per_tile = max(per_tile, one / big)
    return sum(one + (b - 1) * per_tile for b in batches)


FLOW_PROBE_PARAMS = FlowCodingParams()  # a flow file's network probe is taken at these, whatever the file's


def flow_params(grid_bits: int | None = None, scale_bits: int | None = None) -> FlowCodingParams:
    """The flow codec's precision: `defaults` for what is not given."""
    p = FlowCodingParams(grid_bits=defaults.FLOW_GRID_BITS if grid_bits is None else grid_bits,
                         scale_bits=defaults.FLOW_SCALE_BITS if scale_bits is None else scale_bits)
    try:
        p.check()
    except ValueError as e:
        raise BbcError(f"flow coding parameters: {e}")
    return p


def coding_params(model: LoadedModel, steps: int, grid: str | None = None, grid_bits: int = 0,
                  latents: int | None = None, order: str = "bitswap") -> CodingParams:
    """CodingParams with the model's defaults for what is not given (latents: version 2 where the model
    has its mse curve; grid: the model's ELBO-optimal grid for that version, where shipped: opt3, else
    opt2, for version 2; opt1 for version 1). order: "bitswap", or "bbans" (comparison only)."""
    if order not in container.ORDERS:
        raise BbcError(f"unknown chain order {order!r} (known: {', '.join(container.ORDERS)})")
    latents = model.default_latents if latents is None else latents
    if latents == 2 and model.mse_curve is None:
        raise BbcError(f"--latents 2 needs the model's mse curve; model {model.name} has none (use --latents 1)")
    if grid is None:
        fitted = [g for g in ("opt3", "opt2") if g in model.grids] if latents == 2 else []
        grid = fitted[0] if fitted else model.default_grid
    return CodingParams(steps=steps, grid=grid, grid_bits=grid_bits, latents=latents, order=order)


def compress(images: list[ImageData], model: LoadedModel, params: CodingParams | None = None,
             parallel: int = defaults.PARALLEL, progress: Progress | bool | None = None,
             bootstrap: str | None = defaults.BOOTSTRAP, threads: int = defaults.THREADS,
             nhwc: bool | None = None, tile: int | None = None) -> tuple[bytes, Report]:
    """Code images into one .bbc archive on one ANS stack.

    params: None for the model's defaults (`coding_params`; a flow's: `flow_params`). threads: torch intra-op threads of the
    network, written to the header (the decoder replays them). progress: a `progress.Progress`, True
    for one on stderr, or None. bootstrap: "auto" (the first available of `bootstrap.CODECS`), a
    codec name, or None (initial bits from seed words only). nhwc: run the network channels-last
    (None: on the CPU; recorded in the header as `coding.nhwc`). tile: the tile size T (None:
    `default_tile`; a diffusion network codes any of `defaults.TILES`, recorded in the header).
    """
    if not images:
        raise BbcError("no images to compress")
    if parallel < 1:
        raise BbcError("--parallel must be >= 1")
    if threads < 1:
        raise BbcError("--threads must be >= 1")
    if params is None:
        params = flow_params() if model.kind == "flow" else coding_params(model, defaults.STEPS)
    if isinstance(params, FlowCodingParams) != (model.kind == "flow"):
        raise BbcError(f"model {model.name} is a {model.kind} model: its coding parameters are "
                       f"{'FlowCodingParams' if model.kind == 'flow' else 'CodingParams'}")
    nhwc = model.device == "cpu" and model.kind == "diffusion" if nhwc is None else nhwc
    with torch_threads(threads), torch.inference_mode():
        return _compress(images, model, params, parallel, _progress(progress), bootstrap, threads, nhwc, tile)


def tile_sizes(model: LoadedModel) -> tuple[int, ...]:
    """The tile sizes a model codes with: a flow, its own; a diffusion network, which is convolutional,
    its own and those of `defaults.TILES`, for an integer network those at which it stays exact
    (`IntUNet.exact_at`; the shipped ones: all three)."""
    if model.kind == "flow":
        return (model.tile,)
    sizes = sorted({model.tile, *defaults.TILES})
    if model.integer:
        sizes = [T for T in sizes if model.vdm.net.exact_at(T)]
    return tuple(sizes)


def default_tile(model: LoadedModel, sizes: list[tuple[int, int]]) -> int:
    """The tile a model codes these images (height, width) with when none is asked for: its registry's
    `coding_tile` where most of the pixels are in images at least that large both ways and the file
    holds at least `defaults.LARGE_TILE_MIN_TILES` tiles of it, else its own tile. A larger tile gives
    each pixel more context (the photo prior at 64: `defaults.TILES`), but an image smaller than the
    tile would be padded to it at the network's cost, and the bootstrap codec codes about the same
    number of leading tiles at any size, so on a small file a larger tile hands it more of the pixels."""
    T = model.coding_tile
    if model.kind == "flow" or T is None or T <= model.tile:
        return model.tile
    sizes = list(sizes)
    fits = [(h, w) for h, w in sizes if h >= T and w >= T]
    most = 2 * sum(h * w for h, w in fits) > sum(h * w for h, w in sizes)
    enough = sum(plan.tile_count(h, w, T) for h, w in sizes) >= defaults.LARGE_TILE_MIN_TILES
    return T if most and enough else model.tile


def check_tile(model: LoadedModel, tile: int | None, sizes: list[tuple[int, int]] = ()) -> int:
    """The tile size to code with (None: `default_tile` for images of these sizes), or a BbcError naming
    the sizes allowed."""
    import numbers
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, numbers.Integral)):
        raise BbcError(f"tile: {tile!r} is not an integer tile size")
    T = default_tile(model, list(sizes)) if tile is None else int(tile)
    sizes_ok = tile_sizes(model)
    if T not in sizes_ok:
        raise BbcError(f"--tile {T}: model {model.name} codes tiles of {', '.join(map(str, sizes_ok))}")
    return T


def _compress(images, model, params, parallel, progress: Progress, bootstrap, threads, nhwc,
              tile: int | None = None) -> tuple[bytes, Report]:
    t0 = time.time()
    T = check_tile(model, tile, [(d.height, d.width) for d in images])
    if model.kind == "flow":
        prior = FlowPrior(model.flow, params, model.device)
        version = prior.format_version
    else:
        spec = ChainSpec(model.schedule, params, model.time_grid(params.grid, params.steps), model.mse_curve)
        prior = DiffusionPrior(spec, EpsFn(model.vdm.net, model.device, nhwc=nhwc))
        version = params.format_version
    tiles = [t for i, d in enumerate(images) for t in plan.make_tiles(i, d.main, d.height, d.width, d.main.shape[0], T)]
    for t in tiles:  # what the prior codes outside the image (a flow codes every subpixel: `priors`)
        t.x = prior.fill(t.x, t.mask)
    boot_codec = boot.default_codec() if bootstrap == "auto" else bootstrap
    if boot_codec is not None and boot_codec not in boot.CODECS:
        raise BbcError(f"unknown bootstrap codec {boot_codec!r} (known: {', '.join(boot.CODECS)})")
    boot_data: list[bytes] = []
    if boot_codec is not None:
        boot.check_codec(boot_codec)
        boot_data = encode.choose_bootstrap(tiles, boot_codec, model, prior)
    try:
        enc = encode.encode(tiles, len(images), prior, parallel, boot_codec, boot_data, progress)
    except OverflowError as e:  # a flow's latent beyond its top_range: this flow cannot code the image
        if model.kind != "flow":
            raise
        raise BbcError(f"model {model.name} cannot code these images ({e})")
    n_model = len(tiles) - enc.n_boot
    archive = dict(tile=T, parallel=parallel, seed_words=enc.seed_words, seed_kept=enc.seed_kept, threads=threads,
                   device=model.device, boot_codec=boot_codec if enc.n_boot else None, boot_tiles=enc.n_boot,
                   ramp=enc.ramp)
    if model.kind == "flow":
        coding = FlowCoding(grid_bits=params.grid_bits, scale_bits=params.scale_bits, top_bits=params.top_bits,
                            top_range=params.top_range, **archive)
    else:
        coding = Coding(steps=params.steps, grid=params.grid, grid_bits=params.grid_bits, latents=params.latents,
                        nhwc=int(nhwc and n_model > 0 and not prior.integer), order=params.order, **archive)
    header = {"codec": FLOW_CODEC_ID if model.kind == "flow" else CODEC_ID,
              "model": {"name": model.name, "sha256": model.sha256}, "coding": coding.to_json(),
              "images": container.image_table([image_record(d) for d in images]),
              "pixels_crc32": archive_checksum(images)}
    if prior.integer and version < container.INTEGER_NETWORK_VERSION:
        raise BbcError(f"model {model.name} is an integer network: it codes format version "
                       f"{container.INTEGER_NETWORK_VERSION} or later, not {version}")
    if version >= 3:
        if model.kind == "flow":
            probe = FlowPrior(model.flow, FLOW_PROBE_PARAMS, model.device, version).probe(T) if n_model else None
            header["arithmetic"] = arithmetic(model.device, tile=T, probe=probe)
        else:
            header["arithmetic"] = arithmetic(model.device, prior.eps_fn if n_model else None, T,
                                              integer=prior.integer)
    payload = container.words_to_bytes(enc.words)
    side = container.pack_side([c for d in images for c in side_chunks(d)])
    data = container.Container(header, payload, side, version).to_bytes()
    # the same file without ICC, EXIF and tags (not written): what the metadata costs
    bare_header = dict(header, images=container.image_table([image_record(d, metadata=False) for d in images]))
    bare_side = container.pack_side([c for d in images for c in side_chunks(d, metadata=False)])
    bare_len = len(container.Container(bare_header, payload, bare_side, version).to_bytes())
    boot_bits = np.zeros(len(images))
    for j, d in enumerate(boot_data[:enc.n_boot]):
        boot_bits[tiles[j].image] += boot.bits(d)
    rep = Report(bytes=len(data), subpixels=sum(d.subpixels for d in images),
                 nelbo_bits=float(enc.nelbo_bits.sum()) + 8 * len(side), initial_bits=32 * (enc.seed_words - enc.seed_kept),
                 seconds=time.time() - t0, per_image_nelbo_bits=[float(v) for v in enc.nelbo_bits],
                 bootstrap_bits=int(boot_bits.sum()), bootstrap_tiles=enc.n_boot, model_tiles=n_model,
                 per_image_bootstrap_bits=[int(v) for v in boot_bits], ramp=enc.ramp, encodes=enc.encodes,
                 tiles_coded=enc.tiles_coded, metadata_bytes=len(data) - bare_len, boot_codec=coding.boot_codec,
                 payload_bytes=len(payload))
    return data, rep


def check_model(header: dict, model: LoadedModel) -> None:
    want = header["model"]
    if want["sha256"] != model.sha256:
        raise ModelError(f"file was coded with model {want['name']} ({want['sha256']}), "
                         f"not {model.name} ({model.sha256})")


def _coding(h: dict, model: LoadedModel) -> Coding | FlowCoding:
    """The header's coding record, checked against the model it is decoded with."""
    if (h["codec"] == FLOW_CODEC_ID) != (model.kind == "flow"):
        raise ModelError(f"file was coded with a {'flow' if h['codec'] == FLOW_CODEC_ID else 'diffusion'} model, "
                         f"and {model.name} is a {model.kind} model")
    coding = coding_from_header(h)
    sizes = tile_sizes(model)
    if coding.tile not in sizes:
        raise FormatError(f"corrupted header (tile size {coding.tile}: model {model.name} codes "
                          f"{', '.join(map(str, sizes))})")
    return coding


def _layout(h: dict, model: LoadedModel):
    """What a header says the decoder has to do: its coding record, the image records, empty tiles,
    and the encoder's batches of model tiles (in coding order)."""
    coding = _coding(h, model)
    metas = container.image_records(h)
    tiles = [t for i, im in enumerate(metas)
             for t in plan.make_tiles(i, None, im["height"], im["width"], im["channels"], coding.tile)]
    if coding.boot_tiles > len(tiles) or (coding.boot_tiles > 0) != (coding.boot_codec is not None):
        raise FormatError("corrupted header (bootstrap tiles)")
    if coding.boot_codec is not None:
        boot.check_codec(coding.boot_codec)
    bs = plan.batches(len(tiles) - coding.boot_tiles, coding.parallel, start=coding.boot_tiles, ramp=coding.ramp)
    return coding, metas, tiles, bs


def decode_plan(h: dict, model: LoadedModel) -> list[int]:
    """Batch sizes of model tiles a decode of this header runs (for `estimate_seconds`)."""
    return [len(b) for b in _layout(h, model)[3]]


def verify(data: bytes, model: LoadedModel, images: list[ImageData], progress: Progress | bool | None = None) -> None:
    """Decode `data` in memory and compare with the images it was made from; BbcError on any difference."""
    from .images import same_image
    out, _ = decompress(data, model, progress)
    if len(out) != len(images):
        raise BbcError(f"verification failed: the file decodes to {len(out)} images, not {len(images)}")
    for a, b in zip(images, out):
        if not same_image(a, b):
            raise BbcError(f"verification failed: {a.name} does not decode bit-exact")


def _arithmetic_differs(c: container.Container, model: LoadedModel) -> str | None:
    """Why this machine would not reproduce the file's probabilities (version 3 files record what they
    depended on; older ones, and files with no tile coded by the model, depend on nothing recorded)."""
    if c.version < 3:
        return None
    coding = _coding(c.header, model)  # the probe runs at the model's tile size
    tiles = sum(plan.tile_count(im["height"], im["width"], coding.tile) for im in container.image_records(c.header))
    if coding.boot_tiles >= tiles:
        return None  # classical bytes only: no network, no float probabilities
    recorded = c.header["arithmetic"]
    if model.kind == "flow":  # the probe codes a fixed tile at fixed parameters: it measures the machine only
        with torch.inference_mode(), torch_threads(coding.threads):
            probe = FlowPrior(model.flow, FLOW_PROBE_PARAMS, model.device, format_version=c.version).probe(coding.tile)
            here = arithmetic(model.device, tile=coding.tile,
                              probe=probe if "network_probe" in recorded else None)
        return arithmetic_mismatch(recorded, here)
    eps_fn = EpsFn(model.vdm.net, model.device, nhwc=bool(coding.nhwc))
    integer = integer_network(c.header)
    with torch.inference_mode(), torch_threads(defaults.THREADS if integer else coding.threads):
        here = arithmetic(model.device, eps_fn if "network_probe" in recorded else None, coding.tile,
                          integer=integer and eps_fn.integer)
    return arithmetic_mismatch(recorded, here)


def integer_network(header: dict) -> bool:
    """The file was coded with an integer network (format version 4): any machine, device, thread
    count or grouping of network calls reproduces its probabilities."""
    return (header.get("arithmetic") or {}).get("network") == "integer"


def _refusal(why: str) -> ArithmeticMismatchError:
    return ArithmeticMismatchError(why + " (or try with --any-arithmetic: a wrong result is still caught)")


def check_arithmetic(c: container.Container, model: LoadedModel) -> str | None:
    """Refuse, before any decoding, a file written under arithmetic other than this machine's; else
    what `decompress(differs=)` takes (None: the arithmetic matches), so its probe runs once."""
    why = _arithmetic_differs(c, model)
    if why:
        raise _refusal(why)
    return why


UNCHECKED = object()  # decompress(differs=) not given: it takes the probe itself


def decompress(data: bytes, model: LoadedModel, progress: Progress | bool | None = None,
               any_arithmetic: bool = False, threads: int | None = None,
               call_tiles: int | None = None, differs=UNCHECKED) -> tuple[list[ImageData], dict]:
    """Decode every image of a .bbc archive; raises FormatError / ModelError on any mismatch, and
    ArithmeticMismatchError for a file made under other arithmetic (unless any_arithmetic).
    threads: the network's threads for a file of an integer network (default `defaults.THREADS`); a
    float network's file is decoded with the encoder's count, which its results depend on.
    call_tiles: an integer network's calls are split into at most this many tiles (less memory; the
    results are the same). differs: what `check_arithmetic` returned for this file and model, where
    the caller asked already (the probe is a network call)."""
    progress = _progress(progress)
    c = container.parse(data)
    h = c.header
    check_model(h, model)
    coding, metas, tiles, bs = _layout(h, model)
    if differs is UNCHECKED:
        differs = _arithmetic_differs(c, model)  # one probe: the refusal and the mismatch message below
    if differs and not any_arithmetic:
        raise _refusal(differs)
    try:
        if model.kind == "flow":
            prior = FlowPrior(model.flow, coding.params(), model.device, format_version=c.version)
        else:
            params = CodingParams(steps=coding.steps, grid=coding.grid, grid_bits=coding.grid_bits,
                                  latents=coding.latents, format_version=c.version, order=coding.order)
            spec = ChainSpec(model.schedule, params, model.time_grid(params.grid, params.steps), model.mse_curve)
            prior = DiffusionPrior(spec, EpsFn(model.vdm.net, model.device, nhwc=bool(coding.nhwc),
                                               call_tiles=call_tiles))
    except ValueError as e:
        raise FormatError(f"unsupported coding parameters ({e})")
    seed = seed_words(coding.seed_words, c.version)
    words = np.concatenate([seed[:coding.seed_kept], container.bytes_to_words(c.payload)])
    if len(words) == 0:
        raise FormatError("corrupted payload (empty)")
    try:
        stack = Stack(words)
    except ValueError:
        raise FormatError("corrupted payload")
    if differs:
        mismatch = f"decoded data does not match its checksums: {differs}"
    elif c.version >= 3:
        mismatch = "decoded data does not match its checksums: the file is damaged (its arithmetic record matches)"
    else:
        mismatch = ("decoded data does not match its checksums: the file is damaged, or the network's probabilities "
                    f"differed from the encoder's (a version {c.version} file records only its device: "
                    f"{coding.device}; the torch build and CPU kernels must be the encoder's)")
    progress.begin("decode", [len(b) for b in reversed(bs)], prior.steps, coding.tile ** 2)
    if integer_network(h) and prior.integer:
        threads = threads or defaults.THREADS
    else:  # a float network replays the encoder's count (also when a forged header says otherwise)
        threads = coding.threads
    with torch.inference_mode(), torch_threads(threads):
        for b in reversed(bs):
            mask = np.stack([tiles[j].mask for j in b])
            codec = prior.codec(mask, on_step=functools.partial(progress.advance, len(b)))
            try:
                x = codec.pop(stack)
            except (OverflowError, ValueError, RuntimeError):
                raise FormatError(mismatch)
            for k, j in enumerate(b):
                tiles[j].x = x[k]
        for j in reversed(range(coding.boot_tiles)):
            try:
                tiles[j].x = boot.tile_codec(coding.boot_codec, tiles[j].mask).pop(stack)
            except (OverflowError, ValueError, RuntimeError, FormatError):  # after wrong model pops: garbage
                raise FormatError(mismatch)
    progress.end()
    if not np.array_equal(stack.words(), seed):
        raise FormatError(mismatch)
    side = container.unpack_side(c.side, side_length(metas))
    out, k = [], 0
    for im, (alpha, palette, icc, exif) in zip(metas, split_side(side, metas)):
        n = plan.tile_count(im["height"], im["width"], coding.tile)
        main = plan.untile(tiles[k:k + n], im["height"], im["width"], im["channels"], coding.tile)
        k += n
        out.append(ImageData(im["name"], im["mode"], im["width"], im["height"], main, alpha, palette,
                             im["palette_mode"], transparency_from_json(im["transparency"]), im["meta"], icc, exif))
    if archive_checksum(out) != h["pixels_crc32"]:
        raise FormatError(mismatch)
    return out, h
