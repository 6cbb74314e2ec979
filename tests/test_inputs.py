"""Every pixel or a refusal: inputs that Pillow would hand over altered are refused from the file's
own header, archives always extract, dropped metadata is named. Each case asserts exact pixels or
the error."""
import io
import struct

import imagecodecs
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from bbcodec.errors import ImageError
from bbcodec.fileio import gather_images
from bbcodec.images import read_image
from conftest import pil_image

RNG = np.random.default_rng(7)


def _png16(shape):
    return imagecodecs.png_encode(RNG.integers(0, 65536, shape, dtype=np.uint16))


def _refused(data: bytes, name: str, words: str):
    with pytest.raises(ImageError) as e:
        read_image(name, data=data, name=name)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{name}: ") and words in msg, msg


@pytest.mark.parametrize("shape", [(5, 4), (5, 4, 2), (5, 4, 3), (5, 4, 4)], ids=["L", "LA", "RGB", "RGBA"])
def test_16bit_png_is_refused_whatever_pillow_makes_of_it(shape):
    data = _png16(shape)
    assert data[24] == 16
    _refused(data, "deep.png", "16-bit PNG")


@pytest.mark.parametrize("shape", [(5, 4), (5, 4, 3), (5, 4, 4)], ids=["L", "RGB", "RGBA"])
def test_16bit_tiff_is_refused(shape):
    _refused(imagecodecs.tiff_encode(RNG.integers(0, 65536, shape, dtype=np.uint16)), "deep.tif", "16-bit TIFF")


@pytest.mark.parametrize("head,n", [(b"P6\n4 5\n65535\n", 120), (b"P5\n4 5\n65535\n", 40), (b"P6\n4 5\n100\n", 60),
                                    (b"P5 4 5 # c\n1000\n", 40)])
def test_pnm_with_another_maxval_is_refused(head, n):
    _refused(head + bytes(RNG.integers(0, 100, n, dtype=np.uint8)), "x.ppm", "maxval")


def test_pnm_maxval_255_is_coded_exactly():
    a = RNG.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    d = read_image("x.ppm", data=b"P6\n# made here\n4 5\n255\n" + a.tobytes(), name="x.ppm")
    assert d.mode == "RGB" and np.array_equal(d.main, a.transpose(2, 0, 1))


def test_16bit_bmp_is_refused():
    w, h = 4, 2
    pix = bytes(range(16))
    head = b"BM" + struct.pack("<IHHI", 70, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 16, 0, 16, 0, 0, 0, 0)
    _refused(head + pix, "x.bmp", "16-bit BMP")


def test_low_depth_grey_png_is_refused_but_1_bit_is_exact():
    # a 2-bit greyscale PNG, written by hand: Pillow would widen its samples to 0, 85, 170, 255
    import zlib

    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))
    raw = b"".join(b"\0" + bytes([0b00011011]) for _ in range(2))
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 2, 2, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    _refused(data, "two.png", "2-bit greyscale")
    buf = io.BytesIO()
    pil_image("1", 9, 7).save(buf, "PNG")
    d = read_image("one.png", data=buf.getvalue(), name="one.png")
    assert d.mode == "1" and set(np.unique(d.main)) <= {0, 255}


def test_cmyk_multiframe_and_other_formats_are_refused():
    buf = io.BytesIO()
    Image.new("CMYK", (4, 4)).save(buf, "JPEG")
    _refused(buf.getvalue(), "c.jpg", "unsupported image mode CMYK")
    for fmt in ("GIF", "TIFF"):
        buf = io.BytesIO()
        frames = [pil_image("RGB", 6, 5, s) for s in range(3)]
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:])
        _refused(buf.getvalue(), "many." + fmt.lower(), "3 frames")
    buf = io.BytesIO()
    pil_image("RGB", 16, 16).save(buf, "ICO")
    _refused(buf.getvalue(), "x.ico", "ICO files are not supported")


def test_garbage_names_the_input_not_a_stream():
    _refused(b"\x00garbage" * 10, "stdin.png", "not an image file")


def test_exif_orientation_is_kept_as_a_tag_with_the_pixels_as_stored():
    img = pil_image("RGB", 16, 8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buf = io.BytesIO()
    img.save(buf, "PNG", exif=exif.tobytes())
    d = read_image("o.png", data=buf.getvalue(), name="o.png")
    assert (d.width, d.height) == (16, 8) and np.array_equal(d.main, np.asarray(img).transpose(2, 0, 1))
    e = Image.Exif()
    e.load(d.exif)
    assert e[0x0112] == 6


def test_dropped_png_chunks_are_named():
    info = PngImagePlugin.PngInfo()
    info.add(b"tIME", bytes([7, 234, 1, 2, 3, 4, 5]))
    info.add(b"bKGD", bytes(6))
    info.add(b"sBIT", bytes([8, 8, 8]))
    info.add_text("Title", "kept")
    buf = io.BytesIO()
    pil_image("RGB", 6, 5).save(buf, "PNG", pnginfo=info, dpi=(72, 72))
    d = read_image("m.png", data=buf.getvalue(), name="m.png")
    assert d.dropped == ["bKGD", "sBIT", "tIME"] and d.meta["text"] == {"Title": "kept"}
    buf = io.BytesIO()
    pil_image("RGB", 6, 5).save(buf, "PNG")
    assert read_image("p.png", data=buf.getvalue(), name="p.png").dropped == []


def test_folder_names_that_would_decompress_to_one_file_are_refused(tmp_path):
    for ext in ("jpg", "png", "webp"):
        pil_image("RGB", 8, 8).save(tmp_path / f"a.{ext}")
    with pytest.raises(ImageError, match="would both decompress to 'a.png'"):
        gather_images((str(tmp_path),))


def test_folder_takes_the_documented_image_kinds(tmp_path):
    kinds = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF", "tif": "TIFF",
             "tiff": "TIFF", "bmp": "BMP", "ppm": "PPM"}
    for i, (ext, fmt) in enumerate(kinds.items()):
        kw = {"lossless": True} if fmt == "WEBP" else {}
        pil_image("RGB", 8, 8, i).save(tmp_path / f"i{i}.{ext}", fmt, **kw)
    (tmp_path / "notes.txt").write_text("skipped")
    images, sources = gather_images((str(tmp_path),))
    assert sorted(d.name for d in images) == sorted(f"i{i}.{e}" for i, e in enumerate(kinds))
    lossless = [d for d in images if not d.name.endswith((".jpg", ".jpeg", ".gif"))]  # lossy on save
    for d in lossless:
        i = int(d.name[1:].split(".")[0])
        assert np.array_equal(d.main, np.asarray(pil_image("RGB", 8, 8, i)).transpose(2, 0, 1)), d.name
