"""Images to tiles, tiles to batches: the order in which symbols sit on the stack.

Images are cut into T x T tiles (T from the model config), row-major, image after image. The first
`boot_tiles` tiles are coded with the bootstrap codec; the rest by the model in consecutive
batches that grow from one tile up to `parallel` tiles in flight (`batches`). Both sides derive the
batches from the header (`coding.parallel`, `coding.ramp`), so they are part of the format.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_RAMP = 2  # the ramp of a header without `coding.ramp`


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


def tile_count(height: int, width: int, T: int) -> int:
    return math.ceil(height / T) * math.ceil(width / T)


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


def untile(tiles: list[Tile], height: int, width: int, channels: int, T: int) -> np.ndarray:
    """The inverse of make_tiles for one image: uint8 [C, H, W] from its tiles, in order."""
    main = np.zeros((channels, height, width), dtype=np.uint8)
    for t, (y, x, h, w) in zip(tiles, tile_layout(height, width, T)):
        main[:, y:y + h, x:x + w] = t.x[:channels, :h, :w]
    return main


def batches(n: int, parallel: int, start: int = 0, ramp: int = DEFAULT_RAMP) -> list[range]:
    """Consecutive tile batches, growing from 1 up to `parallel` tiles in flight.

    A batch pops its initial bits from what earlier batches pushed; starting with one tile and
    growing with what is already coded (1/ramp as many tiles as are done) keeps the seed words
    drawn, i.e. the initial bits, near those of a single tile. ramp = 2 suffices up to about 8
    tiles in flight; past that the encoder may code with a slower ramp (`bbcodec.encode`), which
    the header then records.
    """
    out, i = [], 0
    while i < n:
        b = min(parallel, max(1, i // ramp), n - i)
        out.append(range(start + i, start + i + b))
        i += b
    return out
