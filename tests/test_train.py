"""The training loop: runs, logs, checkpoints, resumes, and can start from a shipped model."""
import csv
import json

import numpy as np
import pytest
import torch

from bbcodec.train import TrainOptions, evaluate_nelbo, export_model, train

from conftest import TINY


def _data(tmp_path, n=40):
    x = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    p = tmp_path / "d.npz"
    np.savez(p, x=x)
    return str(p)


def test_train_resume_and_export(tmp_path):
    data = _data(tmp_path)
    run = tmp_path / "run"
    opts = TrainOptions(data=data, run=str(run), minutes=0.03, batch=4, val_images=8, val_every_min=0.01,
                        log_every=2, threads=1)
    train(opts, TINY, progress=False)
    state = torch.load(run / "state.pt", weights_only=True)
    steps1 = json.loads(state["meta"])["step"]
    assert steps1 > 0
    with open(run / "log.csv", "a") as f:  # a stretch killed between checkpoints logged past the last one
        f.write(f"{steps1 + 1},0,0,9,,,,,,,,\n")
    train(opts, progress=False)  # resumes: the step counter goes on
    steps2 = json.loads(torch.load(run / "state.pt", weights_only=True)["meta"])["step"]
    assert steps2 > steps1
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert rows and any(r["val_bpd"] for r in rows)
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(steps) and "9" not in [r["loss_bpd"] for r in rows]  # the orphan row was dropped
    out = export_model(str(run), str(tmp_path / "models"), "m")
    sd = torch.load(out / "weights.pt", weights_only=True)
    assert any(v.dtype == torch.float16 for v in sd.values())
    # a new run from the exported weights starts where they are
    opts2 = TrainOptions(data=data, run=str(tmp_path / "run2"), minutes=0.01, batch=4, val_images=8,
                         threads=1, init_from=str(out))
    train(opts2, progress=False)
    assert (tmp_path / "run2" / "state.pt").exists()


def test_evaluate_nelbo_is_repeatable(tmp_path):
    from bbcodec.diffusion.net import VDM
    m = VDM(TINY)
    x = np.random.default_rng(1).integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    a, b = evaluate_nelbo(m, x, batch=3), evaluate_nelbo(m, x, batch=3)
    assert a == b and a["n"] == 6 and np.isfinite(a["bpd"])


def test_ddp_two_cpu_processes_on_gloo(tmp_path):
    """torchrun with two CPU processes: one log and one checkpoint (rank 0), global batch 2 x batch,
    and the run resumes in a single process afterwards."""
    import subprocess
    import sys
    data = _data(tmp_path)
    run = tmp_path / "ddp"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(TINY))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "bbcodec.cli", "train", "--data", data, "--run-dir", str(run), "--minutes", "0.1", "--batch", "4",
           "--val-images", "8", "--config", str(cfg)]
    env = dict(__import__("os").environ, OMP_NUM_THREADS="1")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    meta = json.loads(torch.load(run / "state.pt", weights_only=True)["meta"])
    assert meta["step"] > 0 and meta["images"] == 8 * meta["step"]
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert rows[-1]["val_bpd"]  # the stretch ends with a validation point
    train(TrainOptions(data=data, run=str(run), minutes=0.01, batch=4, val_images=8, threads=1), progress=False)
    assert json.loads(torch.load(run / "state.pt", weights_only=True)["meta"])["step"] > meta["step"]


def test_a_stretch_whose_last_step_was_logged_still_ends_with_validation(tmp_path):
    from bbcodec.train import resumed_log
    run = tmp_path / "run"
    # log_every=1: every step writes a row, so the stretch ends with no step since its last row
    train(TrainOptions(data=_data(tmp_path), run=str(run), minutes=0.02, batch=4, val_images=8, log_every=1,
                       threads=1), TINY, progress=False)
    rows = list(csv.DictReader(open(run / "log.csv")))
    last, before = rows[-1], rows[-2]
    assert last["val_bpd"] and not before["val_bpd"]
    assert last["step"] == before["step"] and last["loss_bpd"] == before["loss_bpd"] != "0.0"
    kept = list(csv.DictReader(resumed_log(run / "log.csv").splitlines()))
    assert kept[-1] == last and [r["step"] for r in kept].count(last["step"]) == 1


