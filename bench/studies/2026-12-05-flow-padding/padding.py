"""What the flow pays for subpixels outside the image: edge padding and the channels grey images lack.

A coupling flow codes every subpixel of a tile. Two ways of choosing the values outside the image:
a fixed fill (the edge replicated: `bbcodec.priors.replicate_edges`), and the codec's: drawn by
bits-back from a small triangular q around that fill (`bbcodec.priors.pad_groups`), its -log2 q
given back. On held-out CIFAR-10 training images (the validation set: the last 1,000 of
train.npz; never the test set), this measures the flow's dequantization bound (float64, one
fixed-seed draw per subpixel; the codec achieves it within its measured gap) per real subpixel:

- full 32x32 RGB tiles (the reference rate r);
- the top-left s x s crop of each image for several s, padded to 32x32: bits per real subpixel, and
  the padding's cost = (tile bits - r x real subpixels) per image, for both ways;
- the grey version (PIL's L conversion), its other two channels filled both ways: bits per grey
  subpixel, beside JPEG XL (lossless, effort 7) and PNG on the same grey images.

    python bench/studies/2026-12-05-flow-padding/padding.py --model cifar10-flow-r1 --out results/padding.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from bbcodec.baselines import get as baseline
from bbcodec.bench import environment, flow_reference_bits
from bbcodec.images import from_array
from bbcodec.registry import load_model

HERE = Path(__file__).resolve().parent
TRAIN = HERE.parents[2].parent / "shared" / "data" / "cifar10" / "train.npz"


def bound(model, arrays) -> float:
    """Total flow bits over these images (uint8 [H, W(, C)] arrays, padded as the codec pads)."""
    bits, _ = flow_reference_bits(model, [from_array(a, f"{i}.png") for i, a in enumerate(arrays)])
    return float(bits.sum())


def bound_fixed_fill(model, arrays) -> float:
    """Total flow bits with the padding fixed to the replicated edge (no bits back)."""
    import copy

    from bbcodec.format import plan
    from bbcodec.priors import replicate_edges
    flow = copy.deepcopy(model.flow).double().eval()
    imgs = [from_array(a, f"{i}.png") for i, a in enumerate(arrays)]
    tiles = [replicate_edges(t.x, t.mask) for d in imgs
             for t in plan.make_tiles(0, d.main, d.height, d.width, d.main.shape[0], model.tile)]
    g = torch.Generator().manual_seed(1234)
    x = torch.from_numpy(np.stack(tiles))
    with torch.inference_mode():
        return float(flow.nll_bits(x, torch.rand(x.shape, generator=g, dtype=torch.float64)).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="cifar10-flow-r1")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--data", default=str(TRAIN))
    ap.add_argument("--out", required=True, help="JSON, relative to this study's folder")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(a.model)
    with np.load(a.data) as f:
        x = f["x"][-1000:][: a.images]  # validation images of training: held out, not test
    n = len(x)
    full = bound(model, list(x))
    r = full / x[0].size / n
    out = {"model": model.name, "model_sha256": model.sha256, "images": n,
           "data": f"{Path(a.data).name}[-1000:][:{n}]", "full_rgb_bpd": r, "crops": [], "env": environment()}
    for s in (31, 28, 24, 16, 8):
        crops = [np.ascontiguousarray(im[:s, :s]) for im in x]
        b, f = bound(model, crops), bound_fixed_fill(model, crops)
        real = 3 * s * s
        out["crops"].append({"size": s, "padding_subpixels_per_image": 3 * (32 * 32 - s * s),
                             "bits_per_real_subpixel": b / real / n, "padding_bits_per_image": (b - r * real * n) / n,
                             "fixed_fill": {"bits_per_real_subpixel": f / real / n,
                                            "padding_bits_per_image": (f - r * real * n) / n}})
    from PIL import Image
    grey = [np.asarray(Image.fromarray(im).convert("L")) for im in x]
    gb, gf = bound(model, grey), bound_fixed_fill(model, grey)
    sub = grey[0].size * n
    cls = {}
    for name in ("jxl", "png"):
        c = baseline(name)
        if c.available():
            cls[name] = 8 * sum(len(c.encode(g[:, :, None] if name == "jxl" else g)) for g in grey) / sub
    out["grey"] = {"flow_bits_per_grey_subpixel": gb / sub, "fixed_fill_bits_per_grey_subpixel": gf / sub,
                   "classical_bits_per_grey_subpixel": cls,
                   "note": "one file per image for the classical codecs"}
    path = HERE / a.out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "env"}, indent=1))


if __name__ == "__main__":
    main()
