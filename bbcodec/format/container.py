"""The .bbc container: the byte layout and the validation of every header field.

    offset      size  field
    0           4     magic b"\\x89BBC"
    4           2     format version, uint16 little-endian (4; versions 1 to 3 are still read)
    6           4     header length H, uint32 LE (at most MAX_HEADER)
    10          H     header: a raw DEFLATE stream, with the preset dictionary HEADER_ZDICT, of
                      a UTF-8 JSON object with sorted keys (fields below; inflates to at most
                      MAX_HEADER bytes; version 3 appends typical arithmetic records to version
                      2's dictionary, HEADER_ZDICT_V3, and version 4 an integer network's, HEADER_ZDICT_V4). Version 1: a zlib stream without dictionary. The
                      dictionary cuts a one-image header from ~330 to under 100 bytes, which is
                      0.2 bits/dim instead of 0.9 on a 32x32 file.
    10+H        4     CRC32 of the H header bytes, uint32 LE
    14+H        P     payload: the ANS stack as uint32 LE words, bottom first, without the
                      `coding.seed_kept` bottom words, which equal the seed and are regenerated
    14+H+P      A     side data: one zlib stream (per image in order: alpha plane, palette, ICC profile, EXIF)
    end of file exactly here: trailing bytes are an error

Header fields (JSON, no pickle):
    codec           "vdm-bitswap" (the diffusion prior), or from version 4 on "flow-lbb" (a coupling flow
                    coded by local bits-back, `flows.codec`), whose `coding` holds the archive fields below
                    (tile .. boot_tiles, ramp) and, instead of steps .. order, the flow codec's precision
                    "grid_bits" (k, 8..20), "scale_bits" (m), "top_bits" (c), "top_range" (`header.FlowCoding`);
                    a flow's network is float, so its arithmetic record is the float one
    model           {"name": str, "sha256": first 16 hex digits of the weights file's sha256}
    coding          {"steps": K, "grid": time-grid id, "grid_bits": b, "latents": latent coding version
                     (absent: 1; 2 = push variances from the model's mse curve), "tile": T, "parallel": tiles in
                     flight, "ramp": batches grow to 1/ramp as many tiles as are done (absent: 2;
                     see `plan.batches`), "seed_words": W, "seed_kept": m, "threads": torch intra-op threads of the
                     encoder (the decoder uses the same: CPU float results depend on it),
                     "device": "cpu" or "cuda" (where the encoder ran the network),
                     "boot_codec": null or a `bootstrap.CODECS` name, "boot_tiles": how many leading
                     tiles are coded with it instead of the prior (absent: none), "nhwc": 1 where the
                     network ran channels-last (`diffusion.codec.EpsFn`; absent: 0, the plain module),
                     "order": the chain's composition, one of ORDERS (absent: "bitswap"; "bbans" pops every
                     latent before pushing, for comparison only: `bitsback`)}
    images          the image table, one list per column, one entry per image (columns compress
                    far better than records: a CIFAR-10 archive pays a few bytes per image):
                    "name", "width", "height", "mode", "channels" (coded by the prior: 1 or 3),
                    "alpha" (0/1), "palette_mode" (str|null), "palette_bytes" (int),
                    "transparency" (int|hex str|null), "meta" (object: text, gamma, chromaticity,
                    srgb, dpi), "icc_bytes", "exif_bytes" (lengths of those side-data chunks)
    arithmetic      (version 4, integer network: `diffusion.intnet`) {"network": "integer", "constriction":
                    version, "network_probe"}: nothing else matters to its probabilities, which are the
                    same on any machine, device, thread count and grouping of network calls.
                    (versions 3, 4, float network) what the encoder's float probabilities depended on, {str: str}: "torch"
                    and "constriction" versions, "device", "cpu_capability" (torch's ATen kernels)
                    or "cuda_device" and "cuda", and, where the network coded tiles, "network_probe"
                    (16 hex digits of sha256 of its output on one fixed tile; `header.network_probe`).
                    Version 3's coefficients and bin masses are exact (`diffusion.exact`): numpy's
                    version and CPU dispatch do not matter to it. A decoder whose own record differs refuses before decoding, naming what
                    differs (`header.arithmetic_mismatch`).
    pixels_crc32    CRC32 over all decoded images (mode, size, pixels, alpha, palette, transparency,
                    meta, ICC and EXIF, in order; see
                    `images.archive_checksum`): one field, not one per image, because at CIFAR-10
                    sizes four bytes per image would cost 0.01 bits/dim
    payload_bytes, payload_crc32, side_bytes, side_crc32

Everything is validated before anything is allocated from it: sizes are bounded (MAX_PIXELS
pixels over all images of a file, Pillow's own decompression-bomb limit), the header inflates to
at most MAX_HEADER bytes, side data to exactly the lengths the header states, and the payload and
side lengths must match the file's length exactly. Memory bound of a decode: the input file, the
model, and about 16 bytes per pixel (tiles, masks, the decoded planes and the PNG being written;
an estimate from the array sizes, not a measurement), so at most about 1.4 GiB at MAX_PIXELS.
"""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import FormatError

