#!/usr/bin/env python
"""Build (and verify) the photo TRAINING set: 32x32 RGB crops of Debian wallpaper photographs.

    .venv/bin/python scripts/build_photo_trainset.py            # -> runs/photos_train.npz

Sources: the JPEG photographs in `mate-backgrounds` (usr/share/backgrounds/mate/nature/) and
`plasma-workspace-wallpapers` other than the five that the `photos-full` TEST set uses
(photos_full.PHOTOS; checked below). The other wallpaper packages the data README names
(gnome-backgrounds, ukui-wallpapers, lomiri-wallpapers, sway-backgrounds, debian-edu-artwork) were
looked through and hold no photographs (renders, drawings, gradients, logos), so none are used.

Each JPEG is box-downsampled with Pillow's `Image.reduce(f)` (f chosen so the short side is about
400 px, the test set's scale; averaging removes the JPEG artefacts), then cut into random 32x32
crops with a fixed seed (training crops flipped left-right at random). Whole photos are held out
for validation, and their crops come LAST in the array, so `bbcodec train --val-images 1000`
validates on them alone. The pixels of every downsampled photo and of the whole array are checked
against pinned sha256s, so a rebuild either reproduces the set exactly or fails.

Output: an .npz with `x` uint8 [N, 32, 32, 3] (and nothing else). Downloads go through
`apt-get download` into bbcodec's cache (shared with `photos_full.py`), checked against the pinned
.deb sha256s.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

import photos_full as photos  # beside this script
from bbcodec.errors import BbcError

DEBS = {  # package -> (version, sha256 of the .deb); the same pins as photos_full.py
    "mate-backgrounds": ("1.26.0-1", "7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04"),
    "plasma-workspace-wallpapers": ("4:5.27.5-2", "32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b"),
}

MATE = "usr/share/backgrounds/mate/nature/{}.jpg"
PLASMA = "usr/share/wallpapers/{}/contents/images/2560x1600.jpg"

# name -> (package, member, reduce factor, validation?, sha256 of the downsampled uint8 RGB pixels)
SOURCES = {
    "mate_Aqua": ("mate-backgrounds", MATE.format("Aqua"), 4, False,
        "4de0594022c256ef37df831d45add96ff10b5addfb5b01a6bcc046b0f113e13c"),
    "mate_Blinds": ("mate-backgrounds", MATE.format("Blinds"), 3, False,
        "01e892a36c02a03c6ef8fa7f1be8ba581910055db6306926bd94a70414e21b19"),
    "mate_FreshFlower": ("mate-backgrounds", MATE.format("FreshFlower"), 3, False,
        "71cfba76095a287a356faa872cb78a8eec58fa5aa6dfe970ee80d3f39fbbc163"),
    "mate_GreenMeadow": ("mate-backgrounds", MATE.format("GreenMeadow"), 2, False,
        "6d09406ae4451f164bc28722a4f22228ec99351442395edc8d2032592672b434"),
    "mate_RainDrops": ("mate-backgrounds", MATE.format("RainDrops"), 3, False,
        "438c1c86857807e12ae975ffcd8cb2070b70c7d89248a6313f920d44635368a0"),
    "mate_Storm": ("mate-backgrounds", MATE.format("Storm"), 3, False,
        "50fa6d4953e17d911a1d894f00dbe170d6c3a8ee8997df3c199c6311afe5d555"),
    "mate_TwoWings": ("mate-backgrounds", MATE.format("TwoWings"), 4, False,
        "9737f0498f6d8bbbcee451d54d664b026607b05723813f8483a7acbd95ad71d2"),
    "plasma_ColdRipple": ("plasma-workspace-wallpapers", PLASMA.format("ColdRipple"), 4, False,
        "8a74ef3e2beea6f6364ae7b8a31ea10864e9b7fe48fa4a36a4feaffb02520256"),
    "plasma_ColorfulCups": ("plasma-workspace-wallpapers", PLASMA.format("ColorfulCups"), 4, False,
        "3a476ccf8983beebad96e1cda407292e39827fe0bc34c84e782edfc857988097"),
    "plasma_DarkestHour": ("plasma-workspace-wallpapers", PLASMA.format("DarkestHour"), 4, False,
        "a0ce6df3a2e7287be1367969086b96a784796a573762d649d76764f33bee407b"),
    "plasma_Grey": ("plasma-workspace-wallpapers", PLASMA.format("Grey"), 4, False,
        "6489a74974a9cc7467a07cf77e94136e288089290d40234a8f4a8a4b33ac40be"),
    "plasma_Kite": ("plasma-workspace-wallpapers", PLASMA.format("Kite"), 4, False,
        "6e128e3e6506c44bdc306a9c7b3c535bb0259e2e3f7dbb715c9f9ea2f0a23906"),
    "plasma_Path": ("plasma-workspace-wallpapers", PLASMA.format("Path"), 4, False,
        "0b304c26a61de9f76df816c8cbf1ff118904295403db78e3f4912d7645c20c16"),
    "plasma_summer_1am": ("plasma-workspace-wallpapers", PLASMA.format("summer_1am"), 4, False,
        "889fd1c17ca5b7d3c6d954d6a14ce952495307f091dce8c32ecb90ba3ac78bd4"),
    # validation: whole photos, never trained on; their crops are the last VAL_CROPS of the array
    "mate_LadyBird": ("mate-backgrounds", MATE.format("LadyBird"), 4, True,
        "f6b56cdfaac9936e187aad27bc8a3e03759cc302d18ee421ee1a3bdea3e8e963"),
    "mate_YellowFlower": ("mate-backgrounds", MATE.format("YellowFlower"), 4, True,
        "af13bd6bd4d8a67538a3e16a01565020afc57160fdd6c2e103fd0ff48eda6d04"),
    "plasma_BytheWater": ("plasma-workspace-wallpapers", PLASMA.format("BytheWater"), 4, True,
        "2a947d589775da3fd9268f243a8155a79331ca9121d9f4f5371fbbb0b01d2d3a"),
    "plasma_EveningGlow": ("plasma-workspace-wallpapers", PLASMA.format("EveningGlow"), 4, True,
        "abcbb9718a38568966f45c16d7e88d1f369db4992a4d6e41c591b47330a8b0fd"),
}

SIZE = 32
TRAIN_CROPS = 4000   # per training photo
VAL_CROPS = 250      # per validation photo (4 photos -> 1000, the train command's --val-images)
SEED = 20240601
ARRAY_SHA256 = "91ccf5afaf6becdc464c88faced77953d03eb0c1d89b088e44dbab08c6375025"  # x.tobytes()


def default_out() -> Path:
    return Path(__file__).resolve().parents[1] / "runs" / "photos_train.npz"


def _deb(package: str, cache: Path) -> Path:
    version, sha = DEBS[package]
    return photos._fetch(
        lambda: [p for p in cache.glob(f"{package}_*.deb") if hashlib.sha256(p.read_bytes()).hexdigest() == sha],
        ["apt-get", "download", f"{package}={version}"], cache, f"{package} {version}",
        "the downloaded .deb does not match the pinned sha256")


def _members(package: str, members: list[str], cache: Path) -> dict[str, bytes]:
    """The bytes of several files of one package, unpacking its .deb once."""
    deb = _deb(package, cache)
    tar = photos._run(["dpkg-deb", "--fsys-tarfile", str(deb)], cache, f"unpacking {deb.name}")
    out = {}
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        for m in members:
            f = t.extractfile("./" + m)
            if f is None:
                raise BbcError(f"{deb.name}: {m} is missing")
            out[m] = f.read()
    return out


def _check_disjoint_from_test_set() -> None:
    test = {(src, member) for src, member, *_ in photos.PHOTOS.values()}
    clash = [n for n, (pkg, member, *_) in SOURCES.items() if (pkg, member) in test]
    if clash:
        raise BbcError(f"training sources overlap the photos-full test set: {clash}")


def _crops(img: np.ndarray, n: int, rng: np.random.Generator, flip: bool) -> np.ndarray:
    h, w, _ = img.shape
    ys = rng.integers(0, h - SIZE + 1, n)
    xs = rng.integers(0, w - SIZE + 1, n)
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    out = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for i, (y, x, f) in enumerate(zip(ys, xs, flips)):
        c = img[y:y + SIZE, x:x + SIZE]
        out[i] = c[:, ::-1] if f else c
    return out


def build(out: Path, cache: Path, check: bool = True) -> tuple[np.ndarray, dict[str, str]]:
    from PIL import Image

    _check_disjoint_from_test_set()
    cache.mkdir(parents=True, exist_ok=True)
    raw: dict[str, bytes] = {}
    for pkg in DEBS:
        members = [m for p, m, *_ in SOURCES.values() if p == pkg]
        got = _members(pkg, members, cache)
        raw.update({f"{pkg}:{m}": b for m, b in got.items()})
    names = sorted(SOURCES, key=lambda n: (SOURCES[n][3], list(SOURCES).index(n)))  # validation last
    parts, hashes = [], {}
    for k, name in enumerate(names):
        pkg, member, factor, val, sha = SOURCES[name]
        im = Image.open(io.BytesIO(raw[f"{pkg}:{member}"])).convert("RGB")
        if factor > 1:
            im = im.reduce(factor)
        img = np.asarray(im)
        hashes[name] = photos.pixel_sha256(img)
        if check and sha and hashes[name] != sha:
            raise BbcError(f"{name}: downsampled pixels do not match the pinned sha256 (different Pillow JPEG decoder?)")
        rng = np.random.default_rng([SEED, list(SOURCES).index(name)])
        parts.append(_crops(img, VAL_CROPS if val else TRAIN_CROPS, rng, flip=not val))
    x = np.concatenate(parts)
    hashes["ARRAY"] = photos.pixel_sha256(x)
    if check and ARRAY_SHA256 and hashes["ARRAY"] != ARRAY_SHA256:
        raise BbcError(f"the built array's pixels do not match the pinned sha256 ({hashes['ARRAY']})")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, x=x)
    os.replace(tmp, out)
    return x, hashes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=default_out(), help="output .npz (default: runs/photos_train.npz)")
    ap.add_argument("--cache", type=Path, default=photos.default_cache() / "downloads", help="download cache")
    ap.add_argument("--print-hashes", action="store_true", help="print the pixel sha256s (for pinning); no checks")
    args = ap.parse_args(argv)
    try:
        x, hashes = build(args.out, args.cache, check=not args.print_hashes)
    except BbcError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.print_hashes:
        for k, v in hashes.items():
            print(k, v)
    n_val = VAL_CROPS * sum(v[3] for v in SOURCES.values())
    print(f"{args.out}: {len(x)} crops ({len(x) - n_val} training, last {n_val} validation), "
          f"pixels sha256 {hashes['ARRAY']}" + (" (verified)" if ARRAY_SHA256 and not args.print_hashes else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
