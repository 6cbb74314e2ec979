"""Progress of a coding run on stderr, in tiles and megapixels, with an ETA that does not swing.

The work of a run is a list of batches (tiles coded together), each taking K network calls. A call
on n tiles costs about CALL_OVERHEAD + n tile-times (on one CPU thread a tile costs 1.8x more alone
than in a batch of 8, which this fits), so the ETA is the elapsed time scaled by the cost still to
come, not by tiles: the decoder's batches shrink at the end, and a tile-count ETA would swing.

On a terminal the line is redrawn in place; otherwise a plain line is written every
`defaults.PROGRESS_LINE_SECONDS`, so logs of long runs show where they are.
"""
from __future__ import annotations

import sys
import time

from . import defaults

CALL_OVERHEAD = 1.0  # in tile-times per network call


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 20 min'."""
    s = int(round(seconds))
    if s < 90:
        return f"{s} s"
    if s < 5400:
        return f"{round(s / 60)} min"
    return f"{s // 3600} h {round(s % 3600 / 60)} min"


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """Callbacks the coder calls: begin(what, batch sizes, K, pixels per tile), then advance(n) after
    each network call on n tiles, and end(). restart() after an encoder retry."""

    def __init__(self, stream=None, tty: bool | None = None, interval: float = defaults.PROGRESS_LINE_SECONDS):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.what = ""

    def note(self, msg: str) -> None:
        """A line of its own (start-up steps, the estimate)."""
        self._clear()
        print(f"bbcodec: {msg}", file=self.stream, flush=True)

    def begin(self, what: str, batches: list[int], steps: int, pixels_per_tile: float) -> None:
        self.what, self.steps, self.px = what, steps, pixels_per_tile
        self.tiles = sum(batches)
        self.cost = sum(steps * (CALL_OVERHEAD + n) for n in batches) or 1.0
        self.restart()

    def restart(self) -> None:
        self.done_tiles = self.done_cost = 0.0
        self.t0 = self._last = time.monotonic()
        self._shown = False

    def advance(self, n: int) -> None:
        self.done_tiles += n / self.steps
        self.done_cost += CALL_OVERHEAD + n
        now = time.monotonic()
        if now - self._last >= (0.2 if self.tty else self.interval):
            self._last = now
            self._show(now)

    def end(self) -> None:
        self._clear()

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        el = now - self.t0
        frac = min(1.0, self.done_cost / self.cost)
        eta = _clock(el * (1 - frac) / frac) if frac > 0 else "?"
        return (f"{self.what}: {self.done_tiles:.1f}/{self.tiles} tiles, "
                f"{self.done_tiles * self.px / 1e6:.3f}/{self.tiles * self.px / 1e6:.3f} MP, {100 * frac:.0f}%, "
                f"{_clock(el)} elapsed, ETA {eta}")

    def _show(self, now: float) -> None:
        text = self.line(now)
        if self.tty:
            print(f"\r\033[K{text}", end="", file=self.stream, flush=True)
            self._shown = True
        else:
            print(f"bbcodec: {text}", file=self.stream, flush=True)

    def _clear(self) -> None:
        if self.tty and getattr(self, "_shown", False):
            print("\r\033[K", end="", file=self.stream, flush=True)
            self._shown = False


class Silent(Progress):
    """No output (the library default)."""

    def __init__(self):
        super().__init__(stream=sys.stderr, tty=False, interval=float("inf"))

    def note(self, msg: str) -> None:
        pass

    def _show(self, now: float) -> None:
        pass
