#!/usr/bin/env python
"""Build (and verify) the photo TRAINING set (v2): 32x32 RGB crops of 58 photographs from packages.

    .venv/bin/python scripts/build_photo_trainset.py            # -> runs/photos_train_v2.npz

Sources (docs/photo_trainset.md lists every photo, and the packages looked through and rejected):
- v1's 18: the JPEG photographs in `mate-backgrounds` (usr/share/backgrounds/mate/nature/) and
  `plasma-workspace-wallpapers` other than the five that the `photos-full` TEST set uses;
- 40 more (v2), all for training: the photographs among the wallpapers of `lomiri-wallpapers-16.04`,
  `lomiri-wallpapers-20.04` and `lxqt-themes`, KDE Palapeli's puzzle photos (`palapeli-data`), the
  sample photos of scikit-learn (`python3-sklearn`), Scribus's templates (`scribus-template`),
  digiKam (`digikam-data`), SciPy (`python3-scipy`, the raccoon `face`), Matplotlib
  (`python-matplotlib-data`, `grace_hopper`) and scikit-image's wheel (`rocket`).
None is one of the test photos (photos_full.PHOTOS) or scikit-image's `motorcycle_right` (the other
half of a test photo's stereo pair); checked below.

Each photo is box-downsampled with Pillow's `Image.reduce(f)` (f >= 2 chosen so the short side is
about 400 px, the test set's scale; averaging removes the JPEG artefacts), then cut into random
32x32 crops with a fixed seed (training crops flipped left-right at random), one crop per 64 pixels
of the downsampled photo and at most 4,000 (v1's 640x400 photos: 4,000). Four whole photos are held
out for validation, the same four as v1 with the same 1,000 crops, and their crops come LAST in the
array, so `bbcodec train --val-images 1000` validates on them alone (and its figures stay comparable
with runs on v1). The pixels of every downsampled photo and of the whole array are checked against
pinned sha256s, so a rebuild either reproduces the set exactly or fails.

Output: an .npz with `x` uint8 [N, S, S, 3] (and nothing else), S the crop side: 32, or with `--size 64`
64x64 crops of the same photos (a quarter as many per training photo, the same 250 per validation photo). Downloads go through
`apt-get download` (and `pip download` for the scikit-image wheel) into bbcodec's cache (shared with
`photos_full.py`), checked against the pinned .deb sha256s.
"""
from __future__ import annotations

import argparse
import bz2
import hashlib
import io
import os
import sys
import tarfile
from pathlib import Path

import numpy as np

import photos_full as photos  # beside this script
from bbcodec.errors import BbcError

DEBS = {  # package -> (version, sha256 of the .deb); the first two are the same pins as photos_full.py
    "mate-backgrounds": ("1.26.0-1", "7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04"),
    "plasma-workspace-wallpapers": ("4:5.27.5-2", "32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b"),
    "lomiri-wallpapers-16.04": ("20.04.0-2", "a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab"),
    "lomiri-wallpapers-20.04": ("20.04.0-2", "d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709"),
    "lxqt-themes": ("1.2.0-1", "d518df36b515b09d36cb00b12645dd8ce170bb82bb0966297741905ce3edc8e1"),
    "palapeli-data": ("4:22.12.3-1", "69a15dce2ac25ed8708ac518cd0cee5f4eb0c70ed15da2fdb8899a19ac0ee058"),
    "python3-sklearn": ("1.2.1+dfsg-1", "ca0c6be401d14871c7e93cfdd8d1f561595dc65e6e2ad2501d568aee7f7efc58"),
    "scribus-template": ("1.2.4.1-6", "683bf35e43867cb17613d6807aa0238720d8526b1f524b9376404747a3e6128b"),
    "digikam-data": ("4:7.9.0-1", "a941a504ba7bdf9d276a43ca3c2a0b2b5b74a55420d8c4b4f29d681e96cbf450"),
    "python3-scipy": ("1.10.1-2", "75175eb18aa9ef6424c69050a751335fe686c24b65bc1773d0769a74a21c869d"),  # amd64
    "python-matplotlib-data": ("3.6.3-1", "e4150fcebd35ea11e0f66268da97ce62f98a4cf530c944f755f241da1a9158f9"),
}
WHEEL = "scikit-image"  # photos_full.py's pinned wheel (photos_full.SKIMAGE); its pixels are pinned below

