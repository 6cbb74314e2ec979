"""The tile priors the archive coder drives: one interface over the diffusion chain and the flow.

`encode` and `api` cut images into tiles, plan batches, bootstrap and seed the stack, and never ask
which model codes a batch of tiles; a prior answers for it:

    codec(mask, x_true, stats, on_step)  a `Codec` whose symbols are whole tiles, uint8 [B, 3, T, T]
                      (the decoder gets back what was pushed; only the mask's subpixels are the image's)
    fill(x, mask)     the encoder's values for the subpixels outside the mask (padding of edge tiles,
                      channels a grey image lacks) before coding: zeros for both priors (the diffusion
                      prior leaves them uncoded; the flow's codec chooses them by bits-back, below)
    coded(mask)       how many subpixels of a tile the prior codes (what the deficit is counted per)
    new_stats(B), model_bits(stats)  the model's own bound on the tiles coded (bits per tile): the
                      chain's NELBO for diffusion, -log2 p at the coded dequantization for the flow
    seed_size(n, T)   seed words that a batch of n tiles in flight should not exhaust
    deficit_key       what the measured initial deficit depends on (`encode.deficit_per_subpixel`)
    steps             network calls per tile (progress)

Flow padding.  A coupling flow has no notion of a subpixel that is known to both sides, so padding
and the missing channels of grey images are coded with the image's subpixels, and their values are
chosen by bits-back (`pad_codec`): the encoder pops each from q, a small triangular distribution
around its edge-replicated centre (the tile's last real column to the right, then its last real row
downwards, a grey image's channel into the other two: `replicate_edges`), then codes the whole tile
with the flow; the decoder pops the tile and pushes the padding back with the same q, which depends
on the real subpixels only.  The padding then costs the flow's bits for it less the bits q gives
back: about the flow's uncertainty about them relative to q's spread, instead of its full
conditional cost of a fixed fill (measured in bench/studies/2026-12-05-flow-padding).
"""
from __future__ import annotations

import math

import numpy as np

from .codecs import Codec


def _region(mask: np.ndarray) -> tuple[int, int, int]:
    """(channels, height, width) of one tile's mask [3, T, T] (a leading rectangle)."""
    return int(mask.any(axis=(1, 2)).sum()), int(mask[0].any(axis=1).sum()), int(mask[0].any(axis=0).sum())


