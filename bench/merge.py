"""Join bench JSONs of consecutive slices of one dataset, coded in parallel processes, into one
partial result; then finish it with the same bench command over the whole range and `--resume`:
    python bench/merge.py OUT.json PART.json PART.json ...
Every part but the last must hold all its images; otherwise it stops with an error and writes nothing.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bbcodec.bench import merge, save_json  # noqa: E402
from bbcodec.errors import BbcError  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    try:
        save_json(merge([json.loads(Path(p).read_text()) for p in sys.argv[2:]]), sys.argv[1])
    except BbcError as e:
        sys.exit(f"error: {e}")
