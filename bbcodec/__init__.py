"""bbcodec: lossless image compression with a diffusion prior and bits-back ANS.

The Python API, on files, PIL images or uint8 arrays::

    import bbcodec
    data = bbcodec.compress(["cat.png", pil_image, array])  # bytes of one .bbc archive
    images = bbcodec.decompress(data)                        # PIL images, bit-exact
    arrays = bbcodec.decompress(data, arrays=True)           # uint8 [H, W(, C)] arrays

Defaults are those of the command line (`bbcodec.defaults`). `bbcodec.api` has the lower level
(`compress` returns a `Report` with the figures, `decompress` works on a loaded model).
"""
from __future__ import annotations

from . import defaults
from .errors import BbcError, FormatError, ImageError, ModelError

__all__ = ["compress", "decompress", "BbcError", "FormatError", "ImageError", "ModelError"]


def _as_image_data(item, index: int):
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from .images import from_pil, read_image

    if isinstance(item, (str, Path)):
        return read_image(str(item), name=Path(item).name)
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise ImageError(f"array {index}: dtype {item.dtype}; bbcodec codes uint8 samples only")
        modes = {2: "L", 3: {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(item.shape[-1])}
        mode = modes.get(item.ndim)
        if mode is None:
            raise ImageError(f"array {index}: shape {item.shape}; expected [H, W] or [H, W, 1|2|3|4]")
        item = Image.fromarray(item.reshape(item.shape[:2]) if mode == "L" else item, mode)
    if not isinstance(item, Image.Image):
        raise ImageError(f"item {index}: a {type(item).__name__}; expected a path, a PIL image or a uint8 array")
    try:
        return from_pil(item, f"{index:05d}.png")
    except ImageError as e:  # name the item as the caller knows it, then the name it would be stored under
        raise ImageError(f"item {index} ({e})")


def compress(images, *, model: str | None = None, steps: int = defaults.STEPS, parallel: int = defaults.PARALLEL,
             threads: int = defaults.THREADS, bootstrap: str | None = defaults.BOOTSTRAP, device: str = "auto",
             progress: bool = False, report: bool = False, tile: int | None = None):
    """Compress one image or a list (paths, PIL images, uint8 arrays) into the bytes of a .bbc archive.

    model: a registered name or a model folder; by default the prior `bbcodec compress` picks for these
    images (the photo prior where most pixels are in images larger than one 32x32 tile). tile: the
    tile size (None: `api.default_tile`, e.g. the photo prior's 64 on large images, else 32).
    Images are coded exactly or refused with a `BbcError` (16-bit samples, CMYK, ...). With
    report=True, returns (bytes, `api.Report`). Paths keep their file names in the archive; other
    images are named by their index (00000.png, ...).
    """
    from . import api
    from .fileio import check_names
    from .registry import default_model_for, load_model

    items = images if isinstance(images, (list, tuple)) else [images]
    data_list = [_as_image_data(x, i) for i, x in enumerate(items)]
    check_names(data_list)
    if model is None:
        model = default_model_for([d.width * d.height for d in data_list])[0]
    m = load_model(model, device)
    params = api.flow_params() if m.kind == "flow" else api.coding_params(m, steps)  # a flow has no steps
    data, rep = api.compress(data_list, m, params, parallel=parallel, progress=progress,
                             bootstrap=bootstrap, threads=threads, tile=tile)
    return (data, rep) if report else data


def decompress(data: bytes, *, arrays: bool = False, model: str | None = None, device: str = "auto",
               progress: bool = False) -> list:
    """Decode a .bbc archive: a list of PIL images (ICC profile and EXIF in `.info`) or, with arrays=True,
    of uint8 arrays [H, W] or [H, W, C]. model: the file's registered model unless a name or folder is
    given (a model being trained). Raises `FormatError` for a damaged file, `ModelError` for a wrong model."""
    import numpy as np

    from . import api
    from .format import container
    from .images import to_pil
    from .registry import model_for_header

    header = container.parse(data).header
    m = model_for_header(header["model"], device, override=model)
    images, _ = api.decompress(data, m, progress=progress)
    out = []
    for d in images:
        img = to_pil(d)
        for key, value in (("icc_profile", d.icc), ("exif", d.exif)):
            if value:
                img.info[key] = value
        out.append(np.asarray(img) if arrays else img)
    return out
