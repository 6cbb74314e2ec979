"""The photo prior's promise on the nine test photos, before any coding: continuous-time NELBO of the
full 32x32 tiles of photos-full under the CIFAR-10 prior and under the photo prior's current best
weights, same tiles, same seed (`bbcodec.train.evaluate_nelbo`, antithetic times).

Evaluation only: photos-full is a test set; nothing here trains or chooses anything on it. Edge
tiles (partial) are left out, so the figures are over about 97% of the photos' pixels; the
coded rate of a photo is its file, which this does not measure.

    python bench/studies/2026-12-05-photo-prior-nelbo/nelbo_photos.py \
        --model cifar10-vdm-s7 --weights runs/photo-p2-export/weights.pt --out results/nelbo_photos.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bbcodec.bench import environment, full_tiles, load_dataset
from bbcodec.registry import build_vdm, read_model
from bbcodec.train import evaluate_nelbo

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="cifar10-vdm-s7", help="the CIFAR-10 prior (registered float model)")
    ap.add_argument("--weights", required=True, help="the photo prior's weights.pt or EMA state dict (same architecture)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    names, arrays = load_dataset("photos-full")
    tiles = {n: full_tiles(x) for n, x in zip(names, arrays) if x.ndim == 3 and x.shape[2] == 3}
    files = read_model(a.model)
    cifar = build_vdm(files)
    photo = build_vdm(files)
    sd = torch.load(a.weights, map_location="cpu", weights_only=True)
    photo.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
    import hashlib
    out = {"cifar_model": a.model, "cifar_sha256": files.sha256[:16], "photo_weights": a.weights,
           "photo_sha256": hashlib.sha256(Path(a.weights).read_bytes()).hexdigest()[:16], "repeats": a.repeats,
           "photos": {}, "env": environment()}
    tot = {"cifar": 0.0, "photo": 0.0, "subpixels": 0}
    with torch.no_grad():
        for n, x in tiles.items():
            row = {"tiles": len(x)}
            for key, m in (("cifar", cifar.eval()), ("photo", photo.eval())):
                r = evaluate_nelbo(m, x, repeats=a.repeats)
                row[f"{key}_bpd"], row[f"{key}_se"] = r["bpd"], r["se"]
                tot[key] += r["bpd"] * x.size
            tot["subpixels"] += x.size
            out["photos"][n] = row
            print(n, row, flush=True)
    out["total"] = {k: tot[k] / tot["subpixels"] for k in ("cifar", "photo")}
    path = HERE / a.out
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(out["total"])


if __name__ == "__main__":
    main()
