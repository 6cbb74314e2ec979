"""The model's NELBO_K over every one of the K steps, per image of a bench run, against its file.

`bbcodec bench --nelbo-steps 20` estimates each tile's NELBO_K from 20 of the K steps (stratified;
runs summarized before the estimator was recorded drew them at random): unbiased, and cheap, but
noisy per image. This recomputes the reference with all K steps
(the network cost of one more encode) for the images of a finished per-file run, and writes the
file / NELBO_K ratio of each beside the sampled one. Resumable: images already in --out are kept.
With --stratified M it also adds, where missing, the ratio to the stratified M-step estimate that
bench now uses, so the two estimators can be held against the exact figure on the same images.

    .venv/bin/python bench/nelbo_exact.py bench/results/photos_full_vdm.json [--only NAME ...] [--stratified 20]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from bbcodec.api import CodingParams
from bbcodec.bench import load_dataset, save_json
from bbcodec.diffusion.reference import model_nelbo_k
from bbcodec.images import from_array
from bbcodec.registry import load_model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench_json", help="a bench JSON with one finished per-file learned run")
    ap.add_argument("--only", nargs="*", default=None, help="image names (default: all of the run)")
    ap.add_argument("--model", default=None, help="name or folder (default: the run's model name, registered)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="default: BENCH_JSON with .nelbo_exact.json")
    ap.add_argument("--stratified", type=int, default=None, metavar="M",
                    help="also the file's ratio to the stratified M-step estimate (bench's --nelbo-steps M)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    res = json.loads(Path(a.bench_json).read_text())
    run = next((r for r in res["runs"] if r.get("codec") == "vdm" and r["mode"] == "per-file" and "summary" in r), None)
    if run is None:
        print(f"{a.bench_json}: no finished per-file learned run", file=sys.stderr)
        return 1
    out = Path(a.out or str(Path(a.bench_json).with_suffix("")) + ".nelbo_exact.json")
    done = json.loads(out.read_text()) if out.exists() else {
        "bench": a.bench_json, "model": run["model"], "options": run["options"], "images": []}
    have = {p["name"] for p in done["images"]}
    model = load_model(a.model or run["model"])
    if model.sha256 != run["model_sha256"]:
        print(f"model {run['model']} is not the one the run was coded with", file=sys.stderr)
        return 1
    o = run["options"]
    params = CodingParams(steps=o["steps"], grid=o["grid"], grid_bits=o["grid_bits"], latents=o.get("latents", 1))
    names, arrays = load_dataset(res["dataset"], None, res.get("offset", 0))
    by_name = dict(zip(names, arrays))

    def reference(img, steps=None):  # (plain, fitted or None) bits; the coder's reference is the last one given
        ref = model_nelbo_k(model, params, [img], steps, fitted=params.latents == 2, stratified=steps is not None,
                            tile=o.get("tile"))
        return (float(ref[0][0]), float(ref[1][0])) if params.latents == 2 else (float(ref[0]), None)

    for p in run["per_image"]:
        if p["name"] in have or (a.only and p["name"] not in a.only):
            continue
        t0 = time.time()
        img = from_array(by_name[p["name"]], p["name"])
        plain, fitted = reference(img)
        use = fitted if fitted is not None else plain
        sampled = p.get("model_nelbo_k_fitted_bits") or p["model_nelbo_k_bits"]
        row = {"name": p["name"], "subpixels": p["subpixels"], "file_bits": 8 * p["bytes"],
               "nelbo_k_bits": plain, "nelbo_k_fitted_bits": fitted,
               "file_over_nelbo_k": 8 * p["bytes"] / use,
               "sampled_steps": run["summary"].get("model_nelbo_k_sampled_steps"),
               "file_over_sampled_nelbo_k": 8 * p["bytes"] / sampled, "seconds": time.time() - t0}
        done["images"].append(row)
        save_json(done, str(out))
        print(f"{p['name']}: file / NELBO_K {row['file_over_nelbo_k']:.4f} with all {o['steps']} steps "
              f"({row['file_over_sampled_nelbo_k']:.4f} with {row['sampled_steps']} sampled), {row['seconds']:.0f} s",
              flush=True)
    for row in done["images"]:
        if a.stratified is None or row.get("stratified_steps") == a.stratified:
            continue
        t0 = time.time()
        plain, fitted = reference(from_array(by_name[row["name"]], row["name"]), a.stratified)
        row.update(stratified_steps=a.stratified,
                   file_over_stratified_nelbo_k=row["file_bits"] / (fitted if fitted is not None else plain))
        save_json(done, str(out))
        print(f"{row['name']}: file / NELBO_K {row['file_over_stratified_nelbo_k']:.4f} with {a.stratified} "
              f"stratified steps (all steps {row['file_over_nelbo_k']:.4f}), {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
