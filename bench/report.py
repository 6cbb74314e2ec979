"""Regenerate the generated blocks of README.md (headline), docs/results.md (every result) and
docs/models.md (the registered models), and the plots, from the committed JSON: the suite's outputs in
bench/results/, the studies' in bench/studies/*/results/, and the models' files (bbcodec/models/; a
retired model's figures from its registry entry).

    .venv/bin/python bench/report.py          (or: python bench/suite.py report)

Nothing here is typed in by hand: every figure comes from a results JSON or a model's files. A
block sits between `<!-- NAME:begin -->` and `<!-- NAME:end -->`; `stale()` says which files'
blocks differ from what the JSON gives (tests/test_bench.py holds the docs to it).
"""
from __future__ import annotations

import csv
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RES = ROOT / "bench" / "results"
DOCS = ROOT / "docs"
README, RESULTS_MD, MODELS_MD = ROOT / "README.md", DOCS / "results.md", DOCS / "models.md"
MODELS = ROOT / "bbcodec" / "models"  # the registry and the shipped models' folders (package data)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bbcodec.bench import markdown  # noqa: E402
from bbcodec.modelcard import summary_figures  # noqa: E402
import suite  # noqa: E402


def _load(name, folder: Path = RES):
    p = folder / name
    return json.loads(p.read_text()) if p.exists() else None


def _study(name: str) -> Path:
    return ROOT / suite.study_folder(name)


def _rel(path: Path, doc: Path = RESULTS_MD) -> str:
    """A link from the markdown file `doc` to `path`."""
    return Path(os.path.relpath(path, doc.parent)).as_posix()


def _repo(path: Path) -> str:
    """`path` as the repository-root-relative text of a command."""
    return path.relative_to(ROOT).as_posix()


def _moved(command: str, study: str) -> str:
    """A command a study's JSON recorded before the study moved to its folder, with today's paths
    (the script and its results now live in the study's folder)."""
    folder = _repo(_study(study))
    return re.sub(r"bench/(results/)?(?=[\w.-]+(\s|$))", lambda m: f"{folder}/{m.group(1) or ''}", command)


def _study_link(name: str) -> str:
    folder = _study(name)
    return f"Study: [`{_repo(folder)}`]({_rel(folder / 'README.md')}). "


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


C_MIN = 0.05


def nelbo_steps_text(s: dict, K: int) -> str:
    """Which steps a run's NELBO_K reference evaluated per tile (runs summarized before the
    estimator was recorded drew their sampled steps at random)."""
    n = s.get("model_nelbo_k_sampled_steps") or K
    if n >= K:
        return f"all {K} steps"
    if s.get("model_nelbo_k_estimator") == "stratified":
        return f"{n} stratified steps (one from each of {n} runs of the {K})"
    return f"{n} of the {K} steps drawn at random"


def fit_power_law(hours, val, h_min: float) -> dict:
    """val = a + b * hours^-c by least squares over the points at hours >= h_min: a and b are linear
    for each c, and c is searched on a fine grid (no scipy)."""
    import numpy as np

    h, y = np.asarray(hours), np.asarray(val)
    h, y = h[h >= h_min], y[h >= h_min]
    best = None
    for c in np.linspace(C_MIN, 3.0, 2951):
        X = np.stack([np.ones_like(h), h ** -c], 1)
        coef = np.linalg.lstsq(X, y, rcond=None)[0]
        rss = float(((X @ coef - y) ** 2).sum())
        if best is None or rss < best[0]:
            best = (rss, float(c), float(coef[0]), float(coef[1]))
    rss, c, a, b = best
    return {"h_min": h_min, "points": int(len(h)), "a": a, "b": b, "c": c, "rms": (rss / len(h)) ** 0.5,
            "at": lambda t: a + b * t ** -c}


FIT_WINDOWS = (1.0, 2.0, 4.0)  # hours: where the fit starts (the first hour is a different regime)


def _cooldown_from(rows: list[dict]) -> int:
    """Index of the first logged row whose learning rate has come down from its peak (the cooldown,
    `bbcodec train --cooldown-images`); len(rows) when the run never decayed it."""
    lr = [float(r["lr"]) for r in rows]
    peak = max(lr)
    first_peak = next(i for i, v in enumerate(lr) if v >= peak * (1 - 1e-9))
    return next((i for i in range(first_peak, len(lr)) if lr[i] < peak * (1 - 1e-9)), len(lr))


def training_curve(model_dir: Path, out_png: Path, draw: bool) -> dict:
    """The default model's run: validation NELBO against images and hours, with power-law fits over
    the later constant-rate points extrapolated to 100 hours, the cooldown's points apart (a decaying
    rate buys a one-off drop that a power law in hours would misread as a trend), and each shipped
    model's test NELBO; the plot is drawn only with `draw`."""
    rows = [r for r in csv.DictReader(open(model_dir / "train_log.csv")) if r["val_bpd"]]
    cut = _cooldown_from(rows)
    img = [int(r["images"]) for r in rows]
    hrs = [float(r["seconds"]) / 3600 for r in rows]
    val = [float(r["val_bpd"]) for r in rows]
    fits = [fit_power_law(hrs[:cut], val[:cut], h) for h in FIT_WINDOWS]
    cooldown = None
    if cut < len(rows):
        cooldown = {"from_h": hrs[cut - 1], "to_h": hrs[-1], "points": len(rows) - cut, "val_end": val[-1],
                    "best": min(val[cut:])}
    if draw:
        _plot_training_curve(model_dir, out_png, img, hrs, val, cut, fits)
    return {"fits": fits, "fit_to_h": hrs[cut - 1], "cooldown": cooldown}