def test_resumed_log_keeps_the_surviving_history(tmp_path):
    from bbcodec.train import resumed_log
    p = tmp_path / "log.csv"
    # steps 30 and 40 were logged by a stretch killed after its checkpoint at 20; the next resumed there
    p.write_text("step,images\n10,1\n20,2\n30,3\n40,4\n30,3b\n40,4b\n50,5\n")
    assert resumed_log(p) == "step,images\n10,1\n20,2\n30,3b\n40,4b\n50,5\n"


def test_cooldown_decays_the_rate_and_resumes_along_the_same_line(tmp_path):
    data = _data(tmp_path)
    run = tmp_path / "run"
    opts = TrainOptions(data=data, run=str(run), minutes=0.02, batch=4, val_images=8, log_every=1, threads=1,
                        lr=1e-3, warmup=1)
    train(opts, TINY, progress=False)
    start = json.loads(torch.load(run / "state.pt", weights_only=True)["meta"])["images"]
    cool = TrainOptions(**{**opts.__dict__, "cooldown_images": 40, "cooldown_to": 0.1})
    train(cool, progress=False)
    train(opts, progress=False)  # a later stretch without the option keeps the recorded decay
    meta = json.loads(torch.load(run / "state.pt", weights_only=True)["meta"])
    assert meta["cooldown"] == {"start": start, "images": 40, "to": 0.1}
    rows = [r for r in csv.DictReader(open(run / "log.csv")) if int(r["images"]) > start]
    for r in rows:  # the logged rate is the line from lr at `start` to lr / 10 at start + 40 images
        f = min(1.0, (int(r["images"]) - start) / 40)
        assert float(r["lr"]) == pytest.approx(1e-3 * (1 - f) + 1e-4 * f)
    assert float(rows[-1]["lr"]) == pytest.approx(1e-4) and meta["images"] >= start + 40


def test_bf16_autocast_trains_and_keeps_float32_weights(tmp_path):
    run = tmp_path / "run"
    opts = TrainOptions(data=_data(tmp_path), run=str(run), minutes=0.02, batch=4, val_images=8, log_every=2,
                        threads=1, precision="bf16")
    train(opts, TINY, progress=False)
    state = torch.load(run / "state.pt", weights_only=True)
    assert json.loads(state["meta"])["step"] > 0
    assert all(v.dtype == torch.float32 for v in state["model"].values() if v.is_floating_point())
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert rows and all(np.isfinite(float(r["loss_bpd"])) for r in rows)


def test_a_flow_trains_resumes_and_validates_with_the_same_loop(tmp_path):
    """`bbcodec train` with a flow config (arch "realnvp"): the loss is the flow's dequantization
    bound, validation its fixed-draw mean; the run resumes like a VDM run."""
    data = _data(tmp_path)
    run = tmp_path / "flow"
    cfg = {"arch": "realnvp", "levels": 1, "couplings": 2, "hidden": 8}
    opts = TrainOptions(data=data, run=str(run), minutes=0.02, batch=4, val_images=8, val_every_min=0.005,
                        log_every=2, threads=1)
    train(opts, cfg, progress=False)
    steps1 = json.loads(torch.load(run / "state.pt", weights_only=True)["meta"])["step"]
    train(opts, progress=False)
    steps2 = json.loads(torch.load(run / "state.pt", weights_only=True)["meta"])["step"]
    assert steps2 > steps1 > 0
    rows = list(csv.DictReader(open(run / "log.csv")))
    vals = [float(r["val_bpd"]) for r in rows if r["val_bpd"]]
    assert vals and all(5.0 < v < 20.0 for v in vals)  # random pixels: about 8 bits/dim and up
    assert json.loads((run / "config.json").read_text())["arch"] == "realnvp"


def _model_with_grids(tmp_path):
    """A tiny model folder with grids.json (error curve and grids opt1-opt3) measured on random images."""
    from conftest import make_tiny_model
    from bbcodec.diffusion.grids import build_grids
    from bbcodec.registry import build_vdm, read_model
    folder = make_tiny_model(tmp_path / "m")
    m = build_vdm(read_model(str(folder)))
    x = np.random.default_rng(2).integers(0, 256, (16, 3, 32, 32), dtype=np.uint8)
    gj = build_grids(m.net, m.gamma.frozen(), x, n_curve=9, batch=8, n_fine=201, ks=(4, 8))
    (folder / "grids.json").write_text(json.dumps(gj))
    return folder, m, gj


