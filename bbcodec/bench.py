"""`bbcodec bench`: achieved bits against the model's negative ELBO and against classical codecs.

Every coded image is decoded and compared before anything is reported. Counting, stated once:
- `bpd` = 8 * (whole file bytes: header, payload, side data, initial bits) / subpixels;
- `bpd_without_initial` subtracts the initial bits (the seed words drawn, see api.py);
- `nelbo_bpd` is the model's NELBO_K along the coded chain (recon + per-step KLs + prior KL,
  analytic at the latents the coder drew);
- `model_nelbo_k_bpd` is the model's NELBO_K with fresh continuous latents at every step, no coder
  involved (`diffusion.vdm.nelbo_k_bits`): the reference the coder's overhead is measured against;
- archive mode: all images in one .bbc on one ANS stack; per-file mode: one .bbc per image.
JSON is the source of truth; markdown tables are generated from it.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from .errors import BbcError
from .images import same_image

REPO = Path(__file__).resolve().parent.parent


def shared_data() -> Path:
    return Path(os.environ.get("BBCODEC_DATA", REPO.parent / "shared" / "data"))


NAMED = {
    "cifar10-test": lambda: shared_data() / "cifar10" / "test.npz",
    "photos-full": lambda: shared_data() / "photos-full",
}


def load_dataset(spec: str, limit: int | None = None, offset: int = 0) -> tuple[list[str], list[np.ndarray]]:
    """Names and uint8 [H, W, C] arrays from a named set, an .npz with `x`, or a folder of images."""
    from PIL import Image

    path = NAMED[spec]() if spec in NAMED else Path(spec)
    if not path.exists():
        known = ", ".join(NAMED)
        raise BbcError(f"dataset {spec!r} not found (named sets: {known}; or an .npz or a folder)")
    end = None if limit is None else offset + limit
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() == ".png")[offset:end]
        if not files:
            raise BbcError(f"{spec}: no PNG files")
        return [f.name for f in files], [np.asarray(Image.open(f)) for f in files]
    try:
        with np.load(path) as f:
            x = f["x"][offset:end]
    except Exception:
        raise BbcError(f"{spec}: not an .npz with an array 'x'")
    if x.dtype != np.uint8 or x.ndim not in (3, 4):
        raise BbcError(f"{spec}: x must be uint8 [N, H, W(, C)]")
    return [f"{offset + i:05d}.png" for i in range(len(x))], list(x)


def _image_data(name: str, a: np.ndarray):
    from PIL import Image
    from .images import from_pil
    return from_pil(Image.fromarray(a), name)


def model_nelbo_k(model, params, imgs) -> np.ndarray:
    """The model's NELBO_K (bits per image) with fresh continuous samples at every step: the
    reference the coder is judged against (RGB images of the model's tile size only)."""
    from .diffusion.vdm import nelbo_k_bits

    T = model.tile
    if not all(d.mode == "RGB" and d.width == T and d.height == T for d in imgs):
        return None
    x = np.stack([d.main for d in imgs])
    return nelbo_k_bits(model.vdm.net, model.schedule, x, model.time_grid(params.grid, params.steps))


def bench_vdm(names, arrays, model, params, parallel: int, mode: str, progress=None) -> dict:
    from . import api

    imgs = [_image_data(n, a) for n, a in zip(names, arrays)]
    per_image = []
    if mode == "archive":
        t0 = time.time()
        data, rep = api.compress(imgs, model, params, parallel=parallel)
        t_enc = time.time() - t0
        t0 = time.time()
        out, _ = api.decompress(data, model)
        t_dec = time.time() - t0
        for a, b in zip(imgs, out):
            if not same_image(a, b):
                raise BbcError(f"{a.name}: round trip is not bit-exact")
        nel = rep.per_image_nelbo_bits
        per_image = [{"name": d.name, "nelbo_bits": nel[i]} for i, d in enumerate(imgs)]
        total = {"bytes": rep.bytes, "subpixels": rep.subpixels, "initial_bits": rep.initial_bits,
                 "nelbo_bits": rep.nelbo_bits, "encode_s": t_enc, "decode_s": t_dec}
    else:
        total = {"bytes": 0, "subpixels": 0, "initial_bits": 0, "nelbo_bits": 0.0, "encode_s": 0.0, "decode_s": 0.0}
        for d in imgs:
            t0 = time.time()
            data, rep = api.compress([d], model, params, parallel=parallel)
            t_enc = time.time() - t0
            t0 = time.time()
            (b,), _ = api.decompress(data, model)
            t_dec = time.time() - t0
            if not same_image(d, b):
                raise BbcError(f"{d.name}: round trip is not bit-exact")
            per_image.append({"name": d.name, "bytes": rep.bytes, "subpixels": rep.subpixels,
                              "bpd": rep.bpd, "nelbo_bpd": rep.nelbo_bpd, "initial_bits": rep.initial_bits,
                              "encode_s": t_enc, "decode_s": t_dec})
            for k, v in (("bytes", rep.bytes), ("subpixels", rep.subpixels), ("initial_bits", rep.initial_bits),
                         ("nelbo_bits", rep.nelbo_bits), ("encode_s", t_enc), ("decode_s", t_dec)):
                total[k] += v
            if progress:
                progress(1)
    n = len(imgs)
    s = total["subpixels"]
    summary = {
        "images": n, "bytes": total["bytes"], "subpixels": s,
        "bpd": 8 * total["bytes"] / s,
        "bpd_without_initial": (8 * total["bytes"] - total["initial_bits"]) / s,
        "nelbo_bpd": total["nelbo_bits"] / s,
        "initial_bits": total["initial_bits"],
        "encode_s_per_image": total["encode_s"] / n, "decode_s_per_image": total["decode_s"] / n,
    }
    summary["ratio_to_nelbo"] = summary["bpd"] / summary["nelbo_bpd"]
    summary["ratio_to_nelbo_without_initial"] = summary["bpd_without_initial"] / summary["nelbo_bpd"]
    ref = model_nelbo_k(model, params, imgs)
    if ref is not None:
        per = ref / np.array([d.subpixels for d in imgs])
        summary["model_nelbo_k_bpd"] = float(ref.sum() / s)
        summary["model_nelbo_k_se"] = float(per.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
        summary["ratio_to_model_nelbo_k"] = summary["bpd"] / summary["model_nelbo_k_bpd"]
        summary["ratio_to_model_nelbo_k_without_initial"] = summary["bpd_without_initial"] / summary["model_nelbo_k_bpd"]
        for p, v in zip(per_image, ref):
            p["model_nelbo_k_bits"] = float(v)
    return {"summary": summary, "per_image": per_image}


def bench_classical(names, arrays, codec: str, progress=None) -> dict:
    from . import baselines

    b = baselines.get(codec)
    if not b.available():
        raise BbcError(f"codec {codec!r}: its library is not installed (pip install -e '.[bench]')")
    per_image, tot_bytes, tot_sub, t_enc, t_dec = [], 0, 0, 0.0, 0.0
    for n, a in zip(names, arrays):
        t0 = time.time()
        data = b.encode(a)
        t1 = time.time()
        back = b.decode(data)
        t2 = time.time()
        if back.shape != a.shape or not np.array_equal(back, a):
            raise BbcError(f"{codec}: {n} did not round-trip losslessly")
        per_image.append({"name": n, "bytes": len(data), "bpd": 8 * len(data) / a.size})
        tot_bytes += len(data)
        tot_sub += a.size
        t_enc += t1 - t0
        t_dec += t2 - t1
        if progress:
            progress(1)
    k = len(names)
    return {"summary": {"images": k, "bytes": tot_bytes, "subpixels": tot_sub, "bpd": 8 * tot_bytes / tot_sub,
                        "mean_bpd_per_image": float(np.mean([p["bpd"] for p in per_image])),
                        "encode_s_per_image": t_enc / k, "decode_s_per_image": t_dec / k,
                        "library": f"{b.description} ({b.version})"},
            "per_image": per_image}


def environment() -> dict:
    import torch
    import constriction
    return {"python": platform.python_version(), "torch": torch.__version__,
            "constriction": getattr(constriction, "__version__", "?"), "threads": torch.get_num_threads(),
            "machine": platform.machine(), "argv": " ".join(["bbcodec"] + sys.argv[1:])}


def run(dataset: str, codecs: list[str], limit: int | None, offset: int, out: str | None,
        model_name: str | None, steps: int, grid: str | None, grid_bits: int, parallel: int,
        modes: list[str], resume: bool = False, device: str = "cpu", show_progress: bool = True) -> dict:
    from tqdm import tqdm

    names, arrays = load_dataset(dataset, limit, offset)
    result = {"dataset": dataset, "offset": offset, "images": len(names), "runs": [], "env": environment()}
    if resume and out and Path(out).exists():
        result = json.loads(Path(out).read_text())
    done = {r["key"] for r in result["runs"]}
    for codec in codecs:
        if codec == "vdm":
            from .diffusion.codec import CodingParams
            from .registry import load_model
            model = load_model(model_name, device)
            g = grid or model.default_grid
            params = CodingParams(steps=steps, grid=g, grid_bits=grid_bits)
            for mode in modes:
                key = f"vdm:{model.name}:K{steps}:{g}:b{grid_bits}:p{parallel}:{mode}"
                if key in done:
                    continue
                bar = tqdm(total=len(names), desc=key, disable=not show_progress or mode == "archive", leave=False)
                r = bench_vdm(names, arrays, model, params, parallel, mode, progress=bar.update)
                bar.close()
                r.update(key=key, codec="vdm", mode=mode, model=model.name, model_sha256=model.sha256,
                         options={"steps": steps, "grid": g, "grid_bits": grid_bits, "parallel": parallel})
                result["runs"].append(r)
                _save(result, out)
        else:
            key = f"{codec}:per-file"
            if key in done:
                continue
            bar = tqdm(total=len(names), desc=codec, disable=not show_progress, leave=False)
            r = bench_classical(names, arrays, codec, progress=bar.update)
            bar.close()
            r.update(key=key, codec=codec, mode="per-file")
            result["runs"].append(r)
            _save(result, out)
    return result


def _save(result: dict, out: str | None) -> None:
    if out:
        from .fileio import write_atomic
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, (json.dumps(result, indent=1) + "\n").encode(), force=True)


def markdown(result: dict) -> str:
    rows = ["| codec | mode | images | bits/dim (file) | without initial bits | model NELBO_K | file / NELBO_K | "
            "without initial / NELBO_K | encode s/img | decode s/img |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["runs"]:
        s = r["summary"]
        if r["codec"] == "vdm":
            o = r["options"]
            name = f"bbcodec {r['model']} K={o['steps']} {o['grid']} b={o['grid_bits']} p={o['parallel']}"
            ref = s.get("model_nelbo_k_bpd")
            refs = (f"{ref:.4f} ± {s['model_nelbo_k_se']:.4f} | {s['ratio_to_model_nelbo_k']:.4f} | "
                    f"{s['ratio_to_model_nelbo_k_without_initial']:.4f}") if ref else f"({s['nelbo_bpd']:.4f} chain) | | "
            rows.append(f"| {name} | {r['mode']} | {s['images']} | {s['bpd']:.4f} | {s['bpd_without_initial']:.4f} | "
                        f"{refs} | {s['encode_s_per_image']:.2f} | {s['decode_s_per_image']:.2f} |")
        else:
            rows.append(f"| {r['codec']} ({s['library']}) | {r['mode']} | {s['images']} | {s['bpd']:.4f} | | | | | "
                        f"{s['encode_s_per_image']:.4f} | {s['decode_s_per_image']:.4f} |")
    return "\n".join(rows) + "\n"