MAGIC = b"\x89BBC"
VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
INTEGER_NETWORK_VERSION = 4  # the first version whose files may name an integer network (arithmetic.network)
# Format constant of version 2 (never edit): typical header text, the preset DEFLATE dictionary.
HEADER_ZDICT = (
    b'"transparency":[null],"width":[32]},"model":{"name":"cifar10-vdm-s1","sha256":"0000000000000000"},'
    b'{"codec":"vdm-bitswap","coding":{"boot_codec":"jxl","boot_tiles":1,"device":"cpu","grid":"opt1",'
    b'"grid_bits":0,"parallel":1,"seed_kept":100,"seed_words":100,"steps":100,"threads":1,"tile":32},'
    b'"images":{"alpha":[0],"channels":[3],"exif_bytes":[0],"height":[32],"icc_bytes":[0],"meta":[{}],'
    b'"mode":["RGB"],"name":["image.png"],"palette_bytes":[0],"palette_mode":[null],'
    b'"payload_bytes":1000,"payload_crc32":1000000000,"pixels_crc32":1000000000,"side_bytes":0,"side_crc32":0}'
)
# Version 3's dictionary: version 2's, then a typical arithmetic record (60 bytes a file otherwise).
HEADER_ZDICT_V3 = HEADER_ZDICT + (
    b'"arithmetic":{"constriction":"0.5.0","cuda":"12.8","cuda_device":"NVIDIA ","device":"cuda",'
    b'"network_probe":"0123456789abcdef","torch":"2.9.1+cu128"},"arithmetic":{"constriction":"0.5.0",'
    b'"cpu_capability":"AVX512","device":"cpu","network_probe":"0123456789abcdef","torch":"2.13.0+cpu"},'
    b'"arithmetic":{"constriction":"0.5.0","cpu_capability":"AVX512","device":"cpu","torch":"2.13.0+cpu"}'
)


# Version 4's dictionary: version 3's, then the integer network's arithmetic record.
HEADER_ZDICT_V4 = HEADER_ZDICT_V3 + (
    b'"arithmetic":{"constriction":"0.5.0","network":"integer","network_probe":"0123456789abcdef"},'
    b'"model":{"name":"cifar10-vdm-s7-int","sha256":"0000000000000000"}'
)


def header_dictionary(version: int) -> bytes:
    return HEADER_ZDICT_V4 if version >= 4 else HEADER_ZDICT_V3 if version >= 3 else HEADER_ZDICT


MAX_HEADER = 1 << 20
# `coding.order` values, the names of `bitsback.CHAINS` (kept apart: this module imports no coder)
ORDERS = ("bitswap", "bbans")
MAX_IMAGES = 100_000
MAX_SIDE = 1 << 31
MAX_PIXELS = 89_478_485   # Pillow's decompression-bomb limit, over all images of a file
_PRE = struct.Struct("<4sHI")


