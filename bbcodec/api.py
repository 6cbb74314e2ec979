"""compress(images, model) -> bytes and decompress(bytes) -> images: the library entry points.

Images are cut into T x T tiles (T from the model config), row-major, image after image. Tiles
are coded `parallel` at a time (tiles in flight) on ONE ANS stack, so initial bits are paid once
per archive, not per image. The stack starts on fixed seed words (`ans.seed_words`); only the
part of the seed the encoder consumed is stored: that is the initial-bit cost, reported as
`initial_bits`.  The decoder replays the encoder's batches in reverse and must end on exactly
the seed, and on the pixel checksums of the header: any difference is an error, never a wrong
picture.
"""
from __future__ import annotations

import functools
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from . import bootstrap as boot
from . import container, defaults
from .ans import Stack, seed_words
from .diffusion.codec import ChainSpec, ChainStats, CodingParams, EpsFn, tile_batch_codec
from .errors import BbcError, FormatError, ModelError
from .images import ImageData, archive_checksum
from .progress import Progress, Silent
from .registry import LoadedModel

CODEC_ID = "vdm-bitswap"
MAX_SEED_RETRIES = 4
# batch growth divisors tried in turn while a bootstrapped encode still draws seed words beyond the
# ANS head (see _batches)
DEFAULT_RAMP = 2  # the format's default (not written to the header)
RAMPS = (DEFAULT_RAMP, 4, 8, 16)
NHWC_ON_CPU = True  # CPU encoders run the network channels-last (header coding.nhwc; see EpsFn)
HEAD_WORDS = 2  # the ANS head: seed words any file may draw
LOW_WATER_SLACK = 2  # words by which the stack's low-water mark may differ from the seed words finally kept


@dataclass
class Tile:
    image: int
    x: np.ndarray      # uint8 [3, T, T]
    mask: np.ndarray   # bool  [3, T, T]


def tile_layout(height: int, width: int, T: int):
    """(y, x, h, w) of every tile of an image, row-major."""
    for ty in range(math.ceil(height / T)):
        for tx in range(math.ceil(width / T)):
            y, x = ty * T, tx * T
            yield y, x, min(T, height - y), min(T, width - x)


def make_tiles(index: int, main: np.ndarray | None, height: int, width: int, channels: int, T: int) -> list[Tile]:
    """Cut main (uint8 [C, H, W], or None for the decoder) into masked T x T tiles."""
    tiles = []
    for y, x, h, w in tile_layout(height, width, T):
        t = np.zeros((3, T, T), dtype=np.uint8)
        m = np.zeros((3, T, T), dtype=bool)
        m[:channels, :h, :w] = True
        if main is not None:
            t[:channels, :h, :w] = main[:, y:y + h, x:x + w]
        tiles.append(Tile(index, t, m))
    return tiles


