"""Classical lossless codecs, used as benchmark baselines: one image in, one file's bytes out.

Contract: `encode` takes uint8 [H, W, C] with C in (1, 3, 4), or [H, W] gray, and returns the
bytes of one standalone file; `decode` gives back exactly that array, same dtype and shape,
except that gray always comes back as [H, W] (the file cannot say whether it was [H, W, 1]).
A codec that cannot hold some channel count refuses it with an ImageError. Optional libraries
are imported inside the functions, so importing this module never fails; `available()` says
whether a codec can run here and `version` names the libraries that produced the bytes.

The settings reproduce the published CIFAR-10 figures (test set, one file per image,
8 * bytes / (32 * 32 * 3), averaged over 10,000 images); see the comment at each codec.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import BbcError, ImageError


@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes], np.ndarray]
    # Library versions as one string, or None when a library is missing: availability and the
    # version both come from the same import, so they cannot disagree.
    probe: Callable[[], str | None]

    def available(self) -> bool:
        return self.probe() is not None

    @property
    def version(self) -> str:
        return self.probe() or "not installed"


def _pixels(a: np.ndarray, name: str, channels: tuple[int, ...] = (1, 3, 4)) -> np.ndarray:
    """The array as the libraries want it: C-contiguous uint8, gray as [H, W]."""
    a = np.asarray(a)
    if a.dtype != np.uint8:
        raise ImageError(f"{name}: expected uint8 pixels, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    c = 1 if a.ndim == 2 else a.shape[2] if a.ndim == 3 else 0
    if c not in channels or a.shape[0] == 0 or a.shape[1] == 0:
        allowed = ", ".join(map(str, channels))
        raise ImageError(f"{name}: expected [H, W] or [H, W, C] with C in {allowed}, got shape {a.shape}")
    return np.ascontiguousarray(a)


# --- Pillow --------------------------------------------------------------------------------

def _pillow_version(feature: str, label: str) -> str | None:
    try:
        import PIL
        from PIL import features
    except ImportError:
        return None
    v = features.version(feature)
    if v is None:
        return None
    if feature == "zlib":
        # Pillow wheels link zlib-ng, which reports the zlib API version it mimics; the
        # compressor that decides the PNG size is zlib-ng, so name it.
        ng = features.version_feature("zlib_ng") if "zlib_ng" in features.features else None
        if ng:
            v = f"{v} (zlib-ng {ng})"
    return f"Pillow {PIL.__version__}, {label} {v}"


def _pillow_save(a: np.ndarray, fmt: str, **options) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt, **options)
    return buf.getvalue()


def _pillow_encoder(name: str, fmt: str, channels: tuple[int, ...], **options) -> Callable[[np.ndarray], bytes]:
    return lambda a: _pillow_save(_pixels(a, name, channels), fmt, **options)


def _webp_encode(a: np.ndarray) -> bytes:
    a = _pixels(a, "webp", (3, 4))
    data = _pillow_save(a, "WEBP", lossless=True, quality=100, method=4, exact=True)
    if a.ndim == 3 and a.shape[2] == 4 and data[12:16] == b"VP8L" and data[20] == 0x2F:
        # libwebp clears the VP8L header's alpha_is_used hint when every pixel is opaque, and
        # decoders then hand back RGB. The hint costs nothing and the ARGB data is coded either
        # way, so set it: an RGBA array must come back RGBA.
        data = data[:24] + bytes([data[24] | 0x10]) + data[25:]
    return data


def _pillow_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.array(img)


# --- imagecodecs (bundles libjxl, CharLS) -----------------------------------------------------

def _imagecodecs_version(codec: str, lib: str, label: str) -> str | None:
    try:
        import imagecodecs
    except ImportError:
        return None
    if not getattr(imagecodecs, codec).available:
        return None
    v = imagecodecs.version(dict).get(lib, "?")
    return f"imagecodecs {imagecodecs.__version__}, {label} {v}"


def _jxl_encoder(name: str, effort: int):
    def encode(a: np.ndarray) -> bytes:
        import imagecodecs

        # One thread: the benchmark times codecs single-threaded. Bare codestream, no container:
        # the ISOBMFF boxes would add ~40 bytes to every 32x32 image.
        return imagecodecs.jpegxl_encode(_pixels(a, name), lossless=True, effort=effort, numthreads=1)
    return encode


def _jxl_decode(data: bytes) -> np.ndarray:
    import imagecodecs

    return imagecodecs.jpegxl_decode(data, numthreads=1)


def _jpegls_encode(a: np.ndarray) -> bytes:
    import imagecodecs

    # level is CharLS's NEAR parameter: 0 is the lossless mode.
    return imagecodecs.jpegls_encode(_pixels(a, "jpegls"), level=0)


def _jpegls_decode(data: bytes) -> np.ndarray:
    import imagecodecs

    return imagecodecs.jpegls_decode(data)


BASELINES: dict[str, Baseline] = {b.name: b for b in (
    # optimize=True (deflate level 9, and Pillow's per-row filter choice also tries Average):
    # 5.8664 bits/subpixel, the published PNG 5.87; compress_level=9 alone gives 5.8870.
    Baseline("png", "PNG via Pillow (optimize=True: zlib level 9, per-row filter incl. Average)",
             _pillow_encoder("png", "PNG", (1, 3, 4), optimize=True),
             _pillow_decode, lambda: _pillow_version("zlib", "zlib")),
    # quality=100, method=4: 4.6065 bits/subpixel, the published WebP 4.61 (Pillow's default
    # quality=80 gives the same bytes on CIFAR-10). On 32x32 images libwebp's harder settings
    # do worse: method=6, quality=100 gives 4.7030, the other published figure. exact=True
    # keeps the RGB under fully transparent pixels, which lossless WebP otherwise rewrites.
    # WebP has no gray mode, so gray is refused rather than widened to RGB.
    Baseline("webp", "WebP lossless via Pillow (lossless=True, quality=100, method=4, exact=True)",
             _webp_encode,
             _pillow_decode, lambda: _pillow_version("webp", "libwebp")),
    # effort=7 (libjxl's default), bare codestream: 4.0882 bits/subpixel, the published 4.09.
    # effort=9 is no better on 32x32 images (4.10 on a 500-image sample).
    Baseline("jxl", "JPEG XL lossless via imagecodecs/libjxl (distance=0, effort=7, codestream)",
             _jxl_encoder("jxl", 7), _jxl_decode, lambda: _imagecodecs_version("JPEGXL", "libjxl", "libjxl")),
    # effort=9: a harder lossless search than the default 7 (about 1.5x its encode time on the nine
    # photos: 4.5 s per megapixel), the usual strong classical reference on photographs; effort=10,
    # libjxl's hardest, 0.5% smaller again on the nine photos for about 3x effort 9's time.
    Baseline("jxl-e9", "JPEG XL lossless via imagecodecs/libjxl (distance=0, effort=9, codestream)",
             _jxl_encoder("jxl-e9", 9), _jxl_decode, lambda: _imagecodecs_version("JPEGXL", "libjxl", "libjxl")),
    Baseline("jxl-e10", "JPEG XL lossless via imagecodecs/libjxl (distance=0, effort=10, codestream)",
             _jxl_encoder("jxl-e10", 10), _jxl_decode, lambda: _imagecodecs_version("JPEGXL", "libjxl", "libjxl")),
    # CharLS defaults (NEAR=0, standard thresholds): 5.8168 bits/subpixel, the published 5.82.
    Baseline("jpegls", "JPEG-LS via imagecodecs/CharLS (NEAR=0)",
             _jpegls_encode, _jpegls_decode, lambda: _imagecodecs_version("JPEGLS", "charls", "CharLS")),
    # Reversible 5/3 wavelet with the RCT colour transform (mct=1), OpenJPEG's default 6
    # resolution levels, raw .j2k codestream: 5.1574 bits/subpixel, the published 5.16.
    # Without mct Pillow codes R, G, B separately (6.54 on a 300-image sample); the .jp2
    # wrapper adds ~85 bytes an image (5.38). imagecodecs' jpeg2k caps the levels on small
    # images and gives 4.87: better, but not the published protocol.
    Baseline("jp2k", "JPEG 2000 reversible via Pillow/OpenJPEG (irreversible=False, mct=1, no_jp2=True)",
             _pillow_encoder("jp2k", "JPEG2000", (1, 3, 4), irreversible=False, mct=1, no_jp2=True),
             _pillow_decode, lambda: _pillow_version("jpg_2000", "OpenJPEG")),
)}


def get(name: str) -> Baseline:
    try:
        return BASELINES[name]
    except KeyError:
        raise BbcError(f"unknown codec {name!r} (known: {', '.join(BASELINES)})") from None