MATE = "usr/share/backgrounds/mate/nature/{}.jpg"
PLASMA = "usr/share/wallpapers/{}/contents/images/2560x1600.jpg"
UBPORTS = "usr/share/backgrounds/{}.jpg"  # both lomiri-wallpapers-* packages
LXQT = "usr/share/lxqt/wallpapers/{}"
PALAPELI = "usr/share/palapeli/collection/{}.jpg"
SCRIBUS = "usr/share/scribus/templates/{}.jpg"
SCIPY_FACE = "usr/lib/python3/dist-packages/scipy/misc/face.dat"  # bz2 of raw 768x1024x3 uint8 RGB

# never used for training: the test photos and near-duplicates of them
FORBIDDEN = {(src, member) for src, member, *_ in photos.PHOTOS.values()} | {
    ("scikit-image", "skimage/data/motorcycle_right.png"),  # other half of the test photo motorcycle_left's stereo pair
}

# name -> (package, member, reduce factor, validation?, sha256 of the downsampled uint8 RGB pixels)
SOURCES = {
    "mate_Aqua": ("mate-backgrounds", MATE.format("Aqua"), 4, False,
        "4de0594022c256ef37df831d45add96ff10b5addfb5b01a6bcc046b0f113e13c"),
    "mate_Blinds": ("mate-backgrounds", MATE.format("Blinds"), 3, False,
        "01e892a36c02a03c6ef8fa7f1be8ba581910055db6306926bd94a70414e21b19"),
    "mate_FreshFlower": ("mate-backgrounds", MATE.format("FreshFlower"), 3, False,
        "8ee6671ef06827b0c671ddd4187eda32530bda889d1ae10320741ed7648fd6e5"),
    "mate_GreenMeadow": ("mate-backgrounds", MATE.format("GreenMeadow"), 2, False,
        "6d09406ae4451f164bc28722a4f22228ec99351442395edc8d2032592672b434"),
    "mate_RainDrops": ("mate-backgrounds", MATE.format("RainDrops"), 3, False,
        "438c1c86857807e12ae975ffcd8cb2070b70c7d89248a6313f920d44635368a0"),
    "mate_Storm": ("mate-backgrounds", MATE.format("Storm"), 3, False,
        "41000aecdc1d8bc8a15e3c2f99320091852a6aa86793fd3614597f740cf9574e"),
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
    # v2: all for training. Appended AFTER the validation photos so that every earlier photo keeps its
    # seed (its position in this dict) and so its crops; the array still puts validation crops last.
    "ubports16_Bridge": ("lomiri-wallpapers-16.04", UBPORTS.format("Bridge_by_Sander_Klootwijk"), 6, False,
        "85030dd2c28385bc4b0caf425c11bac8b56ac76d4426fc1462843085855f7cf9"),
    "ubports16_Dragonfly": ("lomiri-wallpapers-16.04", UBPORTS.format("Dragonfly_by_Bolly"), 8, False,
        "5ba1dd71622c1b9e96c7538fcda33f948eb7f53db8667c58184c0f6836792b99"),
    "ubports16_Picture_0B": ("lomiri-wallpapers-16.04", UBPORTS.format("Picture_0B_by_freespace"), 4, False,
        "c3c774f4c8d6acd82dce83b1d8005e7c362a6401cd1c9bf35861cb289b84e90b"),
    "ubports16_Picture_1A": ("lomiri-wallpapers-16.04", UBPORTS.format("Picture_1A_by_freespace"), 3, False,
        "a5e99c9a18d5232fd6682df8d7bb9ec538222094de01ebf1b3417d543c4d4ca3"),
    "ubports16_Wine": ("lomiri-wallpapers-16.04", UBPORTS.format("Wine_by_Jakkub_Mede"), 6, False,
        "859a0a3f2367072d924e3030b34c698593662b787c130fcfd1440dfe5e1ab400"),
    "ubports16_aitzgorri": ("lomiri-wallpapers-16.04", UBPORTS.format("aitzgorri_by_Aitzol_Berasategi"), 5, False,
        "30ca180ce665d0baf8f4d7bad017054559f57ee6838ce0a0a2552a43b3868e7b"),
    "ubports16_analogpattern": ("lomiri-wallpapers-16.04", UBPORTS.format("analogpattern_by_Peter_Nerlich"), 5, False,
        "3ca6da19a29af1ec75221f6b17b5fe17c9d733e248ba140a1752c010b103301c"),
    "ubports16_free": ("lomiri-wallpapers-16.04", UBPORTS.format("free_by_Peter_Nerlich"), 5, False,
        "3f2cfe08cc149a84e84002ad6fbc3ff9025b01c3d5521af57bc80a2650776483"),
    "ubports16_friends": ("lomiri-wallpapers-16.04", UBPORTS.format("friends_by_Aitzol_Berasategi"), 5, False,
        "2636d287826c6319db5d2e38983ab6c230ca49c775419740b24d8d3b766cf50c"),
    "ubports16_greentock": ("lomiri-wallpapers-16.04", UBPORTS.format("greentock_by_Peter_Nerlich"), 5, False,
        "b3ac62d5869555dc45635cc996c82e54820c5e47e8fa07d5bfa0edd50ed2b664"),
    "ubports16_life": ("lomiri-wallpapers-16.04", UBPORTS.format("life_by_Aitzol_Berasategi"), 5, False,
        "ff199fa1ec7d236594c28b7b79f2cf27a13df5e88b28e8a28d25b0e51b932631"),
    "ubports16_picosdeeuropa": ("lomiri-wallpapers-16.04", UBPORTS.format("picosdeeuropa_by_Aitzol_Berasategi"),
        6, False,
        "21d8e15d6f0067dd39cdabeb765e4bfc9976a71fcfddfd90638371fd455f8d8d"),
    "ubports16_seeding": ("lomiri-wallpapers-16.04", UBPORTS.format("seeding_by_Clements_Engelhardt"), 7, False,
        "f092be44c7bd7fd59d4e86fb6f6f8919b4d4c2c1b3e1b56878b4791c5dc46adf"),
    "ubports16_sunset": ("lomiri-wallpapers-16.04", UBPORTS.format("sunset_by_Aitzol_Berasategi"), 7, False,
        "1559e4a2963349804328a2021ff6490432558fa10f032a7b85c7f05edae1d33d"),
    "ubports20_Kleiber": ("lomiri-wallpapers-20.04", UBPORTS.format("Kleiber_by_Lukas_Baubkus"), 8, False,
        "5d3e7fa8d4493234e8a9a675b37be2dda5defdadcca985e780e529d761dccea1"),
    "lxqt_Butterfly-Kenneth-Wimer": ("lxqt-themes", LXQT.format("Butterfly-Kenneth-Wimer.jpg"), 3, False,
        "2f87319f1688a5456532c2a2a749bdc8ec4dcd6a2daa6864888cc9df0c4028d2"),
    "lxqt_Valendas": ("lxqt-themes", LXQT.format("Valendas.png"), 3, False,
        "3b5b786dd5cc9c723e177b785c47511417254ae512ef444b62d2d50caacd99ab"),
    "lxqt_after-the-rain": ("lxqt-themes", LXQT.format("after-the-rain.jpg"), 5, False,
        "634c1745b6cfc0b1fe3a16ce38d36c34cfbd6f240578388e0651cb9d3b2ed420"),
    "lxqt_appleflower": ("lxqt-themes", LXQT.format("appleflower.png"), 5, False,
        "92fd7f89561481675b0933586ef1f34d223d233fbcf48b8feccf542bc2423005"),
    "lxqt_beam": ("lxqt-themes", LXQT.format("beam.png"), 5, False,
        "aaf28f4c9cfce142b296c9e13055fc62766ecddb16d611a5d66c91def3132f79"),
    "lxqt_butterfly": ("lxqt-themes", LXQT.format("butterfly.png"), 5, False,
        "1046d59a2565fe16e13943c9e84a665a008e1eb441ca58b2e2e80907d4960296"),
    "lxqt_cloud": ("lxqt-themes", LXQT.format("cloud.png"), 4, False,
        "63ce1f6c8beaf30ffb8c59742510496faa1d68afd2fbdafdb46252af83fb0373"),
    "lxqt_drop": ("lxqt-themes", LXQT.format("drop.png"), 3, False,
        "e9e2720abd420f0c3852d701502f711644e32e0f308810e42a972dcda1734668"),
    "lxqt_flowers": ("lxqt-themes", LXQT.format("flowers.png"), 5, False,
        "2b6e7f764891f7af447cdc6785ec29ee88db9f6807f829e05cbea1448838fdcf"),
    "lxqt_fog": ("lxqt-themes", LXQT.format("fog.jpg"), 4, False,
        "eaedafdb9e0557c8f5303626da014298ed45acf32710980aead5b2c669e60d03"),
    "lxqt_this-is-not-windows": ("lxqt-themes", LXQT.format("this-is-not-windows.jpg"), 4, False,
        "894cca3706576fb2e1c9c8c0013d5491299baf8f0b2bca28a257abb9676d59e3"),
    "palapeli_castle-maintenon": ("palapeli-data", PALAPELI.format("castle-maintenon"), 2, False,
        "01c0755b5d617cb01756c00a5abc5b808e7c57a74cfea47c47fb817a6c6b3cf9"),
    "palapeli_cincinnati-bridge": ("palapeli-data", PALAPELI.format("cincinnati-bridge"), 2, False,
        "30427cf204e4b7a4876f6fe77aa501144274c42b835b69903230583fe53987cd"),
    "palapeli_citrus-fruits": ("palapeli-data", PALAPELI.format("citrus-fruits"), 2, False,
        "544eeb00eff21d767dbe0a59dadde9e26f789470a716b9f40f94a74d38282263"),
    "palapeli_european-honey-bee": ("palapeli-data", PALAPELI.format("european-honey-bee"), 3, False,
        "db833e923eebc857276626b4af69441cd5f155f69bc1343830ed3ca50db70962"),
    "palapeli_panther-chameleon-female": ("palapeli-data", PALAPELI.format("panther-chameleon-female"), 3, False,
        "a6149b7abe2c30138fe358e74799c725c6f5f5dd541e115d950ac537412dfaa7"),
    "sklearn_china": ("python3-sklearn", "usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg", 2, False,
        "8c08e07b4457c87d14d2bcd3d93d50fbd031f2ec80446d4e5957a129934de0ca"),
    "sklearn_flower": ("python3-sklearn", "usr/lib/python3/dist-packages/sklearn/datasets/images/flower.jpg", 2, False,
        "872106bf7eac181c4807a69c145bf36b56692b00306b2e56d92b62d1d340e5c3"),
    "scribus_nature": ("scribus-template", SCRIBUS.format("br2/nature"), 2, False,
        "39ea90c9e9e384c233d97cbc1c4b05cde8d9bd868844cfc3ba71258e53525ba5"),
    "scribus_sunset": ("scribus-template", SCRIBUS.format("br2/sunset"), 2, False,
        "05aa8d6a1def6b1ffc6735c4ad4ad20866762d49efe92d3444f15899b525c7fe"),
    "scribus_pizza": ("scribus-template", SCRIBUS.format("menu2/pizza"), 2, False,
        "5b6063f9b9df11bda276569888681633395496e2c5cdb3390f374e2caafcfe98"),
    "digikam_body-background": ("digikam-data", "usr/share/digikam/about/images/body-background.jpg", 8, False,
        "f7b7ae8562775dffba71586c9215005525b53cddf22d14e3f7514f9bb5efde03"),
    "scipy_face": ("python3-scipy", SCIPY_FACE, 2, False,
        "22b47ffe35b89e6eb856ded2022dd26f3e7b13c534b1ce8f699d2b586b6bb00e"),
    "matplotlib_grace_hopper": ("python-matplotlib-data",
        "usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg", 2, False,
        "fcb5893e9db1b87ed09d94e9335e4c61cba22d6ee92f2a059d2224599309b35e"),
    "skimage_rocket": ("scikit-image", "skimage/data/rocket.jpg", 2, False,
        "bf92bfa252b86d0b044ad7add2765e5fa4887aca1cac4904c85c999ab1b8c265"),
}