def _plot_training_curve(model_dir: Path, out_png: Path, img, hrs, val, cut: int, fits) -> None:
    import numpy as np
    plt = _pyplot()

    shipped = []
    for name, entry in diffusion_models(_registry()).items():  # retired ones too: every model ever shipped
        f = model_figures(entry)
        shipped.append((f["wall_seconds_at_best"] / 3600, f["test_nelbo_bpd"], name))
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    ax[0].plot(img[:cut], val[:cut], "o-", ms=3, label="constant learning rate")
    ax[1].plot(hrs[:cut], val[:cut], "o", ms=3, label="validation (1,000 held-out training images)")
    if cut < len(val):
        ax[0].plot(img[cut - 1:], val[cut - 1:], "o-", ms=3, color="C6", label="cooldown (rate decayed)")
        ax[1].plot(hrs[cut:], val[cut:], "o", ms=3, color="C6", label="validation, cooldown (not fitted)")
        ax[0].legend(fontsize=7)
    ax[1].plot([s[0] for s in shipped], [s[1] for s in shipped], "s", ms=5,
               label="shipped models: test NELBO, first 1,000")
    t = np.geomspace(1.0, 100.0, 200)
    for f in fits:
        ax[1].plot(t, f["at"](t), "--", lw=1,
                   label=f"fit from {f['h_min']:g} h: {f['a']:.3f} + {f['b']:.3f}·h^-{f['c']:.2f}")
    ax[1].axhline(3.2, color="k", lw=0.8, ls=":", label="target 3.2")
    ax[1].set_xscale("log")
    ax[1].set_xlabel("hours on one CPU thread (log)")
    ax[1].legend(fontsize=7)
    for a in ax:
        a.set_ylabel("NELBO (bits/dim)")
        a.grid(alpha=0.3)
    fig.suptitle(f"{model_dir.name}'s run: continuous-time NELBO")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def extrapolation_text(curve: dict, hours_done: float) -> str:
    fits, cool = curve["fits"], curve["cooldown"]
    rows = ["| fit over | points | a (asymptote) | b | c | rms | at 15 h | at 30 h | at 100 h | hours to 3.2 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for f in fits:
        reach = "never (a > 3.2)" if f["a"] >= 3.2 else f"{((3.2 - f['a']) / f['b']) ** (-1 / f['c']):,.0f}"
        c = f"{f['c']:.3f}" + (" (search edge: about logarithmic)" if f["c"] <= C_MIN + 1e-9 else "")
        rows.append(f"| hours ≥ {f['h_min']:g} | {f['points']} | {f['a']:.4f} | {f['b']:.4f} | {c} | "
                    f"{f['rms']:.4f} | {f['at'](15.0):.4f} | {f['at'](30.0):.4f} | {f['at'](100.0):.4f} | {reach} |")
    if cool is None:
        head = (f"Validation NELBO fitted as a + b·hours^-c over the run's points so far ({hours_done:.2f} h); "
                "the asymptote a is this model's own limit on this data and recipe:\n\n")
        return head + "\n".join(rows) + "\n"
    head = (f"Validation NELBO fitted as a + b·hours^-c over the run's constant-learning-rate points "
            f"(to {curve['fit_to_h']:.2f} h); the asymptote a is this model's own limit on this data and recipe "
            f"at that rate:\n\n")
    at = ", ".join(f"{f['at'](cool['to_h']):.4f}" for f in fits)
    tail = (f"\nThe cooldown ({cool['from_h']:.2f} to {cool['to_h']:.2f} h, learning rate decayed linearly to "
            f"a tenth, {cool['points']} validation points) ends at {cool['val_end']:.4f} (best {cool['best']:.4f}), "
            f"where the three fits give {at}. Its points are plotted apart and not fitted: an annealed rate is a "
            "one-off step off the constant-rate trend, which a longer run would take once, at its end.\n")
    return head + "\n".join(rows) + "\n" + tail


def achieved_scatter(runs: list[dict], out_png: Path, draw: bool) -> str:
    """Per image, against the model's own NELBO_K (the reference the coder is measured against): in
    archive mode, the bits the coded chain spends on the image (its NELBO along the latents the coder
    drew, or the JPEG XL bits of a first tile); one file per image, the whole file."""
    if draw:
        _plot_achieved(runs, out_png)
    return ("Per CIFAR-10 test image against the model's NELBO_K (with the fitted variances it codes with): in the "
            "archives, the coded chain's NELBO at the latents the coder drew (what the ANS stack is charged, before "
            "its byte-level rounding), or the JPEG XL bits of a first tile; as one file per image, the whole file, "
            "which is JPEG XL's (one 32×32 tile is the bootstrap). Where the reference samples 20 of the 100 steps "
            "per tile it is unbiased but noisy per image: the spread along x in the second and third panels is "
            "the estimator's, as the first, with every step, shows.\n\n"
            f"![achieved vs NELBO]({_rel(out_png)})\n")


def _plot_achieved(runs: list[dict], out_png: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(4.4 * len(runs), 4), squeeze=False)
    for ax, run in zip(axes[0], runs):
        pi, s, mode = run["per_image"], run["summary"], run["mode"]
        key = "model_nelbo_k_fitted_bits" if "model_nelbo_k_fitted_bits" in pi[0] else "model_nelbo_k_bits"
        sub = s["subpixels"] / len(pi)
        ref = [p[key] / sub for p in pi]
        if mode == "archive":
            got = [(p["nelbo_bits"] + p["bootstrap_bits"]) / sub for p in pi]
            boot = [p["bootstrap_bits"] > 0 for p in pi]
            ax.scatter([r for r, b in zip(ref, boot) if not b], [g for g, b in zip(got, boot) if not b], s=5,
                       label="coded by the model (chain NELBO)")
            ax.scatter([r for r, b in zip(ref, boot) if b], [g for g, b in zip(got, boot) if b], s=14,
                       label="first tiles, JPEG XL")
            chunk = run["options"].get("chunk")
            title = f"archives of {chunk}" if chunk else "one archive"
        else:
            ax.scatter(ref, [p["bpd"] for p in pi], s=5, label="whole file (JPEG XL tile + header)")
            title = "one .bbc per image"
        lo, hi = min(ref) * 0.95, max(ref) * 1.05
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="= model NELBO_K")
        ax.set_xlabel(f"model NELBO_K (bits/dim),\n{nelbo_steps_text(s, run['options']['steps'])} per tile",
                      fontsize=8)
        ax.set_ylabel("bits/dim spent")
        ax.legend(fontsize=7)
        ax.set_title(f"{run['model']}, {len(pi)} images, {title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def _steps_dir() -> Path:
    return _study("steps-model-side") / "results"


def k_sweep_section(draw: bool) -> str | None:
    u, o = _load("k_sweep_uniform.json", _steps_dir()), _load("k_sweep_opt1.json", _steps_dir())
    if not (u and o):
        return None
    ou = {r["K"]: r for r in o["rows"]}
    rows = ["| K | uniform NELBO_K | opt1 NELBO_K |", "|---:|---:|---:|"]
    for r in u["rows"]:
        q = ou.get(r["K"])
        rows.append(f"| {r['K']} | {r['nelbo_k_bpd']:.4f} ± {r['se']:.4f} | "
                    + (f"{q['nelbo_k_bpd']:.4f} ± {q['se']:.4f} |" if q else " |"))
    png = _steps_dir() / "rate_vs_steps.png"
    if draw:
        _plot_rate_vs_steps(u, o, png)
    folder = _repo(_study("steps-model-side"))
    return ("### Rate against steps (model side)\n\n" + _study_link("steps-model-side") +
            f"NELBO_K of `{u['model']}` on the first {u['images']} CIFAR-10 test images, {u['sampled_steps_per_image']} "
            "of the K steps sampled per image (unbiased; ± standard error over images, sampling noise included). "
            f"Commands: `python {folder}/k_sweep.py --grid uniform --out {folder}/results/k_sweep_uniform.json` and the "
            "same with `--grid opt1`.\n\n" + "\n".join(rows) + f"\n\n![rate vs steps]({_rel(png)})\n")


def _plot_rate_vs_steps(u: dict, o: dict, png: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for res, lab, c in ((u, "uniform", "C0"), (o, "opt1 (ELBO-optimal)", "C1")):
        ks = [r["K"] for r in res["rows"]]
        ax.errorbar(ks, [r["nelbo_k_bpd"] for r in res["rows"]], yerr=[r["se"] for r in res["rows"]],
                    marker="o", capsize=2, color=c, label=f"{lab}: NELBO_K, first {res['images']}")
    coded = _coded_sweep_runs(1)
    for g, c in (("uniform", "C0"), ("opt1", "C1")):
        pts = sorted((k, s["bpd"]) for (n, gg, k), (_, s) in coded.items() if n == 100 and gg == g)
        if pts:
            ax.plot(*zip(*pts), "s--", color=c, ms=4, alpha=0.8, label=f"{g}: coded (v1), first 100")
    for g, c in (("uniform", "C2"), ("opt2", "C3"), ("opt3", "C4")):
        pts = sorted((k, s["bpd"]) for (n, gg, k), (_, s) in _coded_sweep_runs(2).items()
                     if n == 100 and gg == g)
        if pts:
            ax.plot(*zip(*pts), "^-", color=c, ms=5, label=f"{g}: coded (v2, default), first 100")
    ax.set_xscale("log")
    ax.set_xlabel("diffusion steps K")
    ax.set_ylabel("bits/dim")
    ax.set_ylim(top=min(ax.get_ylim()[1], 6.0))
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{u['model']}: CIFAR-10 test images", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def k_sweep_paired_section() -> str | None:
    """opt1 against uniform on the same images and noise draws, stratified steps (the close rows)."""
    u, o = _load("k_sweep_strat_uniform.json", _steps_dir()), _load("k_sweep_strat_opt1.json", _steps_dir())
    if not (u and o):
        return None
    folder = _repo(_study("steps-model-side"))
    import numpy as np
    ou = {r["K"]: r for r in o["rows"]}
    rows = ["| K | uniform NELBO_K | opt1 NELBO_K | opt1 − uniform (paired) |", "|---:|---:|---:|---:|"]
    for r in u["rows"]:
        q = ou.get(r["K"])
        if not q:
            continue
        d = np.array(q["per_image_bpd"]) - np.array(r["per_image_bpd"])
        rows.append(f"| {r['K']} | {r['nelbo_k_bpd']:.4f} ± {r['se']:.4f} | {q['nelbo_k_bpd']:.4f} ± {q['se']:.4f} | "
                    f"{d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(len(d)):.4f} |")
    return ("Where the two grids are closest (K ≥ 512), the same images re-estimated with stratified steps "
            f"({u['sampled_steps_per_image']} per image, one from each quarter of the K steps; same seed for both "
            "grids, so the difference is paired): "
            f"`python {folder}/k_sweep.py --grid opt1 --sampled 4 --stratified --ks 512,1000 --out "
            f"{folder}/results/k_sweep_strat_opt1.json`, and the same with `--grid uniform`.\n\n" + "\n".join(rows) + "\n")


def grid_bits_section() -> str | None:
    """Coded rate against the latent bins' resolution (bench/grid_bits.sh), next to the b=0 sweep rows."""
    folder = _study("latent-bin-width") / "results"
    found = {}
    for f in sorted(folder.glob("n*/*.json")) if folder.exists() else []:
        for run in json.loads(f.read_text())["runs"]:
            if run.get("complete") and "summary" in run:
                o = run["options"]
                found[(run["summary"]["images"], o["steps"], o["grid_bits"])] = run["summary"]
    if not found:
        return None
    for (n, g, k), (run, s) in _coded_sweep_runs(1).items():
        if g == "opt1" and any(key[:2] == (n, k) for key in found):
            found[(n, k, run["options"]["grid_bits"])] = s
    rows = ["| images | K | grid_bits | file bits/dim | coded chain's own NELBO + JPEG XL tiles | file / that | "
            "encode s/img |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for (n, k, b), s in sorted(found.items(), key=lambda t: (-t[0][0], t[0][1], t[0][2])):
        rows.append(f"| first {n} | {k} | {b} | {s['bpd']:.4f} | {s['expected_bpd']:.4f} | {s['ratio_to_expected']:.3f} | "
                    f"{s['encode_s_per_image']:.2f} |")
    return ("### Latent bin width against steps\n\n" + _study_link("latent-bin-width") +
            "opt1 grid, latent coding version 1, archive, --parallel 8, one thread, model "
            "`cifar10-vdm-s1`. Bins are 2^-grid_bits of the smallest step std. The middle column is what the "
            "coded chain's continuous NELBO (along the latents it actually drew) plus the JPEG XL tiles would "
            f"cost: the ratio isolates the coder. Command: `bash {_repo(folder.parent)}/grid_bits.sh` (N=100 "
            "RUNS=\"256:1\" for a 100-image row).\n\n" + "\n".join(rows) + "\n")


def toy_bins_section() -> str | None:
    folder = _study("binning-toy")
    r = _load("toy_bins.json", folder / "results")
    if not r:
        return None
    by = {(x["K"], x["grid_bits"], x["latents"]): x for x in r["rows"]}
    rows = ["| K | grid_bits | version 1: excess bits/subpixel | version 2 | version 1 per step |", "|---:|---:|---:|---:|---:|"]
    for (k, b) in sorted({(k, b) for k, b, _ in by}):
        v1, v2 = by.get((k, b, 1)), by.get((k, b, 2))
        if v1 and v2:
            rows.append(f"| {k} | {b} | {v1['excess']:.4f} | {v2['excess']:.4f} | {v1['excess_per_step']:.5f} |")
    return ("What binning costs with the network taken out (an exact denoiser in 1-D, the coder's own grids and "
            f"stds for `{r['model']}`'s schedule, {r['subpixels']:,} simulated subpixels): the code length beyond "
            f"the continuous chain's. " + _study_link("binning-toy") + f"Command: `{_moved(r['command'], 'binning-toy')}`.\n\n"
            + "\n".join(rows) + "\n")


def _bpd_over(run: dict, names: list[str]) -> float | None:
    """A classical run's bits/dim over the named images together (None unless it coded them all)."""
    pi = {p["name"]: p for p in run["per_image"]}
    sel = [pi[n] for n in names if n in pi]
    if len(sel) != len(names):
        return None
    return sum(8 * p["bytes"] for p in sel) / sum(8 * p["bytes"] / p["bpd"] for p in sel)


def classical_on(classical: dict, names: list[str]) -> list[str]:
    """Rows of the classical codecs restricted to the named images (bits/dim over those images)."""
    return [f"| {r['codec']} | {bpd:.4f} |" for r in classical["runs"]
            if (bpd := _bpd_over(r, names)) is not None]


def _exact_columns(exact: dict | None) -> list[tuple[str, str]]:
    """(key, header) of the columns bench/nelbo_exact.py adds: file / NELBO_K over all K steps, and
    over the stratified M-step estimate where it was run with --stratified M."""
    if exact is None:
        return []
    cols = [("file_over_nelbo_k", "file / NELBO_K, all K steps")]
    m = _stratified_steps(exact)
    if m:
        cols.append(("file_over_stratified_nelbo_k", f"file / NELBO_K, {m} stratified steps"))
    return cols


def _stratified_steps(exact: dict) -> int | None:
    """The M of nelbo_exact's --stratified column, where one M was used (None otherwise)."""
    m = {e.get("stratified_steps") for e in exact.values()} - {None}
    return m.pop() if len(m) == 1 else None


def _photo_rows(run: dict, jxl_run: dict | None, exact: dict | None = None) -> list[str]:
    """One row per photo of a per-file run (its records are the files, in order), then the total;
    the JPEG XL column comes from the classical run `jxl_run`; with `exact` (name -> row of
    bench/nelbo_exact.py), the last columns are `_exact_columns`."""
    jxl = {p["name"]: p["bpd"] for p in jxl_run["per_image"]} if jxl_run else {}
    cols = _exact_columns(exact)
    rows = []

    def col(name: str) -> str:
        return "".join(f" {exact[name][k]:.4f} |" if k in exact.get(name, {}) else " not yet |" for k, _ in cols)

    for rec, p in zip(run["records"], run["per_image"]):
        px = rec["subpixels"] // 3
        ref = p.get("model_nelbo_k_fitted_bits") or p.get("model_nelbo_k_bits")
        rows.append(f"| {p['name']} | {px:,} px | {p['bpd']:.4f} | {rec['initial_bits']} | {rec['bootstrap_tiles']} / "
                    f"{rec['model_tiles']} | {ref / rec['subpixels']:.4f} | {8 * rec['bytes'] / ref:.4f} | "
                    f"{jxl.get(p['name'], float('nan')):.4f} | {rec['encode_s'] / px * 1e6:.0f} | "
                    f"{rec['decode_s'] / px * 1e6:.0f} |" + col(p["name"]))
    s = run["summary"]
    if len(rows) > 1:
        ref = s.get("model_nelbo_k_fitted_bpd") or s["model_nelbo_k_bpd"]
        names = [p["name"] for p in run["per_image"]]
        jx = _bpd_over(jxl_run, names) if jxl_run else None
        jx = float("nan") if jx is None else jx
        rows.append(f"| **all {len(rows)}** | {s['subpixels'] // 3:,} px | **{s['bpd']:.4f}** | {s['initial_bits']} | "
                    f"{s['bootstrap_tiles']} / {s['model_tiles']} | {ref:.4f} | {s['bpd'] / ref:.4f} | {jx:.4f} | "
                    f"{s['encode_s_per_megapixel']:.0f} | {s['decode_s_per_megapixel']:.0f} |"
                    + "".join(_exact_total(exact, names, k) for k, _ in cols))
    return rows


def _exact_total(exact: dict, names: list[str], key: str) -> str:
    """The total row's cell of one `_exact_columns` column: file bits over NELBO_K bits, once every
    photo has it."""
    if not all(key in exact.get(n, {}) for n in names):
        return " |"
    rows = [exact[n] for n in names]
    return f" {sum(e['file_bits'] for e in rows) / sum(e['file_bits'] / e[key] for e in rows):.4f} |"


def _exact_text(exact: dict | None) -> str:
    if exact is None:
        return ""
    m = _stratified_steps(exact)
    strat = (f"; the last column is the stratified estimate bench now uses, from as many steps "
             f"(`--stratified {m}`)" if m else "")
    return (": unbiased, but noisy per photo (2% high on `skimage_motorcycle_left`), so the column \"all K steps\" "
            "recomputes it with every step (`python bench/nelbo_exact.py bench/results/photos_full_vdm.json`)" + strat)


PHOTO_PRIOR_JSON = "photos_full_photo_prior.json"  # the shipped photo prior (suite entry photos-photo-prior)
# the suite entry's earlier results, archived where the change that replaced them was studied: before 64x64 tiles
# became the photo prior's default (photo-vdm-p2-int, 32x32), and before the prior trained on 64x64 crops
PHOTO_PRIOR_BEFORE = tuple((name, ROOT / "bench/studies/2026-12-05-photo-context/results")
                           for name in ("photos_full_p2_int_tile32.json", "photos_full_p2_dt_int_tile64.json"))


def _photo_prior_run() -> dict | None:
    r = _load(PHOTO_PRIOR_JSON)
    return next((x for x in (r or {}).get("runs", []) if "summary" in x), None)


def _measured_at(result_name: str) -> str:
    """"revision abc1234, 2026-12-05": where and when a bench result's first stretch ran (its seconds
    are that code's)."""
    r = _load(result_name)
    st = (r or {}).get("stretches") or [{}]
    rev, day = st[0].get("revision", "?"), st[0].get("started", "?")[:10]
    return f"revision {rev[:7]}, {day}"


def photo_prior_block(classical: dict | None) -> str | None:
    """The shipped photo prior's files on the nine photos, one row per photo (suite entry photos-photo-prior)."""
    run = _photo_prior_run()
    if run is None:
        return None
    jxl_run = next((r for r in (classical or {"runs": []})["runs"] if r["codec"] == "jxl"), None)
    rows = ["| photo | size | bits/dim (file) | seed bits | tiles: JPEG XL / model | model NELBO_K | "
            "file / NELBO_K | JPEG XL file | encode s/MP | decode s/MP |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"] + _photo_rows(run, jxl_run)
    o, s0 = run["options"], run["summary"]
    fitted = "with the fitted variances it codes with, " if s0.get("model_nelbo_k_fitted_bpd") else ""
    cifar = _load("photos_full_vdm.json")
    c = next((r for r in (cifar or {}).get("runs", []) if "summary" in r), None)
    vs = (f" The CIFAR-10 prior `{c['model']}` codes the same files at {c['summary']['bpd']:.4f} (below)." if c else "")
    now = _registry().get("photo_default")
    role = ("The default for photographs (`bbcodec compress` picks it for images larger than one 32×32 tile)"
            if now in (None, run["model"]) else
            f"The photo prior before `{now}` (the default for photographs now, not yet run on all nine photos)")
    T = o.get("tile", 32)
    return (f"#### The photo prior `{run['model']}`\n\n{role}, at the default settings "
            f"(K={o['steps']}, grid {o['grid']}, latent coding version {o.get('latents', 1)}, grid_bits "
            f"{o['grid_bits']}, {T}×{T} tiles, first tiles by JPEG XL, --parallel {o['parallel']}), one CPU thread "
            "per process; every "
            f"file decoded and compared. The model NELBO_K is its discrete-time NELBO {fitted}estimated with "
            f"{nelbo_steps_text(s0, o['steps'])} per tile. Its integer network computes every probability exactly: "
            "these files decode on any machine. Suite entry: `photos-photo-prior` (two processes, one per core; "
            f"the seconds are those of a machine with both cores busy, and of the code at {_measured_at(PHOTO_PRIOR_JSON)})."
            + vs + "\n\n" + "\n".join(rows) + "\n" + _jxl_harder_text(run, classical))


def _jxl_harder_text(run: dict, classical: dict | None) -> str:
    """JPEG XL at its harder efforts (the `jxl-e9` and `jxl-e10` classical runs) against a learned per-file
    run on the same photos."""
    names = [p["name"] for p in run["per_image"]]
    out = []
    for codec, what in (("jxl-e9", "effort 9"), ("jxl-e10", "effort 10, its hardest")):
        r = next((x for x in (classical or {"runs": []})["runs"] if x["codec"] == codec), None)
        total = _bpd_over(r, names) if r else None
        if total is None:
            continue
        per = {p["name"]: p["bpd"] for p in r["per_image"]}
        wins = sum(p["bpd"] < per[p["name"]] for p in run["per_image"])
        out.append(f"JPEG XL at {what} (`--codec {codec}`): {total:.4f} bits/dim over the same files, "
                   f"{r['summary']['encode_s_per_image']:.1f} s per photo to encode; `{run['model']}`'s file is the "
                   f"smaller on {wins} of the {len(names)} photos (per photo: "
                   f"{', '.join(f'{n} {per[n]:.4f}' for n in names)}).")
    return "".join(f"\n{x}\n" for x in out)


def photos_section() -> str | None:
    classical = _load("photos_full_classical.json")
    allnine = _load("photos_full_vdm.json")  # every photo at the version 2 defaults (suite entry photos-vdm)
    ex = _load("photos_full_vdm.nelbo_exact.json") if allnine else None
    exact = {e["name"]: e for e in ex["images"]} if ex else None
    learned = [r for r in allnine["runs"] if "summary" in r] if allnine else []
    if not classical and not learned:
        return None
    out = ["### Full-size photos (`photos-full`, one file each)\n"]
    prior = photo_prior_block(classical)
    if prior:
        out.append(prior)
        if learned:
            out.append("#### The CIFAR-10 prior on the photos\n")
    if learned:
        names = [p["name"] for r in learned for p in r["per_image"]]
        cols = _exact_columns(exact)
        rows = ["| photo | size | bits/dim (file) | seed bits | tiles: JPEG XL / model | model NELBO_K | "
                "file / NELBO_K | JPEG XL file | encode s/MP | decode s/MP |" + "".join(f" {h} |" for _, h in cols),
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(cols)]
        jxl_run = next((r for r in (classical or {"runs": []})["runs"] if r["codec"] == "jxl"), None)
        for r in learned:
            rows += _photo_rows(r, jxl_run, exact)
        o, s0 = learned[0]["options"], learned[0]["summary"]
        fitted = "with the fitted variances it codes with, " if s0.get("model_nelbo_k_fitted_bpd") else ""
        out.append(f"bbcodec `{learned[0]['model']}` at the default settings (K={o['steps']}, grid {o['grid']}, "
                   f"latent coding version {o.get('latents', 1)}, grid_bits {o['grid_bits']}, first tiles by JPEG XL, "
                   f"--parallel {o['parallel']}), one CPU thread; every file decoded and compared. The model NELBO_K "
                   f"is its discrete-time NELBO {fitted}estimated with {nelbo_steps_text(s0, o['steps'])} "
                   "per tile" + _exact_text(exact)
                   + ". The CIFAR-10 model has never seen a photo. Suite entries: `photos-vdm` (two processes, one "
                     "per core), `photos-nelbo-exact` (the all-steps columns).\n\n" + "\n".join(rows) + "\n")
        if classical:
            out.append("Classical codecs on the same photos (bits/dim over them):\n\n| codec | bits/dim |\n|---|---:|\n"
                       + "\n".join(classical_on(classical, names)) + "\n")
    if classical:
        out.append("All nine photos, classical codecs:\n\n" + markdown(classical)
                   + "\nSuite entry: `photos-classical` (`python scripts/photos_full.py` rebuilds the set from Debian's wallpaper "
                     "packages and the scikit-image wheel, pixel-checked).\n")
    return "\n".join(out)


def profile_section() -> str | None:
    """bench/coding_profile.py's runs: the network as CPU encoders run it (profile.json), and the plain
    module beside it where profile_plain.json was measured too."""
    pr = _load("profile.json")
    if not pr:
        return None
    runs = [pr] + [p for p in [_load("profile_plain.json")] if p]
    rows = ["| network | phase | wall s | network s | ANS s | bootstrap s | glue s | coder side / network |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for p in runs:
        for ph, r in p["phases"].items():
            rows.append(f"| {p.get('network', 'plain module')} | {ph} | {r['wall_s']:.1f} | {r['network_s']:.1f} | "
                        f"{r['ans_s']:.2f} | {r.get('bootstrap_s', 0.0):.2f} | {r['glue_s']:.2f} | "
                        f"{100 * r['coder_side_over_network']:.1f}% |")
    boot = pr.get("bootstrap")
    tiles = (f"{pr.get('tiles_bootstrapped', 0)} tiles by {boot} and {pr['tiles_coded_by_model']} by the model"
             if boot else "every tile coded by the model")
    plain = ""
    if len(runs) > 1:
        net = [sum(r["network_s"] for r in p["phases"].values()) for p in runs]
        plain = (f" The plain network module (files without `coding.nhwc`, `--plain`) beside it: the channels-last "
                 f"graph spends {net[1] / net[0]:.2f}x less time in the network, and the same coder side is a "
                 "larger share of a smaller total.")
    return (f"### Where the time goes\n\n`{pr['model']}`, K={pr['steps']} ({pr['grid']}, latent coding version "
            f"{pr.get('latents', 1)}), {pr['images']} CIFAR-10 images, {tiles}, --parallel {pr['parallel']}, "
            f"{pr['threads']} thread, torch {pr['torch']}. The coder side is the ANS calls, the classical "
            f"codec of the first tiles and the Python glue. Suite entry `profile`: `{pr['command']}`.{plain}\n\n"
            + "\n".join(rows) + "\n")


def nhwc_section() -> str | None:
    """The plain network module against the channels-last graph on one photo (bench/nhwc_speed.py)."""
    r = _load("nhwc_speed.json", _study("network-layout") / "results")
    if not r:
        return None
    rows = ["| network | .bbc bytes | bits/dim | bit-exact | encode s/MP | decode s/MP |",
            "|---|---:|---:|---|---:|---:|"]
    for x in r["rows"]:
        rows.append(f"| {x['network']} | {x['bytes']:,} | {x['bpd']:.4f} | {'yes' if x['bit_exact'] else 'NO'} | "
                    f"{x['encode_s_per_megapixel']:.0f} | {x['decode_s_per_megapixel']:.0f} |")
    return ("### Network layout\n\n" + _study_link("network-layout") + f"`{r['image']}` ({r['pixels']:,} px), `{r['model']}`, K={r['steps']} "
            f"({r['grid']}, latent coding version {r['latents']}), --parallel {r['parallel']}, {r['threads']} thread, "
            f"torch {r['torch']}; the plain module first, then the channels-last graph, one after the other "
            f"({r['note']}). Speed-up {r['speedup']['encode_s']:.2f}x encode, {r['speedup']['decode_s']:.2f}x decode. "
            f"Command: `{_moved(r['command'], 'network-layout')}`.\n\n" + "\n".join(rows) + "\n")


def parallel_section() -> str | None:
    """File size and seconds against --parallel on full-size photos (bench/parallel_table.sh)."""
    out = []
    folder = _study("parallel")
    for f in sorted((folder / "results").glob("photos_full_*.json")):
        res = json.loads(f.read_text())
        runs = sorted((r for r in res["runs"] if "summary" in r), key=lambda r: r["options"]["parallel"])
        if not runs:
            continue
        s0, o = runs[0]["summary"], runs[0]["options"]
        rows = ["| --parallel | bits/dim (file) | seed bits drawn | tiles: JPEG XL / model | "
                "file / NELBO_K (fitted variances) | encode s/MP | decode s/MP |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in runs:
            s = r["summary"]
            rows.append(f"| {r['options']['parallel']} | {s['bpd']:.4f} | {s['initial_bits']} | "
                        f"{s['bootstrap_tiles']} / {s['model_tiles']} | "
                        f"{_f(s, 'ratio_to_model_nelbo_k_fitted')} | {s['encode_s_per_megapixel']:.0f} | "
                        f"{s['decode_s_per_megapixel']:.0f} |")
        out.append(f"`{runs[0]['per_image'][0]['name']}` ({s0['subpixels'] // 3:,} px), `{runs[0]['model']}`, "
                   f"K={o['steps']} ({o['grid']}, latent coding version {o.get('latents', 1)}), one file, first tiles "
                   f"by JPEG XL, one CPU thread; NELBO_K from {nelbo_steps_text(s0, o['steps'])} per "
                   f"tile. Command: `MODEL={runs[0]['model']} OFFSETS={res['offset']} bash {_repo(folder)}/parallel_table.sh`."
                   "\n\n" + "\n".join(rows) + "\n")
    return "### Tiles in flight (`--parallel`)\n\n" + _study_link("parallel") + "\n".join(out) if out else None


def arch_section() -> str | None:
    folder = _study("architecture")
    md = folder / "results" / "arch_compare.md"
    if not md.exists():
        return None
    return ("### Architecture comparison\n\n" + _study_link("architecture") + md.read_text()
            + f"\nCommand: `python {_repo(folder)}/arch_compare.py` (logs in {_repo(folder)}/results/; the runs: "
              "`bbcodec train --data ../shared/data/cifar10/train.npz --run runs/NAME --config CFG --minutes 45 "
              f"--threads 1`).\n\n![architectures]({_rel(folder / 'results' / 'arch_compare.png')})\n")


def _coded_sweep_runs(latents: int):
    """{(images, grid, K): (run, summary)} of every finished run of the coded sweep with that latent
    coding version."""
    runs = {}
    folder = _study("coded-steps") / "results" / f"latents{latents}"
    for f in sorted(folder.glob("n*/*.json")) if folder.exists() else []:
        for run in json.loads(f.read_text())["runs"]:
            if "summary" in run:
                runs[(run["summary"]["images"], run["options"]["grid"], run["options"]["steps"])] = (run, run["summary"])
    return runs


def k_sweep_coded_section() -> str | None:
    runs = _coded_sweep_runs(1)
    if not runs:
        return None
    rows = ["| images | K | uniform: file bits/dim | opt1: file bits/dim | uniform: NELBO_K | opt1: NELBO_K | "
            "opt1 encode s/img | opt1 decode s/img |", "|---:" * 8 + "|"]
    for n, k, (u, o) in _sweep_cells(runs, ("uniform", "opt1")):
        rows.append(f"| first {n} | {k} | {_f(u, 'bpd')} | {_f(o, 'bpd')} | {_f(u, 'model_nelbo_k_bpd')} | "
                    f"{_f(o, 'model_nelbo_k_bpd')} | {_f(o, 'encode_s_per_image', '.2f')} | "
                    f"{_f(o, 'decode_s_per_image', '.2f')} |")
    model = next(iter(runs.values()))[0]["model"]
    jxl = next(r for r in _load("cifar10_test_classical.json")["runs"] if r["codec"] == "jxl")
    return ("### Rate against steps (coded, latent coding version 1)\n\n" + _study_link("coded-steps") +
            "One archive per row (first tiles by JPEG XL), "
            f"--parallel 8, one thread, model `{model}`. The first 20 images are harder than the first 100 (JPEG XL: "
            f"{_first_bpd(jxl, 20):.2f} against {_first_bpd(jxl, 100):.2f} bits/dim): compare rows of the same subset. NELBO_K here samples 8 of the K steps per "
            "image (the model-side table above has 1000 images). Command: "
            f"`LATENTS=1 bash {_repo(_study('coded-steps'))}/k_sweep_coded.sh`.\n\n"
            + "\n".join(rows) + "\n")


def _sweep_cells(runs: dict, grids: tuple):
    """(images, K, one summary or None per grid) for every (images, K) of a coded sweep: more images first."""
    for n, k in sorted({(n, k) for n, _, k in runs}, key=lambda t: (-t[0], t[1])):
        yield n, k, tuple(runs.get((n, g, k), (None, None))[1] for g in grids)


def _f(d, key, fmt=".4f"):
    return format(d[key], fmt) if d and key in d else "–"


def k_sweep_coded_v2_section() -> str | None:
    runs = _coded_sweep_runs(2)
    if not runs:
        return None
    rows = ["| images | K | uniform: file bits/dim | opt1: file | opt2: file | **opt3**: file | opt3: fitted NELBO_K | "
            "opt3: file / fitted NELBO_K | opt3 encode s/img | opt3 decode s/img |", "|---:" * 10 + "|"]
    for n, k, (u, o1, o2, o3) in _sweep_cells(runs, ("uniform", "opt1", "opt2", "opt3")):
        found = [d["bpd"] for d in (u, o1, o2, o3) if d]
        cells = [f"**{_f(d, 'bpd')}**" if d and d["bpd"] == min(found) else _f(d, "bpd") for d in (u, o1, o2, o3)]
        rows.append(f"| first {n} | {k} | " + " | ".join(cells) + f" | {_f(o3, 'model_nelbo_k_fitted_bpd')} | "
                    f"{_f(o3, 'ratio_to_model_nelbo_k_fitted', '.3f')} | {_f(o3, 'encode_s_per_image', '.2f')} | "
                    f"{_f(o3, 'decode_s_per_image', '.2f')} |")
    model = next(iter(runs.values()))[0]["model"]
    return ("### Rate against steps (coded, latent coding version 2: the default)\n\n" + _study_link("coded-steps") +
            "One archive per row (first "
            f"tiles by JPEG XL), --parallel 8, one thread, model `{model}`; the best file of each row in bold. opt1 is "
            "the ELBO-optimal grid for the posterior's variances; opt2 the one for version 2's fitted variances, from "
            "the measured error curve; opt3 (the default with version 2) the same from the smoothed curve. Fitted "
            "NELBO_K is the model's discrete-time NELBO with the variances version 2 codes with; it samples 8 of the K "
            "steps per image (a few percent of noise on 100 images). Cells marked – were not run (CPU time). "
            f"Command: `bash {_repo(_study('coded-steps'))}/k_sweep_coded.sh`.\n\n"
            + "\n".join(rows) + "\n" + _k1000_reference(model))


def _k1000_reference(model: str) -> str:
    """The model's K = 1000 uniform NELBO on the same first 100 images, for the K = 64 comparison."""
    ref = _load("k_sweep_strat_uniform_n100.json", _steps_dir())
    if not ref or ref["model"] != model:
        return ""
    r = next(r for r in ref["rows"] if r["K"] == 1000)
    return (f"\nFor comparison, `{model}`'s K = 1000 uniform NELBO on the same {ref['images']} images is "
            f"{r['nelbo_k_bpd']:.4f} ± {r['se']:.4f} bits/dim ({ref['sampled_steps_per_image']} stratified steps per "
            f"image; the ± is mostly the spread between images, which the rows above share): "
            f"`{_moved(ref['command'], 'steps-model-side')}`.\n")


def grid_check_section() -> str | None:
    """Each grid's exact expected diffusion cost on test images (bench/grid_check.py) against its prediction."""
    folder = _study("grid-check")
    files = sorted((folder / "results").glob("*.json"))
    if not files:
        return None
    res = [json.loads(f.read_text()) for f in files]
    names = [g for g in ("uniform", "opt1", "opt2", "opt3") if any(g in r["grids"] for r in res)]
    rows = ["| model | K | test images | " + " | ".join(f"{g}: measured (predicted)" for g in names) + " |",
            "|---|---:|---:|" + "---:|" * len(names)]
    for r in sorted(res, key=lambda r: (r["model"], r["steps"])):
        cells = [r["grids"].get(g) for g in names]
        best = min(c["coded_v2"] for c in cells if c)
        rows.append(f"| {r['model']} | {r['steps']} | {r['images']} | " + " | ".join(
            "–" if c is None else ("**{:.4f}**" if c["coded_v2"] == best else "{:.4f}").format(c["coded_v2"])
            + f" ({c['dp_predicted']:.4f})" for c in cells) + " |")
    return ("### Which grid codes best: measured on test images\n\n" + _study_link("grid-check") + "The diffusion term (bits/dim; the recon and "
            "prior terms do not depend on the grid) that latent coding version 2 pays in expectation with each grid, "
            "computed in closed form from the network's error at each step's time on the first test images, with "
            "the coder's own variances; in brackets the cost the measured training curve predicts (the curve opt1 "
            "and opt2 were optimised on; opt3 was optimised on its smooth fit). "
            "opt2 is predicted best everywhere but measures worst from K = 64 up: the DP placed steps where the "
            "measured curve happened to be low. opt3 runs the same DP on a smooth fit of the curve and measures best. "
            f"Command: `python {_repo(folder)}/grid_check.py --model MODEL --steps K --images 32`.\n\n" + "\n".join(rows) + "\n")


def memory_section() -> str | None:
    """Peak memory of large-image round trips (bench/memory_check.py)."""
    files = sorted(RES.glob("memory_*.json"))
    if not files:
        return None
    rows = ["| image | model | K | --parallel | .bbc bytes | bit-exact | encode peak RSS | decode peak RSS | "
            "encode s | decode s |", "|---|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    cmds = []
    for f in files:
        r = json.loads(f.read_text())
        w, h = r["size"]
        rows.append(f"| {w}×{h} RGB | {r['model']} | {r['steps']} | {r['parallel']} | {r['bbc_bytes']:,} | "
                    f"{'yes' if r['bit_exact'] else 'NO'} | {r['encode_peak_rss_mib']:.0f} MiB | "
                    f"{r['decode_peak_rss_mib']:.0f} MiB | {r['encode_s']:.0f} | {r['decode_s']:.0f} |")
        cmds.append(f"`{r['command']}`")
    return ("### Memory on large images\n\nPeak resident memory of `bbcodec compress` and `decompress`, each in its "
            "own process, on a synthetic photo-like image. Tiles are streamed, so memory does not grow with K or "
            "with the network beyond its weights; `tiny` is a random-weight two-level network that keeps the run "
            "short (K = 1). Suite entry `memory`: " + ", ".join(cmds) + ".\n\n" + "\n".join(rows) + "\n")


def startup_section() -> str | None:
    """Time to first output and to exit of `bbcodec compress` (bench/startup_timing.py)."""
    r = _load("startup_timing.json")
    if not r:
        return None
    sec = lambda v: "did not finish" if v is None else f"{v:.1f}"  # noqa: E731
    rows = ["| case | code | first output, s | estimate shown, s | total, s | load (1 min) |",
            "|---|---|---:|---:|---:|---:|"]
    for row in sorted(r["rows"], key=lambda x: (x["case"], x["label"])):
        est = "-" if row["estimate_s"] is None else f"{row['estimate_s']:.1f}"
        total = "killed at the limit" if row.get("timed_out") else sec(row["total_s"])
        first = "-" if row["first_output_s"] is None else f"{row['first_output_s']:.1f}"
        rows.append(f"| {row['case']} | {row['label']} ({row['revision']}) | {first} | {est} | {total} | "
                    f"{row['load_average_1min']:.1f} |")
    return ("### Start-up and time to first output\n\n`bbcodec compress` as a person runs it, stderr on a terminal, a "
            "fresh cache folder per case (so the first chain's initial-bit deficit is measured, as on a first run), "
            "default settings. \"before\" is the code at commit 269ccb4: no output until its progress bar, the "
            "deficit measured in every process, the network traced with a trace check, and torch's default of one "
            "thread per core, which beside a busy core spins. Suite entry `startup-timing`: "
            f"`{r['command']}`.\n\n" + "\n".join(rows) + "\n")


def rate_vs_seconds(out_png: Path, draw: bool) -> str | None:
    """bits/dim against encode+decode seconds per image on CIFAR-10: every coded run we have."""
    pts = []
    for latents in (1, 2):
        for (n, grid, k), (r, s) in sorted(_coded_sweep_runs(latents).items()):
            if n == 100:
                pts.append((f"K={k} {grid} v{latents}", f"{grid}v{latents}",
                            s["encode_s_per_image"] + s["decode_s_per_image"], s["bpd"]))
    for run in (_load("cifar10_test_vdm_archive100.json") or {"runs": []})["runs"]:
        if "summary" in run:
            s = run["summary"]
            pts.append((f"bbcodec default ({run['model']})", "default", s["encode_s_per_image"] + s["decode_s_per_image"],
                        s["bpd"]))
    for run in (_load("cifar10_test_classical.json") or {"runs": []})["runs"]:
        s = run["summary"]
        pts.append((run["codec"], "classical", s["encode_s_per_image"] + s["decode_s_per_image"], s["bpd"]))
    if not pts:
        return None
    if draw:
        _plot_rate_vs_seconds(pts, out_png)
    return ("### Rate against seconds\n\nCIFAR-10: bbcodec archives of the first 100 test images (coded sweep and "
            "default settings), classical codecs over all 10,000, one file each.\n\n"
            f"![rate vs seconds]({_rel(out_png)})\n")


def _plot_rate_vs_seconds(pts: list[tuple], out_png: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = {"uniformv1": "tab:blue", "opt1v1": "tab:orange", "uniformv2": "tab:green", "opt1v2": "tab:olive",
              "opt2v2": "tab:purple", "opt3v2": "tab:brown",
              "default": "tab:red", "classical": "tab:gray"}
    for label, kind, sec, bpd in pts:
        ax.scatter(sec, bpd, color=colors.get(kind, "k"), s=18)
        ax.annotate(label.replace("bbcodec ", ""), (sec, bpd), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("encode + decode seconds per 32x32 image (one CPU thread)")
    ax.set_ylabel("bits/dim (whole files)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def _first_bpd(run: dict, n: int) -> float:
    """A classical run's bits/dim over its first n images (CIFAR-10: all the same size)."""
    return sum(p["bpd"] for p in run["per_image"][:n]) / n


def _registry() -> dict:
    return json.loads((MODELS / "registry.json").read_text())


def _card(entry: dict) -> dict | None:
    """A shipped model's card.json (None for a retired one)."""
    return None if entry.get("retired") else json.loads((MODELS / entry["path"] / "card.json").read_text())


def is_flow(entry: dict) -> bool:
    """A registered flow (the baseline, `bbcodec/flows`): it has its own table, not the diffusion priors'."""
    return (_card(entry) or {}).get("kind") == "flow"


def is_photo_prior(entry: dict) -> bool:
    """A registered prior for photographs (its card's domain): it has its own table, not the CIFAR-10 priors'."""
    return (_card(entry) or {}).get("domain") == "photos"


def diffusion_models(reg: dict) -> dict:
    """The CIFAR-10 diffusion priors (shipped and retired)."""
    return {k: v for k, v in reg["models"].items() if not is_flow(v) and not is_photo_prior(v)}


def model_figures(entry: dict) -> dict:
    """A registered model's figures (`modelcard.summary_figures`): from its card.json and grids.json
    where it ships, from its registry entry where it is retired."""
    if entry.get("retired"):
        return entry["figures"]
    folder = MODELS / entry["path"]
    return summary_figures(json.loads((folder / "card.json").read_text()),
                           json.loads((folder / "grids.json").read_text()))


def cifar_section(reg: dict, draw: bool) -> str | None:
    vdm_runs = []
    for name in ("cifar10_test_vdm_archive100.json", "cifar10_test_vdm_1000.json"):
        r = _load(name)
        if r:
            vdm_runs += [x for x in r["runs"] if "summary" in x]
    classical = _load("cifar10_test_classical.json")
    if not vdm_runs and not classical:
        return None
    both = {"runs": vdm_runs + (classical["runs"] if classical else [])}
    parts = ["### CIFAR-10 test set\n\nbbcodec rows: the first 100 or 1,000 test images (the images column), "
             "in archives (one of 100, or one per 100 images where it says so) and as one file each; "
             "classical rows: all 10,000 images, one file each.\n\n"
             + markdown(both)
             + "\nSuite entries: `cifar10-archive100` (archive rows of 100: each shipped model's row was added while it "
               "was the default), `cifar10-1000` (rows of 1,000), `cifar10-classical` (classical rows).\n"]
    if classical:
        rows = ["| codec (one file per image) | first 20 | first 100 | first 1,000 | all 10,000 |",
                "|---|---:|---:|---:|---:|"]
        for r in classical["runs"]:
            rows.append(f"| {r['codec']} | " + " | ".join(f"{_first_bpd(r, n):.4f}" for n in (20, 100, 1000))
                        + f" | {r['summary']['bpd']:.4f} |")
        parts.append("Classical codecs on the same images as the bbcodec rows (bits/dim, from the same JSON):\n\n"
                     + "\n".join(rows) + "\n")
    panels = [r for r in vdm_runs if r["model"] == reg["default"] and r["mode"] == "archive"
              and r["summary"]["images"] == 100][-1:]
    thousand = [r for r in vdm_runs if r["summary"]["images"] == 1000]
    panels += [r for r in thousand if r["model"] == reg["default"]] or thousand  # today's default where it has them
    if panels:
        parts.append(achieved_scatter(panels, RES / "cifar10_achieved_vs_nelbo.png", draw))
    return "\n".join(parts)


ORDER_NAMES = {"bitswap": "Bit-Swap", "bbans": "BB-ANS"}


def ordering_section() -> str | None:
    """Bit-Swap against BB-ANS order (suite entry `ordering`): the initial bits each order draws, and the
    file's rate with and without them, per mode and tiles in flight."""
    res = _load("ordering_cifar10_10.json")
    if not res:
        return None
    runs = [r for r in res["runs"] if "summary" in r]
    if not runs:
        return None
    key = lambda r: (r["model"], r["mode"] != "archive", -r["options"]["parallel"],  # noqa: E731
                     list(ORDER_NAMES).index(r["options"].get("order", "bitswap")))
    runs.sort(key=key)
    rows = ["| model | mode | --parallel | order | initial bits | initial bits per image | bits/dim (file) | "
            "without initial bits | coded chains' NELBO |", "|---|---|---:|---|---:|---:|---:|---:|---:|"]
    by = {}
    for r in runs:
        s, o = r["summary"], r["options"]
        order = o.get("order", "bitswap")
        by[r["model"], r["mode"], o["parallel"], order] = s
        rows.append(f"| `{r['model']}` | {r['mode']} | {o['parallel']} | {ORDER_NAMES[order]} | {s['initial_bits']:,} | "
                    f"{s['initial_bits'] / s['images']:,.0f} | {s['bpd']:.4f} | {s['bpd_without_initial']:.4f} | "
                    f"{s['nelbo_bpd']:.4f} |")
    where = lambda mode, p: f"one archive at --parallel {p}" if mode == "archive" else "one file per image"  # noqa: E731
    ratios = [f"{where(mode, p)}, {by[m, mode, p, 'bbans']['initial_bits'] / s['initial_bits']:.0f}x"
              for (m, mode, p, order), s in by.items() if order == "bitswap" and (m, mode, p, "bbans") in by]
    r0, s0 = runs[0], runs[0]["summary"]
    o0 = r0["options"]
    entry = next(e for e in suite.manifest()["bench"] if e["name"] == "ordering")
    cmds = ", ".join(f"`{c.replace(' > /dev/null', '')}`" for c in entry["commands"])
    return ("### Bit-Swap against BB-ANS order\n\n"
            f"The first {res['images']} CIFAR-10 test images, K={o0['steps']} ({o0['grid']}, latent coding version "
            f"{o0.get('latents', 1)}), no bootstrap codec: every initial bit is a seed word drawn and paid for in "
            "the file. Both orders code the same steps with the same small codecs; BB-ANS order (`--order bbans`) "
            "pops every latent of a batch before pushing anything, Bit-Swap order pays each pop back at the next "
            "push. Initial bits, BB-ANS over Bit-Swap: " + "; ".join(ratios) + ". A file of one 32×32 image is one "
            "tile, whatever --parallel; an archive pays the initial bits once, for its first batches, and in "
            "BB-ANS order a batch of several tiles needs all their latents at once, which the batch ramp (built for "
            "Bit-Swap's one-step need) does not cover. Without the initial bits the two orders agree to sampling "
            "noise (other latents are drawn); one file per image also pays a header per image. Model NELBO_K (fitted "
            f"variances) on these images: {s0['model_nelbo_k_fitted_bpd' if 'model_nelbo_k_fitted_bpd' in s0 else 'model_nelbo_k_bpd']:.4f} bits/dim. "
            f"Every file decoded and compared. Suite entry `ordering`: {cmds}.\n\n" + "\n".join(rows) + "\n")


def integer_section() -> str | None:
    """The integer network beside its float source (suite entry `integer-network`)."""
    r = _load("integer_network.json")
    if not r:
        return None
    rows = ["| images | model | bits/dim (file) | without initial bits | expected (NELBO + bootstrap) | coder overhead | "
            "encode / decode, s per image | encode / decode, s per MP |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    by = {}
    for x in r["rows"]:
        by.setdefault(x["what"], {})[x["model"]] = x
        rows.append(f"| {x['what']} | `{x['model']}` | {x['bpd']:.4f} | {x['bpd_without_initial']:.4f} | "
                    f"{x['expected_bpd']:.4f} | {x['coder_overhead_pct']:+.2f}% | {x['encode_s_per_image']:.2f} / "
                    f"{x['decode_s_per_image']:.2f} | {x['encode_s_per_mp']:,.0f} / {x['decode_s_per_mp']:,.0f} |")
    cmp = []
    for what, ms in by.items():
        if len(ms) == 2:
            f, i = sorted(ms.values(), key=lambda x: x["model"].endswith("-int"))
            cmp.append(f"{what}: {100 * (i['bpd'] / f['bpd'] - 1):+.2f}% bits, encode {i['encode_s'] / f['encode_s']:.2f}x, "
                       f"decode {i['decode_s'] / f['decode_s']:.2f}x")
    other = "; ".join(f"`{m}`: " + ("decoded, bit-exact" if v.get("decoded") and v.get("bit_exact") else
                                   "decoded, NOT bit-exact" if v.get("decoded") else f"refused ({v['error'].split(' (')[0]})")
                      for m, v in r["decoded_under_other_cpu"].items())
    env = " ".join(f"{k}={v!r}" if " " in v else f"{k}={v}" for k, v in r["other_cpu_settings"].items())
    return ("### The integer network against its float source\n\n"
            f"Same images, same run ({r['settings']}); every file decoded and compared. Integer over float: "
            + "; ".join(cmp) + f". The CIFAR-10 archives decoded again in a fresh process under `{env}` (a machine "
            f"without AVX-512): {other}. Suite entry `integer-network`: `{r['command']}` (at {r['revision']}).\n\n"
            + "\n".join(rows) + "\n")


def fast_steps_section() -> str | None:
    """K=32 beside the default K=100, same run (suite entry fast-steps)."""
    rows = ["| images | prior | K | bits/dim (file) | vs K=100 | file / NELBO_K (fitted) | encode / decode, s per image | "
            "encode / decode, s per MP |", "|---|---|---:|---:|---:|---:|---:|---:|"]

    def add(what: str, runs: list[dict]):
        runs = [r for r in runs if "summary" in r]
        order = list(dict.fromkeys(r["model"] for r in runs))  # each model's rows together, as first run
        tile = lambda r: r["options"].get("tile", 32)  # noqa: E731
        runs.sort(key=lambda r: (order.index(r["model"]), tile(r), -r["options"]["steps"]))
        base = {(r["model"], tile(r)): r["summary"]["bpd"] for r in runs if r["options"]["steps"] == 100}
        for r in runs:
            x, k = r["summary"], r["options"]["steps"]
            b = base.get((r["model"], tile(r)))
            vs = f"{100 * (x['bpd'] / b - 1):+.2f}%" if b and k != 100 else "–"
            fit = x.get("ratio_to_model_nelbo_k_fitted")
            T = r["options"].get("tile")
            prior = f"`{r['model']}`" + (f", {T}×{T} tiles" if T else "")
            rows.append(f"| {what} | {prior} | {k} | {x['bpd']:.4f} | {vs} | "
                        f"{'–' if fit is None else f'{fit:.4f}'} | {x['encode_s_per_image']:.2f} / "
                        f"{x['decode_s_per_image']:.2f} | {x['encode_s_per_megapixel']:,.0f} / "
                        f"{x['decode_s_per_megapixel']:,.0f} |")

    cifar, photos = _load("cifar10_test_fast_steps.json"), _load("photos_fast_steps.json")
    if cifar:
        add("CIFAR-10 test, first 100, one archive", cifar["runs"])
    if photos:
        add("skimage astronaut, chelsea, coffee (photos-full 5-7), one file each", photos["runs"])
    if len(rows) == 2:
        return None
    return ("### A fast setting: K=32\n\n`--steps 32` codes each tile with 32 diffusion steps instead of 100: about "
            "a third of the network calls each way, for a larger file. Each prior at its other defaults (its grid "
            "for that K, latent coding version 2, first tiles by JPEG XL, --parallel 8), one CPU thread; every file "
            "decoded and compared. The CIFAR-10 archive in one process; the photos in two (astronaut; chelsea and "
            "coffee), both cores busy. Suite entry `fast-steps`. The priors fine-tuned in discrete time (`-dt-int`, "
            "[the study](../bench/studies/2026-12-05-discrete-fine-tuning/README.md)) and the photo prior trained on "
            "64×64 crops (`photo-vdm-t64-int`) were coded later by the same commands with `--model`, the photos in "
            "one process, beside other work: the `-dt-int` rows' seconds are the same network's work as the rows "
            "above theirs, measured on a busier machine." + _fast_tiles_text(photos)
            + "\n\n" + "\n".join(rows) + "\n")


def _fast_tiles_text(photos: dict | None) -> str:
    """Which tile the fast-setting rows code, where the photo prior's default tile is larger than 32."""
    reg = _registry()
    name = reg.get("photo_default")
    T = reg["models"].get(name, {}).get("coding_tile")
    if not T or T == 32:
        return ""
    done = any(r["model"] == name and r["options"].get("tile") == T for r in (photos or {}).get("runs", []))
    return (f" Rows without a tile code 32×32 tiles (the earlier photo priors, coded when the suite entry pinned "
            f"`--tile 32` for the photos); `{name}` codes photos with {T}×{T} tiles by default"
            + ("." if done else ", not yet measured here at K=32 (at K=100: the photo prior's table under Full-size "
                                "photos)."))


def suite_section() -> str:
    m = suite.manifest()
    rows = ["| entry | what | model | data | outputs | time, one CPU thread |", "|---|---|---|---|---|---|"]
    for e in m["bench"]:
        outs = ", ".join(f"`{Path(o).name}`" for o in e["outputs"])
        flag = " (long)" if e["long"] else f" (needs {e['needs']})" if e.get("needs") else ""
        rows.append(f"| `{e['name']}` | {e['title']} | {e['model']} | {e['dataset']} | {outs} | {e['cpu']}{flag} |")
    studies = ["| study | what | model | data |", "|---|---|---|---|"]
    for st in m["study"]:
        studies.append(f"| [`{Path(st['folder']).name}`]({_rel(ROOT / st['folder'] / 'README.md')}) | {st['title']} | "
                       f"{st['model']} | {st['dataset']} |")
    return ("### The suite\n\nDeclared in `bench/suite.toml` (commands, outputs in `bench/results/`); "
            "`python bench/suite.py run NAME` reruns an entry and regenerates these pages.\n\n" + "\n".join(rows)
            + "\n\nOne-off studies, archived with their script, results and the commit they ran at (their tables are "
              "under Studies below):\n\n" + "\n".join(studies) + "\n")


def results_block(reg: dict, draw: bool) -> str:
    """docs/results.md's generated block: the suite's results, then the studies'."""
    parts = [suite_section()]
    for section in (lambda: cifar_section(reg, draw), integer_section, fast_steps_section, flow_section,
                    ordering_section, photos_section, profile_section, memory_section, startup_section):
        text = section()
        if text:
            parts.append(text)
    parts.append("## Studies\n\nEach measured once, at the commit its README names; the figures are of the "
                 "model and code of that day.\n")
    for section in (lambda: k_sweep_section(draw), k_sweep_paired_section, k_sweep_coded_v2_section,
                    grid_check_section, k_sweep_coded_section, grid_bits_section, toy_bins_section,
                    lambda: rate_vs_seconds(RES / "rate_vs_seconds.png", draw), parallel_section, nhwc_section,
                    arch_section):
        text = section()
        if text:
            parts.append(text)
    return "\n".join(parts)


def models_block(reg: dict, draw: bool) -> str:
    """docs/models.md's generated block: every registered model (shipped: from its card and grids;
    retired: from its registry entry), then the default model's training curve and its extrapolation."""
    rows = ["| model | parameters | training images | hours (one CPU thread) | validation NELBO | "
            "test NELBO (first 1,000) | coded: first 100 in one archive | coded with | error-curve fit: degree (BIC), "
            "χ²/dof |", "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for name, entry in diffusion_models(reg).items():
        f = model_figures(entry)
        k, fit = f["coded"], f["error_curve_fit"]
        coded = f"{k['bpd']:.4f}" if k else "–"
        how = f"K={k['steps']} {k['grid']} v{k['latents']} p={k['parallel']}" if k else "–"
        fit = f"{fit['degree']}, {fit['chi2_per_dof']:.2f}" if fit else "–"
        if entry.get("retired"):
            label = f"`{name}` (retired; commit {entry['last_commit'][:12]})"
        else:
            label = (f"[`{name}`]({_rel(MODELS / entry['path'] / 'MODEL_CARD.md', MODELS_MD)})"
                     + (" (default)" if name == reg["default"] else ""))
        rows.append(f"| {label} | {f['parameters']:,} | {f['images_seen_at_best']:,} | "
                    f"{f['wall_seconds_at_best'] / 3600:.2f} | {f['val_nelbo_bpd']:.4f} | "
                    f"{f['test_nelbo_bpd']:.4f} ± {f['test_nelbo_se']:.4f} | {coded} | {how} | {fit} |")
    table = ("### Registered models\n\nFrom each shipped model's `card.json` and `grids.json` (the smoothed error "
             "curve that grid opt3 is optimised on: log M(t) as a weighted polynomial in t, its degree chosen by BIC); "
             "a retired model's row from the figures its registry entry keeps, its files being at the commit named. "
             "Coded: `bench/results/cifar10_test_vdm_archive100.json`, at the defaults of its day.\n\n"
             + "\n".join(rows) + "\n")
    ddir = MODELS / reg["models"][reg["default"]]["path"]
    dcard = json.loads((ddir / "card.json").read_text())
    src = dcard.get("converted_from")  # an integer network: its training is its float source's
    trained = next((k for k, v in reg["models"].items() if v["sha256"].startswith(src["sha256"])), None) if src \
        else reg["default"]
    tuned = None  # a float source that is not shipped, fine-tuned in discrete time from a shipped model
    if trained is None:
        tuned = dcard["training"]
        trained = tuned["init_from"]["model"]
    mdir = MODELS / reg["models"][trained]["path"]
    card = json.loads((mdir / "card.json").read_text())
    png = RES / "training_curve.png"
    curve = training_curve(mdir, png, draw)
    conv = (f"The default `{dcard['name']}` is the integer version of `{src['name'] if src else card['name']}` "
            "(`bbcodec convert`): "
            f"continuous-time test NELBO {dcard['test_nelbo_bpd']:.4f} ± {dcard['test_nelbo_se']:.4f} bits/dim on the "
            f"same images and draws, against {dcard['float_test_nelbo_bpd']:.4f} for the float network; the training "
            "below is the float network's.\n\n") if src else ""
    if tuned:
        conv = conv.replace("the training below is the float network's.", (
            f"that is `{trained}` {_discrete_text(tuned)} ({tuned['images_seen_at_best'] - card['training']['images_seen_at_best']:,} "
            f"more images, {(tuned['wall_seconds_at_best'] - card['training']['wall_seconds_at_best']) / 3600:.2f} h: "
            "[discrete-time fine-tuning](#discrete-time-fine-tuning)); the training below is "
            f"`{trained}`'s."))
    default = (f"### The default model `{dcard['name']}`\n\n" + conv +
               f"`{card['name']}`: "
               f"continuous-time test NELBO on the first {card['test_images']:,} CIFAR-10 test images: "
               f"**{card['test_nelbo_bpd']:.4f} ± {card['test_nelbo_se']:.4f} bits/dim** "
               f"({card['parameters']:,} parameters, {card['training']['images_seen_at_best']:,} training images "
               f"seen, {card['training']['wall_seconds_at_best'] / 3600:.2f} h on one thread of a 2-core CPU). "
               f"See `{_repo(mdir / 'MODEL_CARD.md')}`.\n\n"
               f"![training curve]({_rel(png, MODELS_MD)})\n\n"
               + extrapolation_text(curve, card["training"]["wall_seconds_at_best"] / 3600))
    return table + "\n" + photo_models_table(reg) + flow_models_table(reg) + default


def _discrete_text(training: dict) -> str:
    cs = training["coding_steps"]
    return f"fine-tuned in discrete time for K = {', '.join(map(str, cs['steps']))} on its grid {cs['grid']}"


def photo_models_table(reg: dict) -> str:
    """The registered photo priors: from each one's card.json and its coded figures on the nine photos."""
    photos = {k: _card(v) for k, v in reg["models"].items() if is_photo_prior(v)}
    if not photos:
        return ""
    runs = [r for r in [_photo_prior_run()] + [x for name, folder in PHOTO_PRIOR_BEFORE
                                                 for x in (_load(name, folder) or {}).get("runs", []) if "summary" in x] if r]
    rows = ["| photo prior | parameters | training crops (its last run) | hours (that run's clock, one CPU thread) | "
            "validation NELBO (float / integer) | "
            "test NELBO, photos-full tiles (float / integer) | coded: the nine photos, one file each (tiles) |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for name, c in photos.items():
        t = c["training"]
        coded = "; ".join(f"{r['summary']['bpd']:.4f} ({r['options'].get('tile', 32)}×{r['options'].get('tile', 32)})"
                          for r in runs if r["model"] == name) or "–"
        nelbo = (lambda f, i: f"{c[f]:.4f} / {c[i]:.4f}" if f in c and i in c else "–")  # noqa: E731
        rows.append(f"| [`{name}`]({_rel(MODELS / reg['models'][name]['path'] / 'MODEL_CARD.md', MODELS_MD)})"
                    + (" (default for photos)" if name == reg.get("photo_default") else "") + " | "
                    f"{c['parameters']:,} | {t['images_seen_at_best']:,} | {t['wall_seconds_at_best'] / 3600:.2f} | "
                    f"{nelbo('float_val_nelbo_bpd', 'val_nelbo_bpd')} | {nelbo('float_test_nelbo_bpd', 'test_nelbo_bpd')} "
                    f"| {coded} |")
    return ("### The photo prior\n\nPriors for photographs, fine-tuned from the CIFAR-10 prior on crops of other "
            "photos ([photo_prior_training.md](photo_prior_training.md)); `bbcodec compress` picks the default one for "
            "images larger than one 32×32 tile. NELBOs in bits/dim: validation on 1,000 crops of four held-out photos, test on "
            "every full 32×32 tile of the nine test photos (the float network the integer one was converted from, then "
            "the integer network, same draws). Coded: `bench/results/photos_full_photo_prior.json` at the defaults "
            "([results](results.md)); the earlier rows (at 32×32 tiles, before 64×64 became the photo prior's "
            "default, and before the prior trained on 64×64 crops) are archived with the "
            "[tile study](../bench/studies/2026-12-05-photo-context/README.md).\n\n" + "\n".join(rows) + "\n\n")


def flow_models_table(reg: dict) -> str:
    """The registered flows (the baseline coded by local bits-back): from each one's card.json."""
    flows = {k: _card(v) for k, v in reg["models"].items() if is_flow(v)}
    if not flows:
        return ""
    rows = ["| flow | parameters | training images | hours (one CPU thread) | validation -log2 p | "
            "test -log2 p (first 1,000) | coded: first 1,000 in archives of 100 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, c in flows.items():
        t, k = c["training"], c.get("coded")
        rows.append(f"| [`{name}`]({_rel(MODELS / reg['models'][name]['path'] / 'MODEL_CARD.md', MODELS_MD)}) | "
                    f"{c['parameters']:,} | {t['images_seen_at_best']:,} | {t['wall_seconds_at_best'] / 3600:.2f} | "
                    f"{c['val_nll_bpd']:.4f} | {c['test_nll_bpd']:.4f} ± {c['test_nll_se']:.4f} | "
                    + (f"{k['bpd']:.4f} |" if k else "– |"))
    return ("### The flow baseline\n\nCoupling flows coded by local bits-back (`bbcodec/flows`, `--model NAME`), "
            "the learned baseline beside the diffusion priors; -log2 p is the dequantization bound in bits/dim "
            "(what the codec achieves, less its initial bits). Coded: `bench/results/cifar10_test_flow_1000.json` "
            "at the defaults ([docs/flow.md](flow.md)).\n\n" + "\n".join(rows) + "\n\n")


FLOW_JSON = "cifar10_test_flow_1000.json"


def flow_section() -> str | None:
    """The flow baseline on the first 1,000 CIFAR-10 test images (suite entry `flow-baseline`), beside
    the default diffusion prior's archive of the first 100 and the classical codecs on the same images."""
    r = _load(FLOW_JSON)
    if not r:
        return None
    runs = [x for x in r["runs"] if "summary" in x]
    if not runs:
        return None
    rows = ["| codec | images | bits/dim (file) | initial bits (seed words drawn) | bootstrap tiles (bits/dim) | "
            "flow-coded tiles without initial bits | the flow's -log2 p on them | coded / -log2 p | "
            "the same, the stack alone | encode / decode, s per image |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for x in runs:
        s, o = x["summary"], x["options"]
        rows.append(f"| `{x['model']}` k={o['grid_bits']} boot={o.get('bootstrap') or 'none'}, archives of {o['chunk']} | "
                    f"{s['images']:,} | {s['bpd']:.4f} | {s['initial_bits']:,} | {s['bootstrap_tiles']} "
                    f"({s['bootstrap_bpd']:.4f}) | {s['flow_coded_bpd']:.4f} | {s['model_nll_coded_tiles_bpd']:.4f} | "
                    f"{100 * (s['ratio_flow_coded_to_model_nll'] - 1):+.2f}% | "
                    f"{100 * (s['stack_ratio_flow_coded_to_model_nll'] - 1):+.2f}% | {s['encode_s_per_image']:.3f} / "
                    f"{s['decode_s_per_image']:.3f} |")
    arch = _load("cifar10_test_vdm_archive100.json")
    if arch:
        done = [x for x in arch["runs"] if "summary" in x]
        reg = _registry()
        a = next((x for x in done if x["model"] == reg["default"]), None)
        if a:
            s = a["summary"]
            rows.append(f"| diffusion prior `{a['model']}` at its defaults, one archive (`cifar10-archive100`) | "
                        f"{s['images']} | {s['bpd']:.4f} | {s['initial_bits']:,} | {s['bootstrap_tiles']} "
                        f"({s['bootstrap_bpd']:.4f}) | | | | | {s['encode_s_per_image']:.3f} / {s['decode_s_per_image']:.3f} |")
    cc = _load("cifar10_test_classical.json")
    n = runs[0]["summary"]["images"]
    classical = ("; classical codecs on the same first " + f"{n:,} images, one file each: "
                 + ", ".join(f"{c['codec']} {_first_bpd(c, n):.4f}" for c in cc["runs"])) if cc else ""
    entry = next(e for e in suite.manifest()["bench"] if e["name"] == "flow-baseline")
    cmds = ", ".join(f"`{c.replace(' > /dev/null', '')}`" for c in suite.commands(entry))
    return ("### The flow baseline: local bits-back\n\n"
            "The shipped coupling flow on the first 1,000 CIFAR-10 test images in archives of 100, every file decoded "
            "and compared. The coder's own figure is the flow-coded tiles' bits (file bits less the seed words drawn "
            "and the bootstrap tiles' classical bytes) against the flow's dequantization bound on exactly those tiles "
            "(one independent uniform draw per subpixel, float64): the gap is the container (header, framing), the ANS "
            "head words and quantised probabilities, and sampling noise between the two draws; the stack-alone column "
            "leaves the container out. The diffusion prior's row is its committed archive of the first 100 at its "
            f"defaults, for the seconds (one CPU thread both){classical}. Suite entry `flow-baseline`: {cmds}.\n\n"
            + "\n".join(rows) + "\n")


def _secs(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}" if x >= 1 else f"{x:.4f}"


HEADLINE_CODECS = (("png", "PNG"), ("webp", "WebP"), ("jxl", "JPEG XL"))


def headline_block(reg: dict, draw: bool) -> str | None:
    """README's table: bbcodec against PNG, WebP and JPEG XL on CIFAR-10 (the default model's archive
    of the first 100 test images) and on the nine photos, bits/dim and seconds (nothing to draw)."""
    arch, cc = _load("cifar10_test_vdm_archive100.json"), _load("cifar10_test_classical.json")
    pv, pc = _load("photos_full_vdm.json"), _load("photos_full_classical.json")
    if not (arch and cc and pv and pc):
        return None
    photo_prior = _photo_prior_run()
    done = [r for r in arch["runs"] if "summary" in r]
    a = next((r for r in done if r["model"] == reg["default"]), done[-1])
    n = a["summary"]["images"]
    ccod = {r["codec"]: r for r in cc["runs"]}
    p = photo_prior or next(r for r in pv["runs"] if "summary" in r)
    pcod = {r["codec"]: r for r in pc["runs"]}
    names = [x["name"] for x in p["per_image"]]

    def bold(vals):
        return [f"**{v:.4f}**" if v == min(vals) else f"{v:.4f}" for v in vals]

    cif = [a["summary"]["bpd"]] + [_first_bpd(ccod[c], n) for c, _ in HEADLINE_CODECS]
    pho = [p["summary"]["bpd"]] + [_bpd_over(pcod[c], names) for c, _ in HEADLINE_CODECS]

    def per_mp(s):
        mp = s["subpixels"] / 3 / 1e6
        return s["encode_s_per_image"] * s["images"] / mp, s["decode_s_per_image"] * s["images"] / mp

    cif_s = [(a["summary"]["encode_s_per_image"], a["summary"]["decode_s_per_image"])] + [
        (ccod[c]["summary"]["encode_s_per_image"], ccod[c]["summary"]["decode_s_per_image"]) for c, _ in HEADLINE_CODECS]
    ps = p["summary"]
    pho_s = [(ps["encode_s_per_megapixel"], ps["decode_s_per_megapixel"])] + [per_mp(pcod[c]["summary"])
                                                                                for c, _ in HEADLINE_CODECS]
    secs = lambda pairs: " | ".join(f"{_secs(e)} / {_secs(d)}" for e, d in pairs)  # noqa: E731
    rows = ["| data | measure | bbcodec | " + " | ".join(h for _, h in HEADLINE_CODECS) + " |",
            "|---|---|---:|---:|---:|---:|",
            f"| CIFAR-10 test, first {n} (32×32); bbcodec `{a['model']}`, one archive | bits/dim | "
            + " | ".join(bold(cif)) + " |",
            f"| | encode / decode, s per image | {secs(cif_s)} |",
            f"| {len(names)} full-size photos, one file each; bbcodec `{p['model']}` | bits/dim | "
            + " | ".join(bold(pho)) + " |",
            f"| | encode / decode, s per megapixel | {secs(pho_s)} |"]
    fl = _load(FLOW_JSON)
    f = next((x for x in (fl or {}).get("runs", []) if "summary" in x and x["options"].get("bootstrap")), None)
    if f:
        fs = f["summary"]
        nf = fs["images"]
        vals = [fs["bpd"]] + [_first_bpd(ccod[c], nf) for c, _ in HEADLINE_CODECS]
        rows += [f"| CIFAR-10 test, first {nf:,}; the flow baseline `{f['model']}` (local bits-back), archives of "
                 f"{f['options']['chunk']} | bits/dim | " + " | ".join(bold(vals)) + " |",
                 f"| | encode / decode, s per image | {secs([(fs['encode_s_per_image'], fs['decode_s_per_image'])] + cif_s[1:])} |"]
    return ("\n".join(rows) + "\n\nBits per subpixel of whole files (header and side data included), every file "
            "decoded and compared; lower is better, the best of each row in bold. Seconds on one CPU thread. The "
            "classical codecs code one file per image; their CIFAR-10 seconds are the mean over all 10,000 test "
            "images. "
            + ((f"bbcodec's model on the photos is its photo prior{_photo_prior_role(reg, p)}; its "
               f"seconds: two processes on two cores, the code at {_measured_at(PHOTO_PRIOR_JSON)}. ") if photo_prior
               else "bbcodec's model on the photos is a CIFAR-10 model: it has never seen a photo. ")
            + "".join(x + " " for x in [_retired_note(reg, a, p).strip()] if x)
            + f"Every table: [docs/results.md](docs/results.md).\n")


def _photo_prior_role(reg: dict, run: dict) -> str:
    """Which photo prior a nine-photo row is: the one `bbcodec compress` picks, or the one before it."""
    now = reg.get("photo_default")
    if now in (None, run["model"]):
        return ", the one `bbcodec compress` picks for them"
    return (f" before `{now}`, which `bbcodec compress` now picks: `{now}`, its discrete-time fine-tuning, has not "
            "yet coded all nine photos ([docs/results.md](docs/results.md#a-fast-setting-k32) has both on three of them)")


def _retired_note(reg: dict, *runs) -> str:
    """A sentence for each model of these runs that the package no longer ships (where to get it)."""
    out = []
    for name in dict.fromkeys(r["model"] for r in runs):
        e = reg["models"].get(name, {})
        if e.get("retired"):
            c = e["last_commit"][:12]
            out.append(f" `{name}` is retired from the package; it ships at commit {c} (`git checkout {c}` to rerun "
                       "that row).")
    return "".join(out)


def flow_padding_block(reg: dict, draw: bool) -> str | None:
    """docs/flow.md's table: the study `flow-padding` (padding and grey images through the flow)."""
    path = _study("flow-padding") / "results" / "padding.json"
    if not path.exists():
        return None
    r = json.loads(path.read_text())
    rows = ["| image | subpixels outside the image, per image | bits per real subpixel, bits-back padding (the codec) | "
            "padding's cost, bits per image | bits per real subpixel, fixed fill | padding's cost, fixed fill |",
            "|---|---:|---:|---:|---:|---:|",
            f"| 32×32 RGB (no padding) | 0 | {r['full_rgb_bpd']:.4f} | 0 | {r['full_rgb_bpd']:.4f} | 0 |"]
    for c in r["crops"]:
        f = c["fixed_fill"]
        rows.append(f"| {c['size']}×{c['size']} RGB in a 32×32 tile | {c['padding_subpixels_per_image']:,} | "
                    f"{c['bits_per_real_subpixel']:.4f} | {c['padding_bits_per_image']:,.0f} | "
                    f"{f['bits_per_real_subpixel']:.4f} | {f['padding_bits_per_image']:,.0f} |")
    g = r["grey"]
    cls = ", ".join(f"{k} {v:.4f}" for k, v in g["classical_bits_per_grey_subpixel"].items())
    rows.append(f"| 32×32 grey (two channels missing) | 2,048 | {g['flow_bits_per_grey_subpixel']:.4f} | | "
                f"{g['fixed_fill_bits_per_grey_subpixel']:.4f} | |")
    return (f"`{r['model']}` on {r['images']} images ({r['data']}); padding's cost = the tile's bits less the full tiles' "
            f"rate ({r['full_rgb_bpd']:.4f} bits/dim) times the real subpixels. The grey images one file each: {cls} "
            "bits per grey subpixel.\n\n" + "\n".join(rows) + "\n")


FLOW_MD = DOCS / "flow.md"
BLOCKS = ((README, "headline", headline_block), (RESULTS_MD, "results", results_block),
          (MODELS_MD, "models", models_block), (FLOW_MD, "flow-padding", flow_padding_block))


def _splice(text: str, name: str, body: str) -> str:
    return re.sub(f"<!-- {name}:begin -->.*<!-- {name}:end -->",
                  lambda _: f"<!-- {name}:begin -->\n{body}\n<!-- {name}:end -->", text, flags=re.S)


def generated(draw: bool = False) -> dict[Path, str]:
    """Each file with a generated block, as it reads with that block regenerated (and the plots
    redrawn with `draw`)."""
    out, reg = {}, _registry()
    for path, name, block in BLOCKS:
        body = block(reg, draw)
        if body is not None and path.exists():
            out[path] = _splice(out.get(path, path.read_text()), name, body)
    return out


def stale() -> list[str]:
    """Files whose generated block differs from what the committed JSON gives (no plots drawn)."""
    return [_repo(p) for p, text in generated().items() if p.read_text() != text]


def main() -> None:
    for path, text in generated(draw=True).items():
        path.write_text(text)
        print(f"wrote {_repo(path)}")


if __name__ == "__main__":
    main()
