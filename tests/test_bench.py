"""`bbcodec bench` with a tiny model: decoded and compared, resumable, provenance per stretch, clean errors; the
photo-set builder; the suite manifest, and the docs regenerated from the committed results."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bbcodec import api, bench
from bbcodec.diffusion import reference
from bbcodec.images import from_array
from bbcodec.cli import cli
from bbcodec.errors import BbcError

from conftest import cifar_samples


@pytest.fixture
def npz(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=cifar_samples()[:3])
    return p


def _run(npz, out, tiny_model_dir, *extra):
    return CliRunner().invoke(cli, ["bench", str(npz), "--model", str(tiny_model_dir), "--steps", "3", "--grid",
                                    "uniform", "--codec", "vdm", "--codec", "png", "--out", str(out), "--quiet",
                                    *extra])


needs_toml = pytest.mark.skipif(sys.version_info < (3, 11) and importlib.util.find_spec("tomli") is None,
                                reason="bench/suite.toml needs tomllib (Python 3.11) or tomli")


def _photos_full():
    """scripts/photos_full.py (the photo test set's builder: a script, not part of the package)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / "photos_full.py"
    spec = importlib.util.spec_from_file_location("photos_full", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench_module(name: str):
    """A script of bench/ as a module (bench/ is not a package)."""
    bench_dir = Path(__file__).resolve().parents[1] / "bench"
    if str(bench_dir) not in sys.path:
        sys.path.insert(0, str(bench_dir))
    spec = importlib.util.spec_from_file_location(name, bench_dir / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_writes_json_and_markdown(npz, tmp_path, tiny_model_dir):
    out = tmp_path / "r.json"
    r = _run(npz, out, tiny_model_dir, "--chunk", "2")
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    runs = {x["key"].split(":")[-1] if x["codec"] == "vdm" else x["key"]: x for x in res["runs"]}
    arch, per = runs["chunk2"], runs["per-file"]
    assert [rec["images"] for rec in arch["records"]] == [2, 1] and len(per["records"]) == 3
    for run in (arch, per):
        s = run["summary"]
        assert s["images"] == 3 and s["bpd"] == pytest.approx(8 * s["bytes"] / s["subpixels"])
        assert s["model_nelbo_k_bpd"] > 0 and len(run["per_image"]) == 3
    # one 32x32 image per file: the whole tile is the bootstrap
    assert per["summary"]["model_tiles"] == 0 and per["summary"]["bootstrap_tiles"] == 3
    assert "png:per-file" in runs and "| bbcodec" in out.with_suffix(".md").read_text()


def test_resume_continues_after_the_last_complete_file(npz, tmp_path, tiny_model_dir, monkeypatch):
    out = tmp_path / "r.json"
    assert _run(npz, out, tiny_model_dir, "--mode", "per-file").exit_code == 0
    full = json.loads(out.read_text())
    # an interrupted run: two files done, no summary yet
    run = next(r for r in full["runs"] if r["codec"] == "vdm")
    partial = {"key": run["key"], "codec": "vdm", "mode": run["mode"], "model": run["model"],
               "model_sha256": run["model_sha256"], "options": run["options"], "complete": False,
               "records": run["records"][:2]}
    full["runs"] = [partial]
    out.write_text(json.dumps(full))
    calls = []
    real = api.compress
    monkeypatch.setattr(api, "compress", lambda imgs, *a, **k: calls.append(len(imgs)) or real(imgs, *a, **k))
    r = _run(npz, out, tiny_model_dir, "--mode", "per-file", "--resume")
    assert r.exit_code == 0, r.output
    assert calls == [1]  # only the third image was coded again
    res = json.loads(out.read_text())
    vdm = next(r for r in res["runs"] if r["codec"] == "vdm")
    assert vdm["complete"] and vdm["summary"]["images"] == 3 and len(vdm["records"]) == 3
    assert vdm["records"][:2] == run["records"][:2]
    # each stretch keeps its own environment; records and the finished run name theirs
    assert len(res["stretches"]) == 2 and res["stretches"][0] == full["stretches"][0]
    assert [r["stretch"] for r in vdm["records"]] == [0, 0, 1] and vdm["stretch"] == 1


def test_a_run_records_its_revision_and_package_versions(npz, tmp_path, tiny_model_dir):
    from importlib.metadata import version
    out = tmp_path / "r.json"
    assert _run(npz, out, tiny_model_dir, "--mode", "per-file").exit_code == 0
    res = json.loads(out.read_text())
    (env,) = res["stretches"]
    assert "env" not in res and env["started"]
    assert env["packages"]["constriction"] == version("constriction")
    assert set(env["packages"]) == {"torch", "numpy", "constriction", "pillow", "imagecodecs"}
    rev = bench.git_revision()
    if rev is not None:  # a git checkout: HEAD, "-dirty" where tracked code differs from it
        assert env["revision"].split("-")[0] == rev.split("-")[0] and len(rev.split("-")[0]) == 40
    # a JSON written before stretches were recorded: its single env becomes the first stretch
    legacy = {**res, "env": {"torch": "old"}}
    del legacy["stretches"]
    legacy["runs"] = [r for r in legacy["runs"] if r["codec"] != "png"]
    out.write_text(json.dumps(legacy))
    assert _run(npz, out, tiny_model_dir, "--mode", "per-file", "--resume").exit_code == 0
    res = json.loads(out.read_text())
    assert [s.get("torch") for s in res["stretches"]] == ["old", None]
    assert next(r for r in res["runs"] if r["codec"] == "png")["stretch"] == 1


def test_resume_refuses_a_json_of_another_dataset(npz, tmp_path, tiny_model_dir):
    out = tmp_path / "r.json"
    out.write_text(json.dumps({"dataset": "other", "offset": 0, "images": 3, "runs": []}))
    r = _run(npz, out, tiny_model_dir, "--resume")
    assert r.exit_code == 1 and "cannot resume" in r.output


@pytest.mark.parametrize("args,msg", [(["no-such-set"], "not found"),
                                      (["NPZ", "--codec", "gif"], "unknown codec")])
def test_bad_dataset_or_codec_is_a_clean_error(npz, args, msg):
    args = [str(npz) if a == "NPZ" else a for a in args]
    r = CliRunner().invoke(cli, ["bench", *args, "--quiet"])
    assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output


def test_model_nelbo_reference_covers_partial_tiles(tiny_model):
    from bbcodec.diffusion.codec import CodingParams
    from conftest import image_data
    imgs = [image_data("RGB", 40, 20, 1), image_data("L", 32, 32, 2)]
    bits = reference.model_nelbo_k(tiny_model, CodingParams(steps=4, grid="uniform"), imgs)
    assert bits.shape == (2,) and np.all(np.isfinite(bits)) and np.all(bits > 0)


def test_a_sampled_nelbo_reference_is_stratified_and_says_so(npz, tmp_path, tiny_model_dir):
    from bbcodec.diffusion.codec import CodingParams
    from bbcodec.registry import load_model
    out = tmp_path / "r.json"
    assert _run(npz, out, tiny_model_dir, "--nelbo-steps", "2").exit_code == 0
    s = next(r for r in json.loads(out.read_text())["runs"] if r["codec"] == "vdm")["summary"]
    assert s["model_nelbo_k_estimator"] == "stratified" and s["model_nelbo_k_sampled_steps"] == 2
    model = load_model(str(tiny_model_dir))
    imgs = [from_array(a, str(i)) for i, a in enumerate(cifar_samples()[:3])]
    p = CodingParams(steps=3, grid="uniform")
    strat, rand = (reference.model_nelbo_k(model, p, imgs, 2, stratified=st).sum() / s["subpixels"] for st in (True, False))
    assert s["model_nelbo_k_bpd"] == pytest.approx(strat) and strat != pytest.approx(rand)
    assert _run(npz, tmp_path / "all.json", tiny_model_dir, "--nelbo-steps", "3").exit_code == 0
    s = next(r for r in json.loads((tmp_path / "all.json").read_text())["runs"] if r["codec"] == "vdm")["summary"]
    assert s["model_nelbo_k_estimator"] == "all steps" and s["model_nelbo_k_sampled_steps"] == 3


def test_photo_set_is_checked_pixel_for_pixel(tmp_path, monkeypatch):
    """A rebuilt photo whose pixels differ from the pinned hash is an error, never a silent new set."""
    from PIL import Image
    photos = _photos_full()
    import io
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    monkeypatch.setattr(photos, "_member", lambda source, member, cache: buf.getvalue())
    with pytest.raises(BbcError, match="do not match"):
        photos.build(tmp_path / "out", tmp_path / "cache", names=["skimage_chelsea"])
    assert not (tmp_path / "out" / "skimage_chelsea.png").exists()


@pytest.mark.slow
def test_photo_set_rebuilds_from_the_package_registries(tmp_path):
    """Downloads ~150 MB (Debian .debs and the scikit-image wheel); needs apt-get and network."""
    import shutil
    photos = _photos_full()
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("needs apt-get and dpkg-deb")
    out = photos.build(tmp_path / "out", tmp_path / "cache")
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(photos.PHOTOS)


def test_slices_coded_apart_merge_into_one_resumable_run(npz, tmp_path, tiny_model_dir, monkeypatch):
    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "all.json"
    assert _run(npz, a, tiny_model_dir, "--mode", "per-file", "--limit", "2", "--no-summary").exit_code == 0
    vdm_a = next(x for x in json.loads(a.read_text())["runs"] if x["codec"] == "vdm")
    assert not vdm_a["complete"] and "summary" not in vdm_a and len(vdm_a["records"]) == 2
    assert _run(npz, b, tiny_model_dir, "--mode", "per-file", "--offset", "2").exit_code == 0
    parts = [json.loads(p.read_text()) for p in (b, a)]
    merged = bench.merge(parts)
    assert merged["offset"] == 0 and merged["images"] == 3 and len(merged["runs"]) == 1  # png dropped
    assert [r["first"] for r in merged["runs"][0]["records"]] == ["00000.png", "00001.png", "00002.png"]
    # both slices' environments are kept, and each record still names its own
    assert len(merged["stretches"]) == 2 and [r["stretch"] for r in merged["runs"][0]["records"]] == [0, 0, 1]
    bench.save_json(merged, str(out))
    calls = []
    real = api.compress
    monkeypatch.setattr(api, "compress", lambda imgs, *a, **k: calls.append(len(imgs)) or real(imgs, *a, **k))
    r = _run(npz, out, tiny_model_dir, "--mode", "per-file", "--resume", "--codec", "vdm")
    assert r.exit_code == 0, r.output
    assert calls == []  # no image coded again by the model (png redoes its own)
    vdm = next(x for x in json.loads(out.read_text())["runs"] if x["codec"] == "vdm")
    assert vdm["complete"] and vdm["summary"]["images"] == 3 and [p["name"] for p in vdm["per_image"]] == [
        "00000.png", "00001.png", "00002.png"]
    with pytest.raises(BbcError, match="consecutive"):
        bench.merge([parts[1], parts[1]])
    # a finished slice (with its own summary) joins like one coded with --no-summary
    finished = tmp_path / "a2.json"
    assert _run(npz, finished, tiny_model_dir, "--mode", "per-file", "--limit", "2").exit_code == 0
    assert len(bench.merge([json.loads(finished.read_text()), parts[0]])["runs"][0]["records"]) == 3
    stopped = json.loads(a.read_text())
    vdm_a = next(x for x in stopped["runs"] if x["codec"] == "vdm")
    # a first slice that has not coded all its images is an error: nothing is dropped silently
    vdm_a["records"] = vdm_a["records"][:1]
    with pytest.raises(BbcError, match="1 of its 2 images"):
        bench.merge([stopped, parts[0]])


def test_nelbo_exact_script_recomputes_the_reference_of_a_per_file_run(npz, tmp_path, tiny_model_dir):
    script = _bench_module("nelbo_exact")
    from bbcodec.diffusion.codec import CodingParams
    from bbcodec.registry import load_model
    out = tmp_path / "r.json"
    assert _run(npz, out, tiny_model_dir, "--mode", "per-file", "--nelbo-steps", "2").exit_code == 0
    assert script.main([str(out), "--model", str(tiny_model_dir), "--stratified", "2"]) == 0
    rows = json.loads((tmp_path / "r.nelbo_exact.json").read_text())["images"]
    o = next(r for r in json.loads(out.read_text())["runs"] if r["codec"] == "vdm")["options"]
    model = load_model(str(tiny_model_dir))
    p = CodingParams(steps=3, grid="uniform", latents=o["latents"])
    ref = 1 if o["latents"] == 2 else slice(None)  # with latent coding v2, the fitted-variance reference
    assert [r["name"] for r in rows] == ["00000.png", "00001.png", "00002.png"]
    for row, a in zip(rows, cifar_samples()[:3]):  # each image's own file against its own reference
        img = from_array(a, row["name"])
        exact, strat = (reference.model_nelbo_k(model, p, [img], m, fitted=o["latents"] == 2,
                                            stratified=m is not None)[ref].ravel()[0] for m in (None, 2))
        assert row["file_over_nelbo_k"] == pytest.approx(row["file_bits"] / exact, rel=1e-12)
        assert row["file_over_stratified_nelbo_k"] == pytest.approx(row["file_bits"] / strat, rel=1e-12)
        assert row["sampled_steps"] == 2 and row["stratified_steps"] == 2


@needs_toml
def test_docs_regenerate_identical_from_the_committed_results():
    """README's headline and the docs' result, model and flow-padding blocks are what the committed JSON gives
    (python bench/suite.py report regenerates them); no plot is drawn here."""
    report = _bench_module("report")
    regenerated = report.generated()
    assert {p.name for p in regenerated} == {"README.md", "results.md", "models.md", "flow.md"}
    for path, text in regenerated.items():
        assert path.read_text() == text, f"{path}: run python bench/suite.py report"


@needs_toml
def test_the_suite_declares_every_published_result(capsys):
    suite = _bench_module("suite")
    m = suite.manifest()
    names = [e["name"] for e in m["bench"] + m["study"]]
    assert len(names) == len(set(names))
    for e in m["bench"]:
        assert {"title", "model", "dataset", "outputs", "long", "cpu", "commands"} <= set(e), e["name"]
        if not e.get("needs"):  # a GPU entry's outputs are written on a GPU machine
            assert all((suite.ROOT / o).exists() for o in e["outputs"]), e["name"]
    for s in m["study"]:
        folder = suite.ROOT / s["folder"]
        assert (folder / "README.md").exists() and any((folder / "results").iterdir()), s["name"]
    # every result JSON in bench/results/ is some entry's output
    declared = {o for e in m["bench"] for o in e["outputs"]}
    import re
    results = {p.relative_to(suite.ROOT).as_posix() for p in (suite.ROOT / "bench" / "results").glob("*.json")
               if not re.search(r"\.part\d\.", p.name)}  # slices of a run in progress (gitignored)
    assert not results - declared
    # the default selection leaves out long and GPU entries; a model override fills {model}
    short = [e["name"] for e in suite.selected([], all_=False)]
    assert "cifar10-1000" not in short and "cuda-check" not in short and "cifar10-classical" in short
    assert suite.main(["run", "cifar10-1000", "--model", "M", "--dry-run"]) == 0
    assert "--model M " in capsys.readouterr().out
    with pytest.raises(SystemExit, match="take no model"):
        suite.main(["run", "cifar10-classical", "--model", "M", "--dry-run"])
    assert suite.main(["--list"]) == 0 and "studies" in capsys.readouterr().out


def test_bbans_order_runs_are_keyed_apart(npz, tmp_path, tiny_model_dir):
    """--order bbans adds runs beside Bit-Swap's (whose keys are as before the option) in one JSON."""
    out = tmp_path / "o.json"
    r = CliRunner().invoke(cli, ["bench", str(npz), "--model", str(tiny_model_dir), "--steps", "3", "--grid", "uniform",
                                 "--mode", "per-file", "--bootstrap", "none", "--order", "bitswap", "--order", "bbans",
                                 "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    runs = json.loads(out.read_text())["runs"]
    assert [":bbans:" in x["key"] for x in runs] == [False, True]
    assert [x["options"]["order"] for x in runs] == ["bitswap", "bbans"]
    bs, bb = (x["summary"] for x in runs)
    assert bb["initial_bits"] > bs["initial_bits"]
    assert "order=bbans" in out.with_suffix(".md").read_text()


def test_a_run_without_tile_codes_at_the_models_default_for_the_dataset(tmp_path, tiny_model, monkeypatch):
    """No --tile: the model's coding tile where the dataset's images call for it (then keyed and recorded
    as any --tile run), its own tile otherwise; every file of a run at the run's tile, even one whose
    own default would differ."""
    import dataclasses
    from PIL import Image
    from bbcodec import registry
    wide = dataclasses.replace(tiny_model, coding_tile=64)
    monkeypatch.setattr(registry, "load_model", lambda *a, **k: wide)
    seen = []
    compress = api.compress
    monkeypatch.setattr(api, "compress", lambda *a, **k: seen.append(k["tile"]) or compress(*a, **k))
    rng = np.random.default_rng(0)
    for sizes, T in ((((330, 300), (40, 40)), 64), (((40, 40), (32, 32)), None)):
        d = tmp_path / f"set{sizes[0][0]}"
        d.mkdir()
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / f"{i}.png")
        seen.clear()
        res = bench.run(str(d), ["vdm"], None, 0, None, "wide", 2, "uniform", 0, 8, ["per-file"], show_progress=False)
        run = res["runs"][0]
        assert (":t64:" in run["key"]) == (T == 64) and run["options"].get("tile") == T
        assert seen == [T or 32] * 2  # the 40x40 file too: alone it would be coded at 32