@dataclass
class Container:
    header: dict
    payload: bytes
    side: bytes
    version: int = VERSION  # what to_bytes writes; parse gives the file's

    def to_bytes(self) -> bytes:
        h = dict(self.header)
        h["payload_bytes"] = len(self.payload)
        h["payload_crc32"] = zlib.crc32(self.payload)
        h["side_bytes"] = len(self.side)
        h["side_crc32"] = zlib.crc32(self.side)
        z = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, header_dictionary(self.version))
        hb = z.compress(json.dumps(h, separators=(",", ":"), sort_keys=True).encode()) + z.flush()
        return _PRE.pack(MAGIC, self.version, len(hb)) + hb + struct.pack("<I", zlib.crc32(hb)) + self.payload + self.side


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise FormatError(msg)


def _int(d: dict, key: str, lo: int, hi: int) -> int:
    v = d.get(key)
    _need(isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi, f"invalid header field {key!r}")
    return v


def parse(data: bytes, verify_checksums: bool = True) -> Container:
    """Parse and validate a .bbc file; every failure is a FormatError with a one-line reason.

    verify_checksums=False is for fuzzing the layers behind the checksums only.
    """
    if len(data) == 0:
        raise FormatError("empty file")
    if len(data) < _PRE.size or data[:4] != MAGIC:
        raise FormatError("not a .bbc file (bad magic)")
    _, version, hlen = _PRE.unpack_from(data)
    _need(version in READABLE_VERSIONS,
          f"unsupported .bbc format version {version} (this bbcodec reads {', '.join(map(str, READABLE_VERSIONS))})")
    _need(hlen <= MAX_HEADER, "corrupted header (length out of range)")
    _need(len(data) >= _PRE.size + hlen + 4, "truncated file (header incomplete)")
    hb = data[_PRE.size:_PRE.size + hlen]
    (hcrc,) = struct.unpack_from("<I", data, _PRE.size + hlen)
    _need(not verify_checksums or zlib.crc32(hb) == hcrc, "corrupted header (checksum mismatch)")
    try:
        d = zlib.decompressobj() if version == 1 else zlib.decompressobj(-15, header_dictionary(version))
        raw = d.decompress(hb, MAX_HEADER)
        _need(d.eof and not d.unconsumed_tail and not d.unused_data, "corrupted header (too large or incomplete)")
        h = json.loads(raw.decode())
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError):
        raise FormatError("corrupted header (not valid)")
    _need(isinstance(h, dict), "corrupted header")
    validate_header(h, version)
    start = _PRE.size + hlen + 4
    p, s = h["payload_bytes"], h["side_bytes"]
    _need(len(data) >= start + p + s, "truncated file")
    _need(len(data) == start + p + s, "trailing bytes after the end of the file")
    payload, side = data[start:start + p], data[start + p:]
    if verify_checksums:
        _need(zlib.crc32(payload) == h["payload_crc32"], "corrupted payload (checksum mismatch)")
        _need(zlib.crc32(side) == h["side_crc32"], "corrupted side data (checksum mismatch)")
    return Container(h, payload, side, version)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e9


def _valid_meta(m) -> bool:
    if not isinstance(m, dict) or not set(m) <= {"text", "gamma", "srgb", "chromaticity", "dpi"}:
        return False
    t = m.get("text", {})
    ok = isinstance(t, dict) and all(isinstance(k, str) and isinstance(v, str) and 0 < len(k) < 80
                                     for k, v in t.items())
    ok &= _num(m.get("gamma", 1)) and m.get("gamma", 1) > 0
    ok &= m.get("srgb", 0) in (0, 1, 2, 3)
    for key, n in (("chromaticity", 8), ("dpi", 2)):
        v = m.get(key, [1] * n)
        ok &= isinstance(v, list) and len(v) == n and all(_num(x) and x >= 0 for x in v)
    return bool(ok)