SIZES = (32, 64)     # crop side: 32 (the set the photo priors were trained on), or 64 (for 64x64 tiles)
TRAIN_CROPS = 4000   # at most, per training photo, at 32 (a quarter as many at 64: the same pixels)
PIXELS_PER_CROP = 64  # at 32, a training photo of h x w pixels gives min(TRAIN_CROPS, h*w // 64) crops (x4 at 64)
VAL_CROPS = 250      # per validation photo, at either size (4 photos -> 1000, the train command's --val-images)
SEED = 20240601
ARRAY_SHA256 = {  # x.tobytes(), per crop size
    32: "4122bc7b03cde3841a534ab5ad617151e0a9448777dceae7dc42a50a246999f1",
    64: "8abb2e7cd5586f2c4c171d780b9593de35989adffc0d35f3e883f412d916061d",
}


def default_out(size: int = 32) -> Path:
    return Path(__file__).resolve().parents[1] / "runs" / ("photos_train_v2.npz" if size == 32 else
                                                           f"photos_train_v2_{size}.npz")


def _deb(package: str, cache: Path) -> Path:
    version, sha = DEBS[package]
    return photos._fetch(
        lambda: [p for p in cache.glob(f"{package}_*.deb") if hashlib.sha256(p.read_bytes()).hexdigest() == sha],
        ["apt-get", "download", f"{package}={version}"], cache, f"{package} {version}",
        "the downloaded .deb does not match the pinned sha256")