def replicate_edges(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """x uint8 [3, T, T] with the subpixels outside mask set from the real ones: the last real column
    to the right, then the last real row downwards, then channel 0 into channels a grey image lacks."""
    c, h, w = _region(mask)
    x = x.copy()
    x[:c, :h, w:] = x[:c, :h, w - 1:w]
    x[:c, h:, :] = x[:c, h - 1:h, :]
    x[c:] = x[:1]
    return x


def pad_groups(x: np.ndarray, mask: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For a batch x uint8 [B, 3, T, T] with masks [B, 3, T, T]: per kind of padding ("space",
    "channel"), (flat indices of its subpixels, each one's window start, q's probabilities [2W - 1]).

    The centre of a subpixel outside the mask is `replicate_edges` of the real subpixels; q is
    `FLOW_PAD_WEIGHTS[kind]` over the 2W - 1 values of the window around it, shifted to lie inside
    0..255.  Only the real subpixels of x are read."""
    from .format.constants import FLOW_PAD_WEIGHTS
    centre = np.stack([replicate_edges(np.where(m, t, 0).astype(np.uint8), m) for t, m in zip(x, mask)])
    channels = mask.any(axis=(2, 3), keepdims=True)  # [B, 3, 1, 1]: the tile's real channels
    out = []
    for kind, sel in (("space", ~mask & channels), ("channel", ~mask & ~channels)):
        w = np.asarray(FLOW_PAD_WEIGHTS[kind], dtype=np.float64)
        idx = np.flatnonzero(sel)
        half = len(w) // 2
        start = np.clip(centre.reshape(-1)[idx].astype(np.int64) - half, 0, 256 - len(w))
        out.append((idx, start, w / w.sum()))
    return out


def pad_codec(groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Codec:
    """Bits-back codec of the padding values of a batch (symbols: uint8 [n] in `pad_groups` order,
    space then channel), from `pad_groups` of the batch's real subpixels."""
    groups = [(idx, start, np.broadcast_to(p, (len(idx), len(p)))) for idx, start, p in groups if len(idx)]

    def push(st, v):
        k = 0
        parts = []
        for idx, start, probs in groups:
            parts.append((v[k:k + len(idx)].astype(np.int64) - start, probs))
            k += len(idx)
        for sym, probs in reversed(parts):
            if sym.size and (sym.min() < 0 or sym.max() >= probs.shape[1]):
                raise ValueError("padding value outside its window (a caller bug)")
            st.push_categorical(sym.astype(np.int32), probs)

    def pop(st):
        vals = [start + st.pop_categorical(probs).astype(np.int64) for idx, start, probs in groups]
        return np.concatenate(vals).astype(np.uint8) if vals else np.zeros(0, dtype=np.uint8)

    return Codec(push, pop)


def pad_indices(groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """Flat indices of the padding in `pad_codec`'s symbol order, from `pad_groups`."""
    return np.concatenate([idx for idx, _, _ in groups]).astype(np.int64)


class DiffusionPrior:
    """The VDM chain (`diffusion.codec.tile_batch_codec`) over the real subpixels of each tile."""
    kind = "diffusion"

    def __init__(self, spec, eps_fn):
        self.spec, self.eps_fn = spec, eps_fn
        self.steps = spec.K
        self.format_version = spec.params.format_version
        self.integer = eps_fn.integer

    def codec(self, mask: np.ndarray, x_true=None, stats=None, on_step=None) -> Codec:
        from .diffusion.codec import tile_batch_codec
        inner = tile_batch_codec(self.spec, self.eps_fn, mask, x_true=x_true, stats=stats, on_step=on_step)

        def pop(st):
            x = np.zeros(mask.shape, dtype=np.uint8)
            x[mask] = inner.pop(st)
            return x

        return Codec(lambda st, x: inner.push(st, x[mask]), pop)

    @staticmethod
    def fill(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return x

    @staticmethod
    def coded(mask: np.ndarray) -> int:
        return int(mask.sum())

    @staticmethod
    def new_stats(batch: int):
        from .diffusion.codec import ChainStats
        return ChainStats(batch)

    @staticmethod
    def model_bits(stats) -> np.ndarray:
        return stats.total

    def seed_size(self, tiles_in_flight: int, T: int) -> int:
        from .encode import seed_size
        return seed_size(tiles_in_flight, T, self.spec)

    def deficit_key(self, sha256: str, device: str, threads: int) -> str:
        p = self.spec.params
        order = "" if p.order == "bitswap" else f":{p.order}"  # keys of Bit-Swap predate the field
        return (f"{sha256}:f{p.format_version}:K{p.steps}:{p.grid}:b{p.grid_bits}:v{p.latents}:"
                f"{device}:t{threads}:nhwc{int(self.eps_fn.nhwc)}{order}")


class FlowPrior:
    """A coupling flow coded by local bits-back (`flows.codec.flow_codec`) over whole tiles."""
    kind = "flow"
    integer = False  # a float network: its files carry the machine's arithmetic record

    def __init__(self, flow, params, device: str = "cpu", format_version: int | None = None):
        from .flows.codec import FlowNet
        from .flows.net import Coupling
        from .format.container import VERSION
        self.flow, self.params = flow, params
        self.net = FlowNet(flow, params, device=device)
        self.steps = sum(isinstance(s, Coupling) for s in flow.steps)
        self.format_version = VERSION if format_version is None else format_version

    def codec(self, mask: np.ndarray, x_true=None, stats=None, on_step=None) -> Codec:
        """Whole tiles: the padding popped by bits-back (`pad_codec`), then the tiles by the flow."""
        from .flows.codec import flow_codec
        inner = flow_codec(self.flow, mask.shape, self.params, net=self.net, stats=stats)
        padded = not mask.all()

        def done(out=None):
            if on_step is not None:
                for _ in range(self.steps):
                    on_step()
            return out

        def push(st, x):
            x = x.copy()
            if padded:
                groups = pad_groups(x, mask)  # from the real subpixels only: the decoder's the same
                idx = pad_indices(groups)
                x.reshape(-1)[idx] = pad_codec(groups).pop(st)
                if stats is not None:  # the bits the pops gave back, per tile
                    bits = np.concatenate([-np.log2(p[x.reshape(-1)[i].astype(np.int64) - start])
                                           for i, start, p in groups])
                    stats.padding -= np.bincount(idx // mask[0].size, weights=bits, minlength=len(x))
            inner.push(st, x)
            done()

        def pop(st):
            x = inner.pop(st)
            if padded:
                groups = pad_groups(x, mask)
                pad_codec(groups).push(st, x.reshape(-1)[pad_indices(groups)])
            return done(x)

        return Codec(push, pop)

    @staticmethod
    def fill(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return x  # the codec chooses the padding (bits-back)

    @staticmethod
    def coded(mask: np.ndarray) -> int:
        return int(mask.size)

    @staticmethod
    def new_stats(batch: int):
        from .flows.codec import FlowStats
        return FlowStats(batch)

    @staticmethod
    def model_bits(stats) -> np.ndarray:
        return stats.flow_bits + stats.padding  # the padding's bits back subtracted

    def seed_size(self, tiles_in_flight: int, T: int) -> int:
        # the deficit per subpixel is below grid_bits + 8 (dequantization k - 7, expanding couplings'
        # choices); the encoder quadruples the seed if it ever runs dry
        return 64 + math.ceil(tiles_in_flight * 3 * T * T * (self.params.grid_bits + 8) / 32)

    def deficit_key(self, sha256: str, device: str, threads: int) -> str:
        p = self.params
        return (f"{sha256}:flow:f{self.format_version}:k{p.grid_bits}:m{p.scale_bits}:c{p.top_bits}:"
                f"r{p.top_range:g}:{device}:t{threads}")

    def probe(self, tile: int) -> str:
        """16 hex digits of sha256 of the stack after coding one fixed tile: what the couplings' (R, T)
        and the coder make of it here (the network probe of the arithmetic record)."""
        import hashlib

        from .ans import Stack
        from .format.constants import seed_words
        z = np.sin(np.arange(3 * tile * tile, dtype=np.float64) * 0.37).reshape(1, 3, tile, tile)
        x = np.rint((z + 1.0) * 127.5).astype(np.uint8)
        st = Stack(seed_words(self.seed_size(1, tile), self.format_version))
        self.codec(np.ones(x.shape, dtype=bool)).push(st, x)
        return hashlib.sha256(np.ascontiguousarray(st.words()).tobytes()).hexdigest()[:16]
