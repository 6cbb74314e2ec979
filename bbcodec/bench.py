"""`bbcodec bench`: achieved bits against the model's negative ELBO and against classical codecs.

Every coded image is decoded and compared before anything is reported. Counting, stated once:
- `bpd` = 8 * (whole file bytes: header, payload, side data, initial bits) / subpixels;
- `bpd_without_initial` subtracts the initial bits (the seed words drawn, see api.py);
- `nelbo_bpd` is the model's NELBO_K along the coded chain (recon + per-step KLs + prior KL,
  analytic at the latents the coder drew);
- `model_nelbo_k_bpd` is the model's NELBO_K with fresh continuous latents at every step, no coder
  involved (`diffusion.vdm.nelbo_k_bits`): the reference the coder's overhead is measured against;
- `model_nelbo_k_fitted_bpd` (latent coding version 2 runs): the same with the reverse variances
  version 2 codes with (fitted to the model's error curve), on the same steps and noise draws;
- archive mode: all images in one .bbc on one ANS stack; per-file mode: one .bbc per image;
- `order` "bbans" codes the same chain in BB-ANS order (comparison only: what Bit-Swap saves is in
  `initial_bits`); its run keys carry ":bbans", Bit-Swap's carry nothing, as before the option.
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

from . import defaults
from .errors import BbcError
from .diffusion.reference import model_nelbo_k
from .images import from_array, same_image

REPO = Path(__file__).resolve().parent.parent


def shared_data() -> Path:
    return Path(os.environ.get("BBCODEC_DATA", REPO.parent / "shared" / "data"))


def _photos_full() -> Path:
    """../shared's copy where present, else one built by scripts/photos_full.py into the cache folder."""
    from .defaults import cache_dir
    for folder in (shared_data() / "photos-full", cache_dir() / "photos-full"):
        if folder.exists():
            return folder
    raise BbcError("photos-full: not found in BBCODEC_DATA or ~/.cache/bbcodec; build it with "
                   "`python scripts/photos_full.py` (a checkout of bbcodec; Debian's apt-get) or give a folder")


