"""Where a 64x64 tile stops paying: the photo prior codes square centre crops of the four held-out
VALIDATION photos of the photo training set (never trained on; not test photos) at 32x32 and at 64x64
tiles, one file per crop, at the defaults otherwise (K=100, first tiles by JPEG XL). Encode only: the
file's bytes are what the encoder writes (round trips are the test suite's and the suite's job).

    python bench/studies/2026-12-05-photo-context/small_files_tile.py --sizes 128 192 256 --out results/small_files_tile.json
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts"))
import build_photo_trainset as ts  # noqa: E402
import photos_full  # noqa: E402
from bbcodec import api  # noqa: E402
from bbcodec.images import from_array  # noqa: E402
from bbcodec.registry import load_model  # noqa: E402


def validation_photos() -> dict[str, np.ndarray]:
    """The four held-out photos, downsampled and pixel-checked exactly as the training set's builder does."""
    cache = photos_full.default_cache() / "downloads"
    out = {}
    for name, (pkg, member, _, val, sha) in ts.SOURCES.items():
        if not val:
            continue
        img, _ = ts.downsample(name, ts._members(pkg, [member], cache)[member])
        assert photos_full.pixel_sha256(img) == sha, name
        out[name] = img
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 192, 256])
    ap.add_argument("--tiles", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--model", default="photo-vdm-p2-dt-int")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    model = load_model(args.model)
    params = api.coding_params(model, 100)
    rows = []
    for name, img in validation_photos().items():
        h, w, _ = img.shape
        for s in args.sizes:
            crop = np.ascontiguousarray(img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s])
            for T in args.tiles:
                t0 = time.time()
                data, rep = api.compress([from_array(crop, f"{name}-{s}.png")], model, params, threads=1, tile=T)
                rows.append({"photo": name, "size": s, "tile": T, "bytes": len(data), "bpd": rep.bpd,
                             "bootstrap_tiles": rep.bootstrap_tiles, "model_tiles": rep.model_tiles,
                             "encode_s": time.time() - t0})
                print(rows[-1], flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps({"model": args.model, "model_sha256": model.sha256, "rows": rows},
                                               indent=1) + "\n")


if __name__ == "__main__":
    main()
