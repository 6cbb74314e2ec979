"""Ship a trained run as a registered model: weights, config, card (JSON + markdown), log; and
retire a shipped model from the package, keeping its registry entry.

Every figure on the card is measured here, from the shipped (float16-stored) weights:
the test NELBO on the first N CIFAR-10 test images and the validation NELBO of the run. Weights
are read through the registry (`read_model`, `load_model`): the bytes unpickled are the bytes
whose sha256 is registered.
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import torch

from . import registry
from .registry import REGISTRY_FORMAT, build_vdm, file_sha256, read_model, registry_path
from .train import evaluate_nelbo, export_model, load_images, resumed_log


def _hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os
    return f"{cpu} ({os.cpu_count()} cores)"


def _export_to(run: str, out_dir: str, name: str) -> tuple[Path, Path, dict]:
    """A run's best EMA weights exported as the model folder <out_dir>/<name>/ with its training log:
    (the folder, the run's folder, the run's meta)."""
    run_p = Path(run)
    out = export_model(run, out_dir, name)
    meta = json.loads(torch.load(run_p / "state.pt", weights_only=True)["meta"])
    (out / "train_log.csv").write_text(resumed_log(run_p / "log.csv"))
    return out, run_p, meta


def _export(run: str, name: str) -> tuple[Path, Path, dict, dict]:
    """`_export_to` the models folder, under a name not registered yet: (..., the registry as read)."""
    reg = _read_registry()
    if name in reg["models"]:  # files name it by its sha256: a released model is never overwritten
        raise ValueError(f"model {name} is registered already; ship the run under a new name")
    return (*_export_to(run, str(registry.MODELS_DIR), name), reg)


def _diffusion_card(name: str, sha: str, data: str, model, run_p: Path, meta: dict) -> dict:
    """A diffusion model's card fields from its run: what it is, what it was trained on and how, and
    its validation figure (the fields `ship` and `card_for_export` share, in the card's order)."""
    training, val = _training(run_p, meta)
    return {"name": name, "sha256": sha[:16], "data": data, "architecture": model.config,
            "parameters": sum(p.numel() for p in model.vdm.parameters()),
            "schedule": {"gamma_min": model.schedule.gamma_min, "gamma_max": model.schedule.gamma_max},
            "training": training,
            **({"val_nelbo_k_fitted_bpd": val} if "coding_steps" in training else {"val_nelbo_bpd": val})}


def _training(run_p: Path, meta: dict) -> tuple[dict, float]:
    """The card's training record and the validation figure of the checkpoint shipped (best by validation)."""
    rows = [r.split(",") for r in (run_p / "log.csv").read_text().splitlines()[1:]]
    vals = [(float(r[9]), int(r[1]), float(r[2])) for r in rows if r[9]]
    best = min(vals) if vals else (float("nan"), meta["images"], meta["seconds"])
    lrs = [float(r[11]) for r in rows if len(r) > 11 and r[11]]  # the lr column
    return {"images_seen_at_best": best[1], "wall_seconds_at_best": best[2],
            "images_seen_total": meta["images"], "steps_total": meta["step"],
            "wall_seconds_total": meta["seconds"], "hardware": _hardware(),
            "threads": meta.get("threads", 1), "batch": meta.get("batch", 16),
            **({"lr_peak": max(lrs)} if lrs else {}),
            **({"cooldown": meta["cooldown"]} if meta.get("cooldown") else {}),
            **({"init_from": meta["init_from"]} if meta.get("init_from") else {}),
            **({"coding_steps": _coding_record(run_p)} if (run_p / "coding_steps.json").exists() else {})}, best[0]


def _coding_record(run_p: Path) -> dict:
    """What a discrete-time fine-tuning run (`train --coding-steps`) trained for; its validation figure is
    then the mean NELBO_K over those settings, not the continuous NELBO."""
    saved = json.loads((run_p / "coding_steps.json").read_text())
    return {"steps": [c["steps"] for c in saved["settings"]], "grid": saved["settings"][0]["grid"],
            "variances": "latent coding version 2 (fitted to the starting model's error curve)",
            "grids_of": saved["source"]["model"], "grids_of_sha256": saved["source"]["sha256"],
            "grids_sha256": saved["source"]["grids_sha256"],
            "validation": "val_nelbo_k_fitted_bpd: the best over the run's validations of the mean over these "
                          "settings of NELBO_K with those variances, one sampled step per image"}


def ship(run: str, name: str, test_npz: str, train_npz: str, n_test: int = 1000, description: str = "",
         make_default: bool = True, threads: int = 1, grid_points: int = 81, grid_batch: int = 32,
         test_repeats: int = 4) -> dict:
    from .registry import load_model

    torch.set_num_threads(threads)
    out, run_p, meta, reg = _export(run, name)
    files = read_model(str(out))  # a free folder until registered: the sha256 of the bytes loaded
    sha = files.sha256
    # ELBO-optimal time grids from TRAINING images, frozen with the model
    from .diffusion.grids import build_grids
    vdm = build_vdm(files)
    grids = build_grids(vdm.net, vdm.gamma.frozen(), load_images(train_npz)[:10000], n_curve=grid_points,
                        batch=grid_batch, source=f"{Path(train_npz).name}[:10000]")
    (out / "grids.json").write_text(json.dumps(grids, indent=1) + "\n")
    reg["models"][name] = {"path": name, "sha256": sha, "grids_sha256": file_sha256(out / "grids.json"),
                           "description": description}
    if make_default or not reg.get("default"):
        reg["default"] = name
    _write_registry(reg)

    model = load_model(name)
    x = load_images(test_npz)[:n_test]
    test = evaluate_nelbo(model.vdm, x, repeats=test_repeats)
    card = _diffusion_card(name, sha, "CIFAR-10 train (first 49,000 images; the last 1,000 held out for validation)",
                           model, run_p, meta)
    if "val_nelbo_bpd" not in card:  # a discrete-time run validated on NELBO_K: the continuous figure beside it
        card["val_nelbo_bpd"] = evaluate_nelbo(model.vdm, load_images(train_npz)[-1000:])["bpd"]
    card = {
        **card,
        "test_nelbo_bpd": test["bpd"], "test_nelbo_se": test["se"], "test_images": n_test,
        "test_nelbo_note": f"continuous-time NELBO, mean of {test_repeats} antithetic time samples per image, fixed seed",
        "expected_diffusion_bpd_by_K": grids["expected_diffusion_bpd"],
    }
    (out / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    (out / "MODEL_CARD.md").write_text(render_card(card))
    return card


def card_for_export(run: str, folder: str, data: str, domain: str | None = None, note: str | None = None) -> dict:
    """The card of a run exported to a free model folder (`train.export_model`), for a model that ships
    only through its integer version (`bbcodec convert` copies the data, schedule and training record):
    written to <folder>/card.json. `data` says what it was trained on; `domain` ("photos") marks a prior
    for other images than CIFAR-10's (the docs table it apart); `note`, a sentence on the training
    record (earlier runs, pauses)."""
    from .registry import load_model

    run_p, out = Path(run), Path(folder)
    meta = json.loads(torch.load(run_p / "state.pt", weights_only=True)["meta"])
    model = load_model(str(out))
    card = {**_diffusion_card(out.name, model.sha256, data, model, run_p, meta),
            **({"domain": domain} if domain else {}), **({"training_note": note} if note else {})}
    (out / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    return card


def ship_flow(run: str, name: str, test_npz: str, n_test: int = 1000, description: str = "", threads: int = 1) -> dict:
    """Ship a flow's training run (`bbcodec train` with arch realnvp) as a registered model: weights
    (EMA, best validation, float16 storage), config, training log, and a card with the test figure
    the codec is measured against: the dequantization bound -log2 p(x) on the first n_test test
    images (one fixed-seed uniform draw per subpixel, float64, `bench.flow_reference_bits`)."""
    from .bench import flow_reference_bits
    from .images import from_array
    from .registry import load_model

    torch.set_num_threads(threads)
    out, run_p, meta, reg = _export(run, name)
    sha = read_model(str(out)).sha256
    reg["models"][name] = {"path": name, "sha256": sha, "description": description}
    _write_registry(reg)
    model = load_model(name)
    x = load_images(test_npz)[:n_test]
    bits, image = flow_reference_bits(model, [from_array(a.transpose(1, 2, 0), f"{i}.png") for i, a in enumerate(x)])
    per = np.bincount(image, weights=bits, minlength=len(x)) / x[0].size  # per image (tiles summed)
    training, val = _training(run_p, meta)
    card = {
        "name": name, "sha256": sha[:16], "kind": "flow",
        "data": "CIFAR-10 train (first 49,000 images; the last 1,000 held out for validation)",
        "architecture": model.config, "parameters": sum(p.numel() for p in model.flow.parameters()),
        "training": training, "val_nll_bpd": val,
        "test_nll_bpd": float(per.mean()), "test_nll_se": float(per.std(ddof=1) / np.sqrt(len(per))),
        "test_images": n_test,
        "test_nll_note": "dequantization bound -log2 p(x), one fixed-seed uniform draw per subpixel, float64",
    }
    (out / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    (out / "MODEL_CARD.md").write_text(render_card(card))
    return card


def render_flow_card(c: dict) -> str:
    t, a = c["training"], c["architecture"]
    rate = f"AdamW at learning rate {t['lr_peak']:g}" if "lr_peak" in t else "AdamW"
    if t.get("cooldown"):
        cd = t["cooldown"]
        rate += f", decayed linearly to {cd['to']:g} of it over the {cd['images']:,} images from {cd['start']:,} on"
    k = c.get("coded")
    coded = ""
    if k:
        coded = (f"- **Coded** (first {k['images']} CIFAR-10 test images in archives of {k['options']['chunk']}, "
                 f"grid_bits {k['options']['grid_bits']}, bootstrap {k['options'].get('bootstrap') or 'none'}): "
                 f"**{k['bpd']:.4f} bits/dim** for the whole files; {k['flow_coded_bpd']:.4f} for the tiles the flow "
                 f"coded without the initial and bootstrap bits, against the flow's own {k['model_nll_coded_tiles_bpd']:.4f} "
                 f"on them (`bench/results/{k['bench']}`).\n")
    return f"""# {c['name']}

- **What**: the flow baseline of bbcodec: a RealNVP-style coupling flow ({a.get('levels', 2)} levels of
  squeeze + {a.get('couplings', 4)} affine couplings, ResNet couplings of {a.get('hidden')} channels and
  {a.get('res_blocks')} residual block(s), multi-scale split, uniform dequantization), {c['parameters']:,}
  parameters, coded by local bits-back (`bbcodec/flows`); config in `config.json`. A float network:
  its files decode only under the arithmetic that wrote them (the header records it).
- **Data**: {c['data']}.
- **Training**: {t['images_seen_at_best']:,} images seen ({t['images_seen_at_best'] / 49000:.2f} epochs)
  in {t['wall_seconds_at_best'] / 3600:.2f} h of wall time at the shipped checkpoint (EMA weights, best
  validation); the run went on to {t['images_seen_total']:,} images / {t['wall_seconds_total'] / 3600:.2f} h.
  Hardware: {t['hardware']}, {t.get('threads', 1)} torch thread(s); {rate}, batch {t.get('batch', 16)},
  the dequantization bound as the loss.
- **Validation** (last 1,000 training images): {c['val_nll_bpd']:.4f} bits/dim.
- **Test** (first {c['test_images']:,} CIFAR-10 test images, {c['test_nll_note']}):
  **{c['test_nll_bpd']:.4f} ± {c['test_nll_se']:.4f} bits/dim**: what local bits-back achieves, less its
  initial bits.
{coded}- **Weights**: `weights.pt`, a state dict stored in float16 (loaded with weights_only=True and upcast:
  the shipped model is the rounded weights), sha256 `{c['sha256']}…` checked by the registry.
- **Training log**: `train_log.csv`.

Regenerate this card: `python -m bbcodec.modelcard flow RUN NAME` (see docs/flow.md).
"""


def add_flow_coded_figures(name: str, bench_json: str) -> dict:
    """Put a flow's measured coded rate (archive mode, from a committed bench JSON) on its card."""
    res = json.loads(Path(bench_json).read_text())
    run = next(r for r in res["runs"] if r["codec"] == "flow" and r["mode"] == "archive" and r["model"] == name
               and "summary" in r and r["options"].get("bootstrap"))
    s = run["summary"]
    folder = registry.MODELS_DIR / _read_registry()["models"][name]["path"]
    card = json.loads((folder / "card.json").read_text())
    card["coded"] = {"bench": Path(bench_json).name, "images": s["images"], "options": run["options"],
                     "bpd": s["bpd"], "flow_coded_bpd": s["flow_coded_bpd"],
                     "model_nll_coded_tiles_bpd": s["model_nll_coded_tiles_bpd"]}
    (folder / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    (folder / "MODEL_CARD.md").write_text(render_card(card))
    return card


def add_shipped_grid(name: str, grid: str) -> dict:
    """Add a grid to a shipped model's grids.json, computed from its frozen curve alone (no images, no
    network); the grids already there are unchanged.  The registry's grids_sha256 and the card's
    expected-cost table follow."""
    from .diffusion.grids import add_grid
    from .registry import load_model

    model = load_model(name)  # checks the weights and the current grids.json
    reg = _read_registry()
    folder = registry.MODELS_DIR / reg["models"][name]["path"]
    gj = json.loads((folder / "grids.json").read_text())
    add_grid(gj, model.schedule, grid)
    (folder / "grids.json").write_text(json.dumps(gj, indent=1) + "\n")
    reg["models"][name]["grids_sha256"] = file_sha256(folder / "grids.json")
    _write_registry(reg)
    card_path = folder / "card.json"
    if card_path.exists():
        card = json.loads(card_path.read_text())
        card["expected_diffusion_bpd_by_K"] = gj["expected_diffusion_bpd"]
        card_path.write_text(json.dumps(card, indent=1) + "\n")
    return gj


def add_coded_figures(name: str, bench_json: str) -> dict:
    """Put the measured coded rate (archive mode, from a committed bench JSON) on a model's card."""
    res = json.loads(Path(bench_json).read_text())
    run = next(r for r in res["runs"] if r["codec"] == "vdm" and r["mode"] == "archive" and r["model"] == name)
    s = run["summary"]
    folder = registry.MODELS_DIR / _read_registry()["models"][name]["path"]
    card = json.loads((folder / "card.json").read_text())
    card["coded"] = {"bench": Path(bench_json).name, "images": s["images"], "options": run["options"],
                     "bpd": s["bpd"], "bpd_without_initial": s["bpd_without_initial"],
                     "model_nelbo_k_bpd": s.get("model_nelbo_k_bpd"),
                     "model_nelbo_k_fitted_bpd": s.get("model_nelbo_k_fitted_bpd")}
    (folder / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    (folder / "MODEL_CARD.md").write_text(render_card(card))
    return card


def register(name: str, folder: Path, description: str, make_default: bool = False,
             coding_tile: int | None = None, photo_default: bool = False) -> dict:
    """Add a model folder (inside the models folder) to the registry with its sha256s; coding_tile: the
    larger tile it codes large images with by default (`api.default_tile`); photo_default: make it the
    prior for photographs."""
    reg = _read_registry()
    rel = check_registrable(name, folder)
    if coding_tile is not None:
        from .api import tile_sizes
        model = registry.load_model(str(folder))
        if coding_tile <= model.tile or coding_tile not in tile_sizes(model):
            raise ValueError(f"coding tile {coding_tile}: {name} codes tiles of "
                             f"{', '.join(map(str, tile_sizes(model)))}, trained at {model.tile}")
    entry = {"path": str(rel), "sha256": file_sha256(folder / "weights.pt"), "description": description}
    if (folder / "grids.json").exists():
        entry["grids_sha256"] = file_sha256(folder / "grids.json")
    if coding_tile is not None:
        entry["coding_tile"] = coding_tile
    reg["models"][name] = entry
    if make_default or not reg.get("default"):
        reg["default"] = name
    if photo_default:
        reg["photo_default"] = name
    _write_registry(reg)
    return entry


def check_registrable(name: str, folder: Path) -> Path:
    """Where `register(name, folder)` would point the entry (the folder relative to the models folder), or
    ValueError: the name is taken, the folder is outside the models folder, or a registered model's. Checked
    before anything is written to the folder."""
    reg = _read_registry()
    if name in reg["models"]:
        raise ValueError(f"model {name} is registered already")
    try:
        rel = folder.resolve().relative_to(registry.MODELS_DIR.resolve())
    except ValueError:
        raise ValueError(f"{folder} is not inside the models folder {registry.MODELS_DIR}")
    taken = next((k for k, v in reg["models"].items() if not v.get("retired") and Path(v["path"]) == rel), None)
    if taken:
        raise ValueError(f"{folder} is the folder of registered model {taken}")
    return rel


def _read_registry() -> dict:
    path = registry_path()
    reg = json.loads(path.read_text()) if path.exists() else {"default": None, "models": {}}
    return {"format": REGISTRY_FORMAT, **{k: v for k, v in reg.items() if k != "format"}}


def _write_registry(reg: dict) -> None:
    path = registry_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(reg, indent=1) + "\n")
    tmp.replace(path)


def summary_figures(card: dict, grids: dict) -> dict:
    """What the docs' table of models reads from a model's card.json and grids.json; a retired
    model's registry entry keeps it, its files being gone from the package."""
    t, k = card["training"], card.get("coded")
    smooth = grids.get("curve", {}).get("smooth")
    return {
        "parameters": card["parameters"],
        "images_seen_at_best": t["images_seen_at_best"], "wall_seconds_at_best": t["wall_seconds_at_best"],
        "val_nelbo_bpd": card["val_nelbo_bpd"], "test_nelbo_bpd": card["test_nelbo_bpd"],
        "test_nelbo_se": card["test_nelbo_se"], "test_images": card["test_images"],
        "coded": ({"bench": k["bench"], "images": k["images"], "bpd": k["bpd"],
                   "steps": k["options"]["steps"], "grid": k["options"]["grid"],
                   "latents": k["options"].get("latents", 1), "parallel": k["options"]["parallel"]} if k else None),
        "error_curve_fit": ({"degree": smooth["log_polynomial_degree"], "chi2_per_dof": smooth["chi2_per_dof"]}
                            if smooth else None),
    }


def _git_show(commit: str, path: str) -> bytes:
    import subprocess
    p = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, cwd=registry.MODELS_DIR)
    if p.returncode:
        raise ValueError(f"commit {commit} has no {path}: {p.stderr.decode().strip()}")
    return p.stdout


def retire(name: str, commit: str, path_at_commit: str | None = None) -> dict:
    """Take a shipped model's files out of the package, keeping its registry entry: its sha256 (so
    a file's header still finds it), `"retired": true`, the commit whose tree has its folder
    (`last_commit`, `last_path`) and its card's figures. Run in a git checkout, before committing the
    removal: the commit's copy of weights.pt and grids.json must have the registered sha256s, or
    nothing is changed. Deletes the model's folder here if it is still there."""
    import hashlib
    import shutil
    import subprocess

    reg = _read_registry()
    entry = reg["models"][name]
    if name == reg.get("default"):
        raise ValueError(f"model {name} is the default: make another model the default first")
    if entry.get("retired"):
        raise ValueError(f"model {name} is retired already (commit {entry['last_commit']})")
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{commit}^{{commit}}"], capture_output=True,
                            text=True, cwd=registry.MODELS_DIR, check=True).stdout.strip()
    folder = registry.MODELS_DIR / entry["path"]
    if path_at_commit is None:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                             cwd=registry.MODELS_DIR, check=True).stdout.strip()
        path_at_commit = folder.resolve().relative_to(Path(top).resolve()).as_posix()
    for file, key in (("weights.pt", "sha256"), ("grids.json", "grids_sha256")):
        got = hashlib.sha256(_git_show(commit, f"{path_at_commit}/{file}")).hexdigest()
        if got != entry[key]:
            raise ValueError(f"{commit[:12]}:{path_at_commit}/{file} is not the registered one "
                             f"(sha256 {got[:16]}, registered {entry[key][:16]})")
    card = json.loads(_git_show(commit, f"{path_at_commit}/card.json"))
    grids = json.loads(_git_show(commit, f"{path_at_commit}/grids.json"))
    reg["models"][name] = {"retired": True, "sha256": entry["sha256"], "grids_sha256": entry["grids_sha256"],
                           "description": entry.get("description", ""), "last_commit": commit,
                           "last_path": path_at_commit, "figures": summary_figures(card, grids)}
    _write_registry(reg)
    if folder.exists():
        shutil.rmtree(folder)
    return reg["models"][name]


def coded_line(k: dict) -> str:
    """The model card's line for its coded figure (a card's "coded" entry, `add_coded_figures`)."""
    o = k["options"]
    fitted = (f", {k['model_nelbo_k_fitted_bpd']:.4f} with the fitted variances it codes with"
              if k.get("model_nelbo_k_fitted_bpd") else "")
    return (f"- **Coded** (first {k['images']} CIFAR-10 test images in one archive, K={o['steps']}, "
            f"grid {o['grid']}, grid_bits {o['grid_bits']}, latent coding version {o.get('latents', 1)}, "
            f"bootstrap {o.get('bootstrap') or 'none'}): **{k['bpd']:.4f} bits/dim** for the whole file, "
            f"{k['bpd_without_initial']:.4f} without the initial bits; the model's NELBO_K on the same images "
            f"{k['model_nelbo_k_bpd']:.4f}{fitted} (`bench/results/{k['bench']}`).")


def discrete_time_text(cs: dict, grids_sha256: str | None = None) -> str:
    """A card's sentence on a discrete-time fine-tuning (`_coding_record`); grids_sha256: of the model's
    grids.json, to say whether its grids and error curve were measured again after the fine-tuning."""
    again = ("" if grids_sha256 is None else "; time grids and error curve measured again after it"
             if grids_sha256 != cs.get("grids_sha256") else "; time grids and error curve those of the starting model")
    return (f"fine-tuned in discrete time for K = {', '.join(map(str, cs['steps']))} (grid {cs['grid']} of "
            f"`{cs['grids_of']}`, latent coding version 2's variances, `bbcodec train --coding-steps`{again})")


def render_card(c: dict) -> str:
    if c.get("kind") == "flow":
        return render_flow_card(c)
    if "converted_from" in c:  # an integer network made by `bbcodec convert`
        from .convert import render_integer_card
        return render_integer_card(c)
    t = c["training"]
    rate = f"AdamW at learning rate {t['lr_peak']:g}" if "lr_peak" in t else "AdamW"
    if t.get("cooldown"):
        cd = t["cooldown"]
        rate += (f", decayed linearly to {cd['to']:g} of it over the {cd['images']:,} images from "
                 f"{cd['start']:,} on (a cooldown)")
    coded = coded_line(c["coded"]) + "\n" if "coded" in c else ""
    discrete = f"; then {discrete_time_text(t['coding_steps'])}" if t.get("coding_steps") else ""
    return f"""# {c['name']}

- **What**: VDM prior (learned linear noise schedule, eps-prediction U-Net with Fourier features)
  for bbcodec, {c['parameters']:,} parameters; config in `config.json`.
- **Data**: {c['data']}.
- **Training**: {t['images_seen_at_best']:,} images seen ({t['images_seen_at_best'] / 49000:.2f} epochs)
  in {t['wall_seconds_at_best'] / 3600:.2f} h of wall time at the shipped checkpoint (EMA weights, best
  validation); the run went on to {t['images_seen_total']:,} images / {t['wall_seconds_total'] / 3600:.2f} h.
  Hardware: {t['hardware']}, trained with {t.get('threads', 1)} torch thread(s); {rate}, batch {t.get('batch', 16)}, continuous-time VDM loss with antithetic times{discrete}.
- **Schedule**: gamma_min = {c['schedule']['gamma_min']:.4f}, gamma_max = {c['schedule']['gamma_max']:.4f}.
- **Validation NELBO** (last 1,000 training images): {c['val_nelbo_bpd']:.4f} bits/dim.
- **Test NELBO** (first {c['test_images']:,} CIFAR-10 test images, {c['test_nelbo_note']}):
  **{c['test_nelbo_bpd']:.4f} ± {c['test_nelbo_se']:.4f} bits/dim**.
{coded}- **Weights**: `weights.pt`, a state dict stored in float16 (loaded with weights_only=True and upcast:
  the shipped model is the rounded weights), sha256 `{c['sha256']}…` checked by the registry.
- **Training log**: `train_log.csv` (loss and validation against images and seconds).

Regenerate this card: `python -m bbcodec.modelcard RUN NAME` (see README).
"""


if __name__ == "__main__":
    import argparse
    import sys

    if sys.argv[1:2] == ["flow"]:
        ap = argparse.ArgumentParser(prog="python -m bbcodec.modelcard flow", description="ship a flow's run")
        ap.add_argument("run")
        ap.add_argument("name")
        ap.add_argument("--test", default=str(Path(__file__).resolve().parents[2] / "shared/data/cifar10/test.npz"))
        ap.add_argument("--n-test", type=int, default=1000)
        ap.add_argument("--description", default="")
        ap.add_argument("--coded", default=None, help="instead: add the coded figures of this bench JSON to the card")
        a = ap.parse_args(sys.argv[2:])
        if a.coded:
            print(json.dumps(add_flow_coded_figures(a.name, a.coded), indent=1))
        else:
            print(json.dumps(ship_flow(a.run, a.name, a.test, a.n_test, a.description), indent=1))
        sys.exit(0)
    if sys.argv[1:2] == ["export"]:
        ap = argparse.ArgumentParser(prog="python -m bbcodec.modelcard export",
                                     description="export a run's best EMA weights to a free model folder, with its card")
        ap.add_argument("run")
        ap.add_argument("folder", help="the new model folder (its name is the model's)")
        ap.add_argument("--data", required=True, help="what it was trained on, for the card")
        ap.add_argument("--domain", default=None, help="'photos' for a photo prior")
        ap.add_argument("--note", default=None, help="a sentence on the training record, for the card")
        a = ap.parse_args(sys.argv[2:])
        out, _, _ = _export_to(a.run, str(Path(a.folder).parent), Path(a.folder).name)
        print(json.dumps(card_for_export(a.run, str(out), a.data, a.domain, a.note), indent=1))
        sys.exit(0)
    if sys.argv[1:2] == ["retire"]:
        ap = argparse.ArgumentParser(prog="python -m bbcodec.modelcard retire",
                                     description="take a shipped model out of the package, keeping its registry entry")
        ap.add_argument("name")
        ap.add_argument("commit", help="a commit whose tree has the model's folder (the last one that ships it)")
        ap.add_argument("--path", default=None, help="the folder at that commit (default: where it is now)")
        a = ap.parse_args(sys.argv[2:])
        print(json.dumps(retire(a.name, a.commit, a.path), indent=1))
        sys.exit(0)
    ap = argparse.ArgumentParser(description="ship a training run as a registered model")
    ap.add_argument("run")
    ap.add_argument("name")
    ap.add_argument("--test", default=str(Path(__file__).resolve().parents[2] / "shared/data/cifar10/test.npz"))
    ap.add_argument("--train", default=str(Path(__file__).resolve().parents[2] / "shared/data/cifar10/train.npz"))
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--description", default="")
    a = ap.parse_args()
    print(json.dumps(ship(a.run, a.name, a.test, a.train, a.n_test, a.description, threads=a.threads), indent=1))
