"""The encoder's plan: which leading tiles the bootstrap codec takes, and how fast batches grow.

Neither is part of the format: both are recorded in the header (`coding.boot_tiles`,
`coding.ramp`, `coding.seed_words`, `coding.seed_kept`), and the decoder replays them. What is
decided here is only how to spend the fewest initial bits:

- Bootstrap: a tile's chain runs a deficit before its final push; the leading tiles are coded with a
  classical codec whose bytes on the stack cover the next tile's deficit (`choose_bootstrap`).
- Ramp: batches grow from one tile to `parallel` (`format.plan.batches`); a batch that outruns what
  the done tiles left on the stack draws seed words, so the encode is retried with a slower ramp
  (`RAMPS`), stopped early as soon as a batch has dipped into the seed.
- Seed: the stack starts on `seed_words(W)`; only the words the encode consumed are paid for.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass

import numpy as np
import torch

from . import bootstrap as boot
from . import defaults
from .ans import Stack
from .diffusion.codec import ChainSpec
from .errors import BbcError
from .format.constants import seed_words
from .format.plan import DEFAULT_RAMP, Tile, batches as plan_batches
from .progress import Progress

MAX_SEED_RETRIES = 4
# batch growth divisors tried in turn while a bootstrapped encode still draws seed words beyond the ANS head
RAMPS = (DEFAULT_RAMP, 4, 8, 16)
HEAD_WORDS = 2  # the ANS head: seed words any file may draw
LOW_WATER_SLACK = 2  # words by which the stack's low-water mark may differ from the seed words finally kept


@dataclass
class Encoded:
    """What an encode leaves: the stack's words beyond the regenerated seed, and its record."""
    words: np.ndarray          # uint32, the stack bottom first, without the kept seed words
    seed_words: int
    seed_kept: int
    ramp: int
    n_boot: int
    boot_data: list            # the bootstrap codec's bytes per leading tile
    nelbo_bits: np.ndarray     # per image: the model's bound on the tiles coded (`priors`: NELBO, or flow -log2 p)
    encodes: int               # encodes started (more when the slower-ramp retry fired)
    tiles_coded: int           # tile chains coded over all of them


def seed_size(tiles_in_flight: int, T: int, spec: ChainSpec) -> int:
    """Seed words to start a stack with: more than a batch's deficit can draw (retried if not).

    In BB-ANS order a tile pops all its K + 1 latents before pushing anything, so the seed also covers
    their entropy: per subpixel, log2(pop std / bin) + log2(sqrt(2 pi e)) bits, and a bit of margin, per
    latent (Bit-Swap's need is one step's worth; its size is what headers have always recorded)."""
    words = 64 + math.ceil(tiles_in_flight * 3 * T * T * (8 + spec.params.grid_bits) / 32)
    if spec.params.order == "bbans":
        ratio = np.concatenate([[spec.pop_std0 / spec.delta[0]], spec.pop_std[1:] / spec.delta[1:]])
        bits = float(np.sum(np.maximum(np.log2(ratio), 0.0) + 0.5 * np.log2(2 * np.pi * np.e) + 1.0))
        words += math.ceil(tiles_in_flight * 3 * T * T * bits / 32)
    return words


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    diff = np.nonzero(a[:n] != b[:n])[0]
    return int(diff[0]) if len(diff) else n


