"""Images in and out through Pillow, split into what the prior codes and what rides beside it.

- `main`: uint8 [C, H, W] with C = 3 (RGB) or 1 (L, P indices, 1-bit as 0/255), coded by the prior;
- `alpha`: uint8 [H, W] or None (LA, RGBA), coded as side data;
- `palette` (+ its raw mode) and `transparency` for P images, stored as side data;
- metadata users care about, restored in the decoded PNG: the ICC profile and EXIF (as side
  data), PNG text chunks (tEXt/zTXt/iTXt, restored as text), gamma (gAMA), chromaticities
  (cHRM), sRGB intent and dpi (pHYs). Other ancillary chunks (tIME, bKGD, sBIT, ...) are not kept,
  and `read_image` names each one it drops in `ImageData.dropped`, for the caller to warn about.

Nothing is silently altered: an input is coded exactly or refused with one line. Pillow hands over
some deeper files as 8-bit images (16-bit PNG RGB, RGBA and grey+alpha; 16-bit TIFF RGB; PPM with a
maxval other than 255; 16-bit BMP), so the real sample depth is read from the file itself
(`check_source`), never inferred from Pillow's mode. Accepted containers: PNG, JPEG, WebP, GIF, TIFF,
BMP and PBM/PGM/PPM; multi-frame files (animations, TIFF pages, MPO pictures) are refused. EXIF
orientation is kept as a tag with the pixels as stored, never applied.
"""
from __future__ import annotations

import io
import json
import re
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageError

SUPPORTED_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")
# Pillow's own decompression-bomb guard, made an error instead of a warning.
MAX_IMAGE_PIXELS = 89_478_485
# Pillow's format names of the containers read (the folder suffixes in fileio follow these).
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP", "PPM")
# PNG chunks whose content is coded (pixels, palette, transparency) or kept as metadata.
PNG_KEPT_CHUNKS = {"IHDR", "PLTE", "IDAT", "IEND", "tRNS", "iCCP", "eXIf", "tEXt", "zTXt", "iTXt",
                   "gAMA", "cHRM", "sRGB", "pHYs"}
# Pillow `info` keys that describe how a file was encoded, not the image: nothing to keep.
ENCODING_DETAILS = {"background", "jfif", "jfif_version", "jfif_unit", "jfif_density", "progressive", "progression",
                    "adobe", "adobe_transform", "compression", "version", "loop", "duration",
                    "interlace", "optimize", "lossless", "quality", "subsampling"}
# TIFF tags that only lay out the pixels (everything else is metadata that is not kept).
TIFF_LAYOUT_TAGS = {254, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 282, 283, 284, 296, 317,
                    320, 322, 323, 324, 325, 338, 339, 34675}


def mode_channels(mode: str) -> int:
    """Subpixels per pixel of a supported mode (P and 1: one index / one bit per pixel)."""
    return {"1": 1, "L": 1, "P": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]


@dataclass
class ImageData:
    name: str
    mode: str
    width: int
    height: int
    main: np.ndarray                    # uint8 [C, H, W]
    alpha: np.ndarray | None = None     # uint8 [H, W]
    palette: bytes | None = None
    palette_mode: str | None = None
    transparency: object = None         # P images: int index or bytes, as Pillow gives it
    meta: dict = field(default_factory=dict)   # JSON-able: text, gamma, chromaticity, srgb, dpi
    icc: bytes | None = None
    exif: bytes | None = None
    dropped: list = field(default_factory=list, compare=False)  # metadata read but not kept (warned)

    @property
    def subpixels(self) -> int:
        return self.width * self.height * mode_channels(self.mode)

    def checksum(self) -> int:
        """CRC32 of everything the decoder must give back (mode, size, pixels, palette)."""
        c = zlib.crc32(json.dumps([self.mode, self.width, self.height, self.palette_mode,
                                   repr(self.transparency)]).encode())
        c = zlib.crc32(np.ascontiguousarray(self.main).tobytes(), c)
        if self.alpha is not None:
            c = zlib.crc32(np.ascontiguousarray(self.alpha).tobytes(), c)
        if self.palette is not None:
            c = zlib.crc32(self.palette, c)
        c = zlib.crc32(json.dumps(self.meta, sort_keys=True).encode(), c)
        for b in (self.icc, self.exif):
            c = zlib.crc32(b"-" if b is None else b"+" + b, c)
        return c


def same_image(a: ImageData, b: ImageData) -> bool:
    """Bit-exact equality of what a round trip must give back (checksum plus the pixel planes)."""
    return (a.checksum() == b.checksum() and np.array_equal(a.main, b.main)
            and (a.alpha is None) == (b.alpha is None) and (a.alpha is None or np.array_equal(a.alpha, b.alpha)))