NAMED = {
    "cifar10-test": lambda: shared_data() / "cifar10" / "test.npz",
    "photos-full": _photos_full,
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


def full_tiles(a: np.ndarray, T: int = 32) -> np.ndarray:
    """The full T x T tiles of an RGB image (uint8 [H, W, 3]) as [N, 3, T, T], row-major (a partial
    last row or column of tiles is left out)."""
    H, W = (a.shape[0] // T) * T, (a.shape[1] // T) * T
    t = a[:H, :W].reshape(H // T, T, W // T, T, 3).transpose(0, 2, 4, 1, 3)
    return np.ascontiguousarray(t.reshape(-1, 3, T, T))


def dataset_tiles(spec: str, T: int = 32) -> np.ndarray:
    """Every full T x T tile of a dataset's RGB images, image by image, as uint8 [N, 3, T, T]: a test set
    of model-sized inputs for a NELBO over whole photos."""
    arrays = [x for x in load_dataset(spec)[1] if x.ndim == 3 and x.shape[2] == 3]
    if not arrays:
        raise BbcError(f"{spec}: no RGB images")
    return np.concatenate([full_tiles(x, T) for x in arrays])


def bench_vdm(names, arrays, model, params, parallel: int, mode: str, progress=None, bootstrap: str | None = "auto",
              chunk: int | None = None, partial: dict | None = None, on_record=None,
              nelbo_steps: int | None = None, summarize: bool = True, stretch: int | None = None,
              tile: int | None = None) -> dict:
    """Code, decode, compare. Archive mode codes `chunk` images per archive (all in one when None);
    per-file mode one image per file. Records are appended in order; `partial` (a previous
    result's records) is resumed after its last complete record, and `on_record(records)` is
    called after each one so an interrupted run can be resumed. Without `summarize` only the
    records come back (a slice for `merge`, summarized by a later resume over the whole range).
    With `stretch`, each new record names it (the index of the run's environment in `stretches`)."""
    import torch

    from . import api

    imgs = [from_array(a, n) for n, a in zip(names, arrays)]
    size = 1 if mode == "per-file" else (chunk or len(imgs))
    records = list((partial or {}).get("records", []))
    start = sum(r["images"] for r in records)
    if progress and start:
        progress(start)
    for i in range(start, len(imgs), size):
        group = imgs[i:i + size]
        t0 = time.time()
        data, rep = api.compress(group, model, params, parallel=parallel, bootstrap=bootstrap,
                                 threads=torch.get_num_threads(), tile=tile)  # bench --threads
        t_enc = time.time() - t0
        t0 = time.time()
        out, _ = api.decompress(data, model)
        t_dec = time.time() - t0
        for a, b in zip(group, out):
            if not same_image(a, b):
                raise BbcError(f"{a.name}: round trip is not bit-exact")
        records.append({"first": group[0].name, "images": len(group), "bytes": rep.bytes,
                        "subpixels": rep.subpixels, "bpd": rep.bpd, "initial_bits": rep.initial_bits,
                        "payload_bytes": rep.payload_bytes,
                        "nelbo_bits": rep.nelbo_bits, "bootstrap_bits": rep.bootstrap_bits,
                        "bootstrap_tiles": rep.bootstrap_tiles, "model_tiles": rep.model_tiles,
                        "encode_s": t_enc, "decode_s": t_dec, "ramp": rep.ramp, "encodes": rep.encodes,
                        "tiles_coded": rep.tiles_coded,
                        "per_image_nelbo_bits": rep.per_image_nelbo_bits,
                        "per_image_bootstrap_bits": rep.per_image_bootstrap_bits})
        if stretch is not None:
            records[-1]["stretch"] = stretch
        if on_record:
            on_record(records)
        if progress:
            progress(len(group))
    if not summarize:
        return {"records": records}
    if model.kind == "flow":
        return summarize_flow(records, imgs, model)
    return summarize_vdm(records, imgs, model, params, nelbo_steps, tile)


def _totals(records: list[dict]) -> tuple[dict, dict, list[dict]]:
    """(totals, the summary's common fields, per-image records) of a learned codec's files."""
    tot = {k: sum(r[k] for r in records) for k in ("images", "bytes", "subpixels", "initial_bits", "nelbo_bits",
                                                   "bootstrap_bits", "bootstrap_tiles", "model_tiles",
                                                   "encode_s", "decode_s")}
    n, s = tot["images"], tot["subpixels"]
    expected = tot["nelbo_bits"] + tot["bootstrap_bits"]
    summary = {
        "images": n, "files": len(records), "bytes": tot["bytes"], "subpixels": s,
        "bpd": 8 * tot["bytes"] / s,
        "bpd_without_initial": (8 * tot["bytes"] - tot["initial_bits"]) / s,
        "nelbo_bpd": tot["nelbo_bits"] / s,
        "bootstrap_bpd": tot["bootstrap_bits"] / s,
        "expected_bpd": expected / s,
        "initial_bits": tot["initial_bits"],
        "bootstrap_tiles": tot["bootstrap_tiles"], "model_tiles": tot["model_tiles"],
        "encode_s_per_image": tot["encode_s"] / n, "decode_s_per_image": tot["decode_s"] / n,
        "encode_s_per_megapixel": tot["encode_s"] / (s / 3 / 1e6), "decode_s_per_megapixel": tot["decode_s"] / (s / 3 / 1e6),
    }
    summary["ratio_to_expected"] = 8 * tot["bytes"] / expected
    per_image = []
    for r in records:
        for k in range(r["images"]):
            per_image.append({"nelbo_bits": r["per_image_nelbo_bits"][k],
                              "bootstrap_bits": r["per_image_bootstrap_bits"][k]})
            if r["images"] == 1:
                per_image[-1].update(bytes=r["bytes"], subpixels=r["subpixels"], bpd=r["bpd"],
                                     initial_bits=r["initial_bits"])
    return tot, summary, per_image


def flow_reference_bits(model, imgs, seed: int = 1234, batch: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """The flow's own -log2 p per tile (bits) and each tile's image index, in coding order: its
    dequantization bound `Flow.nll_bits` at one fixed-seed uniform draw per subpixel, float64, on
    exactly the tiles the codec codes: where a tile has padding (edge tiles, grey images), the padding
    drawn from the codec's bits-back distribution q (`priors.pad_groups`, fixed seed) and its -log2 q
    given back, as the codec does; so that the codec's bits and this bound count the same things."""
    import copy

    import torch

    from .format import plan
    from .priors import pad_groups
    flow = copy.deepcopy(model.flow).to("cpu", torch.float64).eval()
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    T = model.tile
    tiles = [(i, t) for i, d in enumerate(imgs) for t in plan.make_tiles(i, d.main, d.height, d.width, d.main.shape[0], T)]
    bits = []
    with torch.inference_mode():
        for k in range(0, len(tiles), batch):
            part = tiles[k:k + batch]
            x = np.stack([t.x for _, t in part])
            mask = np.stack([t.mask for _, t in part])
            back = np.zeros(len(part))
            for idx, start, p in pad_groups(x, mask):
                sym = rng.choice(len(p), size=len(idx), p=p)
                x.reshape(-1)[idx] = start + sym
                np.add.at(back, idx // mask[0].size, -np.log2(p[sym]))
            u = torch.rand(x.shape, generator=g, dtype=torch.float64)
            bits.append(flow.nll_bits(torch.from_numpy(x), u).numpy() - back)
    return np.concatenate(bits), np.array([i for i, _ in tiles])


def summarize_flow(records: list[dict], imgs, model) -> dict:
    """A flow's files against the flow's own -log2 p on the same images (`flow_reference_bits`).

    nelbo_bpd: the flow's bound at the dequantization the encoder popped (the path coded).
    model_nll_bpd: the same bound at an independent draw, over every tile of the images.
    flow_coded_bpd: file bits less the seed words drawn (initial bits) and the bootstrap tiles'
    classical bytes, per subpixel; ratio_flow_coded_to_model_nll: that over the bound on exactly the
    tiles the flow coded, with initial and bootstrap bits apart: what a user gets against the model,
    the container (header, framing, side data) included. stack_ratio_flow_coded_to_model_nll: the
    same with the stack's words only (payload bits), the coder's own figure; container_bpd: the rest."""
    tot, summary, per_image = _totals(records)
    for d, p in zip(imgs, per_image):
        p["name"] = d.name
    ref, image_of = flow_reference_bits(model, imgs)
    s, n = tot["subpixels"], tot["images"]
    per_image_ref = np.bincount(image_of, weights=ref, minlength=len(imgs))
    per = per_image_ref / np.array([d.subpixels for d in imgs])
    summary["model_nll_bpd"] = float(ref.sum() / s)
    summary["model_nll_se"] = float(per.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    summary["ratio_to_model_nll"] = summary["bpd"] / summary["model_nll_bpd"]
    coded = np.ones(len(ref), dtype=bool)  # the tiles the flow coded: all but each file's leading bootstrap tiles
    start = 0
    for r in records:
        first = int(np.searchsorted(image_of, start))
        coded[first:first + r["bootstrap_tiles"]] = False
        start += r["images"]
    flow_bits = 8 * tot["bytes"] - tot["initial_bits"] - tot["bootstrap_bits"]
    payload = 8 * sum(r["payload_bytes"] for r in records)
    summary["flow_coded_bpd"] = flow_bits / s
    summary["container_bpd"] = (8 * tot["bytes"] - payload) / s
    summary["model_nll_coded_tiles_bpd"] = float(ref[coded].sum() / s)
    summary["ratio_flow_coded_to_model_nll"] = flow_bits / float(ref[coded].sum())
    summary["stack_ratio_flow_coded_to_model_nll"] = (payload - tot["initial_bits"] - tot["bootstrap_bits"]) / float(ref[coded].sum())
    for p, v in zip(per_image, per_image_ref):
        p["model_nll_bits"] = float(v)
    return {"summary": summary, "per_image": per_image, "records": records}


def summarize_vdm(records: list[dict], imgs, model, params, nelbo_steps: int | None = None,
                  tile: int | None = None) -> dict:
    tot, summary, per_image = _totals(records)
    s, n = tot["subpixels"], tot["images"]
    for d, p in zip(imgs, per_image):
        p["name"] = d.name
    fitted = params.latents == 2
    sampled = nelbo_steps is not None and nelbo_steps < params.steps
    refs = model_nelbo_k(model, params, imgs, nelbo_steps, fitted=fitted, stratified=sampled, tile=tile)
    ref, fit = (refs[0], refs[1]) if fitted else (refs, None)
    summary["model_nelbo_k_sampled_steps"] = nelbo_steps if sampled else params.steps
    # runs summarized before this field drew their sampled steps at random (uniformly)
    summary["model_nelbo_k_estimator"] = "stratified" if sampled else "all steps"
    if ref is not None:
        per = ref / np.array([d.subpixels for d in imgs])
        summary["model_nelbo_k_bpd"] = float(ref.sum() / s)
        summary["model_nelbo_k_se"] = float(per.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
        summary["ratio_to_model_nelbo_k"] = summary["bpd"] / summary["model_nelbo_k_bpd"]
        summary["ratio_to_model_nelbo_k_without_initial"] = summary["bpd_without_initial"] / summary["model_nelbo_k_bpd"]
        for p, v in zip(per_image, ref):
            p["model_nelbo_k_bits"] = float(v)
    if fit is not None:  # the reference of the model version 2 codes with: same steps and noise draws
        summary["model_nelbo_k_fitted_bpd"] = float(fit.sum() / s)
        summary["ratio_to_model_nelbo_k_fitted"] = summary["bpd"] / summary["model_nelbo_k_fitted_bpd"]
        for p, v in zip(per_image, fit):
            p["model_nelbo_k_fitted_bits"] = float(v)
    return {"summary": summary, "per_image": per_image, "records": records}


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


PACKAGES = ("torch", "numpy", "constriction", "pillow", "imagecodecs")
# result data: writing it does not change the code that produced it
RESULT_PATHS = ("bench/results", "bench/studies/*/results")


def git_revision(exclude: tuple[str, ...] = ()) -> str | None:
    """HEAD of the checkout this package runs from, with "-dirty" where a tracked file other than
    result data (RESULT_PATHS, `exclude`) differs from it; None outside a git checkout (an
    installed package)."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != REPO:
            return None
        head = git("rev-parse", "HEAD")
        inside = [Path(p).resolve() for p in exclude if Path(p).resolve().is_relative_to(REPO)]
        skip = [f":(exclude,glob){p}/**" for p in RESULT_PATHS] + [f":(exclude){p.relative_to(REPO)}" for p in inside]
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", *skip)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def environment(exclude: tuple[str, ...] = ()) -> dict:
    """Where and with what one stretch of a bench run ran: git revision, package versions (from the
    installed distributions' metadata; None where one is not installed), threads, machine, command."""
    from datetime import datetime, timezone
    from importlib.metadata import PackageNotFoundError, version

    import torch

    def ver(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "revision": git_revision(exclude), "python": platform.python_version(),
            "packages": {p: ver(p) for p in PACKAGES}, "threads": torch.get_num_threads(),
            "machine": platform.machine(), "argv": " ".join(["bbcodec"] + sys.argv[1:])}


def _stretches(result: dict) -> list[dict]:
    """The environments of the stretches a bench JSON was coded in, in order (a JSON written before
    stretches were recorded kept its first stretch's `env` only)."""
    if "stretches" not in result:
        result["stretches"] = [result.pop("env")] if "env" in result else []
    return result["stretches"]


def run(dataset: str, codecs: list[str], limit: int | None, offset: int, out: str | None,
        model_name: str | None, steps: int, grid: str | None, grid_bits: int, parallel: int,
        modes: list[str], resume: bool = False, device: str = "cpu", show_progress: bool = True,
        bootstrap: str | None = "auto", chunk: int | None = None, nelbo_steps: int | None = None,
        latents: int | None = None, summarize: bool = True, orders: tuple[str, ...] = ("bitswap",),
        flow_model: str | None = None, flow_grid_bits: int | None = None, tile: int | None = None) -> dict:
    """Run every (codec, mode) on the dataset, the learned codec in every chain order of `orders`; with `out`, the JSON is rewritten after every coded
    file, and `resume` continues a partial JSON: finished runs are kept, an unfinished one goes on
    after its last complete file. Without `summarize`, learned runs stop after their last file and
    stay unfinished (slices coded apart, joined by `merge`)."""
    from tqdm import tqdm

    for codec in codecs:
        if codec not in ("vdm", "flow"):
            from . import baselines
            baselines.get(codec)  # unknown codec: a clean error before any work
    names, arrays = load_dataset(dataset, limit, offset)
    result = {"dataset": dataset, "offset": offset, "images": len(names), "runs": []}
    if resume and out and Path(out).exists():
        try:
            prev = json.loads(Path(out).read_text())
        except (OSError, ValueError):
            raise BbcError(f"{out}: not a bench JSON to resume from")
        if prev.get("dataset") != dataset or prev.get("offset") != offset or prev.get("images") != len(names):
            raise BbcError(f"{out} was written for another dataset, offset or --limit; cannot resume it")
        result = prev
    # each stretch (the first run, every --resume) records its own environment; records and
    # finished runs name the stretch that coded them
    stretches = _stretches(result)
    stretches.append(environment(exclude=(out, str(Path(out).with_suffix(".md"))) if out else ()))
    stretch = len(stretches) - 1
    runs = {r["key"]: r for r in result["runs"]}

    def learned(key: str, codec: str, model, params, mode: str, options: dict, tile: int | None = None) -> None:
        """Code (or resume) one learned run: files decoded and compared, records saved as they come."""
        if key in runs and runs[key].get("complete", True):
            return
        entry = runs.get(key)
        if entry is None:
            entry = {"key": key, "codec": codec, "mode": mode, "model": model.name, "model_sha256": model.sha256,
                     "complete": False, "options": dict(options, parallel=parallel, bootstrap=bootstrap,
                                                         chunk=chunk if mode == "archive" else 1)}
            result["runs"].append(entry)
            runs[key] = entry

        def on_record(records):
            entry["records"] = records
            save_json(result, out)

        bar = tqdm(total=len(names), desc=key, disable=not show_progress, leave=False)
        r = bench_vdm(names, arrays, model, params, parallel, mode, progress=bar.update, bootstrap=bootstrap,
                      chunk=chunk, partial=entry, on_record=on_record, nelbo_steps=nelbo_steps,
                      summarize=summarize, stretch=stretch, tile=tile)
        bar.close()
        entry.update(r, complete="summary" in r)
        if entry["complete"]:
            entry["stretch"] = stretch
        save_json(result, out)

    for codec in codecs:
        size = lambda mode: "" if mode == "per-file" or not chunk else f":chunk{chunk}"  # noqa: E731
        if codec == "vdm":
            from .api import coding_params
            from .registry import default_model_for, load_model
            # without --model, the prior compress would pick for these images
            model = load_model(model_name or default_model_for([a.shape[0] * a.shape[1] for a in arrays])[0], device)
            from .api import check_tile
            T = check_tile(model, tile, [a.shape[:2] for a in arrays])  # none given: the model's default for these images
            vtile = None if T == model.tile else T  # the model's own tile: the keys without the option
            for order, mode in [(o, m) for o in orders for m in modes]:
                params = coding_params(model, steps, grid, grid_bits, latents, order)
                g = params.grid
                lv = "" if params.latents == 1 else f":v{params.latents}"  # version 1 keys predate the field
                od = "" if order == "bitswap" else f":{order}"  # so do Bit-Swap keys
                tl = "" if vtile is None else f":t{vtile}"  # keys of the model's own tile predate the option
                key = (f"vdm:{model.name}:K{steps}:{g}:b{grid_bits}{lv}{od}{tl}:p{parallel}:boot-{bootstrap or 'none'}:"
                       f"{mode}{size(mode)}")
                learned(key, "vdm", model, params, mode,
                        {"steps": steps, "grid": g, "grid_bits": grid_bits, "latents": params.latents, "order": order,
                         **({"tile": vtile} if vtile is not None else {})},
                        tile=T)  # the run's tile for every file, whatever each file's own default would be
        elif codec == "flow":
            from .api import flow_params
            from .registry import load_model
            model = load_model(flow_model or defaults.FLOW_MODEL, device)
            if model.kind != "flow":
                raise BbcError(f"--flow-model: {model.name} is not a flow")
            params = flow_params(flow_grid_bits)
            for mode in modes:
                key = (f"flow:{model.name}:k{params.grid_bits}:m{params.scale_bits}:p{parallel}:"
                       f"boot-{bootstrap or 'none'}:{mode}{size(mode)}")
                learned(key, "flow", model, params, mode,
                        {"grid_bits": params.grid_bits, "scale_bits": params.scale_bits, "top_bits": params.top_bits})
        else:
            key = f"{codec}:per-file"
            if key in runs:
                continue
            bar = tqdm(total=len(names), desc=codec, disable=not show_progress, leave=False)
            r = bench_classical(names, arrays, codec, progress=bar.update)
            bar.close()
            r.update(key=key, codec=codec, mode="per-file", stretch=stretch)
            result["runs"].append(r)
            save_json(result, out)
    return result


def merge(parts: list[dict]) -> dict:
    """One partial result from the results of consecutive slices of a dataset (`--offset`/`--limit`
    runs in separate processes): each learned run's records are joined in order, and the joined run
    is left unfinished, so `run(..., resume=True)` over the whole range codes whatever is missing and
    computes the summary (NELBO reference included) over all images. Every slice but the last must
    hold records for all its images (finished, or stopped before its own summary); a learned run
    that cannot be joined is an error, never silently dropped. Classical runs are dropped (they take
    seconds to redo). The parts' stretches are kept, in slice order, and records still name theirs."""
    parts = sorted(parts, key=lambda p: p.get("offset", 0))
    for a, b in zip(parts, parts[1:]):
        if a.get("dataset") != b.get("dataset") or a["offset"] + a["images"] != b["offset"]:
            raise BbcError("bench merge: the parts are not consecutive slices of one dataset")
    stretches, first_stretch = [], []  # first_stretch[i]: index in `stretches` of part i's first one
    for p in parts:
        first_stretch.append(len(stretches))
        stretches += _stretches(dict(p))
    merged = {"dataset": parts[0]["dataset"], "offset": parts[0]["offset"],
              "images": sum(p["images"] for p in parts), "runs": [], "stretches": stretches}
    keys = list(dict.fromkeys(r["key"] for p in parts for r in p["runs"] if r.get("codec") == "vdm"))
    for key in keys:
        same = [next((r for r in p["runs"] if r["key"] == key), None) for p in parts]
        records = []
        for p, r, base in zip(parts, same, first_stretch):
            recs = (r or {}).get("records", [])
            done = sum(x["images"] for x in recs)
            if p is not parts[-1] and done != p["images"]:
                raise BbcError(f"bench merge: the slice at offset {p['offset']} has {done} of its {p['images']} "
                               f"images for {key}; finish it (--resume) before joining")
            records += [{**x, "stretch": x["stretch"] + base} if "stretch" in x else x for x in recs]
        first = next(r for r in same if r is not None)
        merged["runs"].append({**{k: v for k, v in first.items() if k not in ("summary", "per_image")},
                               "complete": False, "records": records})
    return merged


def save_json(result: dict, out: str | None) -> None:
    """Write a result atomically (an interrupted run leaves the previous file)."""
    if out:
        from .fileio import write_atomic
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, (json.dumps(result, indent=1) + "\n").encode(), force=True)


def markdown(result: dict) -> str:
    rows = ["| codec | mode | images | bits/dim (file) | without initial bits | tiles: bootstrap / model | "
            "model NELBO_K | file / NELBO_K | encode s/img | decode s/img |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["runs"]:
        if "summary" not in r:
            continue  # unfinished (resume it with --resume)
        s = r["summary"]
        if r["codec"] == "vdm":
            o = r["options"]
            boot = o.get("bootstrap", "none") or "none"
            chunk = f", {o['chunk']} per archive" if r["mode"] == "archive" and o.get("chunk") else ""
            order = f" order={o['order']}" if o.get("order", "bitswap") != "bitswap" else ""
            name = (f"bbcodec {r['model']} K={o['steps']} {o['grid']} b={o['grid_bits']} v{o.get('latents', 1)}{order} "
                    f"p={o['parallel']} boot={boot}")
            ref = s.get("model_nelbo_k_bpd")
            refs = f"{ref:.4f} ± {s['model_nelbo_k_se']:.4f} | {s['ratio_to_model_nelbo_k']:.4f}" if ref else " | "
            if s.get("model_nelbo_k_fitted_bpd"):
                refs = (f"{ref:.4f} ± {s['model_nelbo_k_se']:.4f}; fitted variances {s['model_nelbo_k_fitted_bpd']:.4f} | "
                        f"{s['ratio_to_model_nelbo_k']:.4f}; {s['ratio_to_model_nelbo_k_fitted']:.4f}")
            tiles = f"{s.get('bootstrap_tiles', 0)} / {s.get('model_tiles', '')}"
            rows.append(f"| {name} | {r['mode']}{chunk} | {s['images']} | {s['bpd']:.4f} | {s['bpd_without_initial']:.4f} | "
                        f"{tiles} | {refs} | {s['encode_s_per_image']:.2f} | {s['decode_s_per_image']:.2f} |")
        elif r["codec"] == "flow":
            o = r["options"]
            boot = o.get("bootstrap", "none") or "none"
            chunk = f", {o['chunk']} per archive" if r["mode"] == "archive" and o.get("chunk") else ""
            name = f"bbcodec {r['model']} (flow, local bits-back) k={o['grid_bits']} m={o['scale_bits']} p={o['parallel']} boot={boot}"
            refs = (f"flow -log2 p {s['model_nll_bpd']:.4f} ± {s['model_nll_se']:.4f} | {s['ratio_to_model_nll']:.4f}; "
                    f"flow-coded tiles without initial bits {s['ratio_flow_coded_to_model_nll']:.4f}")
            tiles = f"{s.get('bootstrap_tiles', 0)} / {s.get('model_tiles', '')}"
            rows.append(f"| {name} | {r['mode']}{chunk} | {s['images']} | {s['bpd']:.4f} | {s['bpd_without_initial']:.4f} | "
                        f"{tiles} | {refs} | {s['encode_s_per_image']:.2f} | {s['decode_s_per_image']:.2f} |")
        else:
            rows.append(f"| {r['codec']} ({s['library']}) | {r['mode']} | {s['images']} | {s['bpd']:.4f} | | | | | "
                        f"{s['encode_s_per_image']:.4f} | {s['decode_s_per_image']:.4f} |")
    return "\n".join(rows) + "\n"