PALETTE_MODES = ("RGB", "RGBA", "L", "LA", "RGBX", "CMYK", "P")  # Pillow's palette raw modes
HEADER_KEYS = {"codec", "model", "coding", "images", "pixels_crc32", "payload_bytes", "payload_crc32",
               "side_bytes", "side_crc32", "arithmetic"}


def _is_hex(s: str) -> bool:
    try:
        bytes.fromhex(s)
        return True
    except ValueError:
        return False


CODECS = ("vdm-bitswap", "flow-lbb")  # header.CODEC_ID, header.FLOW_CODEC_ID
FLOW_VERSION = 4  # the first version whose files may hold a flow's code ("flow-lbb")


def validate_header(h: dict, version: int = VERSION) -> None:
    codec = h.get("codec")
    _need(codec in CODECS and (codec != "flow-lbb" or version >= FLOW_VERSION), f"unknown codec {codec!r}")
    unknown = sorted(set(h) - HEADER_KEYS)
    _need(not unknown, f"invalid header field {unknown[0]!r}" if unknown else "")
    a = h.get("arithmetic")
    if version >= 3:
        _need(isinstance(a, dict) and 0 < len(a) <= 16 and all(isinstance(k, str) and isinstance(v, str)
                                                               and len(k) < 40 and len(v) < 200 for k, v in a.items()),
              "invalid header field 'arithmetic'")
        _need(a.get("network", "integer") == "integer" and ("network" not in a or version >= INTEGER_NETWORK_VERSION),
              "invalid header field 'arithmetic'")
    else:
        _need(a is None, "invalid header field 'arithmetic'")
    m = h.get("model")
    _need(isinstance(m, dict) and isinstance(m.get("name"), str) and isinstance(m.get("sha256"), str),
          "invalid header field 'model'")
    c = h.get("coding")
    _need(isinstance(c, dict), "invalid header field 'coding'")
    if codec == "flow-lbb":
        _need(a.get("network") is None, "invalid header field 'arithmetic'")  # a float flow
        _validate_flow_coding(c)
    else:
        _validate_vdm_coding(c)
    _validate_images(h)


def _validate_vdm_coding(c: dict) -> None:
    """The diffusion chain's coding record (`header.Coding`)."""
    _int(c, "steps", 1, 100_000)
    _need(isinstance(c.get("grid"), str), "invalid header field 'grid'")
    _int(c, "grid_bits", 0, 8)
    _int({"latents": c.get("latents", 1)}, "latents", 1, 1 << 16)  # an unknown version: "unsupported coding"
    _validate_archive_coding(c)
    _int({"nhwc": c.get("nhwc", 0)}, "nhwc", 0, 1)
    _need(c.get("order", "bitswap") in ORDERS, "invalid header field 'order'")


def _validate_archive_coding(c: dict) -> None:
    """The coding fields every codec's archive has: tiles, batches, seed, threads, device, bootstrap."""
    _int(c, "tile", 4, 1024)
    _int(c, "parallel", 1, 1 << 16)
    _int({"ramp": c.get("ramp", 2)}, "ramp", 1, 1 << 16)
    _int(c, "seed_words", 1, 1 << 28)
    _int(c, "seed_kept", 0, c["seed_words"])
    _int(c, "threads", 1, 4096)
    _need(c.get("device") in ("cpu", "cuda"), "invalid header field 'device'")
    _need(c.get("boot_codec") is None or isinstance(c.get("boot_codec"), str), "invalid header field 'boot_codec'")
    _int({"boot_tiles": c.get("boot_tiles", 0)}, "boot_tiles", 0, MAX_PIXELS)


FLOW_CODING_KEYS = {"tile", "parallel", "ramp", "seed_words", "seed_kept", "threads", "device", "boot_codec",
                    "boot_tiles", "grid_bits", "scale_bits", "top_bits", "top_range"}