def test_coded_diffusion_is_the_coders_step_kl(tmp_path):
    """vdm_loss(coding=...) pays, per image, K times the KL of its step with the pushed variance, as the
    coder's statistic (`step_kl_var_bits`) computes it from the same draws; each image takes the settings
    in turn and the step its u falls in."""
    from bbcodec.diffusion.vdm import LN2, coding_steps, pixel_to_model_np, step_kl_var_bits, vdm_loss
    _, m, gj = _model_with_grids(tmp_path)
    sched = m.gamma.frozen()
    curve = (np.array(gj["curve"]["t"]), np.array(gj["curve"]["mse_per_dim"]))
    settings = [coding_steps(sched, np.array(gj["grids"]["opt3"][k]), "opt3", curve) for k in ("8", "4")]
    assert all(np.all(c.var_p > c.var_q) for c in settings)  # the network errs: wider than the posterior
    x = np.random.default_rng(3).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    u = torch.tensor([0.0, 0.3, 0.99, 0.6])
    torch.manual_seed(5)
    with torch.no_grad():
        got = vdm_loss(m.net, m.gamma, torch.from_numpy(x), t=u, coding=settings)["diffusion"].double().numpy()
    torch.manual_seed(5)
    f = pixel_to_model_np(x)
    torch.randn(f.shape)  # the reconstruction term's draw comes first
    eps = torch.randn(f.shape).double().numpy()
    for b in range(4):
        cs = settings[b % 2]
        i = int(u[b] * cs.steps)  # steps i + 1 = 1, 2, 8 (K = 8) and 3 (K = 4)
        a, s = (v[i + 1] for v in sched.alpha_sigma(cs.times))
        z = a * f[b] + s * eps[b]
        g = torch.tensor([float(sched.gamma(cs.times[i + 1]))])
        with torch.no_grad():
            e_hat = m.net(torch.from_numpy(z[None]).float(), g).double().numpy()[0]
        x_hat = np.clip((z - s * e_hat) / a, -1, 1)
        want = cs.steps * step_kl_var_bits(cs.c_x[i], cs.var_q[i], cs.var_p[i], f[b], x_hat).sum() / f[b].size
        assert got[b] == pytest.approx(want, rel=2e-4)