def _batches(n: int, parallel: int, start: int = 0, ramp: int = DEFAULT_RAMP) -> list[range]:
    """Consecutive tile batches, growing from 1 up to `parallel` tiles in flight.

    A batch pops its initial bits from what earlier batches pushed; starting with one tile and
    growing with what is already coded (1/ramp as many tiles as are done) keeps the seed words
    drawn, i.e. the initial bits, near those of a single tile. ramp = 2 suffices up to about 8
    tiles in flight; past that a batch can outrun what the done tiles left on the stack, and the
    encoder retries with a slower ramp (`RAMPS`), which the header then records. The retry starts
    as soon as a batch has dipped into the seed beyond the ANS head, not after the whole image.
    """
    out, i = [], 0
    while i < n:
        b = min(parallel, max(1, i // ramp), n - i)
        out.append(range(start + i, start + i + b))
        i += b
    return out


def _side_chunks(d: ImageData, metadata: bool = True) -> list[bytes]:
    """Side data of an image in file order: alpha plane, palette, then (metadata) ICC profile, EXIF."""
    out = []
    if d.alpha is not None:
        out.append(np.ascontiguousarray(d.alpha).tobytes())
    if d.palette is not None:
        out.append(d.palette)
    for b in (d.icc, d.exif) if metadata else ():
        if b:
            out.append(b)
    return out


def _transparency_to_json(t):
    if t is None or isinstance(t, int):
        return t
    if isinstance(t, bytes):
        return t.hex()
    raise BbcError(f"unsupported transparency value {t!r}")


def _transparency_from_json(t):
    return bytes.fromhex(t) if isinstance(t, str) else t


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
    ramp: int = DEFAULT_RAMP      # the batch ramp the file was coded with
    encodes: int = 1              # encodes started (more when the slower-ramp retry fired)
    tiles_coded: int = 0          # tile chains coded over all of them (model_tiles when none was retried)
    metadata_bytes: int = 0       # what ICC profiles, EXIF and text/colour tags add to the file
    boot_codec: str | None = None

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
                "tiles_coded": self.tiles_coded}


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


def estimate_seconds(model: LoadedModel, params: CodingParams, batches: list[int], nhwc: bool, threads: int) -> float:
    """Seconds the network (and coder) should take for these batch sizes at K steps, from the time of
    one call on one tile and on the largest batch, measured now after a warm-up call (about a second;
    the warm-up also builds the channels-last graph the coding then uses)."""
    if not batches:
        return 0.0
    eps_fn = EpsFn(model.vdm.net, model.device, nhwc=nhwc)
    T = model.tile

    def timed(n: int) -> float:
        z = np.zeros((n, 3, T, T))
        t = time.perf_counter()
        eps_fn(z, 0.0)
        return time.perf_counter() - t

    with torch.inference_mode(), torch_threads(threads):
        timed(1)
        one = timed(1)
        big = max(batches)
        per_tile = (timed(big) - one) / (big - 1) if big > 1 else one / 2
    per_tile = max(per_tile, 0.0)
    base = max(one - per_tile, 0.0)
    return CODER_SHARE * params.steps * sum(base + per_tile * n for n in batches)


def model_tile_batches(images: list[ImageData], model: LoadedModel, parallel: int, bootstrap: str | None) -> list[int]:
    """Batch sizes an encode of these images will code with the model (at the default ramp; a one-tile
    bootstrap is assumed, the usual case): what `estimate_seconds` and progress are given."""
    T = model.tile
    n = sum(math.ceil(d.height / T) * math.ceil(d.width / T) for d in images)
    n_boot = min(n, 1) if bootstrap is not None else 0
    return [len(b) for b in _batches(n - n_boot, parallel)]


def coding_params(model: LoadedModel, steps: int, grid: str | None = None, grid_bits: int = 0,
                  latents: int | None = None) -> CodingParams:
    """CodingParams with the model's defaults for what is not given (latents: version 2 where the model
    has its mse curve; grid: the model's ELBO-optimal grid for that version, where shipped: opt3, else
    opt2, for version 2; opt1 for version 1)."""
    latents = model.default_latents if latents is None else latents
    if latents == 2 and model.mse_curve is None:
        raise BbcError(f"--latents 2 needs the model's mse curve; model {model.name} has none (use --latents 1)")
    if grid is None:
        fitted = [g for g in ("opt3", "opt2") if g in model.grids] if latents == 2 else []
        grid = fitted[0] if fitted else model.default_grid
    return CodingParams(steps=steps, grid=grid, grid_bits=grid_bits, latents=latents)


def compress(images: list[ImageData], model: LoadedModel, params: CodingParams | None = None,
             parallel: int = defaults.PARALLEL, progress: Progress | bool | None = None,
             bootstrap: str | None = defaults.BOOTSTRAP, threads: int = defaults.THREADS) -> tuple[bytes, Report]:
    """Code images into one .bbc archive on one ANS stack.

    params: None for the model's defaults (`coding_params`). threads: torch intra-op threads of the
    network, written to the header (the decoder replays them). progress: a `progress.Progress`, True
    for one on stderr, or None.

    bootstrap: "auto" (the first available of `bootstrap.CODECS`), a codec name, or None (initial
    bits from seed words only). With a codec, the leading tiles whose classical bytes cover the
    first chain's deficit are coded with it (see bootstrap.py); a one-tile file is coded with it
    entirely, since bits-back cannot repay a deficit larger than the tile itself.
    """
    if not images:
        raise BbcError("no images to compress")
    if parallel < 1:
        raise BbcError("--parallel must be >= 1")
    if threads < 1:
        raise BbcError("--threads must be >= 1")
    params = coding_params(model, defaults.STEPS) if params is None else params
    with torch_threads(threads):
        return _compress(images, model, params, parallel, _progress(progress), bootstrap)


def _compress(images, model, params, parallel, progress: Progress, bootstrap) -> tuple[bytes, Report]:
    t0 = time.time()
    T = model.tile
    spec = ChainSpec(model.schedule, params, model.time_grid(params.grid, params.steps), model.mse_curve)
    eps_fn = EpsFn(model.vdm.net, model.device, nhwc=NHWC_ON_CPU and model.device == "cpu")
    tiles = [t for i, d in enumerate(images)
             for t in make_tiles(i, d.main, d.height, d.width, d.main.shape[0], T)]
    boot_codec = boot.default_codec() if bootstrap == "auto" else bootstrap
    if boot_codec is not None and boot_codec not in boot.CODECS:
        raise BbcError(f"unknown bootstrap codec {boot_codec!r} (known: {', '.join(boot.CODECS)})")
    threads = torch.get_num_threads()
    boot_data: list[bytes] = []
    if boot_codec is not None:
        boot.check_codec(boot_codec)
        with torch.inference_mode():
            boot_data = _choose_bootstrap(tiles, boot_codec, model, params, spec, eps_fn)
    n_boot = len(boot_data)
    n_model = len(tiles) - n_boot
    # the batch plans to try, slowest growth last; a slower ramp that gives the same batches (one tile
    # in flight, or a few tiles) is not a plan of its own, so it is never coded again for nothing
    plans: list[tuple[int, list[range]]] = []
    for r in RAMPS:
        batches = _batches(n_model, parallel, start=n_boot, ramp=r)
        if not plans or batches != plans[-1][1]:
            plans.append((r, batches))
    n_words = _seed_size(max([len(b) for b in plans[0][1]] + [1]), T, params.grid_bits)
    encodes = tiles_coded = 0
    with torch.inference_mode():
        for ramp, batches in plans:
            encodes += 1
            progress.begin("encode" if encodes == 1 else f"encode (slower ramp {ramp})",
                           [len(b) for b in batches], spec.K, T * T)
            for _ in range(MAX_SEED_RETRIES):
                progress.restart()
                seed = seed_words(n_words)
                stack = Stack(seed)
                for j, d in enumerate(boot_data):
                    boot.tile_codec(boot_codec, tiles[j].mask, d).push(stack, tiles[j].x)
                nelbo = np.zeros(len(images))
                aborted = False
                for b in batches:
                    x = np.stack([tiles[j].x for j in b])
                    mask = np.stack([tiles[j].mask for j in b])
                    stats = ChainStats(len(b))
                    codec = tile_batch_codec(spec, eps_fn, mask, x_true=x, stats=stats,
                                             on_step=functools.partial(progress.advance, len(b)))
                    codec.push(stack, x[mask])
                    tiles_coded += len(b)
                    np.add.at(nelbo, [tiles[j].image for j in b], stats.total)
                    # a batch that dipped well into the seed dooms this plan (the check below would
                    # reject it): stop now and try the next, slower ramp instead of coding the rest
                    if n_boot and ramp != plans[-1][0] and n_words - stack.low > HEAD_WORDS + LOW_WATER_SLACK:
                        aborted = True
                        break
                if aborted:
                    break
                words = stack.words()
                kept = _common_prefix(words, seed)
                if kept > 0:
                    break
                n_words *= 4  # the seed ran dry: start again with a bigger one
            else:
                raise BbcError("could not seed the stack (initial bits exhausted)")
            if aborted:
                continue
            # with initial bits from the image, a file should draw no more than the ANS head's words
            # from the seed; if it did, the batches grew faster than the stack: grow them more slowly
            if n_boot == 0 or n_words - kept <= HEAD_WORDS:
                break
    progress.end()
    boot_bits = np.zeros(len(images))
    for j, d in enumerate(boot_data):
        boot_bits[tiles[j].image] += boot.bits(d)
    records = [{"name": d.name, "width": d.width, "height": d.height, "mode": d.mode,
                "channels": int(d.main.shape[0]), "alpha": int(d.alpha is not None),
                "palette_mode": d.palette_mode, "palette_bytes": len(d.palette or b""),
                "transparency": _transparency_to_json(d.transparency), "meta": d.meta,
                "icc_bytes": len(d.icc or b""), "exif_bytes": len(d.exif or b"")} for d in images]
    side_chunks = [c for d in images for c in _side_chunks(d)]
    side = container.pack_side(side_chunks)
    header = {
        "codec": CODEC_ID,
        "model": {"name": model.name, "sha256": model.sha256},
        "coding": {"steps": params.steps, "grid": params.grid, "grid_bits": params.grid_bits,
                   **({"latents": params.latents} if params.latents != 1 else {}), "tile": T,
                   "parallel": parallel, **({"ramp": ramp} if ramp != DEFAULT_RAMP else {}),
                   "seed_words": n_words, "seed_kept": kept, "threads": threads,
                   "device": model.device, "boot_codec": boot_codec if n_boot else None, "boot_tiles": n_boot,
                   **({"nhwc": 1} if eps_fn.nhwc and n_model else {})},
        "images": container.image_table(records),
        "pixels_crc32": archive_checksum(images),
    }
    payload = container.words_to_bytes(words[kept:])
    data = container.Container(header, payload, side).to_bytes()
    # the same file without ICC, EXIF and tags (not written): what the metadata costs
    bare = [dict(r, meta={}, icc_bytes=0, exif_bytes=0) for r in records]
    bare_side = container.pack_side([c for d in images for c in _side_chunks(d, metadata=False)])
    bare_len = len(container.Container(dict(header, images=container.image_table(bare)), payload, bare_side).to_bytes())
    side_bits = 8 * len(side)
    rep = Report(bytes=len(data), subpixels=sum(d.subpixels for d in images),
                 nelbo_bits=float(nelbo.sum()) + side_bits, initial_bits=32 * (n_words - kept),
                 seconds=time.time() - t0, per_image_nelbo_bits=[float(v) for v in nelbo],
                 bootstrap_bits=int(boot_bits.sum()), bootstrap_tiles=n_boot,
                 model_tiles=n_model, per_image_bootstrap_bits=[int(v) for v in boot_bits],
                 ramp=ramp, encodes=encodes, tiles_coded=tiles_coded, metadata_bytes=len(data) - bare_len,
                 boot_codec=boot_codec if n_boot else None)
    return data, rep


def _seed_size(tiles_in_flight: int, T: int, grid_bits: int) -> int:
    """Seed words to start a stack with: more than a batch's deficit can draw (retried if not)."""
    return 64 + math.ceil(tiles_in_flight * 3 * T * T * (8 + grid_bits) / 32)


def _deficit_per_subpixel(model: LoadedModel, params: CodingParams, spec: ChainSpec, eps_fn) -> float:
    """Seed bits that a first chain draws from an otherwise empty stack, per coded subpixel.

    Measured on a fixed mid-grey tile, so a file's bytes depend only on its inputs: a flat tile
    has the smallest per-step KLs, i.e. pushes the fewest bits back, so this errs on the high side.
    A full chain of network calls, so it is measured once per model, settings and arithmetic, and
    kept in the user's cache folder (`BBCODEC_CACHE`, default ~/.cache/bbcodec). It only decides how
    many leading tiles the bootstrap codec takes, which the header records: a lost or stale cache
    changes nothing a decoder needs.
    """
    import json
    key = (f"{model.sha256}:K{params.steps}:{params.grid}:b{params.grid_bits}:v{params.latents}:"
           f"{model.device}:t{torch.get_num_threads()}:nhwc{int(eps_fn.nhwc)}")
    path = defaults.cache_dir() / "initial_deficit.json"
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if not isinstance(cache, dict) or not isinstance(cache.get(key), float):
        T = model.tile
        x = np.full((1, 3, T, T), 128, dtype=np.uint8)
        mask = np.ones(x.shape, dtype=bool)
        n_words = _seed_size(1, T, params.grid_bits)
        seed = seed_words(n_words)
        stack = Stack(seed)
        tile_batch_codec(spec, eps_fn, mask).push(stack, x[mask])
        cache = cache if isinstance(cache, dict) else {}
        cache[key] = 32 * (n_words - _common_prefix(stack.words(), seed)) / float(mask.sum())
        try:
            from .fileio import write_atomic
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(str(path), json.dumps(cache, indent=1, sort_keys=True).encode(), force=True)
        except OSError:
            pass  # a read-only home: measured again next time
    return cache[key]


def _choose_bootstrap(tiles: list[Tile], codec: str, model, params, spec, eps_fn) -> list[bytes]:
    """Classical bytes of the leading tiles: as many as it takes to cover the next tile's deficit."""
    first = boot.encode_tile(codec, tiles[0].x, tiles[0].mask)
    if len(tiles) == 1:
        return [first]
    per_sub = _deficit_per_subpixel(model, params, spec, eps_fn)
    out, have = [first], boot.bits(first)
    while len(out) < len(tiles) and have < per_sub * tiles[len(out)].mask.sum():
        d = boot.encode_tile(codec, tiles[len(out)].x, tiles[len(out)].mask)
        out.append(d)
        have += boot.bits(d)
    return out


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    diff = np.nonzero(a[:n] != b[:n])[0]
    return int(diff[0]) if len(diff) else n


def check_model(header: dict, model: LoadedModel) -> None:
    want = header["model"]
    if want["sha256"] != model.sha256:
        raise ModelError(f"file was coded with model {want['name']} ({want['sha256']}), "
                         f"not {model.name} ({model.sha256})")


def _layout(h: dict, model: LoadedModel):
    """What a header says the decoder has to do: image records, empty tiles, the bootstrap codec and
    its tile count, and the encoder's batches of model tiles (in coding order)."""
    cod = h["coding"]
    metas = container.image_records(h)
    tiles = [t for i, im in enumerate(metas)
             for t in make_tiles(i, None, im["height"], im["width"], im["channels"], model.tile)]
    boot_codec, n_boot = cod.get("boot_codec"), cod.get("boot_tiles", 0)
    if n_boot > len(tiles) or (n_boot > 0) != (boot_codec is not None):
        raise FormatError("corrupted header (bootstrap tiles)")
    if boot_codec is not None:
        boot.check_codec(boot_codec)
    batches = _batches(len(tiles) - n_boot, cod["parallel"], start=n_boot, ramp=cod.get("ramp", DEFAULT_RAMP))
    return metas, tiles, boot_codec, n_boot, batches


def decode_plan(h: dict, model: LoadedModel) -> list[int]:
    """Batch sizes of model tiles a decode of this header runs (for `estimate_seconds`)."""
    return [len(b) for b in _layout(h, model)[4]]


def verify(data: bytes, model: LoadedModel, images: list[ImageData], progress: Progress | bool | None = None) -> None:
    """Decode `data` in memory and compare with the images it was made from; BbcError on any difference."""
    from .images import same_image
    out, _ = decompress(data, model, progress)
    if len(out) != len(images):
        raise BbcError(f"verification failed: the file decodes to {len(out)} images, not {len(images)}")
    for a, b in zip(images, out):
        if not same_image(a, b):
            raise BbcError(f"verification failed: {a.name} does not decode bit-exact")


def decompress(data: bytes, model: LoadedModel, progress: Progress | bool | None = None) -> tuple[list[ImageData], dict]:
    """Decode every image of a .bbc archive; raises FormatError / ModelError on any mismatch."""
    progress = _progress(progress)
    c = container.parse(data)
    h = c.header
    check_model(h, model)
    cod = h["coding"]
    if cod["tile"] != model.tile:
        raise FormatError("corrupted header (tile size does not match the model)")
    try:
        params = CodingParams(steps=cod["steps"], grid=cod["grid"], grid_bits=cod["grid_bits"],
                              latents=cod.get("latents", 1))
        spec = ChainSpec(model.schedule, params, model.time_grid(params.grid, params.steps), model.mse_curve)
    except ValueError as e:
        raise FormatError(f"unsupported coding parameters ({e})")
    T = model.tile
    metas, tiles, boot_codec, n_boot, batches = _layout(h, model)
    seed = seed_words(cod["seed_words"])
    words = np.concatenate([seed[:cod["seed_kept"]], container.bytes_to_words(c.payload)])
    if len(words) == 0:
        raise FormatError("corrupted payload (empty)")
    try:
        stack = Stack(words)
    except ValueError:
        raise FormatError("corrupted payload")
    eps_fn = EpsFn(model.vdm.net, model.device, nhwc=bool(cod.get("nhwc", 0)))
    mismatch = ("decoded data does not match: the file is corrupted, or the network's probabilities "
                f"differed from the encoder's (encoded on {cod['device']}, decoding on {model.device}; "
                "same model, device kind and torch build are required)")
    progress.begin("decode", [len(b) for b in reversed(batches)], spec.K, T * T)
    with torch.inference_mode(), torch_threads(cod["threads"]):
        for b in reversed(batches):
            mask = np.stack([tiles[j].mask for j in b])
            codec = tile_batch_codec(spec, eps_fn, mask, on_step=functools.partial(progress.advance, len(b)))
            try:
                vals = codec.pop(stack)
            except (OverflowError, ValueError, RuntimeError):
                raise FormatError(mismatch)
            x = np.zeros(mask.shape, dtype=np.uint8)
            x[mask] = vals
            for k, j in enumerate(b):
                tiles[j].x = x[k]
        for j in reversed(range(n_boot)):
            try:
                tiles[j].x = boot.tile_codec(boot_codec, tiles[j].mask).pop(stack)
            except (OverflowError, ValueError, RuntimeError):
                raise FormatError(mismatch)
    progress.end()
    if not np.array_equal(stack.words(), seed):
        raise FormatError(mismatch)
    side = container.unpack_side(c.side, sum(im["height"] * im["width"] * im["alpha"] + im["palette_bytes"]
                                             + im["icc_bytes"] + im["exif_bytes"] for im in metas))
    out, pos, k = [], 0, 0
    for i, im in enumerate(metas):
        H, W, C = im["height"], im["width"], im["channels"]
        main = np.zeros((C, H, W), dtype=np.uint8)
        for y, x0, th, tw in tile_layout(H, W, T):
            main[:, y:y + th, x0:x0 + tw] = tiles[k].x[:C, :th, :tw]
            k += 1
        alpha = palette = None
        if im["alpha"]:
            alpha = np.frombuffer(side, dtype=np.uint8, count=H * W, offset=pos).reshape(H, W).copy()
            pos += H * W
        if im["palette_mode"] is not None:
            palette = side[pos:pos + im["palette_bytes"]]
            pos += im["palette_bytes"]
        icc = side[pos:pos + im["icc_bytes"]] or None
        pos += im["icc_bytes"]
        exif = side[pos:pos + im["exif_bytes"]] or None
        pos += im["exif_bytes"]
        out.append(ImageData(im["name"], im["mode"], W, H, main, alpha, palette, im["palette_mode"],
                             _transparency_from_json(im["transparency"]), im["meta"], icc, exif))
    if archive_checksum(out) != h["pixels_crc32"]:
        raise FormatError(mismatch)
    return out, h
