"""The registry: models found by name, sha256 prefix or folder; every load sha256-checked; retired
models named with the commit that ships them; and a wheel that carries its default model."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bbcodec import registry
from bbcodec.errors import ModelError
from bbcodec.registry import find_by_sha256, list_models, load_model, model_for_header, read_model

from conftest import make_tiny_model

REPO = Path(__file__).resolve().parent.parent


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the registry that ships ------------------------------------------------------------------

def test_shipped_registry_entries():
    reg = json.loads((registry.PACKAGE_MODELS / "registry.json").read_text())
    assert reg["format"] == registry.REGISTRY_FORMAT
    models = reg["models"]
    assert not models[reg["default"]].get("retired")
    for name, e in models.items():
        folder = registry.PACKAGE_MODELS / e.get("path", name)
        flow = not e.get("retired") and registry.is_flow_config(json.loads((folder / "config.json").read_text()))
        # a diffusion model ships its time grids and error curve; a flow has none
        assert len(e["sha256"]) == 64 and (flow or len(e["grids_sha256"]) == 64), name
        if flow:
            assert "grids_sha256" not in e and (folder / "weights.pt").exists() and (folder / "card.json").exists(), name
            continue
        if e.get("retired"):
            # its files left the package; the entry says where they are and keeps the card's figures
            assert "path" not in e and not folder.exists(), name
            assert len(e["last_commit"]) == 40 and e["last_path"], name
            assert {"parameters", "test_nelbo_bpd", "coded", "error_curve_fit"} <= set(e["figures"]), name
        else:
            assert (folder / "weights.pt").exists() and (folder / "grids.json").exists(), name
    # a file's header keeps 16 hex digits: they must tell every registered model apart
    prefixes = [e["sha256"][:registry.SHA_PREFIX_DIGITS] for e in models.values()]
    assert len(set(prefixes)) == len(prefixes)
    # only the shipped ones are listed by default
    assert [m["name"] for m in list_models()] == [k for k, e in models.items() if not e.get("retired")]
    assert len(list_models(include_retired=True)) == len(models)


def test_default_model_found_by_name_sha_prefix_and_header():
    m = load_model()
    assert load_model(m.sha256) is m  # the first 16 hex digits, as a file's header holds them
    assert find_by_sha256(m.sha256) == m.name
    # a header with another name but these weights (a renamed copy) finds the same model
    assert model_for_header({"name": "renamed", "sha256": m.sha256}) is m


def test_retired_model_is_one_line_naming_its_commit():
    retired = [m for m in list_models(include_retired=True) if m.get("retired")]
    if not retired:
        pytest.skip("no retired model in this release")
    e = retired[0]
    short = e["last_commit"][:12]
    with pytest.raises(ModelError) as ex:
        load_model(e["name"])
    assert f"model {e['name']} is retired from this release" in str(ex.value)
    assert f"git checkout {short}" in str(ex.value)
    with pytest.raises(ModelError) as ex:
        model_for_header({"name": e["name"], "sha256": e["sha256"][:16]})
    msg = str(ex.value)
    assert msg.startswith(f"file was coded with model {e['name']} ") and "retired" in msg and short in msg
    assert "\n" not in msg
    # the old layout's path of a retired model says the same
    with pytest.raises(ModelError, match="retired"):
        load_model(f"models/{e['name']}")


def test_unknown_header_model():
    with pytest.raises(ModelError, match="not registered here"):
        model_for_header({"name": "nobody", "sha256": "0123456789abcdef"})


# -- a registry of tiny models ----------------------------------------------------------------

@pytest.fixture()
def tiny_registry(tmp_path, monkeypatch):
    """BBCODEC_MODELS-style folder: tiny-a shipped (the default), tiny-r retired."""
    models = tmp_path / "models"
    a = make_tiny_model(models / "tiny-a")
    (a / "grids.json").write_text(json.dumps({"grids": {}}))
    r = make_tiny_model(tmp_path / "elsewhere" / "tiny-r", seed=3)
    reg = {"format": 2, "default": "tiny-a", "models": {
        "tiny-a": {"path": "tiny-a", "sha256": _sha(a / "weights.pt"), "grids_sha256": _sha(a / "grids.json"),
                   "description": "tiny"},
        "tiny-r": {"retired": True, "sha256": _sha(r / "weights.pt"), "grids_sha256": "0" * 64,
                   "description": "tiny, retired", "last_commit": "ab" * 20, "last_path": "models/tiny-r",
                   "figures": {}}}}
    (models / "registry.json").write_text(json.dumps(reg))
    monkeypatch.setattr(registry, "MODELS_DIR", models)
    monkeypatch.setattr(registry, "_CACHE", {})
    return models, reg, r


def _set_sha(models: Path, name: str, sha: str):
    reg = json.loads((models / "registry.json").read_text())
    reg["models"][name]["sha256"] = sha
    (models / "registry.json").write_text(json.dumps(reg))


def test_a_registered_folder_given_by_path_is_checked(tiny_registry):
    models, reg, _ = tiny_registry
    m = load_model(str(models / "tiny-a"))
    assert m.name == "tiny-a" and m.sha256 == reg["models"]["tiny-a"]["sha256"][:16]
    registry._CACHE.clear()
    _set_sha(models, "tiny-a", "f" * 64)
    for how in ("tiny-a", str(models / "tiny-a")):
        with pytest.raises(ModelError, match="weights fail their sha256 check"):
            load_model(how)
    _set_sha(models, "tiny-a", reg["models"]["tiny-a"]["sha256"])
    (models / "tiny-a" / "grids.json").write_text(json.dumps({"grids": {"x": {}}}))
    with pytest.raises(ModelError, match="grids.json fails its sha256 check"):
        load_model(str(models / "tiny-a"))


def test_cli_decompress_of_a_retired_models_file_is_one_line(tiny_registry, tmp_path):
    from click.testing import CliRunner
    from bbcodec.cli import cli

    _, _, retired_dir = tiny_registry
    from conftest import pil_image
    pil_image("RGB", 16, 16).save(tmp_path / "a.png")
    r = CliRunner().invoke(cli, ["compress", str(tmp_path / "a.png"), "--model", str(retired_dir), "--steps", "2",
                                 "--quiet"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["decompress", str(tmp_path / "a.bbc"), "-o", str(tmp_path / "out.png")])
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 1 and len(lines) == 1, lines
    assert "tiny-r" in lines[0] and "retired from this release" in lines[0] and "git checkout abababababab" in lines[0]
    assert not (tmp_path / "out.png").exists()


def _add_photo_prior(models: Path) -> None:
    """tiny-p registered as the registry's photo prior beside the default tiny-a."""
    p = make_tiny_model(models / "tiny-p", seed=4)
    (p / "grids.json").write_text(json.dumps({"grids": {}}))
    reg = json.loads((models / "registry.json").read_text())
    reg["photo_default"] = "tiny-p"
    reg["models"]["tiny-p"] = {"path": "tiny-p", "sha256": _sha(p / "weights.pt"),
                               "grids_sha256": _sha(p / "grids.json"), "description": "tiny photos"}
    (models / "registry.json").write_text(json.dumps(reg))