def archive_checksum(images: list[ImageData]) -> int:
    """CRC32 over the checksums of all images, in order."""
    return zlib.crc32(b"".join(d.checksum().to_bytes(4, "little") for d in images))


def from_pil(img: Image.Image, name: str) -> ImageData:
    mode = img.mode
    if mode not in SUPPORTED_MODES:
        raise ImageError(f"{name}: unsupported image mode {mode} (supported: 8-bit {', '.join(SUPPORTED_MODES)})")
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        raise ImageError(f"{name}: has {frames} frames (animation, pages or MPO pictures); "
                         "only single-frame images are coded")
    w, h = img.size
    if w * h > MAX_IMAGE_PIXELS:
        raise ImageError(f"{name}: {w}x{h} is larger than the {MAX_IMAGE_PIXELS} pixel limit")
    if w == 0 or h == 0:
        raise ImageError(f"{name}: empty image")
    a = np.asarray(img)
    alpha = palette = palette_mode = transparency = None
    if mode == "1":
        main = (a.astype(np.uint8) * 255)[None]
    elif mode in ("L", "P"):
        main = a[None]
    elif mode == "LA":
        main, alpha = a[None, :, :, 0], a[:, :, 1]
    elif mode == "RGB":
        main = a.transpose(2, 0, 1)
    else:  # RGBA
        main, alpha = a[:, :, :3].transpose(2, 0, 1), a[:, :, 3]
    if mode == "P":
        pal = img.palette
        palette_mode = pal.mode if pal is not None else "RGB"
        palette = bytes(pal.tobytes()) if pal is not None else b""
        transparency = img.info.get("transparency")
    info = img.info
    meta = {}
    text = getattr(img, "text", None) or {}
    if text:
        meta["text"] = {str(k): str(v) for k, v in text.items()}
    for key in ("gamma", "srgb"):
        if key in info:
            meta[key] = info[key]
    if "chromaticity" in info:
        meta["chromaticity"] = [float(v) for v in info["chromaticity"]]
    if "dpi" in info:
        meta["dpi"] = [float(v) for v in info["dpi"]]
    icc = info.get("icc_profile") or None
    exif = info.get("exif") or None
    return ImageData(name, mode, w, h, np.ascontiguousarray(main, dtype=np.uint8),
                     None if alpha is None else np.ascontiguousarray(alpha, dtype=np.uint8),
                     palette, palette_mode, transparency, meta,
                     bytes(icc) if icc else None, bytes(exif) if exif else None)


def from_array(a: np.ndarray, name: str) -> ImageData:
    """An ImageData from a uint8 array [H, W] or [H, W, C] (C = 2, 3, 4: LA, RGB, RGBA)."""
    return from_pil(Image.fromarray(a), name)


def to_pil(d: ImageData) -> Image.Image:
    size = (d.width, d.height)
    if d.mode == "1":
        return Image.fromarray(d.main[0] >= 128)
    if d.mode in ("L", "P"):
        img = Image.frombytes(d.mode, size, d.main[0].tobytes())
    elif d.mode == "LA":
        img = Image.frombytes(d.mode, size, np.stack([d.main[0], d.alpha], axis=-1).tobytes())
    elif d.mode == "RGB":
        img = Image.frombytes("RGB", size, d.main.transpose(1, 2, 0).tobytes())
    else:
        img = Image.frombytes("RGBA", size, np.concatenate([d.main.transpose(1, 2, 0), d.alpha[:, :, None]],
                                                           axis=-1).tobytes())
    if d.palette is not None:
        img.putpalette(d.palette, rawmode=d.palette_mode or "RGB")
    if d.transparency is not None:
        img.info["transparency"] = d.transparency
    return img


