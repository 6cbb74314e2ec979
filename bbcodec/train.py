"""Training loop for the VDM prior: resumable, EMA, AdamW, wall-clock budget, CSV log.

State lives in a run folder:
    RUN/state.pt     full training state (weights, optimizer, EMA, data position, RNG), weights_only-loadable
    RUN/log.csv      one row per log interval (and per validation)
    RUN/config.json  the model config; the run is resumed with the config it was started with
`export_model` turns the EMA weights of a run into a model folder (shipped ones: bbcodec/models/<name>/).
"""
from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import defaults
from .diffusion.net import VDM, DEFAULT_CONFIG
from .diffusion.vdm import CodingSteps, coding_steps, vdm_loss


@dataclass
class TrainOptions:
    data: str
    run: str
    minutes: float = defaults.TRAIN_MINUTES
    batch: int = defaults.TRAIN_BATCH
    lr: float = defaults.TRAIN_LR
    warmup: int = 200
    weight_decay: float = 0.0
    ema: float = defaults.TRAIN_EMA
    val_images: int = defaults.TRAIN_VAL_IMAGES  # held out from the END of the training file, never trained on
    val_every_min: float = 10.0
    ckpt_every_min: float = 5.0
    log_every: int = 20
    threads: int = 1
    seed: int = 0
    recon_subset: int = 4
    grad_clip: float = 1.0
    init_from: str | None = None  # a registered model (name) or a model folder to start a NEW run from
    device: str = "cpu"           # cpu, cuda or auto; a run may move between them at any resume
    # Final learning-rate decay: over the next `cooldown_images` images the rate falls linearly from
    # lr to lr * cooldown_to and then stays there. Recorded in the run's state when it starts, so the
    # stretches that resume it go on along the same line; None keeps the recorded one, 0 clears it.
    cooldown_images: int | None = None
    cooldown_to: float = 0.1
    # "bf16": the forward and backward passes under torch.autocast(bfloat16) (AVX-512 BF16 CPUs, GPUs);
    # weights, optimizer and validation stay float32. Training only: coding never uses it.
    precision: str = "float32"
    # Discrete-time fine-tuning: train for what the coder pays at these step counts K (each image of a
    # batch at one of them in turn), on the starting model's grid `coding_grid` with the variances of
    # latent coding version 2 (`vdm.coding_steps`), the schedule frozen. New runs from --init-from only
    # (the grids and error curve are the model's); recorded in RUN/coding_steps.json and kept on resume.
    coding_steps: tuple[int, ...] = ()
    coding_grid: str = "opt3"


def load_images(path: str) -> np.ndarray:
    """An .npz with `x` uint8 [N, H, W, C] -> [N, C, H, W]."""
    with np.load(path) as f:
        x = f["x"]
    if x.dtype != np.uint8 or x.ndim != 4:
        raise ValueError(f"{path}: expected uint8 x of shape [N, H, W, C]")
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


@torch.no_grad()
def evaluate_nelbo(model: VDM, x: np.ndarray, batch: int = 100, seed: int = 1234, repeats: int = 1,
                   coding: list[CodingSteps] | None = None) -> dict:
    """Continuous-time NELBO estimate in bits/dim over images x (uint8 [N, C, H, W]); with coding, the
    discrete-time NELBO_K the coder pays at those settings (image b at setting b mod their number).

    Fixed seed, antithetic times: a low-variance, repeatable estimate. Returns the mean and its
    standard error over images. Runs where the model's parameters are.
    """
    device = next(model.parameters()).device
    gen_state = torch.get_rng_state()
    torch.manual_seed(seed)
    per_image = []
    try:
        for _ in range(repeats):
            for i in range(0, len(x), batch):
                xb = torch.from_numpy(x[i:i + batch]).to(device)
                if device.type == "cuda":
                    torch.cuda.manual_seed(seed + i)
                terms = vdm_loss(model.net, model.gamma, xb, coding=coding)
                per_image.append(sum(terms.values()).cpu().numpy())
    finally:
        torch.set_rng_state(gen_state)
    v = np.concatenate(per_image).reshape(repeats, len(x)).mean(0)
    if coding:  # the mean over the settings of each one's mean (image i of a batch at setting i mod n)
        which = np.concatenate([np.arange(min(batch, len(x) - i)) % len(coding) for i in range(0, len(x), batch)])
        return {"bpd": float(np.mean([v[which == j].mean() for j in range(len(coding)) if np.any(which == j)])),
                "se": float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0, "n": len(x)}
    return {"bpd": float(v.mean()), "se": float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0, "n": len(x)}