def test_the_default_prior_follows_the_input_sizes(tiny_registry):
    from bbcodec.defaults import PHOTO_PRIOR_ABOVE_PIXELS as P
    models, _, _ = tiny_registry
    assert registry.default_model_for([P * 10])[0] == "tiny-a"  # no photo prior registered: the default
    _add_photo_prior(models)
    assert registry.default_model_for([32 * 32] * 50)[0] == "tiny-a"  # CIFAR-sized images
    assert registry.default_model_for([P + 1])[0] == "tiny-p"  # one tile and a pixel more
    # by pixels: most of them are in the large image, or in the small ones
    assert registry.default_model_for([P] * 3 + [4 * P])[0] == "tiny-p"
    assert registry.default_model_for([P] * 5 + [4 * P])[0] == "tiny-a"
    assert registry.default_model_for([P] * 4 + [4 * P])[0] == "tiny-a"  # a tie: not most of the pixels
    roles = {m["name"]: (m["default"], m["photo_default"]) for m in list_models()}
    assert roles == {"tiny-a": (True, False), "tiny-p": (False, True)}


def test_cli_compress_picks_the_prior_per_input_and_model_overrides(tiny_registry, tmp_path):
    from click.testing import CliRunner
    from bbcodec.cli import cli
    from bbcodec.format import container
    from conftest import pil_image

    models, _, _ = tiny_registry
    _add_photo_prior(models)
    pil_image("RGB", 16, 16).save(tmp_path / "small.png")
    pil_image("RGB", 40, 36, 1).save(tmp_path / "large.png")
    for src, args, want in (("small.png", [], "tiny-a"), ("large.png", [], "tiny-p"),
                            ("large.png", ["--model", "tiny-a"], "tiny-a")):
        out = tmp_path / f"{want}-{src}.bbc"
        r = CliRunner().invoke(cli, ["compress", str(tmp_path / src), "-o", str(out), "--steps", "2", *args])
        assert r.exit_code == 0, r.output
        assert container.parse(out.read_bytes()).header["model"]["name"] == want
        if not args:
            assert f"model {want}: the " in r.stderr and "(--model overrides)" in r.stderr
        r = CliRunner().invoke(cli, ["decompress", str(out), "-o", str(tmp_path / "back.png"), "--force"])
        assert r.exit_code == 0, r.output
    import bbcodec
    for w, want in ((16, "tiny-a"), (40, "tiny-p")):  # the Python API picks alike
        data = bbcodec.compress(np.asarray(pil_image("RGB", w, 36, 2)), steps=2)
        assert container.parse(data).header["model"]["name"] == want
    r = CliRunner().invoke(cli, ["models"])
    lines = r.output.splitlines()
    assert lines[0].startswith("* tiny-a: [compress's default for images of at most 1,024 pixels]")
    assert lines[1].startswith("* tiny-p: [compress's default for images of more than 1,024 pixels]")


