"""The header's coding fields as a typed record, the image table, and each image's side data.

`Coding` is what the decoder needs to replay the encoder: it is written as the header's `coding`
object (fields at their default are left out where older files leave them out, so the bytes of a
file do not depend on this class) and read back, validated, from any readable version.

Side data is one zlib stream (`container.pack_side`) of, per image in order: the alpha plane
(H*W bytes), the palette, the ICC profile, the EXIF block, with the lengths in the image table.
`side_chunks` and `split_side` are the only code that knows that order.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from ..errors import BbcError, FormatError
from .plan import DEFAULT_RAMP

CODEC_ID = "vdm-bitswap"      # the diffusion prior in Bit-Swap (or BB-ANS) order
FLOW_CODEC_ID = "flow-lbb"    # a coupling flow by local bits-back (`flows.codec`; format version 4 on)


@dataclass(frozen=True)
class Coding:
    steps: int               # diffusion steps K
    grid: str                # time grid id ("uniform" or one shipped with the model)
    grid_bits: int           # latent bin = step std / 2^grid_bits
    tile: int                # T: tiles are T x T
    parallel: int            # tiles in flight (largest batch)
    seed_words: int          # W: the stack started on seed_words(W)
    seed_kept: int           # m: its bottom m words are not stored (the decoder regenerates them)
    threads: int             # torch intra-op threads of the encoder (replayed: CPU floats depend on it)
    device: str              # "cpu" or "cuda": where the encoder ran the network
    boot_codec: str | None = None  # the bootstrap codec of the leading tiles (`bootstrap.CODECS`)
    boot_tiles: int = 0      # how many leading tiles it coded
    latents: int = 1         # latent coding version (2: push variances fitted to the model's mse curve)
    ramp: int = DEFAULT_RAMP # batches grow to 1/ramp as many tiles as are done (`plan.batches`)
    nhwc: int = 0            # 1: the network ran channels-last (`diffusion.codec.EpsFn`)
    order: str = "bitswap"   # the chain's composition (`container.ORDERS`; "bbans" for comparison only)

    # left out of the JSON at their default, as files have always done (boot_* are always written)
    _OMITTED_AT_DEFAULT = ("latents", "ramp", "nhwc", "order")

    def to_json(self) -> dict:
        d = asdict(self)
        for k in self._OMITTED_AT_DEFAULT:
            if d[k] == Coding.__dataclass_fields__[k].default:
                del d[k]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Coding":
        """From a header already checked by `container.validate_header`."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise FormatError(f"unknown coding field {sorted(unknown)[0]!r}")
        return cls(**d)


@dataclass(frozen=True)
class FlowCoding:
    """The coding record of a flow's file (codec "flow-lbb"): the archive fields of `Coding`, and the
    flow codec's precision (`flows.codec.FlowCodingParams`) instead of the diffusion chain's."""
    tile: int
    parallel: int
    seed_words: int
    seed_kept: int
    threads: int
    device: str
    grid_bits: int           # k: every layer's coordinates on the grid 2^-k (model space)
    scale_bits: int          # m: coupling scales coded as R / 2^m
    top_bits: int            # c: the final latent's Gaussian bins are 2^-c wide
    top_range: float         # the final latent lies within +-top_range
    boot_codec: str | None = None
    boot_tiles: int = 0
    ramp: int = DEFAULT_RAMP

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "FlowCoding":
        """From a header already checked by `container.validate_header`."""
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise FormatError(f"unknown coding field {sorted(unknown)[0]!r}")
        return cls(**d)

    def params(self):
        from ..flows.codec import FlowCodingParams
        return FlowCodingParams(grid_bits=self.grid_bits, scale_bits=self.scale_bits, top_bits=self.top_bits,
                                top_range=float(self.top_range))


def coding_from_header(h: dict):
    """The header's coding record as `Coding` (diffusion) or `FlowCoding` (flow), by its codec."""
    return (FlowCoding if h.get("codec") == FLOW_CODEC_ID else Coding).from_json(h["coding"])


def _sha16(*arrays) -> str:
    import hashlib
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def network_probe(eps_fn, tile: int) -> str:
    """The network's output on one fixed tile of latents (one call, as the coder makes it: its layout
    and the thread count in force): what ATen's CPU kernels, oneDNN and the device make of it."""
    z = np.sin(np.arange(3 * tile * tile, dtype=np.float64) * 0.37).reshape(1, 3, tile, tile)  # |z| <= 1
    return _sha16(eps_fn(z, 0.0))