def _lr(opts: TrainOptions, st: dict) -> float:
    lr = opts.lr * min(1.0, (st["step"] + 1) / opts.warmup)
    cd = st.get("cooldown")
    if cd:
        f = min(1.0, max(0.0, (st["images"] - cd["start"]) / cd["images"]))
        lr = lr * (1.0 - f) + opts.lr * cd["to"] * f
    return lr


def _start_cooldown(opts: TrainOptions, st: dict) -> None:
    if opts.cooldown_images == 0:
        st.pop("cooldown", None)
    elif opts.cooldown_images:
        cd = st.get("cooldown")
        if not cd or cd["images"] != opts.cooldown_images or cd["to"] != opts.cooldown_to:
            st["cooldown"] = {"start": st["images"], "images": opts.cooldown_images, "to": opts.cooldown_to}


def is_flow(config: dict) -> bool:
    return config.get("arch") == "realnvp"


def build_model(config: dict) -> torch.nn.Module:
    """The trainable model a config describes: a `VDM`, or a `flows.Flow` (arch "realnvp")."""
    if is_flow(config):
        from .flows import Flow
        return Flow.from_config(config)
    return VDM(config)


def evaluate_flow(model, x: np.ndarray, batch: int = 100, seed: int = 1234) -> dict:
    """A flow's dequantization bound in bits/dim over images x (uint8 [N, C, H, W]), one fixed-seed
    uniform draw per image: mean and standard error over images."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    per_image = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i:i + batch])
            u = torch.rand(xb.shape, generator=g, dtype=next(model.parameters()).dtype)
            per_image.append(model.bpd(xb.to(device), u.to(device)).cpu().numpy())
    v = np.concatenate(per_image)
    return {"bpd": float(v.mean()), "se": float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0, "n": len(x)}


class _Loss(torch.nn.Module):
    """The training objective as one module, so DistributedDataParallel can wrap it: the VDM's three
    terms, or a flow's dequantization bound (as "recon", its only term)."""

    def __init__(self, model, recon_subset: int, coding: list[CodingSteps] | None = None):
        super().__init__()
        self.model = model
        self.recon_subset = recon_subset
        self.coding = coding

    def forward(self, xb: torch.Tensor) -> dict[str, torch.Tensor]:
        if not isinstance(self.model, VDM):
            return {"recon": self.model.bpd(xb)}
        return vdm_loss(self.model.net, self.model.gamma, xb, recon_subset=self.recon_subset, coding=self.coding)


