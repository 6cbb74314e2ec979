"""The .bbc format as one unit: everything a decoder needs to know, and nothing else.

- `container`: the bytes (magic, version, the DEFLATE-compressed JSON header, payload, side data)
  and the validation of every header field; docs/format.md describes them field by field.
- `header`: the typed view of the header's coding fields (`Coding`), the image table, and the one
  place that packs and unpacks each image's side data (alpha, palette, ICC, EXIF).
- `plan`: how images become tiles and tiles become batches (the order of symbols on the stack).
- `constants`: the values that are part of the format (seed words, pad noise, symbol ranges),
  pinned by value in tests/test_golden.py.

Released versions are frozen: a change to what these say about the bytes is a new version, and the
golden files of tests/golden/ are regenerated on purpose. The encoder's choices (bootstrap tiles,
batch ramp, seed size) are recorded in the header; how it makes them lives in `bbcodec.encode`.
"""
from .container import MAGIC, READABLE_VERSIONS, VERSION, Container, parse  # noqa: F401
