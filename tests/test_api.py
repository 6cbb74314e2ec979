"""The public Python API (`import bbcodec`), and the README's example of it, run as written."""
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bbcodec
from bbcodec.progress import Progress
from conftest import pil_image

README = Path(__file__).resolve().parent.parent / "README.md"


def test_arrays_pil_images_and_paths_round_trip(tiny_model_dir, tmp_path):
    pil_image("RGBA", 20, 9, 3).save(tmp_path / "p.png")
    arr = np.random.default_rng(0).integers(0, 256, (17, 33, 3), dtype=np.uint8)
    grey = np.random.default_rng(1).integers(0, 256, (8, 8), dtype=np.uint8)
    pil = pil_image("P", 12, 12, 4)
    data = bbcodec.compress([arr, grey, pil, tmp_path / "p.png"], model=str(tiny_model_dir), steps=3)
    out = bbcodec.decompress(data, arrays=True, model=str(tiny_model_dir))
    assert np.array_equal(out[0], arr) and np.array_equal(out[1], grey)
    assert np.array_equal(out[3], np.asarray(Image.open(tmp_path / "p.png")))
    imgs = bbcodec.decompress(data, model=str(tiny_model_dir))
    assert imgs[2].mode == "P" and np.array_equal(np.asarray(imgs[2]), np.asarray(pil))
    assert imgs[2].getpalette() == pil.getpalette()
    one, rep = bbcodec.compress(arr, model=str(tiny_model_dir), steps=3, report=True)
    assert rep.bytes == len(one) and np.array_equal(bbcodec.decompress(one, arrays=True, model=str(tiny_model_dir))[0], arr)


@pytest.mark.parametrize("bad,words", [(np.zeros((4, 4), np.uint16), "dtype uint16"),
                                       (np.zeros((4, 4, 5), np.uint8), "shape (4, 4, 5)"),
                                       ("not a list", "no such file"), (3.5, "a float")])
def test_bad_items_are_refused(tiny_model_dir, bad, words):
    with pytest.raises(bbcodec.BbcError, match=re.escape(words)):
        bbcodec.compress(bad, model=str(tiny_model_dir), steps=3)


def test_readme_example_runs(tiny_model_dir, tmp_path, monkeypatch):
    text = README.read_text()
    m = re.search(r"## Python API\n.*?```python\n(.*?)```", text, re.S)
    assert m, "README has a Python API example"
    monkeypatch.chdir(tmp_path)
    pil_image("RGB", 40, 30).save(tmp_path / "cat.png")
    # the example runs as written, on the tiny test model instead of the shipped one
    # (patched for this test only: the module's functions are restored afterwards)
    import functools
    tiny = str(tiny_model_dir)
    monkeypatch.setattr(bbcodec, "compress", functools.partial(bbcodec.compress, model=tiny, steps=3))
    monkeypatch.setattr(bbcodec, "decompress", functools.partial(bbcodec.decompress, model=tiny))
    exec(compile(m.group(1), "README.md", "exec"), {})


def test_progress_eta_is_weighted_by_call_cost_and_plain_without_a_terminal():
    out = io.StringIO()
    p = Progress(stream=out, tty=False, interval=0.0)
    p.begin("decode", [8, 8, 1, 1, 1], steps=2, pixels_per_tile=1024)
    p.t0 -= 10.0
    for _ in range(2):
        p.advance(8)  # the first batch: 2 calls of 8 tiles
    # cost units: 2 * (1 + 8) done of 2 * (9 + 9 + 2 + 2 + 2) = 18 / 48 -> 37.5%
    line = out.getvalue().splitlines()[-1]
    assert line.startswith("bbcodec: decode: 8.0/19 tiles, 0.008/0.019 MP, 38%"), line
    assert "ETA 0:1" in line  # 10 s for 37.5% -> about 17 s to go