def _png_chunks(data: bytes) -> list[str]:
    """Chunk types of a PNG file, in order (a damaged tail just ends the list: Pillow judges it)."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        out.append(data[pos + 4:pos + 8].decode("latin-1"))
        pos += 12 + n
    return out


def _pnm_maxval(data: bytes) -> int | None:
    """maxval of a PGM/PPM header (P2, P3, P5, P6); None for bitmaps and other kinds."""
    if data[:2] not in (b"P2", b"P3", b"P5", b"P6"):
        return None
    tokens, pos = [], 2
    while len(tokens) < 3 and pos < len(data):
        m = re.match(rb"\s*(#[^\n]*\n?)?", data[pos:])
        pos += m.end()
        m = re.match(rb"\d+", data[pos:])
        if not m:
            break
        tokens.append(int(m.group()))
        pos += m.end()
    return tokens[2] if len(tokens) == 3 else None


def check_source(img: Image.Image, data: bytes, name: str) -> list[str]:
    """Refuse what Pillow would hand over altered, from the file's own header; returns the
    metadata that is read but not kept (PNG chunk types, TIFF tags, other formats' info keys)."""
    fmt = img.format
    if fmt not in FORMATS:
        raise ImageError(f"{name}: {fmt or 'unknown'} files are not supported "
                         f"(supported: {', '.join(f.replace('WEBP', 'WebP') for f in FORMATS)})")
    if fmt == "PNG":
        depth, colour = data[24], data[25]
        if depth == 16:
            raise ImageError(f"{name}: 16-bit PNG: bbcodec codes 8-bit samples only, "
                             "and refuses rather than cut 16 bits to 8")
        if depth in (2, 4) and colour == 0:
            raise ImageError(f"{name}: {depth}-bit greyscale PNG: only 1- and 8-bit greyscale are coded "
                             "exactly (Pillow would widen it to 8 bits)")
        chunks = _png_chunks(data)
        if "pHYs" in chunks and "dpi" not in img.info:  # an aspect ratio without units is not kept
            chunks.remove("pHYs")
        return sorted({c for c in chunks if c not in PNG_KEPT_CHUNKS})
    if fmt == "TIFF":
        bits = img.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        if any(b not in (1, 8) for b in bits):
            raise ImageError(f"{name}: {max(bits)}-bit TIFF: bbcodec codes 8-bit samples only, "
                             "and refuses rather than cut them to 8 bits")
        from PIL import TiffTags
        return sorted(TiffTags.lookup(t).name for t in img.tag_v2 if t not in TIFF_LAYOUT_TAGS)
    if fmt == "PPM":
        maxval = _pnm_maxval(data)
        if maxval is not None and maxval != 255:
            raise ImageError(f"{name}: PNM maxval {maxval}: only maxval 255 is coded exactly "
                             "(Pillow would rescale or cut the samples)")
    if fmt == "BMP":
        header = int.from_bytes(data[14:18], "little")
        bpp = int.from_bytes(data[24:26] if header == 12 else data[28:30], "little")
        if bpp not in (1, 4, 8, 24, 32):
            raise ImageError(f"{name}: {bpp}-bit BMP: its 5- and 6-bit samples would be rescaled; "
                             "only 1-, 4-, 8-, 24- and 32-bit BMP are coded exactly")
    kept = {"icc_profile", "exif", "dpi", "transparency"}
    return sorted(k for k in img.info if k not in kept and k not in ENCODING_DETAILS)


def read_image(path: str, data: bytes | None = None, name: str | None = None) -> ImageData:
    """Read an image file (PNG, JPEG, WebP, GIF, TIFF, BMP, PNM: see `check_source`); `data` for stdin."""
    name = name or path
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        if data is None:
            with open(path, "rb") as f:
                data = f.read()
        if not data:
            raise ImageError(f"{name}: empty file")
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:  # refused before any pixel is decoded
                raise ImageError(f"{name}: {w}x{h} is larger than the {MAX_IMAGE_PIXELS} pixel limit")
            dropped = check_source(img, data, name)
            img.load()
            d = from_pil(img, name)
            d.dropped = dropped
            return d
    except ImageError:
        raise
    except UnidentifiedImageError:  # its message holds the repr of a stream, not the file's name
        raise ImageError(f"{name}: not an image file (or a kind Pillow cannot read)")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}: larger than the {MAX_IMAGE_PIXELS} pixel limit")
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file")
    except IsADirectoryError:
        raise ImageError(f"{name}: is a directory")
    except Exception as e:  # Pillow raises many kinds for bad files
        raise ImageError(f"{name}: cannot read image ({type(e).__name__}: {e})".splitlines()[0])


def png_bytes(d: ImageData) -> bytes:
    import struct
    from PIL import PngImagePlugin

    buf = io.BytesIO()
    img = to_pil(d)
    kw = {}
    if d.transparency is not None:
        kw["transparency"] = d.transparency
    info = PngImagePlugin.PngInfo()
    for k, v in d.meta.get("text", {}).items():
        try:
            v.encode("latin-1")
            info.add_text(k, v)
        except UnicodeEncodeError:
            info.add_itxt(k, v)
    if "gamma" in d.meta:
        info.add(b"gAMA", struct.pack(">I", int(round(d.meta["gamma"] * 100000))))
    if "chromaticity" in d.meta:
        info.add(b"cHRM", struct.pack(">8I", *(int(round(v * 100000)) for v in d.meta["chromaticity"])))
    if "srgb" in d.meta:
        info.add(b"sRGB", bytes([int(d.meta["srgb"])]))
    if "dpi" in d.meta:
        kw["dpi"] = tuple(d.meta["dpi"])
    if d.icc:
        kw["icc_profile"] = d.icc
    if d.exif:
        kw["exif"] = d.exif
    img.save(buf, format="PNG", pnginfo=info, **kw)
    return buf.getvalue()
