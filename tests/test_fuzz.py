"""Mutated, truncated and spliced .bbc files and random bytes: a clean BbcError or the right
pixels, never another exception. The default run is short; `-m slow` runs 10,000 cases."""
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bbcodec import api
from bbcodec.format import container
from bbcodec.diffusion.codec import CodingParams
from bbcodec.errors import BbcError

from conftest import image_data


@pytest.fixture(scope="module")
def valid(tiny_model):
    imgs = [image_data("RGB", 9, 7, 1, "a.png"), image_data("LA", 5, 3, 2, "b.png")]
    data, _ = api.compress(imgs, tiny_model, CodingParams(steps=2))
    return data, imgs


def _refix_crcs(data: bytes) -> bytes:
    """Recompute the checksums so that a mutation reaches the decoder instead of the CRC check."""
    try:
        c = container.parse(data, verify_checksums=False)
    except BbcError:
        return data
    return container.Container(c.header, c.payload, c.side).to_bytes()


def _check(data, tiny_model, imgs):
    try:
        out, _ = api.decompress(data, tiny_model)
    except BbcError as e:
        assert "\n" not in str(e)
        return
    # decoded without error: it must be the right pictures (mutation hit nothing that matters)
    assert [d.checksum() for d in out] == [d.checksum() for d in imgs]


def _mutations(n_max):
    return st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=n_max)


def _run(valid, tiny_model, muts, cut, splice, refix):
    data, imgs = valid
    b = bytearray(data)
    for pos, x in muts:
        b[pos % len(b)] ^= x
    if cut is not None:
        b = b[:cut % (len(b) + 1)]
    if splice:
        b = b + data[len(data) // 2:]
    b = bytes(b)
    if refix:
        b = _refix_crcs(b)
    _check(b, tiny_model, imgs)


FUZZ = dict(deadline=10_000, suppress_health_check=list(HealthCheck), derandomize=True)


@settings(max_examples=60, **FUZZ)
@given(muts=_mutations(4), cut=st.one_of(st.none(), st.integers(0, 10**6)), splice=st.booleans(),
       refix=st.booleans())
def test_fuzz_mutations(valid, tiny_model, muts, cut, splice, refix):
    _run(valid, tiny_model, muts, cut, splice, refix)


@settings(max_examples=40, **FUZZ)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(tiny_model, blob):
    for b in (blob, container.MAGIC + blob, container.MAGIC + struct.pack("<HI", 1, len(blob)) + blob):
        try:
            api.decompress(b, tiny_model)
        except BbcError:
            pass


def test_lying_header_is_refused_before_allocation(valid, tiny_model):
    data, _ = valid
    c = container.parse(data)
    h = dict(c.header)
    h["images"] = dict(h["images"], width=[100000, 5], height=[100000, 3])
    bad = container.Container(h, c.payload, c.side).to_bytes()
    with pytest.raises(BbcError, match="pixel limit"):
        api.decompress(bad, tiny_model)
    # a zip bomb in the header is refused too
    bomb = zlib.compress(b" " * (container.MAX_HEADER + 10))
    blob = container.MAGIC + struct.pack("<HI", 1, len(bomb)) + bomb + struct.pack("<I", zlib.crc32(bomb))
    with pytest.raises(BbcError):
        api.decompress(blob, tiny_model)


@pytest.mark.slow
@settings(max_examples=10_000, **FUZZ)
@given(muts=_mutations(6), cut=st.one_of(st.none(), st.integers(0, 10**6)), splice=st.booleans(),
       refix=st.booleans())
def test_fuzz_long(valid, tiny_model, muts, cut, splice, refix):
    _run(valid, tiny_model, muts, cut, splice, refix)


def test_header_fields_that_would_crash_the_decoder_are_refused(tiny_model):
    """Found by reading the format as an outside decoder would: a non-hex transparency string, an
    unknown palette mode, an unknown top-level key and bytes after the header's DEFLATE stream."""
    from bbcodec.errors import FormatError
    from bbcodec.format.container import _PRE
    data, _ = api.compress([image_data("P", 12, 12, 3, "p.png")], tiny_model, CodingParams(steps=2), bootstrap=None)
    c = container.parse(data)
    for bad, words in ((dict(c.header, images=dict(c.header["images"], transparency=["zz"])), "transparency"),
                       (dict(c.header, images=dict(c.header["images"], palette_mode=["XYZ"])), "palette_mode"),
                       (dict(c.header, extra=1), "'extra'")):
        with pytest.raises(FormatError, match=words):
            api.decompress(container.Container(bad, c.payload, c.side, c.version).to_bytes(), tiny_model)
    hlen = _PRE.unpack_from(data)[2]
    hb = data[_PRE.size:_PRE.size + hlen] + b"junk"
    forged = _PRE.pack(container.MAGIC, c.version, len(hb)) + hb + struct.pack("<I", zlib.crc32(hb)) + data[_PRE.size + hlen + 4:]
    with pytest.raises(FormatError, match="corrupted header"):
        container.parse(forged)


# the flow's files ("flow-lbb"): the same guarantees


@pytest.fixture(scope="module")
def flow_model(tiny_flow_dir):
    from bbcodec.registry import load_model
    return load_model(str(tiny_flow_dir))


@pytest.fixture(scope="module")
def valid_flow(flow_model):
    imgs = [image_data("RGB", 9, 7, 1, "a.png"), image_data("LA", 5, 3, 2, "b.png")]
    data, _ = api.compress(imgs, flow_model, parallel=2)
    return data, imgs


@settings(max_examples=60, **FUZZ)
@given(muts=_mutations(4), cut=st.one_of(st.none(), st.integers(0, 10**6)), splice=st.booleans(),
       refix=st.booleans())
def test_fuzz_flow_mutations(valid_flow, flow_model, muts, cut, splice, refix):
    _run(valid_flow, flow_model, muts, cut, splice, refix)


@pytest.mark.slow
@settings(max_examples=10_000, **FUZZ)
@given(muts=_mutations(6), cut=st.one_of(st.none(), st.integers(0, 10**6)), splice=st.booleans(),
       refix=st.booleans())
def test_fuzz_flow_long(valid_flow, flow_model, muts, cut, splice, refix):
    _run(valid_flow, flow_model, muts, cut, splice, refix)


def test_diffusion_headers_without_valid_steps_are_refused(valid, tiny_model):
    """Found in review: every coding field of a diffusion file is validated, `steps` included."""
    from bbcodec.errors import FormatError
    data, _ = valid
    c = container.parse(data)
    for steps in (None, "3", 3.0, 10 ** 9, 0):
        cod = dict(c.header["coding"], steps=steps)
        if steps is None:
            del cod["steps"]
        bad = container.Container(dict(c.header, coding=cod), c.payload, c.side, c.version).to_bytes()
        with pytest.raises(FormatError, match="steps"):
            api.decompress(bad, tiny_model)


def test_flow_precision_fields_do_not_reach_the_probe(valid_flow, flow_model):
    """A flow file's arithmetic probe runs at fixed parameters: changed precision fields are a damaged
    file (a clean error), never a traceback or an "other arithmetic" refusal."""
    data, _ = valid_flow
    c = container.parse(data)
    for change in (dict(top_bits=0, top_range=1), dict(grid_bits=20), dict(scale_bits=4)):
        bad = container.Container(dict(c.header, coding=dict(c.header["coding"], **change)), c.payload, c.side,
                                  c.version).to_bytes()
        with pytest.raises(BbcError) as e:
            api.decompress(bad, flow_model)
        assert "other arithmetic" not in str(e.value)