def _validate_flow_coding(c: dict) -> None:
    """A flow's coding record (`header.FlowCoding`; ranges of `flows.codec.FlowCodingParams.check`)."""
    unknown = sorted(set(c) - FLOW_CODING_KEYS)
    _need(not unknown, f"unknown coding field {unknown[0]!r}" if unknown else "")
    _validate_archive_coding(c)
    k = _int(c, "grid_bits", 8, 20)
    _int(c, "scale_bits", 4, 16)
    top = _int(c, "top_bits", 0, min(k - 1, 8))
    r = c.get("top_range")
    _need(_num(r) and 1 <= r and r * 2.0 ** (top + 1) <= 2.0 ** 16, "invalid header field 'top_range'")
    _need(c["tile"] % 4 == 0, "invalid header field 'tile'")


def _validate_images(h: dict) -> None:
    table = h.get("images")
    _need(isinstance(table, dict) and set(table) == set(IMAGE_COLUMNS), "invalid header field 'images'")
    n = len(table["name"])
    _need(1 <= n <= MAX_IMAGES and all(isinstance(v, list) and len(v) == n for v in table.values()),
          "invalid header field 'images'")
    total = 0
    for im in image_records(h):
        _need(isinstance(im["name"], str), "invalid image entry (name)")
        w, hh = _int(im, "width", 1, 1 << 20), _int(im, "height", 1, 1 << 20)
        ch = _int(im, "channels", 1, 3)
        _need(ch in (1, 3), "invalid image entry (channels)")
        _need(im["mode"] in ("1", "L", "LA", "P", "RGB", "RGBA"), "invalid image entry (mode)")
        _need(im["palette_mode"] is None or im["palette_mode"] in PALETTE_MODES, "invalid image entry (palette_mode)")
        t = im["transparency"]
        _need(t is None or (isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 1 << 16)
              or (isinstance(t, str) and len(t) <= 2048 and _is_hex(t)), "invalid image entry (transparency)")
        _int(im, "alpha", 0, 1)
        _int(im, "palette_bytes", 0, 4096)
        _int(im, "icc_bytes", 0, 1 << 24)
        _int(im, "exif_bytes", 0, 1 << 24)
        _need(_valid_meta(im["meta"]), "invalid image entry (meta)")
        total += w * hh
        _need(total <= MAX_PIXELS, f"image sizes in the header exceed the {MAX_PIXELS} pixel limit")
    _int(h, "payload_bytes", 0, 1 << 40)
    _int(h, "side_bytes", 0, MAX_SIDE)
    _int(h, "payload_crc32", 0, 2**32 - 1)
    _int(h, "pixels_crc32", 0, 2**32 - 1)
    _int(h, "side_crc32", 0, 2**32 - 1)


IMAGE_COLUMNS = ("name", "width", "height", "mode", "channels", "alpha", "palette_mode", "palette_bytes",
                 "transparency", "meta", "icc_bytes", "exif_bytes")


def image_table(records: list[dict]) -> dict:
    return {k: [r[k] for r in records] for k in IMAGE_COLUMNS}


def image_records(h: dict) -> list[dict]:
    t = h["images"]
    return [dict(zip(IMAGE_COLUMNS, row)) for row in zip(*(t[k] for k in IMAGE_COLUMNS))]


def words_to_bytes(words: np.ndarray) -> bytes:
    return np.ascontiguousarray(words, dtype="<u4").tobytes()


def bytes_to_words(b: bytes) -> np.ndarray:
    if len(b) % 4:
        raise FormatError("corrupted payload (length not a multiple of 4)")
    return np.frombuffer(b, dtype="<u4").astype(np.uint32)


def pack_side(chunks: list[bytes]) -> bytes:
    return zlib.compress(b"".join(chunks), 9) if chunks else b""


def unpack_side(side: bytes, expected: int) -> bytes:
    """Inflate side data, refusing to produce more than `expected` bytes (no zip bombs)."""
    if expected == 0:
        _need(side == b"", "corrupted side data")
        return b""
    d = zlib.decompressobj()
    try:
        out = d.decompress(side, expected + 1)
    except zlib.error:
        raise FormatError("corrupted side data")
    _need(len(out) == expected and d.eof, "corrupted side data (wrong length)")
    return out
