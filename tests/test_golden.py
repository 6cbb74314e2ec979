"""Golden files: committed .bbc files that today's decoder must turn back into pinned pixels.

Nothing else pins the format: a change to the container, the constants, the batch plan or the
arithmetic that still round-trips would pass every other test while making users' archives
undecodable. Each file in tests/golden/ is listed in golden.json with the format version it was
written in, its model and the sha256 of every decoded image's pixels; one file per retained model
and format version, each with tiles coded by the model (not only by the bootstrap codec).

Files of released versions are frozen. `GENERATE_GOLDEN=1 pytest tests/test_golden.py` rewrites
only the files of the current format version, on purpose, after a deliberate format change.

A float network's file decodes only where the arithmetic matches what wrote it (torch build, CPU
capability): one made elsewhere is skipped with the reason. An integer network's file (version 4)
decodes everywhere and is never skipped.
"""
import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from bbcodec import api
from bbcodec.format import container
from bbcodec.images import from_pil
from bbcodec.registry import load_model
from conftest import cifar_samples, pil_image

GOLDEN = Path(__file__).resolve().parent / "golden"
MANIFEST = GOLDEN / "golden.json"
TINY = GOLDEN / "tiny-golden"   # a tiny random-weight model, committed so that its files stay decodable


TINY_INT = GOLDEN / "tiny-golden-int"  # its integer version (`bbcodec convert`), committed likewise
TINY_FLOW = GOLDEN / "tiny-golden-flow"  # a tiny random coupling flow (codec "flow-lbb"), committed likewise
CURRENT_CASES = ("tiny-int", "cifar10-vdm-s7-int", "tiny-flow", "cifar10-flow-r1", "photo-vdm-p2-int",
                 "cifar10-vdm-s7-dt-int", "photo-vdm-p2-dt-int", "photo-vdm-p2-dt-int-tile64",
                 "photo-vdm-t64-int-tile64")  # made in the current version
LOCAL = {"tiny-golden": TINY, "tiny-golden-int": TINY_INT, "tiny-golden-flow": TINY_FLOW}  # manifest name -> folder


def _cases():
    """Every golden case: name -> (model, images, coding options); `CURRENT_CASES` are regenerated."""
    from PIL import Image
    cifar = cifar_samples()
    tiny_images = [from_pil(pil_image("RGB", 40, 30), "rgb.png"), from_pil(pil_image("RGBA", 10, 12, 1), "rgba.png"),
                   from_pil(pil_image("L", 33, 9, 2), "grey.png"), from_pil(pil_image("P", 12, 12, 3), "p.png")]
    cifar_images = [from_pil(Image.fromarray(cifar[i]), f"{i}.png") for i in range(5)]
    # a 64x40 crop (x 200-264, y 80-120) of scikit-image's astronaut (public domain; one of the photos-full
    # test photos, tested on, never trained on): four tiles for the photo prior
    photo = [from_pil(Image.open(GOLDEN / "astronaut-64x40.png"), "astronaut-64x40.png")]
    # the 128x128 crop around it (x 200-328, y 80-208): four 64x64 tiles, two coded by the model
    photo64 = [from_pil(Image.open(GOLDEN / "astronaut-128x128.png"), "astronaut-128x128.png")]
    return {
        "tiny": (str(TINY), tiny_images, dict(steps=3, parallel=2)),
        "cifar10-vdm-s7": ("cifar10-vdm-s7", cifar_images, {}),
        "tiny-int": (str(TINY_INT), tiny_images, dict(steps=3, parallel=2)),
        "cifar10-vdm-s7-int": ("cifar10-vdm-s7-int", cifar_images, {}),
        "tiny-flow": (str(TINY_FLOW), tiny_images, dict(parallel=2)),
        "cifar10-flow-r1": ("cifar10-flow-r1", cifar_images, {}),
        "photo-vdm-p2-int": ("photo-vdm-p2-int", photo, {}),
        "cifar10-vdm-s7-dt-int": ("cifar10-vdm-s7-dt-int", cifar_images, {}),
        "photo-vdm-p2-dt-int": ("photo-vdm-p2-dt-int", photo, {}),
        "photo-vdm-p2-dt-int-tile64": ("photo-vdm-p2-dt-int", photo64, dict(tile=64)),
        "photo-vdm-t64-int-tile64": ("photo-vdm-t64-int", photo64, dict(tile=64)),
    }


def _model(name: str):
    return load_model(str(LOCAL[name]) if name in LOCAL else name)


def _params(model, opts: dict):
    """The coding parameters a case is written with: the model's defaults at the case's steps."""
    return api.flow_params() if model.kind == "flow" else api.coding_params(model, opts.get("steps", 100))


def pixels_sha256(d) -> str:
    h = hashlib.sha256()
    for a in (d.main, d.alpha):
        if a is not None:
            h.update(np.ascontiguousarray(a).tobytes())
    h.update(d.palette or b"")
    return h.hexdigest()


