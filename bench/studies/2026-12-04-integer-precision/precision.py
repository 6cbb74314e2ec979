"""How many bits the integer network needs: eps_hat of integer versions of cifar10-vdm-s7 at several
activation and weight precisions against the float network, on training images (never test).

For each (activation range bits A, calibration target bits T, weight bits W): convert (calibrated on
the first 256 training images at random times), then on 64 other training images (from the held-out
last 1,000) at random times: the relative rms difference of eps_hat from the float network's, and the
ratio of the mean squared error against the true noise (integer / float; the diffusion loss is
proportional to it). Float64 sums throughout (the precisions above 8-bit weights have no int8 path).

    python bench/studies/2026-12-04-integer-precision/precision.py --out results/precision.json
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from bbcodec.convert import calibration_pairs  # noqa: E402
from bbcodec.diffusion import intnet as I  # noqa: E402
from bbcodec.diffusion.net import VDM  # noqa: E402
from bbcodec.diffusion.vdm import pixel_to_model  # noqa: E402
from bbcodec.registry import load_model  # noqa: E402
from bbcodec.train import load_images  # noqa: E402

CONFIGS = [(14, 12, 13), (16, 14, 13), (20, 18, 13), (20, 18, 8), (20, 18, 9), (20, 18, 11)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", default=str(ROOT.parent / "shared/data/cifar10/train.npz"))
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    m = load_model("cifar10-vdm-s7")
    x = load_images(a.train)
    zc, gc = calibration_pairs(m.vdm, x[:256], seed=0)
    xe = x[-64:]
    ze, ge = calibration_pairs(m.vdm, xe, seed=5)
    al = torch.sqrt(torch.sigmoid(-ge)).view(-1, 1, 1, 1).double()
    si = torch.sqrt(torch.sigmoid(ge)).view(-1, 1, 1, 1).double()
    eps = (ze.double() - al * pixel_to_model(torch.from_numpy(xe)).double()) / si
    with torch.no_grad():
        ref = m.vdm.net(ze, ge).double()
    rows = []
    saved = (I.ACT_BITS, I.ACT_LIMIT, I.ACT_TARGET, I.WEIGHT_LIMIT, dict(I._BACKEND))
    try:
        I._BACKEND["cpu"] = "float64"
        for act, target, wbits in CONFIGS:
            I.ACT_BITS, I.ACT_LIMIT, I.ACT_TARGET, I.WEIGHT_LIMIT = act, 2 ** act, 2 ** target, 2 ** (wbits - 1)
            sd = I.convert(m.vdm, zc, gc)
            v = VDM(dict(m.config, arch=I.ARCH))
            state = {"net." + k.replace(".", "__"): t for k, t in sd.items()}
            state.update({k: t for k, t in m.vdm.state_dict().items() if k.startswith("gamma.")})
            v.load_state_dict(state)
            out = v.net(ze.double(), ge.double())
            row = {"activation_bits": act + 1, "calibrated_max_bits": target, "weight_bits": wbits,
                   "eps_rel_rms_diff": float((out - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()),
                   "eps_mse_ratio": float((out - eps).pow(2).mean() / (ref - eps).pow(2).mean())}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        I.ACT_BITS, I.ACT_LIMIT, I.ACT_TARGET, I.WEIGHT_LIMIT = saved[:4]
        I._BACKEND.clear()
        I._BACKEND.update(saved[4])
    Path(a.out).write_text(json.dumps({"source": "cifar10-vdm-s7", "calibration": "train[:256], seed 0",
                                       "evaluation": "train[-64:] (held out), seed 5", "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