def test_init_from_is_checked_and_recorded(tiny_registry, tmp_path):
    from bbcodec.train import TrainOptions, train

    models, reg, free = tiny_registry
    x = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x)

    def opts(run, init):
        return TrainOptions(data=str(tmp_path / "d.npz"), run=str(tmp_path / run), minutes=0.005, batch=4,
                            val_images=4, threads=1, init_from=init)

    f = read_model("tiny-a")
    assert f.registered and f.sha256 == reg["models"]["tiny-a"]["sha256"]
    # a free folder starts a run, which records the sha256 of the weights it started from
    train(opts("free", str(free)), progress=False)
    meta = json.loads(torch.load(tmp_path / "free" / "state.pt", weights_only=True)["meta"])
    assert meta["init_from"] == {"model": "tiny-r", "sha256": _sha(free / "weights.pt"), "registered": False}
    # a registered model whose weights are not the registered ones starts nothing, by name or by path
    _set_sha(models, "tiny-a", "f" * 64)
    for run, init in (("bad1", "tiny-a"), ("bad2", str(models / "tiny-a"))):
        with pytest.raises(ModelError, match="sha256 check"):
            train(opts(run, init), progress=False)
        assert not (tmp_path / run).exists()
    # a retired name names its commit
    with pytest.raises(ModelError, match="retired"):
        train(opts("bad3", "tiny-r"), progress=False)


def test_modelcard_refuses_to_overwrite_a_registered_model(tiny_registry):
    from bbcodec.modelcard import ship
    with pytest.raises(ValueError, match="registered already"):
        ship("no-run", "tiny-a", "no-test.npz", "no-train.npz")


def test_retire_checks_the_commit_and_keeps_the_entry(tmp_path, monkeypatch):
    from bbcodec import modelcard

    if shutil.which("git") is None:
        pytest.skip("no git")
    repo = tmp_path / "repo"
    models = repo / "models"
    card = {"parameters": 1, "training": {"images_seen_at_best": 2, "wall_seconds_at_best": 3.0},
            "val_nelbo_bpd": 4.0, "test_nelbo_bpd": 5.0, "test_nelbo_se": 0.1, "test_images": 10}
    reg = {"format": 2, "default": "b", "models": {}}
    for name, seed in (("a", 0), ("b", 1)):
        d = make_tiny_model(models / name, seed=seed)
        (d / "grids.json").write_text(json.dumps({"grids": {}}))
        (d / "card.json").write_text(json.dumps(card))
        reg["models"][name] = {"path": name, "sha256": _sha(d / "weights.pt"), "grids_sha256": _sha(d / "grids.json"),
                               "description": name}
    (models / "registry.json").write_text(json.dumps(reg))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "m"], check=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    monkeypatch.setattr(registry, "MODELS_DIR", models)
    with pytest.raises(ValueError, match="default"):
        modelcard.retire("b", head)
    # a commit whose copy is not the registered one changes nothing
    (models / "a" / "grids.json").write_text(json.dumps({"grids": {"x": {}}}))
    subprocess.run(git + ["commit", "-qam", "other grids"], check=True)
    with pytest.raises(ValueError, match="not the registered one"):
        modelcard.retire("a", "HEAD")
    assert json.loads((models / "registry.json").read_text()) == reg and (models / "a").exists()
    e = modelcard.retire("a", head)
    assert e["retired"] and e["last_commit"] == head and e["last_path"] == "models/a" and "path" not in e
    assert e["figures"]["test_nelbo_bpd"] == 5.0 and e["figures"]["coded"] is None
    assert not (models / "a").exists()
    assert json.loads((models / "registry.json").read_text())["models"]["a"] == e


# -- a wheel carries its default model ---------------------------------------------------------