def arithmetic(device: str, eps_fn=None, tile: int = 32, integer: bool = False, probe: str | None = None) -> dict:
    """What float probabilities computed here depend on, beyond the header's coding fields (threads,
    layout, batches): recorded by the encoder (format version 3), compared by the decoder. Version 3's
    coefficients and bin masses are exact (`diffusion.exact`), so what is left is the network and the
    entropy coder: torch's version and CPU capability (or CUDA device) name what differs, and the
    network probe tests it directly, whatever the cause (an environment variable, a library, the
    machine). The probe is taken with eps_fn only: a file whose tiles are all classical depends on no
    float arithmetic and is never checked.

    integer: the model is an integer network (`diffusion.intnet`, format version 4), whose outputs are
    the same on any machine: the record is then {"network": "integer", "constriction": version,
    "network_probe"}, and the torch build, device and CPU kernels no longer matter.

    probe: a network probe taken by the caller instead of eps_fn's (a flow's: `priors.FlowPrior.probe`)."""
    import importlib.metadata

    import torch
    if integer:  # version 4's integer network: only the entropy coder's quantisation is left
        rec = {"network": "integer", "constriction": importlib.metadata.version("constriction")}
        if eps_fn is not None:
            rec["network_probe"] = network_probe(eps_fn, tile)
        return rec
    rec = {"torch": torch.__version__, "constriction": importlib.metadata.version("constriction"), "device": device}
    if device == "cuda":
        rec["cuda_device"] = torch.cuda.get_device_name()
        rec["cuda"] = str(torch.version.cuda)
    else:
        rec["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    if probe is not None:
        rec["network_probe"] = probe
    elif eps_fn is not None:
        rec["network_probe"] = network_probe(eps_fn, tile)
    return rec


def arithmetic_mismatch(recorded: dict, here: dict) -> str | None:
    """None where the arithmetic matches; else one line naming each difference."""
    keys = sorted(set(recorded) | set(here), key=lambda k: (k != "device", k))
    diff = [f"{k}: {recorded.get(k, '(unset)')} in the file, {here.get(k, '(unset)')} here" for k in keys
            if recorded.get(k) != here.get(k)]
    if not diff:
        return None
    return ("made under other arithmetic (" + "; ".join(diff) + "), so its probabilities are not reproduced "
            "here: decode it where it was made")


def transparency_to_json(t):
    if t is None or isinstance(t, int):
        return t
    if isinstance(t, bytes):
        return t.hex()
    raise BbcError(f"unsupported transparency value {t!r}")


def transparency_from_json(t):
    return bytes.fromhex(t) if isinstance(t, str) else t


def image_record(d, metadata: bool = True) -> dict:
    """The image table's entry for an `images.ImageData` (without metadata: what the file would
    hold without its ICC profile, EXIF and tags, to measure what they cost)."""
    return {"name": d.name, "width": d.width, "height": d.height, "mode": d.mode,
            "channels": int(d.main.shape[0]), "alpha": int(d.alpha is not None),
            "palette_mode": d.palette_mode, "palette_bytes": len(d.palette or b""),
            "transparency": transparency_to_json(d.transparency), "meta": d.meta if metadata else {},
            "icc_bytes": len(d.icc or b"") if metadata else 0, "exif_bytes": len(d.exif or b"") if metadata else 0}


def side_chunks(d, metadata: bool = True) -> list[bytes]:
    """An image's side data in file order: alpha plane, palette, then (metadata) ICC profile, EXIF."""
    out = []
    if d.alpha is not None:
        out.append(np.ascontiguousarray(d.alpha).tobytes())
    if d.palette is not None:
        out.append(d.palette)
    for b in (d.icc, d.exif) if metadata else ():
        if b:
            out.append(b)
    return out


def side_length(records: list[dict]) -> int:
    """Bytes of inflated side data the image table announces."""
    return sum(im["height"] * im["width"] * im["alpha"] + im["palette_bytes"] + im["icc_bytes"] + im["exif_bytes"]
               for im in records)


def split_side(side: bytes, records: list[dict]) -> list[tuple]:
    """Per image: (alpha uint8 [H, W] | None, palette | None, icc | None, exif | None)."""
    out, pos = [], 0
    for im in records:
        H, W = im["height"], im["width"]
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
        out.append((alpha, palette, icc, exif))
    return out