def arithmetic() -> dict:
    """What a file's float probabilities depended on when it was written."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


INTEGER = {"network": "integer"}  # an integer network's file: decodes, and re-encodes, anywhere


def _decodable_here(entry: dict) -> bool:
    return entry["written_with"] in (arithmetic(), INTEGER)


def _generate():
    if not TINY.exists():
        from conftest import make_tiny_model
        make_tiny_model(TINY, seed=11)
    if not TINY_FLOW.exists():
        from conftest import make_tiny_flow
        make_tiny_flow(TINY_FLOW, seed=5)
    if not TINY_INT.exists():
        import tempfile
        from conftest import make_tiny_int_model
        with tempfile.TemporaryDirectory() as tmp:
            make_tiny_int_model(TINY_INT, TINY, Path(tmp))
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    version = container.VERSION
    for name, (model_name, images, opts) in _cases().items():
        if name not in CURRENT_CASES:
            continue
        model = load_model(model_name)
        data, rep = api.compress(images, model, _params(model, opts), parallel=opts.get("parallel", 8), threads=1,
                                 tile=opts.get("tile"))
        assert rep.model_tiles > 0
        fname = f"{name}-v{version}.bbc"
        (GOLDEN / fname).write_bytes(data)
        integer = model.integer
        manifest[fname] = {"model": {str(v): k for k, v in LOCAL.items()}.get(model_name, model_name),
                           "format_version": version, "model_tiles": rep.model_tiles,
                           "images": {d.name: pixels_sha256(d) for d in images},
                           "written_with": INTEGER if integer else arithmetic()}
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


if os.environ.get("GENERATE_GOLDEN") == "1":
    _generate()


@pytest.mark.parametrize("fname", sorted(json.loads(MANIFEST.read_text())))
def test_golden_file_decodes_to_its_pinned_pixels(fname):
    entry = json.loads(MANIFEST.read_text())[fname]
    data = (GOLDEN / fname).read_bytes()
    c = container.parse(data)
    assert int.from_bytes(data[4:6], "little") == entry["format_version"]
    if not _decodable_here(entry):
        pytest.skip(f"written with {entry['written_with']}, this machine has {arithmetic()}")
    model = _model(entry["model"])
    images, header = api.decompress(data, model)
    T = header["coding"]["tile"]
    tiles = sum(-(-d.height // T) * -(-d.width // T) for d in images)
    assert tiles - header["coding"].get("boot_tiles", 0) == entry["model_tiles"] > 0
    assert {d.name: pixels_sha256(d) for d in images} == entry["images"]
    assert c.header["model"]["sha256"] == model.sha256


def test_format_constants_are_pinned_by_value():
    """Versions 1-2 draw the seed words and pad noise from numpy's PCG64 Generator, whose stream numpy
    promises only per release: pinned here, so a numpy that changes them fails loudly. Version 3
    derives them from SplitMix64 in integer arithmetic (its reference outputs pinned too)."""
    from bbcodec.format.constants import pad_noise, seed_words, splitmix64
    assert seed_words(3, 2).tolist() == [1367064316, 592399874, 2947692083]
    assert hashlib.sha256(seed_words(1000, 2).tobytes()).hexdigest() == \
        "1ee8312b565c6983bca0a3360c5f5eedbdc067040f68e289d21c97460c1b3945"
    assert hashlib.sha256(pad_noise((3, 32, 32), 2).tobytes()).hexdigest() == \
        "c56ea6b9814fca8cff4cd8a98222b7187981c2653b72dbb94264ee38437f8559"
    assert [int(v) for v in splitmix64(0, 3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    assert seed_words(3, 3).tolist() == [166854045, 1429369878, 1566296646]
    assert hashlib.sha256(seed_words(1000, 3).tobytes()).hexdigest() == \
        "96e09882195675045e7c50b728d6b0951fc7434db0567e723752f6fe90d5611e"
    assert hashlib.sha256(pad_noise((3, 32, 32), 3).tobytes()).hexdigest() == \
        "70927e691f996787a4a1c678a53021f0c19100800317b5ae8d5076e961a2a8d7"
    from bbcodec.format.constants import FLOW_PAD_WEIGHTS  # flow files' padding distribution (v4, "flow-lbb")
    assert FLOW_PAD_WEIGHTS == {"space": (1, 2, 3, 4, 3, 2, 1), "channel": (1, 2, 1)}


@pytest.mark.parametrize("fname", sorted(json.loads(MANIFEST.read_text())))
def test_the_encoder_still_writes_the_golden_bytes(fname):
    """Re-encoding a golden file's images in its format version gives the same bytes: the encoder's
    choices and arithmetic have not drifted (where the arithmetic is the one that wrote it)."""
    entry = json.loads(MANIFEST.read_text())[fname]
    if not _decodable_here(entry):
        pytest.skip(f"written with {entry['written_with']}, this machine has {arithmetic()}")
    name = fname.rsplit("-v", 1)[0]
    model_name, images, opts = _cases()[name]
    model = load_model(model_name)
    params = _params(model, opts)
    if model.kind == "diffusion":
        params = dataclasses.replace(params, format_version=entry["format_version"])
    data, _ = api.compress(images, model, params, parallel=opts.get("parallel", 8), threads=1, tile=opts.get("tile"))
    assert data == (GOLDEN / fname).read_bytes()
