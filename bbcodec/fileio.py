"""Files in and out for the command line: inputs never modified, outputs written atomically.

An output is first written to a temporary file beside it and renamed into place, so an error or
Ctrl-C never leaves a partial file; an existing output is replaced only with --force, and an
input is never an output.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path, PurePosixPath

from .errors import BbcError, ImageError
from .images import ImageData, png_bytes, read_image

# What a folder given to compress contributes: the files with these suffixes (images.FORMATS), the
# rest is skipped. Every image decompresses to a PNG file of the same stem (`safe_relative`).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".tif", ".tiff", ".bmp", ".pbm", ".pgm", ".ppm")
MAX_INPUT_BYTES = 1 << 31


def read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    if p.is_dir():
        raise BbcError(f"{path}: is a directory")
    if not p.exists():
        raise BbcError(f"{path}: no such file")
    if p.stat().st_size > MAX_INPUT_BYTES:
        raise BbcError(f"{path}: larger than {MAX_INPUT_BYTES} bytes")
    return p.read_bytes()


def gather_images(inputs: tuple[str, ...]) -> tuple[list[ImageData], list[Path]]:
    """Images from files, folders (their image files, sorted, names relative to the folder) or stdin.

    Names that would decompress to the same file are refused (`check_names`).
    """
    images, sources = [], []
    add = images.append

    for inp in inputs:
        if inp == "-":
            add(read_image("-", data=sys.stdin.buffer.read(), name="stdin.png"))
            continue
        p = Path(inp)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise ImageError(f"{inp}: no images in folder")
            for f in files:
                add(read_image(str(f), name=f.relative_to(p).as_posix()))
                sources.append(f)
        else:
            add(read_image(inp, name=p.name))
            sources.append(p)
    check_names(images)
    return images, sources


def check_names(images: list[ImageData]) -> None:
    """Refuse names that would decompress to the same file (a.jpg and a.png both to a.png), so that
    every archive written can be extracted."""
    targets: dict = {}
    for d in images:
        target = safe_relative(d.name)
        if target in targets:
            other = targets[target]
            what = "share the name" if other == d.name else "would both decompress to"
            raise ImageError(f"{other!r} and {d.name!r} {what} {str(target)!r}: rename one")
        targets[target] = d.name


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(output: str, force: bool, inputs: list[Path] = ()) -> None:
    if output == "-":
        return
    out = Path(output)
    for src in inputs:
        if _same_file(out, src) or out.resolve() == src.resolve():
            raise BbcError(f"{output}: refusing to overwrite an input")
    if out.is_dir():
        raise BbcError(f"{output}: is a directory")
    if out.exists() and not force:
        raise BbcError(f"{output}: exists (use --force to overwrite)")
    if not out.resolve().parent.is_dir():
        raise BbcError(f"{output}: folder does not exist")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(output: str, data: bytes, force: bool) -> None:
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    out = Path(output)
    if out.exists() and not force:
        raise BbcError(f"{output}: exists (use --force to overwrite)")
    fd, tmp = tempfile.mkstemp(dir=out.resolve().parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would have
        os.chmod(tmp, out.stat().st_mode & 0o7777 if out.exists() else 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def safe_relative(name: str) -> PurePosixPath:
    """A stored image name as a relative path that cannot leave the output folder."""
    p = PurePosixPath(name.replace("\\", "/"))
    parts = [q for q in p.parts if q not in ("", ".", "..", "/")]
    if not parts:
        parts = ["image"]
    p = PurePosixPath(*parts)
    return p.with_suffix(".png")


def output_targets(names: list[str], input: str, output: str | None, force: bool) -> list[str]:
    """Where the decoded images go, checked before any decoding: one image to a PNG file (default:
    the input with .png, '-' for stdout), several into a folder (default: the input's stem), each
    with its stored name and .png. Refused: an existing file without --force, the input itself,
    several images to stdout or to a name that looks like an image file, clashing names."""
    if len(names) == 1 and (output is None or output == "-" or not Path(output).is_dir()):
        if output is None:
            output = "-" if input == "-" else str(Path(input).with_suffix(".png"))
        check_output(output, force, [Path(input)] if input != "-" else [])
        return [output]
    if output == "-":
        raise BbcError(f"the file holds {len(names)} images, which cannot be written to stdout; give a folder with -o")
    if output and Path(output).suffix.lower() in IMAGE_SUFFIXES and not Path(output).is_dir():
        raise BbcError(f"-o {output}: the file holds {len(names)} images; give a folder, not an image file name")
    folder = Path(output) if output else Path(input).with_suffix("")
    targets = [folder / safe_relative(n) for n in names]
    if len(set(targets)) != len(targets):
        raise BbcError("two images would be written to the same file name")
    for t in targets:
        if t.parent.exists():
            check_output(str(t), force, [Path(input)] if input != "-" else [])
    return [str(t) for t in targets]


def write_images(images: list[ImageData], targets: list[str], force: bool) -> None:
    """Write decoded images to the targets `output_targets` gave (all encoded before any is written)."""
    if len(targets) == 1 and (targets[0] == "-" or len(images) == 1):
        write_atomic(targets[0], png_bytes(images[0]), force)
        return
    targets = [Path(t) for t in targets]
    blobs = [png_bytes(d) for d in images]  # encode all before writing any
    created = []
    try:
        for t, b in zip(targets, blobs):
            t.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(str(t), b, force)
            created.append(t)
    except BaseException:
        for t in created:
            try:
                t.unlink()
            except OSError:
                pass
        raise
