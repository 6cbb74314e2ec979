"""Images in and out through Pillow, split into what the prior codes and what rides beside it.

- `main`: uint8 [C, H, W] with C = 3 (RGB) or 1 (L, P indices, 1-bit as 0/255), coded by the prior;
- `alpha`: uint8 [H, W] or None (LA, RGBA), coded as side data;
- `palette` (+ its raw mode) and `transparency` for P images, stored as side data;
- metadata users care about, restored in the decoded PNG: the ICC profile and EXIF (as side
  data), PNG text chunks (tEXt/zTXt/iTXt, restored as text), gamma (gAMA), chromaticities
  (cHRM), sRGB intent and dpi (pHYs). Other ancillary chunks (tIME, bKGD, sBIT, ...) are not kept.
Anything Pillow cannot give as 8 bits per channel in one of these modes, and animations, are refused.
"""
from __future__ import annotations

import io
import json
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .errors import ImageError

SUPPORTED_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")
# Pillow's own decompression-bomb guard, made an error instead of a warning.
MAX_IMAGE_PIXELS = 89_478_485


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
    if getattr(img, "n_frames", 1) > 1:
        raise ImageError(f"{name}: animated images are not supported")
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


def read_image(path: str, data: bytes | None = None, name: str | None = None) -> ImageData:
    """Read any image file Pillow knows (PNG first of all); `data` for stdin."""
    name = name or path
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as img:
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:  # refused before any pixel is decoded
                raise ImageError(f"{name}: {w}x{h} is larger than the {MAX_IMAGE_PIXELS} pixel limit")
            img.load()
            return from_pil(img, name)
    except ImageError:
        raise
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