def _members(package: str, members: list[str], cache: Path) -> dict[str, bytes]:
    """The bytes of several files of one package, unpacking its .deb (or the wheel) once."""
    if package == WHEEL:
        import zipfile
        with zipfile.ZipFile(photos._wheel(cache)) as z:
            return {m: z.read(m) for m in members}
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
    clash = [n for n, (pkg, member, *_) in SOURCES.items() if (pkg, member) in FORBIDDEN]
    if clash:
        raise BbcError(f"training sources overlap the photos-full test set: {clash}")


def _decode(member: str, data: bytes):
    """One source file as a Pillow RGB image."""
    from PIL import Image
    if member == SCIPY_FACE:
        return Image.fromarray(np.frombuffer(bz2.decompress(data), np.uint8).reshape(768, 1024, 3))
    return Image.open(io.BytesIO(data)).convert("RGB")


def downsample(name: str, data: bytes) -> tuple[np.ndarray, str]:
    """A source photo's pixels as the set uses them (decoded, box-downsampled by its factor, whole factor x
    factor boxes only: a partial last row or column is dropped), and its original dimensions."""
    _, member, factor, _, _ = SOURCES[name]
    im = _decode(member, data)
    dims = "x".join(map(str, im.size))
    if factor > 1:
        im = im.reduce(factor, box=(0, 0, im.width // factor * factor, im.height // factor * factor))
    return np.asarray(im), dims


def n_crops(img: np.ndarray, val: bool, size: int = 32) -> int:
    area = (size // 32) ** 2  # a 64x64 crop has the pixels of four 32x32 ones
    return VAL_CROPS if val else min(TRAIN_CROPS // area, img.shape[0] * img.shape[1] // (PIXELS_PER_CROP * area))


def _crops(img: np.ndarray, n: int, rng: np.random.Generator, flip: bool, size: int = 32) -> np.ndarray:
    h, w, _ = img.shape
    ys = rng.integers(0, h - size + 1, n)
    xs = rng.integers(0, w - size + 1, n)
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    out = np.empty((n, size, size, 3), np.uint8)
    for i, (y, x, f) in enumerate(zip(ys, xs, flips)):
        c = img[y:y + size, x:x + size]
        out[i] = c[:, ::-1] if f else c
    return out


def build(out: Path, cache: Path, check: bool = True, size: int = 32) -> tuple[np.ndarray, dict[str, str], list[str]]:
    """Write the array of size x size crops to `out`; return it, the pixel sha256s and the manifest
    (markdown table rows)."""
    _check_disjoint_from_test_set()
    cache.mkdir(parents=True, exist_ok=True)
    raw: dict[str, bytes] = {}
    for pkg in [*DEBS, WHEEL]:
        members = [m for p, m, *_ in SOURCES.values() if p == pkg]
        got = _members(pkg, members, cache)
        raw.update({f"{pkg}:{m}": b for m, b in got.items()})
    names = sorted(SOURCES, key=lambda n: (SOURCES[n][3], list(SOURCES).index(n)))  # validation last
    parts, hashes, manifest = [], {}, []
    for name in names:
        pkg, member, factor, val, sha = SOURCES[name]
        img, dims = downsample(name, raw[f"{pkg}:{member}"])
        hashes[name] = photos.pixel_sha256(img)
        if check and hashes[name] != sha:
            raise BbcError(f"{name}: downsampled pixels do not match the pinned sha256 (different Pillow JPEG decoder?)")
        rng = np.random.default_rng([SEED, list(SOURCES).index(name)])
        n = n_crops(img, val, size)
        parts.append(_crops(img, n, rng, flip=not val, size=size))
        manifest.append(f"| {name} | {pkg} | {member} | {dims} | {factor} | {img.shape[1]}x{img.shape[0]} | "
                        f"{'validation' if val else 'training'} | {n} |")
    x = np.concatenate(parts)
    hashes["ARRAY"] = photos.pixel_sha256(x)
    if check and hashes["ARRAY"] != ARRAY_SHA256[size]:
        raise BbcError(f"the built array's pixels do not match the pinned sha256 ({hashes['ARRAY']})")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, x=x)
    os.replace(tmp, out)
    return x, hashes, manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, choices=SIZES, default=32, help="crop side (default 32)")
    ap.add_argument("--out", type=Path, default=None,
                    help="output .npz (default: runs/photos_train_v2.npz, at 64 runs/photos_train_v2_64.npz)")
    ap.add_argument("--cache", type=Path, default=photos.default_cache() / "downloads", help="download cache")
    ap.add_argument("--print-hashes", action="store_true", help="print the pixel sha256s (for pinning); no checks")
    ap.add_argument("--manifest", action="store_true", help="print the manifest (docs/photo_trainset.md's table)")
    args = ap.parse_args(argv)
    try:
        args.out = args.out or default_out(args.size)
        x, hashes, manifest = build(args.out, args.cache, check=not args.print_hashes, size=args.size)
    except BbcError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.print_hashes:
        for k, v in hashes.items():
            print(k, v)
    if args.manifest:
        print("\n".join(manifest))
    n_val = VAL_CROPS * sum(v[3] for v in SOURCES.values())
    print(f"{args.out}: {len(x)} crops ({len(x) - n_val} training, last {n_val} validation), "
          f"pixels sha256 {hashes['ARRAY']}" + ("" if args.print_hashes else " (verified)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
