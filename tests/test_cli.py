"""The command line: round trips through files and pipes, and every bad input is one line + exit 1."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import pil_image

STEPS = ["--steps", "3"]


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run(*args, input=None, subprocess_=False):
    """Run the CLI in-process (fast), or as a real process to check the real exit path."""
    args = [str(a) for a in args]
    if subprocess_:
        p = subprocess.run([sys.executable, "-m", "bbcodec.cli", *args], input=input, capture_output=True)
        return Result(p.returncode, p.stdout, p.stderr)
    from click.testing import CliRunner
    from bbcodec.cli import cli
    r = CliRunner().invoke(cli, args, input=input)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Result(r.exit_code, r.stdout_bytes, r.stderr_bytes)


def one_line_error(p):
    """The error is one line, the last on stderr; any line before it is a progress note of the run
    (`bbcodec: ...`, never an error or a traceback)."""
    lines = p.stderr.decode().strip().splitlines()
    assert p.returncode == 1, (p.returncode, lines)
    err = lines[-1]
    assert err.startswith("bbcodec: error: "), lines
    assert all(line.startswith("bbcodec: ") and "error" not in line for line in lines[:-1]), lines
    assert "Traceback" not in p.stderr.decode()
    return err


@pytest.fixture()
def work(tmp_path, tiny_model_dir):
    pil_image("RGB", 40, 30).save(tmp_path / "a.png")
    pil_image("RGBA", 10, 12, 1).save(tmp_path / "b.png")
    return tmp_path, ["--model", str(tiny_model_dir)]


def pixels(path):
    im = Image.open(path)
    return im.mode, im.size, np.asarray(im)


def test_compress_decompress_file(work):
    d, m = work
    p = run("compress", d / "a.png", "--json", *m, *STEPS)
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    for k in ("bytes", "subpixels", "bpd", "nelbo_bpd", "overhead_pct", "initial_bits", "seconds"):
        assert k in rep
    assert rep["bytes"] == os.path.getsize(d / "a.bbc")
    assert run("decompress", d / "a.bbc", "-o", d / "a2.png", *m).returncode == 0
    a, b = pixels(d / "a.png"), pixels(d / "a2.png")
    assert a[:2] == b[:2] and np.array_equal(a[2], b[2])
    info = json.loads(run("info", d / "a.bbc", "--json").stdout)
    assert info["bytes"] == rep["bytes"] and info["images"][0]["width"] == 40
    # outputs get the usual permissions, not the private mode of a temporary file
    mask = os.umask(0)
    os.umask(mask)
    for f in ("a.bbc", "a2.png"):
        assert os.stat(d / f).st_mode & 0o777 == 0o666 & ~mask


def test_archive_restores_names(work):
    d, m = work
    assert run("compress", d / "a.png", d / "b.png", "-o", d / "set.bbc", *m, *STEPS).returncode == 0
    assert run("decompress", d / "set.bbc", "-o", d / "out", *m).returncode == 0
    for n in ("a.png", "b.png"):
        x, y = pixels(d / n), pixels(d / "out" / n)
        assert x[:2] == y[:2] and np.array_equal(x[2], y[2])


def test_folder_input(work):
    d, m = work
    (d / "sub").mkdir()
    pil_image("L", 9, 9).save(d / "sub" / "g.png")
    assert run("compress", d / "sub", "-o", d / "f.bbc", *m, *STEPS).returncode == 0
    assert run("decompress", d / "f.bbc", "-o", d / "g2.png", *m).returncode == 0
    assert np.array_equal(pixels(d / "sub" / "g.png")[2], pixels(d / "g2.png")[2])


def test_stdin_stdout(work):
    d, m = work
    src = (d / "a.png").read_bytes()
    p = run("compress", "-", "-o", "-", "--quiet", *m, *STEPS, input=src, subprocess_=True)
    assert p.returncode == 0 and p.stdout[:4] == b"\x89BBC"
    q = run("decompress", "-", "-o", "-", *m, input=p.stdout, subprocess_=True)
    assert q.returncode == 0
    (d / "s.png").write_bytes(q.stdout)
    assert np.array_equal(pixels(d / "a.png")[2], pixels(d / "s.png")[2])


def test_existing_output_needs_force_and_input_is_never_overwritten(work):
    d, m = work
    assert run("compress", d / "a.png", *m, *STEPS).returncode == 0
    before = (d / "a.bbc").read_bytes()
    err = one_line_error(run("compress", d / "a.png", *m, *STEPS))
    assert "exists" in err and (d / "a.bbc").read_bytes() == before
    assert run("compress", d / "a.png", "--force", *m, *STEPS).returncode == 0
    src = (d / "a.png").read_bytes()
    one_line_error(run("compress", d / "a.png", "-o", d / "a.png", "--force", *m, *STEPS))
    assert (d / "a.png").read_bytes() == src


def _bad_file_error(d, m, data, name="x.bbc"):
    (d / name).write_bytes(data)
    err = one_line_error(run("decompress", d / name, "-o", d / "out.png", *m))
    assert not (d / "out.png").exists()
    assert not [f for f in os.listdir(d) if f.endswith(".tmp")]
    return err


def test_bad_files(work):
    d, m = work
    assert run("compress", d / "a.png", *m, *STEPS).returncode == 0
    good = (d / "a.bbc").read_bytes()
    assert "empty" in _bad_file_error(d, m, b"")
    # the real process too: one line, exit 1, no traceback
    (d / "e.bbc").write_bytes(b"")
    one_line_error(run("decompress", d / "e.bbc", *m, subprocess_=True))
    assert "not a .bbc" in _bad_file_error(d, m, b"\x89PNG\r\n\x1a\n" + b"x" * 100)
    assert "x.bbc: truncated" in _bad_file_error(d, m, good[:-7])
    assert "truncated" in _bad_file_error(d, m, good[:20])
    assert "trailing" in _bad_file_error(d, m, good + b"\0")
    flipped = bytearray(good)
    flipped[-20] ^= 0x10
    assert "corrupted payload" in _bad_file_error(d, m, bytes(flipped))
    flipped = bytearray(good)
    flipped[30] ^= 0x01
    assert "corrupted header" in _bad_file_error(d, m, bytes(flipped))


def test_wrong_model(work, other_model_dir):
    d, m = work
    assert run("compress", d / "a.png", *m, *STEPS).returncode == 0
    err = _bad_file_error(d, ["--model", other_model_dir], (d / "a.bbc").read_bytes())
    assert "coded with model" in err


def test_unknown_model_and_missing_registry_entry(work):
    d, _ = work
    err = one_line_error(run("compress", d / "a.png", "--model", "no-such-model", *STEPS))
    assert "unknown model" in err
    assert not (d / "a.bbc").exists()


def test_unsupported_images(work):
    d, m = work
    Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).save(d / "16bit.png")
    assert "16-bit PNG" in one_line_error(run("compress", d / "16bit.png", *m, *STEPS))
    (d / "notimg.png").write_bytes(b"hello")
    assert "notimg.png: not an image file" in one_line_error(run("compress", d / "notimg.png", *m, *STEPS))
    Image.new("CMYK", (4, 4)).save(d / "c.jpg")
    assert "unsupported" in one_line_error(run("compress", d / "c.jpg", *m, *STEPS))
    assert "no such file" in one_line_error(run("compress", d / "missing.png", *m, *STEPS))
    assert not list(d.glob("*.bbc"))


def test_usage_errors_exit_2(work):
    d, m = work
    assert run("compress").returncode == 2
    assert run("compress", d / "a.png", "--steps", "0").returncode == 2
    assert run("compress", d / "a.png", d / "b.png", *m).returncode == 2


def test_models_lists_the_default():
    p = run("models", "--json")
    assert p.returncode == 0
    ms = json.loads(p.stdout)
    assert any(x["default"] for x in ms)


def test_lying_header_via_cli(work):
    """A header claiming 10^10 pixels (checksums recomputed so only the sizes lie) is refused."""
    from bbcodec.format import container
    d, m = work
    assert run("compress", d / "a.png", *m, *STEPS).returncode == 0
    c = container.parse((d / "a.bbc").read_bytes())
    h = dict(c.header)
    h["images"] = dict(h["images"], width=[100000], height=[100000])
    err = _bad_file_error(d, m, container.Container(h, c.payload, c.side).to_bytes())
    assert "pixel limit" in err


def test_interrupt_leaves_no_partial_output(work, monkeypatch):
    """Ctrl-C in the middle of coding: exit 130, one line, no output and no temporary file."""
    from bbcodec import api
    d, m = work

    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(api, "compress", boom)
    p = run("compress", d / "a.png", "-o", d / "x.bbc", *m, *STEPS)
    assert p.returncode == 130 and p.stderr.decode().strip().splitlines()[-1] == "bbcodec: error: interrupted"
    assert not (d / "x.bbc").exists() and not list(d.glob(".*.tmp"))


def test_interrupt_during_write_removes_the_temporary_file(work, monkeypatch):
    import os as _os
    from bbcodec import fileio
    d, m = work
    real = _os.fsync

    def boom(fd):
        real(fd)
        raise KeyboardInterrupt
    monkeypatch.setattr(fileio.os, "fsync", boom)
    p = run("compress", d / "a.png", "-o", d / "y.bbc", *m, *STEPS)
    assert p.returncode == 130
    assert not (d / "y.bbc").exists() and not list(d.glob(".*.tmp"))


def test_decompression_bomb_input_is_refused(work):
    """A tiny PNG that claims 100 million pixels is refused before it is decoded."""
    d, m = work
    Image.new("1", (10_000, 10_000)).save(d / "bomb.png")
    assert (d / "bomb.png").stat().st_size < 100_000
    err = one_line_error(run("compress", d / "bomb.png", *m, *STEPS))
    assert "pixel limit" in err and not (d / "bomb.bbc").exists()


def test_summary_line_separates_pixels_and_metadata(work):
    d, m = work
    img = Image.open(d / "a.png")
    img.save(d / "icc.png", icc_profile=b"not-a-real-icc-profile" * 40)
    p = run("compress", d / "icc.png", *m, *STEPS)
    assert p.returncode == 0
    line = p.stderr.decode().strip().splitlines()[-1]
    assert line.startswith("1 image -> ") and "for the pixels alone, metadata" in line, line
    rep = json.loads(run("compress", d / "icc.png", "--json", "--force", *m, *STEPS).stdout)
    assert rep["metadata_bytes"] > 0 and rep["pixels_bpd"] < rep["bpd"]
    assert rep["pixels_bpd"] == pytest.approx(8 * (rep["bytes"] - rep["metadata_bytes"]) / rep["subpixels"])
    # a file coded by the bootstrap codec alone says so, with no model figures
    img.crop((0, 0, 8, 8)).save(d / "small.png")
    line = run("compress", d / "small.png", *m, *STEPS).stderr.decode().strip().splitlines()[-1]
    assert "0 tiles by the model, 1 by jxl" in line and "NELBO" not in line, line


def test_progress_notes_come_first_and_plain_lines_without_a_terminal(work):
    d, m = work
    p = run("compress", d / "a.png", "-o", d / "p.bbc", *m, *STEPS, subprocess_=True)
    lines = p.stderr.decode().splitlines()
    assert p.returncode == 0 and lines[0].startswith("bbcodec: 1 image, 0.001 MP, for tiny-a; timing the network"), lines
    assert "to encode, as long to decode" in lines[1], lines
    q = run("compress", d / "a.png", "-o", d / "q.bbc", "--quiet", *m, *STEPS, subprocess_=True)
    assert q.returncode == 0 and q.stderr == b""


def test_threads_are_written_and_replayed_beyond_the_cores(work):
    d, m = work
    many = (os.cpu_count() or 1) + 1
    p = run("compress", d / "a.png", "-o", d / "t.bbc", "--threads", many, *m, *STEPS)
    assert p.returncode == 0, p.stderr
    info = json.loads(run("info", d / "t.bbc", "--json").stdout)
    assert info["coding"]["threads"] == many
    q = run("decompress", d / "t.bbc", "-o", d / "t.png", "--threads", 1, *m)
    assert q.returncode == 0, q.stderr
    assert f"--threads 1 is not used: this file is decoded with the {many} threads" in q.stderr.decode()
    assert np.array_equal(pixels(d / "a.png")[2], pixels(d / "t.png")[2])


def test_verify_against_checksums_and_originals(work):
    d, m = work
    p = run("compress", d / "a.png", d / "b.png", "-o", d / "ab.bbc", "--verify", *m, *STEPS)
    assert p.returncode == 0 and p.stderr.decode().strip().endswith("; verified"), p.stderr
    ok = run("verify", d / "ab.bbc", *m)
    assert ok.returncode == 0 and "2 images decoded and match the stored pixel checksums" in ok.stdout.decode()
    ok = run("verify", d / "ab.bbc", d / "a.png", d / "b.png", *m)
    assert ok.returncode == 0 and "2 images bit-exact against the originals" in ok.stdout.decode()
    pil_image("RGB", 40, 30, seed=5).save(d / "c.png")
    (d / "v").mkdir()
    pil_image("RGB", 40, 30, seed=5).save(d / "v" / "a.png")
    assert "a.png: differs from the image decoded" in one_line_error(run("verify", d / "ab.bbc", d / "v" / "a.png", *m))
    assert "c.png: not in" in one_line_error(run("verify", d / "ab.bbc", d / "c.png", *m))
    assert not list(d.glob("ab.png")) and not (d / "ab").exists()


def test_archive_that_could_not_be_extracted_is_refused(work):
    d, m = work
    (d / "f").mkdir()
    for ext in ("jpg", "png"):
        pil_image("RGB", 8, 8).save(d / "f" / f"a.{ext}")
    err = one_line_error(run("compress", d / "f", "-o", d / "f.bbc", *m, *STEPS))
    assert "'a.jpg' and 'a.png' would both decompress to 'a.png'" in err and not (d / "f.bbc").exists()


def test_dropped_metadata_is_named_in_a_warning(work):
    from PIL import PngImagePlugin
    d, m = work
    info = PngImagePlugin.PngInfo()
    info.add(b"tIME", bytes([7, 234, 1, 2, 3, 4, 5]))
    Image.open(d / "a.png").save(d / "t.png", pnginfo=info)
    p = run("compress", d / "t.png", *m, *STEPS)
    assert p.returncode == 0 and "bbcodec: warning: t.png: not kept: tIME" in p.stderr.decode()


def test_garbage_on_stdin_is_named_stdin(work):
    d, m = work
    err = one_line_error(run("compress", "-", "-o", d / "g.bbc", *m, *STEPS, input=b"garbage" * 20))
    assert "stdin.png: not an image file" in err and "BytesIO" not in err


def test_binary_output_to_a_terminal_is_refused(work, monkeypatch):
    d, m = work
    import bbcodec.cli
    monkeypatch.setattr(bbcodec.cli, "_stdout_is_terminal", lambda: True)
    err = one_line_error(run("compress", d / "a.png", "-o", "-", *m, *STEPS))
    assert "binary .bbc file to a terminal" in err


def test_long_runs_need_yes_without_a_terminal(work, monkeypatch):
    from bbcodec import api
    d, m = work
    monkeypatch.setattr(api, "estimate_seconds", lambda *a, **k: 4 * 3600.0)
    err = one_line_error(run("compress", d / "a.png", "-o", d / "l.bbc", *m, *STEPS))
    assert "about 4 h 0 min to encode" in err and "--yes" in err and not (d / "l.bbc").exists()
    assert run("compress", d / "a.png", "-o", d / "l.bbc", "--yes", *m, *STEPS).returncode == 0


def _repacked(data, **changes):
    """The same file with header fields changed (for the checks that come before decoding)."""
    from bbcodec.format import container
    c = container.parse(data)
    h = dict(c.header)
    for key, value in changes.items():
        h[key] = dict(h[key], **value)
    return container.Container(h, c.payload, c.side, c.version).to_bytes()


def test_other_arithmetic_is_refused_before_decoding_naming_what_differs(work):
    d, m = work
    assert run("compress", d / "a.png", "-o", d / "x.bbc", *m, *STEPS).returncode == 0
    (d / "y.bbc").write_bytes(_repacked((d / "x.bbc").read_bytes(), arithmetic={"torch": "1.0.0", "numpy": "1.0"}))
    err = one_line_error(run("decompress", d / "y.bbc", "-o", d / "y.png", *m))
    assert err.startswith(f"bbcodec: error: {d / 'y.bbc'}: made under other arithmetic"), err
    assert "numpy: 1.0 in the file" in err and "torch: 1.0.0 in the file" in err and "--any-arithmetic" in err, err
    assert not (d / "y.png").exists()
    # the record is all that differs here, so decoding anyway gives the picture back
    p = run("decompress", d / "y.bbc", "-o", d / "y.png", "--any-arithmetic", *m)
    assert p.returncode == 0 and np.array_equal(pixels(d / "a.png")[2], pixels(d / "y.png")[2])


def test_other_cpu_kernels_in_another_process(work):
    """Decoding under ATEN_CPU_CAPABILITY=avx2 (what a machine without AVX-512 runs): bit-exact where the
    kernels are the same, else refused in one line that names the CPU capability; never a wrong picture."""
    d, m = work
    assert run("compress", d / "a.png", "-o", d / "x.bbc", *m, *STEPS).returncode == 0
    env = dict(os.environ, ATEN_CPU_CAPABILITY="avx2")
    p = subprocess.run([sys.executable, "-m", "bbcodec.cli", "decompress", str(d / "x.bbc"), "-o", str(d / "z.png"),
                        *map(str, m)], capture_output=True, env=env)
    r = Result(p.returncode, p.stdout, p.stderr)
    if r.returncode == 0:
        assert np.array_equal(pixels(d / "a.png")[2], pixels(d / "z.png")[2])
    else:
        assert "cpu_capability" in one_line_error(r) and not (d / "z.png").exists()


def test_device_auto_follows_the_file(work):
    import torch
    d, m = work
    assert run("compress", d / "a.png", "-o", d / "x.bbc", *m, *STEPS).returncode == 0
    (d / "g.bbc").write_bytes(_repacked((d / "x.bbc").read_bytes(), coding={"device": "cuda"},
                                       arithmetic={"device": "cuda"}))
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the file's device is there")
    err = one_line_error(run("decompress", d / "g.bbc", "-o", d / "g.png", *m))
    assert "encoded on a CUDA device and this machine has none" in err



def test_outputs_and_originals_are_checked_before_the_decode(work, monkeypatch):
    """An existing output, an image file name for several images, stdout for several images, or an
    original missing from the archive: refused at once, not after a decode that may take hours."""
    from bbcodec import api
    d, m = work
    assert run("compress", d / "a.png", d / "b.png", "-o", d / "ab.bbc", *m, *STEPS).returncode == 0
    (d / "ab").mkdir()
    (d / "ab" / "a.png").write_bytes(b"keep")
    monkeypatch.setattr(api, "decompress", lambda *a, **k: pytest.fail("decoded before checking the outputs"))
    assert "exists" in one_line_error(run("decompress", d / "ab.bbc", *m))
    assert "give a folder, not an image file name" in one_line_error(run("decompress", d / "ab.bbc", "-o", d / "x.png", *m))
    assert "cannot be written to stdout" in one_line_error(run("decompress", d / "ab.bbc", "-o", "-", *m))
    pil_image("RGB", 5, 5).save(d / "zz.png")
    assert "zz.png: not in" in one_line_error(run("verify", d / "ab.bbc", d / "zz.png", *m))
    assert (d / "ab" / "a.png").read_bytes() == b"keep" and not (d / "x.png").exists()


def test_a_file_without_model_tiles_decodes_under_any_arithmetic(work):
    d, m = work
    Image.open(d / "a.png").crop((0, 0, 8, 8)).save(d / "s.png")
    assert run("compress", d / "s.png", "-o", d / "s.bbc", *m, *STEPS).returncode == 0
    (d / "t.bbc").write_bytes(_repacked((d / "s.bbc").read_bytes(), arithmetic={"torch": "1.0.0"}))
    p = run("decompress", d / "t.bbc", "-o", d / "t.png", *m)
    assert p.returncode == 0 and np.array_equal(pixels(d / "s.png")[2], pixels(d / "t.png")[2])


def test_empty_stdin_and_info_name_what_is_wrong(work):
    d, m = work
    assert "stdin.png: empty file" in one_line_error(run("compress", "-", "-o", d / "e.bbc", *m, input=b""))
    assert run("compress", d / "a.png", "-o", d / "x.bbc", *m, *STEPS).returncode == 0
    (d / "tr.bbc").write_bytes((d / "x.bbc").read_bytes()[:-9])
    assert f"{d / 'tr.bbc'}: truncated" in one_line_error(run("info", d / "tr.bbc"))


def test_order_option_writes_a_bbans_file_that_decodes(work):
    d, m = work
    p = run("compress", d / "a.png", "-o", d / "a.bbc", "--json", "--order", "bbans", "--bootstrap", "none", *m, *STEPS)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["order"] == "bbans"
    assert json.loads(run("info", d / "a.bbc", "--json").stdout)["coding"]["order"] == "bbans"
    assert "order=bbans" in run("info", d / "a.bbc").stdout.decode()
    assert run("decompress", d / "a.bbc", "-o", d / "a2.png", *m).returncode == 0
    assert np.array_equal(pixels(d / "a.png")[2], pixels(d / "a2.png")[2])
    assert run("compress", d / "a.png", "--order", "bb", *m, *STEPS).returncode == 2