def test_a_wheel_install_has_the_default_model(tmp_path):
    """Build a wheel from the working tree, install it (not editable) into a fresh venv that sees
    the dependencies of this one but not its bbcodec, and run `bbcodec models` and a short
    `bbcodec demo` from a folder outside the repository. About 10 s on one CPU thread."""
    pytest.importorskip("setuptools")
    t0 = time.time()
    src = tmp_path / "src"  # a copy, so the build writes no build/ or egg-info into the repository
    shutil.copytree(REPO / "bbcodec", src / "bbcodec", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / f, src / f)

    def sh(*cmd, **kw):
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
        assert p.returncode == 0, (cmd, p.stdout[-2000:], p.stderr[-2000:])
        return p.stdout

    pip = [sys.executable, "-m", "pip"]
    sh(*pip, "wheel", src, "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist")
    wheel = next((tmp_path / "dist").glob("bbcodec-*.whl"))
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", "--without-pip", venv)
    py = venv / "bin" / "python"
    sh(*pip, "--python", py, "install", "-q", "--no-deps", "--no-index", wheel)
    # torch, numpy, ... from this environment, after the fresh venv's own site-packages: a plain path
    # line, so this environment's .pth files (its editable bbcodec) are not run
    site = sh(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    Path(site, "_deps_from_the_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("BBCODEC_MODELS", "PYTHONPATH")}
    env["OMP_NUM_THREADS"] = "1"
    out = tmp_path / "elsewhere"
    out.mkdir()
    where = sh(py, "-c", "import bbcodec; print(bbcodec.__file__)", cwd=out, env=env)
    assert where.startswith(site), where
    assert sh(venv / "bin" / "bbcodec", "models", cwd=out, env=env).startswith("* ")
    demo = sh(venv / "bin" / "bbcodec", "demo", "--steps", "8", "--quiet", cwd=out, env=env)
    assert "bit-exact round trip: yes" in demo, demo
    print(f"wheel build, install, models and demo: {time.time() - t0:.1f} s")


def test_the_cli_codes_with_a_registered_models_coding_tile(tiny_registry, tmp_path):
    """A registry entry's coding_tile reaches `bbcodec compress` (the header records it), `bbcodec models`
    names it, and --tile overrides it."""
    from click.testing import CliRunner
    from bbcodec.cli import cli
    from bbcodec.format import container
    from conftest import pil_image

    models, reg, _ = tiny_registry
    name = reg["default"]
    reg["models"][name]["coding_tile"] = 64
    (models / "registry.json").write_text(json.dumps(reg))
    pil_image("RGB", 330, 300).save(tmp_path / "a.png")
    for extra, T in (([], 64), (["--tile", "32"], 32)):
        out = tmp_path / f"a{T}.bbc"
        r = CliRunner().invoke(cli, ["compress", str(tmp_path / "a.png"), "-o", str(out), "--steps", "2", "--json",
                                     *extra])
        assert r.exit_code == 0, r.output
        assert container.parse(out.read_bytes()).header["coding"]["tile"] == T and f"{T}x{T} tile" in r.stderr
    line = next(x for x in CliRunner().invoke(cli, ["models"]).output.splitlines() if f" {name}: " in x)
    assert "64x64 tiles for large images" in line


def test_convert_registers_the_coding_tile_and_the_photo_role(tiny_registry, tmp_path):
    """`bbcodec convert --register NAME --coding-tile 64 --photo-default` writes both into the registry entry,
    so re-registering a photo prior needs no hand edit; the role flags without --register are refused
    before anything is written."""
    from click.testing import CliRunner
    from bbcodec.cli import cli
    from conftest import cifar_samples

    models, reg, _ = tiny_registry
    npz = tmp_path / "calibration.npz"
    np.savez(npz, x=cifar_samples())
    free = tmp_path / "free"
    r = CliRunner().invoke(cli, ["convert", str(models / "tiny-a"), "--data", str(npz), "--out", str(free),
                                 "--images", "10", "--coding-tile", "64"])
    assert r.exit_code != 0 and "go with --register" in r.output and not free.exists()
    # a taken name, or a registered model's folder, is refused before the folder is touched
    for name, out in (("tiny-a", models / "tiny-c"), ("tiny-c", models / "tiny-a")):
        before = sorted(p.name for p in models.rglob("*"))
        r = CliRunner().invoke(cli, ["convert", str(models / "tiny-a"), "--data", str(npz), "--out", str(out),
                                     "--images", "10", "--register", name])
        assert r.exit_code == 1 and "Traceback" not in r.output and "registered" in r.output, r.output
        assert sorted(p.name for p in models.rglob("*")) == before
    r = CliRunner().invoke(cli, ["convert", str(models / "tiny-a"), "--data", str(npz), "--out", str(models / "tiny-b"),
                                 "--images", "10", "--register", "tiny-b", "--coding-tile", "64", "--photo-default",
                                 "--description", "a tiny photo prior"])
    assert r.exit_code == 0, r.output
    new = json.loads((models / "registry.json").read_text())
    assert new["models"]["tiny-b"]["coding_tile"] == 64 and new["models"]["tiny-b"]["description"] == "a tiny photo prior"
    assert new["photo_default"] == "tiny-b" and new["default"] == reg["default"]
    registry._CACHE.clear()
    assert load_model("tiny-b").coding_tile == 64