def test_coding_steps_are_the_coders_variances_and_stratified(tmp_path):
    """The pushed variance the loss trains for is the coder's (ChainSpec's push std, plus the delta^2/12 its
    bin masses add back), and a batch of n K images stratified over u pays for every step of each setting once."""
    from bbcodec.diffusion.codec import ChainSpec, CodingParams
    from bbcodec.diffusion.vdm import coding_step_rows, coding_steps
    _, m, gj = _model_with_grids(tmp_path)
    curve = (np.array(gj["curve"]["t"]), np.array(gj["curve"]["mse_per_dim"]))
    sched = m.gamma.frozen()
    settings = []
    for k in (8, 4):
        times = np.array(gj["grids"]["opt3"][str(k)])
        cs = coding_steps(sched, times, "opt3", curve)
        spec = ChainSpec(sched, CodingParams(steps=k, grid="opt3", latents=2), times=times, mse_curve=curve)
        np.testing.assert_allclose(cs.var_p, spec.push_std[1:] ** 2 + spec.delta[:-1] ** 2 / 12, rtol=1e-9)
        np.testing.assert_allclose(cs.var_q, spec.s_p[1:] ** 2, rtol=1e-9)
        settings.append(cs)
    b = 2 * 8 * 2  # each setting gets 16 images: every step of K = 8 twice, of K = 4 four times
    u = torch.remainder(0.37 + torch.arange(b) / b, 1.0)
    rows = coding_step_rows(settings, u)
    for j, cs in enumerate(settings):
        t = rows["t"][rows["setting"] == j].numpy()
        steps, counts = np.unique(t, return_counts=True)
        assert np.array_equal(steps, cs.times[1:]) and np.all(counts == 16 // cs.steps)


def test_discrete_time_fine_tuning_run(tmp_path):
    """--coding-steps: the run records its settings, trains with the schedule frozen, validates on NELBO_K,
    resumes with the same settings and refuses others; it needs a model with grids to start from."""
    from bbcodec.errors import BbcError
    folder, m, _ = _model_with_grids(tmp_path)
    data = _data(tmp_path)
    run = tmp_path / "dt"
    opts = TrainOptions(data=data, run=str(run), minutes=0.02, batch=4, val_images=8, threads=1,
                        init_from=str(folder), coding_steps=(8, 4), lr=1e-3)
    train(opts, progress=False)
    saved = json.loads((run / "coding_steps.json").read_text())
    assert [s["steps"] for s in saved["settings"]] == [8, 4] and saved["source"]["sha256"]
    sd = torch.load(run / "state.pt", weights_only=True)
    assert torch.equal(sd["model"]["gamma.gamma_min"], m.state_dict()["gamma.gamma_min"])
    assert not torch.equal(sd["model"]["net.out.weight"], m.state_dict()["net.out.weight"])
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert rows[-1]["val_bpd"]
    step1 = json.loads(sd["meta"])["step"]
    train(TrainOptions(data=data, run=str(run), minutes=0.01, batch=4, val_images=8, threads=1), progress=False)
    sd = torch.load(run / "state.pt", weights_only=True)
    assert json.loads(sd["meta"])["step"] > step1  # resumed in discrete time: the schedule still frozen
    assert torch.equal(sd["model"]["gamma.gamma_max"], m.state_dict()["gamma.gamma_max"])
    from bbcodec.modelcard import card_for_export, render_card
    out = export_model(str(run), str(tmp_path / "models"), "dt")
    card = card_for_export(str(run), str(out), data="random")
    assert card["training"]["coding_steps"]["steps"] == [8, 4] and "val_nelbo_bpd" not in card
    vals = [float(r["val_bpd"]) for r in csv.DictReader(open(run / "log.csv")) if r["val_bpd"]]
    assert card["val_nelbo_k_fitted_bpd"] == min(vals)
    card.update(val_nelbo_bpd=3.0, test_nelbo_bpd=3.1, test_nelbo_se=0.1, test_images=8, test_nelbo_note="n")
    assert "fine-tuned in discrete time for K = 8, 4" in render_card(card)
    with pytest.raises(BbcError, match="K = 8, 4"):
        train(TrainOptions(data=data, run=str(run), minutes=0.01, batch=4, val_images=8, threads=1,
                           coding_steps=(100,)), progress=False)
    # a start that fails after its settings were built leaves no settings for the next start to reuse
    with pytest.raises(Exception):
        train(TrainOptions(data=str(tmp_path / "missing.npz"), run=str(tmp_path / "dt4"), minutes=0.01, batch=4,
                           val_images=8, threads=1, init_from=str(folder), coding_steps=(8,)), progress=False)
    assert not (tmp_path / "dt4" / "coding_steps.json").exists()
    with pytest.raises(BbcError, match="multiple"):
        train(TrainOptions(data=data, run=str(tmp_path / "dt5"), minutes=0.01, batch=5, val_images=8,
                           threads=1, init_from=str(folder), coding_steps=(8, 4)), progress=False)
    train(TrainOptions(data=data, run=str(tmp_path / "dt4"), minutes=0.01, batch=4, val_images=8, threads=1,
                       init_from=str(folder), coding_steps=(4,), coding_grid="opt1"), progress=False)
    saved = json.loads((tmp_path / "dt4" / "coding_steps.json").read_text())["settings"]
    assert [(c["steps"], c["grid"]) for c in saved] == [(4, "opt1")]
    (folder / "grids.json").unlink()
    with pytest.raises(BbcError, match="no grids.json"):
        train(TrainOptions(data=data, run=str(tmp_path / "dt2"), minutes=0.01, batch=4, val_images=8,
                           threads=1, init_from=str(folder), coding_steps=(8,)), progress=False)
    with pytest.raises(BbcError, match="--init-from"):
        train(TrainOptions(data=data, run=str(tmp_path / "dt3"), minutes=0.01, batch=4, val_images=8,
                           threads=1, coding_steps=(8,)), TINY, progress=False)
    assert not (tmp_path / "dt2").exists() and not (tmp_path / "dt3").exists() and not (tmp_path / "dt5").exists()
    with pytest.raises(BbcError, match="continuous time"):  # a continuous run is not resumed in discrete time
        train(TrainOptions(data=data, run=str(tmp_path / "dt2c"), minutes=0.01, batch=4, val_images=8, threads=1),
              TINY, progress=False)
        train(TrainOptions(data=data, run=str(tmp_path / "dt2c"), minutes=0.01, batch=4, val_images=8, threads=1,
                           coding_steps=(8,)), progress=False)