def _distributed() -> tuple[int, int]:
    """(rank, world size) under torchrun (WORLD_SIZE > 1), else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() and os.environ.get("BBCODEC_DDP_BACKEND") != "gloo"
                                else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _resolve_train_device(device: str, rank: int) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            from .errors import BbcError
            raise BbcError("--device cuda: no CUDA device is available")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    return torch.device("cpu")


def train(opts: TrainOptions, config: dict | None = None, progress=True) -> Path:
    """Train for opts.minutes of wall clock, resuming the run folder if it holds a state.

    Under `torchrun --nproc_per_node N` every process trains on its own batch of opts.batch images
    (global batch N x batch) with DistributedDataParallel (NCCL on GPUs, gloo on CPUs); rank 0
    alone validates, logs and writes checkpoints, and decides when the budget is spent.
    """
    rank, world = _distributed()
    device = _resolve_train_device(opts.device, rank)
    run = Path(opts.run)
    cfg_path = run / "config.json"
    state_path = run / "state.pt"
    init = None
    if opts.init_from and not state_path.exists():
        # Read through the registry: a registered name, or its folder, is sha256-checked; a free
        # folder's sha256 is recorded in the run's state (and the card of a model shipped from it).
        # Before the run folder exists, so that a refused start leaves nothing behind.
        from .registry import read_model
        init = read_model(opts.init_from)
        if progress and rank == 0:
            kind = "registered, sha256 checked" if init.registered else "unregistered folder"
            print(f"starting from {init.name} ({kind}): weights sha256 {init.sha256[:16]}", flush=True)
    coding, coding_record = _coding_settings(opts, run, init, state_path.exists())  # before the folder exists
    if rank == 0:
        run.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(opts.threads)
    if cfg_path.exists():
        config = json.loads(cfg_path.read_text())
    elif init is not None:
        config = init.config
    else:
        config = dict(config or DEFAULT_CONFIG)
    if rank == 0 and not cfg_path.exists():
        cfg_path.write_text(json.dumps(config, indent=1))
    model = build_model(config)
    if coding:
        model.gamma.requires_grad_(False)  # the grid and the variances are the frozen schedule's
    ema = build_model(config)
    ema.load_state_dict(model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)

    data = load_images(opts.data)
    if rank == 0 and not state_path.exists():  # a new run: its settings (none: continuous time) replace any
        rec = run / "coding_steps.json"       # that a start which failed before its first checkpoint left
        if coding_record is None:
            rec.unlink(missing_ok=True)
        else:
            tmp = rec.with_suffix(".tmp")
            tmp.write_text(json.dumps(coding_record, indent=1))
            os.replace(tmp, rec)
    train_x, val_x = data[:-opts.val_images], data[-opts.val_images:]
    st = {"step": 0, "images": 0, "epoch": 0, "pos": 0, "seconds": 0.0, "best_val": float("inf"),
          "threads": opts.threads, "batch": opts.batch}
    if state_path.exists():
        saved = torch.load(state_path, weights_only=True, map_location="cpu")
        model.load_state_dict(saved["model"])
        ema.load_state_dict(saved["ema"])
        opt.load_state_dict(saved["opt"])
        torch.set_rng_state(saved["rng"])
        st.update(json.loads(saved["meta"]))
    else:
        torch.manual_seed(opts.seed)
        if init is not None:
            # Continue from shipped (EMA, float16-stored, upcast) weights: the optimizer state starts afresh.
            model.load_state_dict(init.state_dict)
            ema.load_state_dict(init.state_dict)
            st["init_from"] = {"model": init.name, "sha256": init.sha256, "registered": init.registered}
            if init.card:
                tr = init.card["training"]
                st["images"] = tr.get("images_seen_at_best", 0)
                st["seconds"] = tr.get("wall_seconds_at_best", 0.0)
    _start_cooldown(opts, st)
    if rank:
        torch.manual_seed(opts.seed * 1000 + rank * 7919 + st["step"])  # its own noise and times
    if device.type == "cuda":
        torch.cuda.manual_seed(opts.seed * 1000 + rank * 7919 + st["step"])
    model.to(device)
    ema.to(device)
    for state in opt.state.values():  # a resumed optimizer's moments live where the weights do
        for k, v in state.items():
            if torch.is_tensor(v) and k != "step":
                state[k] = v.to(device)
    loss_mod = _Loss(model, opts.recon_subset, coding)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        loss_mod = DistributedDataParallel(loss_mod, device_ids=[device.index] if device.type == "cuda" else None)

    def perm(epoch):
        return np.random.default_rng([opts.seed, epoch]).permutation(len(train_x))

    order = perm(st["epoch"])
    log_path = run / "log.csv"
    new_log = not log_path.exists()
    if rank == 0 and not new_log:
        _drop_rows_after(log_path, st["step"])  # rows an interrupted stretch logged past its last checkpoint
    logf = open(log_path, "a", newline="") if rank == 0 else None
    log = csv.writer(logf) if logf else None
    if log and new_log:
        log.writerow(["step", "images", "seconds", "loss_bpd", "recon", "prior", "diffusion",
                      "gamma_min", "gamma_max", "val_bpd", "val_se", "lr"])

    def cpu_state(m):
        return {k: v.detach().cpu() for k, v in m.state_dict().items()}

    def save():
        opt_sd = opt.state_dict()
        opt_sd = {"param_groups": opt_sd["param_groups"],
                  "state": {i: {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in d.items()}
                            for i, d in opt_sd["state"].items()}}
        tmp = state_path.with_suffix(".tmp")
        torch.save({"model": cpu_state(model), "ema": cpu_state(ema), "opt": opt_sd,
                    "rng": torch.get_rng_state(), "meta": json.dumps(st)}, tmp)
        os.replace(tmp, state_path)

    def validate():
        res = evaluate_flow(ema, val_x) if is_flow(config) else evaluate_nelbo(ema, val_x, coding=coding)
        if res["bpd"] < st["best_val"]:
            st["best_val"] = res["bpd"]
            torch.save(cpu_state(ema), run / "best_ema.pt")
        return res

    def write_row(val):
        nonlocal means, row_has_val
        if n_acc:  # else a validation-only row for the step just logged: it repeats that row's means
            means = [round(acc[k] / n_acc, 5) for k in acc]
        row_has_val = val is not None
        gam = ([round(float(model.gamma.gamma_min.detach()), 4), round(float(model.gamma.gamma_max.detach()), 4)]
               if isinstance(model, VDM) else ["", ""])  # a flow has no schedule
        log.writerow([st["step"], st["images"], round(st["seconds"], 1)]
                     + means + gam
                     + ([round(val["bpd"], 5), round(val["se"], 5)] if val else ["", ""])
                     + [_lr(opts, st)])
        logf.flush()

    def keep_going() -> bool:
        go = torch.tensor([time.time() - t_start < opts.minutes * 60], dtype=torch.int32)
        if world > 1:
            import torch.distributed as dist
            go = go.to(device)
            dist.broadcast(go, 0)  # rank 0's clock decides, so every process stops at the same step
        return bool(go.item())

    t_start = time.time()
    sec0 = st["seconds"]
    last_ckpt = last_val = time.time()
    acc = {"loss_bpd": 0.0, "recon": 0.0, "prior": 0.0, "diffusion": 0.0}
    n_acc = 0
    means, row_has_val = [0.0] * len(acc), True
    model.train()
    while keep_going():
        if st["pos"] + opts.batch * world > len(order):
            st["epoch"] += 1
            st["pos"] = 0
            order = perm(st["epoch"])
        lo = st["pos"] + rank * opts.batch
        idx = np.sort(order[lo:lo + opts.batch])
        st["pos"] += opts.batch * world
        xb = torch.from_numpy(train_x[idx]).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.precision == "bf16"):
            terms = loss_mod(xb)
        terms = {k: v.float() for k, v in terms.items()}
        loss = sum(terms.values()).mean()
        for g in opt.param_groups:
            g["lr"] = _lr(opts, st)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), opts.grad_clip)
        opt.step()
        with torch.no_grad():
            # Warm-started decay: early on the average must not be dominated by the initial weights.
            decay = min(opts.ema, (1 + st["step"]) / (10 + st["step"]))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1.0 - decay)
        st["step"] += 1
        st["images"] += opts.batch * world
        acc["loss_bpd"] += float(loss.detach())
        for k, v in terms.items():
            acc[k] += float(v.detach().mean())  # a flow's bound is logged as "recon"
        n_acc += 1
        st["seconds"] = sec0 + time.time() - t_start
        if rank:
            continue
        do_val = time.time() - last_val > opts.val_every_min * 60
        if st["step"] % opts.log_every == 0 or do_val:
            val = validate() if do_val else None
            if do_val:
                last_val = time.time()
            write_row(val)
            if progress:
                print(f"step {st['step']} img {st['images']} {st['seconds']/60:.1f}min "
                      f"loss {acc['loss_bpd']/n_acc:.4f}" + (f" val {val['bpd']:.4f}±{val['se']:.4f}" if val else ""),
                      flush=True)
            acc = dict.fromkeys(acc, 0.0)
            n_acc = 0
        if time.time() - last_ckpt > opts.ckpt_every_min * 60:
            save()
            last_ckpt = time.time()
    if rank == 0:
        if st["step"] and (n_acc or not row_has_val):
            # Close the stretch with a validation point, so every stretch's end is on the curve. When
            # no step ran since the last row, this row repeats its step (resumed_log keeps this one).
            val = validate()
            write_row(val)
            if progress:
                print(f"end of stretch: step {st['step']} img {st['images']} val {val['bpd']:.4f}±{val['se']:.4f}",
                      flush=True)
        save()
        logf.close()
    if world > 1:
        import torch.distributed as dist
        dist.barrier()
    return run


def _coding_settings(opts: TrainOptions, run: Path, init, resuming: bool) -> tuple[list[CodingSteps] | None, dict | None]:
    """The coding settings a discrete-time run trains for, and (a new run) the record to write to
    RUN/coding_steps.json once the run starts: a resumed run reads its record (a continuous run has
    none); a new one builds its settings from the starting model's grids.json, whatever an earlier
    start that failed left in the folder."""
    from .errors import BbcError
    path = run / "coding_steps.json"
    if resuming:
        saved = ([CodingSteps.from_json(d) for d in json.loads(path.read_text())["settings"]]
                 if path.exists() else None)
        ks = tuple(c.steps for c in saved) if saved else ()
        if opts.coding_steps and tuple(opts.coding_steps) != ks:
            raise BbcError(f"{run}: this run trains " + (f"for K = {', '.join(map(str, ks))}" if ks else
                           "in continuous time") + "; resume it with those --coding-steps or start a new run")
        return saved, None
    if not opts.coding_steps:
        return None, None
    if init is None:
        raise BbcError("--coding-steps needs --init-from: a model with time grids and an error curve (grids.json)")
    if opts.batch % len(opts.coding_steps):
        raise BbcError(f"--batch {opts.batch}: a multiple of the number of --coding-steps, so that every batch "
                       "weighs the settings alike")
    grids_path = init.folder / "grids.json"
    if not grids_path.exists():
        raise BbcError(f"model {init.name} has no grids.json: measure its error curve first (bbcodec schedule)")
    from .registry import file_sha256, load_model
    model = load_model(str(init.folder))  # its schedule, grids and error curve, as the coder reads them
    if model.mse_curve is None:
        raise BbcError(f"model {init.name}: its grids.json has no error curve (bbcodec schedule)")
    settings = [coding_steps(model.schedule, model.time_grid(opts.coding_grid, k), opts.coding_grid, model.mse_curve)
                for k in opts.coding_steps]
    record = {"source": {"model": init.name, "sha256": init.sha256, "grids_sha256": file_sha256(grids_path)},
              "settings": [c.to_json() for c in settings]}
    return settings, record


def export_model(run: str, out_dir: str, name: str, use_best: bool = True) -> Path:
    """Write <out_dir>/<name>/: weights.pt (EMA, float16 storage), config.json.

    The shipped model IS the float16-rounded weights: the loader upcasts them to float32, so the
    model that is evaluated and the one that codes are the same one.
    """
    run = Path(run)
    config = json.loads((run / "config.json").read_text())
    if use_best and (run / "best_ema.pt").exists():
        sd = torch.load(run / "best_ema.pt", weights_only=True)
    else:
        sd = torch.load(run / "state.pt", weights_only=True)["ema"]
    out = Path(out_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    half = {k: (v.to(torch.float16) if v.is_floating_point() and not k.startswith("gamma.") else v)
            for k, v in sd.items()}
    torch.save(half, out / "weights.pt")
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    return out


def _step(line: str) -> int:
    return int(line.split(",", 1)[0])


def _drop_rows_after(log_path: Path, step: int) -> None:
    """Keep the header and the rows up to `step`: a stretch stopped between checkpoints resumes
    from the last one, and would otherwise log the same steps twice."""
    lines = log_path.read_text().splitlines(keepends=True)
    keep = lines[:1] + [ln for ln in lines[1:] if _step(ln) <= step]
    if len(keep) < len(lines):
        log_path.write_text("".join(keep))


def resumed_log(log_path: Path) -> str:
    """The log as the surviving history: where a resumed stretch logs a step again, the rows its
    interrupted predecessor wrote past the checkpoint are dropped (logs from before the resume
    cleanup above still hold them)."""
    lines = log_path.read_text().splitlines(keepends=True)
    kept: list[str] = []
    for ln in lines[1:]:
        while kept and _step(kept[-1]) >= _step(ln):
            kept.pop()
        kept.append(ln)
    return "".join(lines[:1] + kept)
