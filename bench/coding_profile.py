"""Where coding time goes: the network against the entropy coder and the Python glue around it.

Times every network call (EpsFn) and every ANS call (ans.Stack) while a CIFAR-10 archive is
encoded and decoded with the default settings; the rest of the wall time is glue (numpy for
means, grids and masks, the chain's bookkeeping). Writes bench/results/profile.json.

    .venv/bin/python bench/coding_profile.py [--images 4] [--parallel 1] [--threads 1]
"""
from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np
import torch

from bbcodec import ans, api
from bbcodec import bootstrap as boot_mod
from bbcodec.bench import environment, load_dataset
from bbcodec.images import from_array
from bbcodec.cli import DEFAULT_STEPS, DEFAULT_GRID_BITS
from bbcodec.diffusion import codec as dcodec
from bbcodec.registry import load_model

ROOT = Path(__file__).resolve().parent.parent
SPENT = {"network": 0.0, "ans": 0.0, "bootstrap": 0.0}


def timed(kind, fn):
    @functools.wraps(fn)
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            SPENT[kind] += time.perf_counter() - t
    return wrapper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="cifar10-test")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--latents", type=int, choices=(1, 2), default=None, help="default: the model's")
    ap.add_argument("--bootstrap", default="auto", help="auto, jxl, webp or none")
    ap.add_argument("--plain", action="store_true", help="the plain network module, not the channels-last "
                    "graph CPU encoders use (files without coding.nhwc)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "profile.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dcodec.EpsFn.__call__ = timed("network", dcodec.EpsFn.__call__)
    for name in ("push_gaussian", "pop_gaussian", "push_categorical", "pop_categorical", "push_uniform", "pop_uniform"):
        setattr(ans.Stack, name, timed("ans", getattr(ans.Stack, name)))
    # the classical codec that supplies the initial bits (JPEG XL on a few tiles) is timed apart
    boot_mod.encode_tile = timed("bootstrap", boot_mod.encode_tile)
    boot_mod._decode = timed("bootstrap", boot_mod._decode)
    model = load_model()
    params = api.coding_params(model, DEFAULT_STEPS, None, DEFAULT_GRID_BITS, args.latents)
    boot = None if args.bootstrap == "none" else boot_mod.default_codec() if args.bootstrap == "auto" else args.bootstrap
    names, arrays = load_dataset(args.dataset, args.images)
    imgs = [from_array(a, n) for n, a in zip(names, arrays)]
    rows = {}
    for phase in ("encode", "decode"):
        SPENT.update(network=0.0, ans=0.0, bootstrap=0.0)
        t = time.perf_counter()
        if phase == "encode":
            data, rep = api.compress(imgs, model, params, parallel=args.parallel, bootstrap=boot,
                                     threads=torch.get_num_threads(), nhwc=not args.plain)
        else:
            api.decompress(data, model)
        wall = time.perf_counter() - t
        glue = wall - SPENT["network"] - SPENT["ans"] - SPENT["bootstrap"]
        rows[phase] = {"wall_s": wall, "network_s": SPENT["network"], "ans_s": SPENT["ans"],
                       "bootstrap_s": SPENT["bootstrap"], "glue_s": glue,
                       "coder_side_over_network": (SPENT["ans"] + SPENT["bootstrap"] + glue) / SPENT["network"]}
        print(f"{phase}: {wall:.1f} s = network {SPENT['network']:.1f} + ANS {SPENT['ans']:.2f} + "
              f"bootstrap {SPENT['bootstrap']:.2f} + glue {glue:.2f} "
              f"(coder side {100 * rows[phase]['coder_side_over_network']:.1f}% of network time)")
    res = {"command": "python bench/coding_profile.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items()
                                                        if k not in ("out", "plain") and v is not None)
                                                        + (" --plain" if args.plain else ""),
           "model": model.name, "steps": params.steps, "grid": params.grid, "grid_bits": params.grid_bits,
           "latents": params.latents, "bootstrap": boot, "images": len(imgs), "tiles_coded_by_model": rep.model_tiles, "tiles_bootstrapped": rep.bootstrap_tiles, "parallel": args.parallel,
           "threads": args.threads, "network": "plain module" if args.plain else "channels-last graph (nhwc)",
           "torch": torch.__version__, "phases": rows, "env": environment((args.out,))}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