def deficit_per_subpixel(model, prior) -> float:
    """Seed bits that a first chain draws from an otherwise empty stack, per coded subpixel.

    Measured on a fixed mid-grey tile, so a file's bytes depend only on its inputs: a flat tile
    has the smallest per-step KLs, i.e. pushes the fewest bits back, so this errs on the high side.
    A full chain of network calls, so it is measured once per model, settings and arithmetic, and
    kept in the user's cache folder (`defaults.cache_dir`). It only decides how many leading tiles
    the bootstrap codec takes, which the header records: a lost or stale cache changes nothing a
    decoder needs.
    """
    key = prior.deficit_key(model.sha256, model.device, torch.get_num_threads())
    path = defaults.cache_dir() / "initial_deficit.json"
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if not isinstance(cache, dict) or not isinstance(cache.get(key), float):
        T = model.tile
        x = np.full((1, 3, T, T), 128, dtype=np.uint8)
        mask = np.ones(x.shape, dtype=bool)
        n_words = prior.seed_size(1, T)
        seed = seed_words(n_words, prior.format_version)
        stack = Stack(seed)
        prior.codec(mask).push(stack, x)
        cache = cache if isinstance(cache, dict) else {}
        cache[key] = 32 * (n_words - common_prefix(stack.words(), seed)) / float(prior.coded(mask[0]))
        try:
            from .fileio import write_atomic
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(str(path), json.dumps(cache, indent=1, sort_keys=True).encode(), force=True)
        except OSError:
            pass  # a read-only home: measured again next time
    return cache[key]


def choose_bootstrap(tiles: list[Tile], codec: str, model, prior) -> list[bytes]:
    """Classical bytes of the leading tiles: as many as it takes to cover the next tile's deficit
    (a one-tile file is coded with it entirely: bits-back cannot repay a deficit larger than the tile)."""
    first = boot.encode_tile(codec, tiles[0].x, tiles[0].mask)
    if len(tiles) == 1:
        return [first]
    per_sub = deficit_per_subpixel(model, prior)
    out, have = [first], boot.bits(first)
    while len(out) < len(tiles) and have < per_sub * prior.coded(tiles[len(out)].mask):
        d = boot.encode_tile(codec, tiles[len(out)].x, tiles[len(out)].mask)
        out.append(d)
        have += boot.bits(d)
    return out


def encode(tiles: list[Tile], n_images: int, prior, parallel: int, boot_codec: str | None,
           boot_data: list[bytes], progress: Progress) -> Encoded:
    """Push every tile onto one stack: the bootstrap tiles first, then the model's batches
    (`priors`: the diffusion chain or the flow)."""
    T = tiles[0].x.shape[-1]
    n_boot = len(boot_data)
    n_model = len(tiles) - n_boot
    # the batch plans to try, slowest growth last; a slower ramp that gives the same batches (one tile
    # in flight, or a few tiles) is not a plan of its own, so it is never coded again for nothing
    plans: list[tuple[int, list[range]]] = []
    for r in RAMPS:
        bs = plan_batches(n_model, parallel, start=n_boot, ramp=r)
        if not plans or bs != plans[-1][1]:
            plans.append((r, bs))
    n_words = prior.seed_size(max([len(b) for b in plans[0][1]] + [1]), T)
    encodes = tiles_coded = 0
    for ramp, bs in plans:
        encodes += 1
        progress.begin("encode" if encodes == 1 else f"encode (slower ramp {ramp})", [len(b) for b in bs],
                       prior.steps, T * T)
        for _ in range(MAX_SEED_RETRIES):
            progress.restart()
            seed = seed_words(n_words, prior.format_version)
            stack = Stack(seed)
            for j, d in enumerate(boot_data):
                boot.tile_codec(boot_codec, tiles[j].mask, d).push(stack, tiles[j].x)
            nelbo = np.zeros(n_images)
            aborted = False
            for b in bs:
                x = np.stack([tiles[j].x for j in b])
                mask = np.stack([tiles[j].mask for j in b])
                stats = prior.new_stats(len(b))
                codec = prior.codec(mask, x_true=x, stats=stats, on_step=functools.partial(progress.advance, len(b)))
                codec.push(stack, x)
                tiles_coded += len(b)
                np.add.at(nelbo, [tiles[j].image for j in b], prior.model_bits(stats))
                # a batch that dipped well into the seed dooms this plan (the check below would
                # reject it): stop now and try the next, slower ramp instead of coding the rest
                if n_boot and ramp != plans[-1][0] and n_words - stack.low > HEAD_WORDS + LOW_WATER_SLACK:
                    aborted = True
                    break
            if aborted:
                break
            words = stack.words()
            kept = common_prefix(words, seed)
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
    return Encoded(words[kept:], n_words, kept, ramp, n_boot, boot_data, nelbo, encodes, tiles_coded)
