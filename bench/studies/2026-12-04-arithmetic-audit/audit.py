"""Which stages from pixels to symbol probabilities are bit-reproducible across CPU settings?

    python audit.py probe [--tiny DIR] [--files-out DIR] [--decode-dir DIR] [--raw FILE.npz]
        One process: sha256 of every stage on fixed inputs, as JSON on stdout.
    python audit.py run [--only NAME ...]
        `probe` in a subprocess per setting (environment variables read at start-up by torch, oneDNN,
        MKL, numpy, glibc), then results/audit.json and results/audit.md: per stage, the settings
        whose hash differs from the default's.

Every input is made from integers by exact operations (or literal float64 constants), so that an
input never differs between settings; the `inputs.*` hashes check that.  The network runs with
one torch intra-op thread (the coder's default) except where a stage says otherwise.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
RESULTS = HERE / "results"

# gamma, alpha_t, sigma_t (alpha = sqrt(sigmoid(-gamma)), sigma = sqrt(sigmoid(gamma)), computed once and
# written as literals so that no transcendental function of this process makes the network's inputs)
GAMMAS = [(-10.0, float.fromhex("0x1.fffd06576cf56p-1"), float.fromhex("0x1.b9916d1afaceap-8")),
          (-2.0, float.fromhex("0x1.e0841b8150c6cp-1"), float.fromhex("0x1.618b402cf75d7p-2")),
          (3.0, float.fromhex("0x1.be00b9d967350p-3"), float.fromhex("0x1.f3b6256eb7c6dp-1"))]
N_TILES = 4


# ---------------------------------------------------------------------------------------------------
# probe

def sha(*parts) -> str:
    import numpy as np
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, (bytes, bytearray)):
            h.update(p)
        elif isinstance(p, str):
            h.update(p.encode())
        elif hasattr(p, "detach"):  # torch tensor
            a = p.detach().cpu().contiguous().numpy()
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        else:
            a = np.asarray(p)
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def unit_noise(seed: int, n: int):
    """Approximately standard normal float64 [n] from SplitMix64 by exact operations (the format's own
    version-3 recipe: twelve 53-bit uniforms summed in a fixed order, minus 6)."""
    import numpy as np
    from bbcodec.format.constants import splitmix64
    u = (splitmix64(seed, 12 * n) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    u = u.reshape(12, n)
    acc = u[0].copy()
    for k in range(1, 12):
        acc = acc + u[k]
    return acc - 6.0


def exact_uniform(seed: int, n: int, lo: float, hi: float, bits: int = 20):
    """float64 [n] in [lo, hi): (integer / 2^bits) scaled by an exact dyadic span where lo, hi are dyadic."""
    import numpy as np
    from bbcodec.format.constants import splitmix64
    k = (splitmix64(seed, n) >> np.uint64(64 - bits)).astype(np.float64)
    return lo + (hi - lo) * (k * 2.0 ** -bits)


def cifar_tiles(n: int):
    import numpy as np
    from PIL import Image
    from bbcodec.demo import SAMPLES
    files = sorted(SAMPLES.glob("*.png"))[:n]
    return np.stack([np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1) for f in files])  # uint8 [n,3,32,32]


def make_tiny_model(folder: Path, seed: int = 0, out_std: float = 1e-3) -> Path:
    """The tests' tiny random-weight model (tests/conftest.py; needs the [test] extras' pytest)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
    from conftest import make_tiny_model as make
    return make(folder, seed=seed, out_std=out_std)


def state_hash(sd) -> str:
    return sha(*[x for k in sorted(sd) for x in (k, sd[k])])


class Probe:
    def __init__(self):
        self.h: dict[str, str] = {}        # stage key -> sha256
        self.checks: dict[str, object] = {}  # in-process comparisons
        self.raw: dict[str, object] = {}   # float arrays kept for cross-setting magnitudes

    def put(self, key, *parts, raw=None):
        self.h[key] = sha(*parts)
        if raw is not None:
            self.raw[key] = raw


def probe_network(P: Probe, tag: str, net, x_tiles, threads2: bool = True):
    import numpy as np
    import torch
    from bbcodec.diffusion.codec import EpsFn
    from bbcodec.diffusion.vdm import pixel_to_model_np

    f = pixel_to_model_np(x_tiles)  # [B,3,32,32] float64, exact
    eps = unit_noise(0xA0D17, f.size).reshape(f.shape)
    zs = [(g, a * f + s * eps) for g, a, s in GAMMAS]  # float64 latents, IEEE mul/add only
    P.put(f"inputs.latents.{tag}", *[z for _, z in zs])

    for layout, nhwc in (("plain", False), ("nhwc", True)):
        fn = EpsFn(net, "cpu", nhwc=nhwc)
        with torch.inference_mode():
            full = [fn(z, g) for g, z in zs]
            single = [np.concatenate([fn(z[i:i + 1], g) for i in range(len(z))]) for g, z in zs]
            P.put(f"net.{tag}.{layout}.batch{len(f)}", *full, raw=np.stack(full))
            for (g, _, _), o in zip(GAMMAS, full):
                P.put(f"net.{tag}.{layout}.batch{len(f)}.gamma{g:+g}", o)
            P.put(f"net.{tag}.{layout}.batch1x{len(f)}", *single, raw=np.stack(single))
            P.checks[f"net.{tag}.{layout}: batch1x{len(f)} == batch{len(f)}"] = all(
                np.array_equal(a, b) for a, b in zip(full, single))
            P.checks[f"net.{tag}.{layout}: batch1x{len(f)} vs batch{len(f)} max|diff|"] = float(
                max(np.abs(a - b).max() for a, b in zip(full, single)))
            if threads2:
                old = torch.get_num_threads()
                torch.set_num_threads(2)
                try:
                    two = [fn(z, g) for g, z in zs]
                finally:
                    torch.set_num_threads(old)
                P.put(f"net.{tag}.{layout}.batch{len(f)}.threads2", *two, raw=np.stack(two))
                P.checks[f"net.{tag}.{layout}: threads2 == threads1"] = all(
                    np.array_equal(a, b) for a, b in zip(full, two))
                P.checks[f"net.{tag}.{layout}: threads2 vs threads1 max|diff|"] = float(
                    max(np.abs(a - b).max() for a, b in zip(full, two)))
        if layout == "nhwc":
            P.checks[f"net.{tag}: nhwc == plain"] = all(np.array_equal(a, b) for a, b in zip(full, plain_full))
        plain_full = full


def probe_layers(P: Probe, tag: str, net, x_tiles):
    """Output of every submodule of the plain network, one call (batch 4, gamma -2), in call order."""
    import torch
    from bbcodec.diffusion.vdm import pixel_to_model_np
    f = pixel_to_model_np(x_tiles)
    g, a, s = GAMMAS[1]
    z = a * f + s * unit_noise(0xA0D17, f.size).reshape(f.shape)
    order, hooks = [], []
    for name, mod in net.named_modules():
        if name == "":
            continue
        hooks.append(mod.register_forward_hook(
            lambda m, i, o, name=name: order.append((name, o)) if torch.is_tensor(o) else None))
    try:
        with torch.inference_mode():
            net(torch.from_numpy(z.astype("float32")), torch.full((len(z),), g, dtype=torch.float32))
    finally:
        for hk in hooks:
            hk.remove()
    seen = {}
    for k, (name, o) in enumerate(order):
        n = seen.get(name, 0)
        seen[name] = n + 1
        P.put(f"layers.{tag}.{k:03d}.{name}" + (f"#{n}" if n else ""), o)


def probe_torch_ops(P: Probe):
    """Primitive float32 operations of the network on fixed inputs, one thread."""
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(exact_uniform(1, 1 << 16, -8.0, 8.0).astype("float32"))
    P.put("torch_ops.sin", torch.sin(x))
    P.put("torch_ops.cos", torch.cos(x))
    P.put("torch_ops.sin(x*2^6*pi)", torch.sin(x * (2 ** 6 * 3.141592653589793)))
    P.put("torch_ops.exp", torch.exp(x))
    P.put("torch_ops.silu", F.silu(x))
    P.put("torch_ops.sqrt|x|", torch.sqrt(x.abs()))
    P.put("torch_ops.div", x / 3.0)
    xs = x.reshape(16, 64, 8, 8)
    P.put("torch_ops.group_norm", F.group_norm(xs, 8))
    P.put("torch_ops.softmax", torch.softmax(x.reshape(64, 1024), dim=-1))
    w = torch.from_numpy(exact_uniform(2, 64 * 64 * 9, -0.25, 0.25).astype("float32")).reshape(64, 64, 3, 3)
    P.put("torch_ops.conv3x3", F.conv2d(xs, w, padding=1))
    P.put("torch_ops.conv3x3.channels_last", F.conv2d(xs.contiguous(memory_format=torch.channels_last),
                                                      w.contiguous(memory_format=torch.channels_last), padding=1))
    P.put("torch_ops.conv1x1", F.conv2d(xs, w[:, :, :1, :1].contiguous()))
    q = x.reshape(16, 64, 64)
    P.put("torch_ops.einsum_bmm", torch.einsum("bci,bcj->bij", q, q))
    P.put("torch_ops.linear", F.linear(x.reshape(1024, 64), w[:, :, 0, 0].contiguous()))
    P.put("torch_ops.sum", x.reshape(64, 1024).sum(1))
    P.put("torch_ops.float32_to_64", x.double())


def probe_chainspec(P: Probe, tag: str, model, steps: int, grid: str | None = None):
    from bbcodec import api
    from bbcodec.diffusion.codec import ChainSpec
    params = api.coding_params(model, steps, grid=grid)
    spec = ChainSpec(model.schedule, params, model.time_grid(params.grid, params.steps), model.mse_curve)
    key = f"chainspec.{tag}.K{steps}.{params.grid}.v{params.latents}"
    P.checks[f"{key}: params"] = f"grid={params.grid} latents={params.latents} schedule={model.schedule}"
    for name in ("t", "gamma", "alpha", "sigma", "snr", "a_q", "s_q", "c_z", "c_x", "s_p", "delta", "rq",
                 "pop_std0", "pop_std", "push_std", "rp", "r_top"):
        v = getattr(spec, name)
        P.put(f"{key}.{name}", v, raw=v if name not in ("rq", "rp", "r_top") else None)
    return spec


def probe_numpy(P: Probe, spec):
    """numpy's transcendental functions and the coder's elementwise float64 steps, on fixed inputs."""
    import numpy as np
    from bbcodec.diffusion import schedule, vdm
    x = exact_uniform(3, 1 << 18, -16.0, 16.0, bits=40)
    for name in ("exp", "expm1", "log1p", "log", "sqrt", "square"):
        fn = getattr(np, name)
        arg = np.abs(x) if name in ("log", "sqrt") else (np.abs(x) - 0.5 if name == "log1p" else x)
        P.put(f"numpy.{name}", fn(arg))
    P.put("numpy.sum_axis1", x.reshape(512, 512).sum(axis=1))
    P.put("numpy.max_axis1", x.reshape(512, 512).max(axis=1))
    P.put("numpy.interp", np.interp(exact_uniform(4, 4096, 0.0, 1.0), np.linspace(0, 1, 101), np.linspace(0, 1, 101) ** 2))
    P.put("numpy.rint", np.rint(x * 1000.0))
    P.put("schedule._sigmoid", schedule._sigmoid(x))
    P.put("schedule.Schedule(-13.3,5.0).alpha_sigma", *schedule.Schedule(-13.3, 5.0).alpha_sigma(np.linspace(0, 1, 1001)))
    P.put("schedule.Schedule(-13.3,5.0).transition", *schedule.Schedule(-13.3, 5.0).transition(
        np.linspace(0, 1, 1001)[:-1], np.linspace(0, 1, 1001)[1:]))

    # p(x | z_0): fixed alpha_0, sigma_0 (literals near the shipped model's) and the spec's own
    z0 = exact_uniform(5, 3 * 32 * 32 * 4, -1.125, 1.125, bits=40)
    a0, s0 = float.fromhex("0x1.fffffcp-1"), float.fromhex("0x1.2p-7")
    p = vdm.recon_probs_np(z0, a0, s0)
    P.put("recon_probs.fixed_alpha_sigma", p, raw=p)
    levels = vdm.pixel_to_model_np(np.arange(256))
    logits = -0.5 * np.square(z0[:, None] / a0 - levels[None, :]) / (s0 / a0) ** 2
    P.put("recon_probs.logits_(no_exp)", logits)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    P.put("recon_probs.exp(logits)", e)
    P.put("recon_probs.row_sums", e.sum(axis=1, keepdims=True))
    ps = vdm.recon_probs_np(z0 * spec.alpha[0], spec.alpha[0], spec.sigma[0])
    P.put("recon_probs.spec_alpha_sigma", ps, raw=ps)

    # the coder's glue for one reverse step (codec.tile_batch_codec's prior + codecs.grid_gaussian) on fixed
    # float64 inputs: only IEEE +, -, *, /, clip and rint
    i = spec.K // 2
    n_i = np.rint(unit_noise(7, 4096) * 3.0).astype(np.int64)
    z_i = n_i * spec.delta[i]
    eps = unit_noise(8, 4096) * 0.25
    x_hat = np.clip((z_i - spec.sigma[i] * eps) / spec.alpha[i], -1.0, 1.0)
    mean = spec.c_z[i] * z_i + spec.c_x[i] * x_hat
    scaled = mean / spec.delta[i - 1]
    centre = np.rint(scaled)
    P.put("coder_glue.spec_step", x_hat, mean, scaled - centre, centre, spec.push_std[i] / spec.delta[i - 1])
    d, cz, cx, al, sg, ps_ = 0.0625, 0.984375, 0.015625, 0.75, 0.6614378277661477, 0.5
    x_hat = np.clip((n_i * d - sg * eps) / al, -1.0, 1.0)
    mean = cz * n_i * d + cx * x_hat
    P.put("coder_glue.fixed_coefficients", x_hat, mean / d - np.rint(mean / d), np.full(4096, ps_ / d))


def probe_constants(P: Probe):
    from bbcodec.format.constants import pad_noise, seed_words
    for v in (2, 3):
        P.put(f"constants.pad_noise.v{v}", pad_noise((3, 32, 32), v))
        P.put(f"constants.seed_words.v{v}", seed_words(4096, v))


def probe_constriction(P: Probe, spec):
    import numpy as np
    from bbcodec.ans import Stack
    from bbcodec.diffusion import vdm
    from bbcodec.format.constants import seed_words
    n = 20000
    rng_sym = unit_noise(11, n)
    radius = 64
    means = exact_uniform(12, n, -0.5, 0.5, bits=40)
    stds = 0.25 + exact_uniform(13, n, 0.0, 16.0, bits=40)  # 0.25 .. 16.25 bins
    sym = np.clip(np.rint(rng_sym * stds), -radius, radius).astype(np.int32)
    st = Stack(seed_words(64, 3))
    st.push_gaussian(sym, -radius, radius, means, stds)
    P.put("constriction.push_gaussian", st.words())
    back = st.pop_gaussian(-radius, radius, means, stds)
    P.checks["constriction.gaussian roundtrip"] = bool(np.array_equal(back, sym))
    # wide symbol range and tiny std (the q pops' regime: rq ~ 8 std / delta)
    st = Stack(seed_words(64, 3))
    st.push_gaussian(np.zeros(n, dtype=np.int32), -400, 400, means, np.full(n, 0.3))
    P.put("constriction.push_gaussian.narrow", st.words())

    u = exact_uniform(14, n // 40 * 256, 0.0, 1.0, bits=30).reshape(-1, 256)
    probs = u * u * u * u + 2.0 ** -30
    probs = probs / probs.sum(axis=1, keepdims=True)
    P.put("inputs.categorical_probs", probs)
    csym = (np.arange(len(probs)) * 37 % 256).astype(np.int32)
    st = Stack(seed_words(64, 3))
    st.push_categorical(csym, probs)
    P.put("constriction.push_categorical", st.words())
    # the recon categorical as the coder builds it (rows from recon_probs_np with the spec's alpha_0, sigma_0)
    z0 = exact_uniform(5, 3 * 32 * 32, -1.125, 1.125, bits=40)
    p = vdm.recon_probs_np(z0 * spec.alpha[0], spec.alpha[0], spec.sigma[0])
    xs = np.argmax(p, axis=1).astype(np.int32)
    st = Stack(seed_words(64, 3))
    st.push_categorical(xs, p)
    P.put("constriction.push_categorical.recon_spec", st.words())
    # sensitivity: do the words change when the float parameters move by a relative 2^-k (k = 52: one ulp)?
    def gauss_words(m, sd):
        s_ = Stack(seed_words(64, 3))
        s_.push_gaussian(sym, -radius, radius, m, sd)
        return s_.words()

    def cat_words(pp):
        s_ = Stack(seed_words(64, 3))
        s_.push_categorical(xs, pp)
        return s_.words()
    g0, c0 = gauss_words(means, stds), cat_words(p)
    for k in (52, 48, 44, 40, 36, 32, 28, 24, 20):
        r = 2.0 ** -k
        P.checks[f"constriction sensitivity: gaussian words change, stds*(1+2^-{k})"] = \
            not np.array_equal(g0, gauss_words(means, stds * (1 + r)))
        P.checks[f"constriction sensitivity: gaussian words change, means+2^-{k}"] = \
            not np.array_equal(g0, gauss_words(means + r, stds))
        P.checks[f"constriction sensitivity: categorical words change, probs*(1+2^-{k}) on odd columns"] = \
            not np.array_equal(c0, cat_words(p * np.where(np.arange(256) % 2 == 1, 1 + r, 1.0)))
    st = Stack(seed_words(64, 3))
    st.push_uniform((np.arange(n) % 251).astype(np.int32), 251)
    P.put("constriction.push_uniform", st.words())


def encode_images():
    from PIL import Image
    from bbcodec.demo import SAMPLES
    from bbcodec.images import from_pil
    files = sorted(SAMPLES.glob("*.png"))
    a = Image.open(files[0]).convert("RGB")
    b = Image.open(files[1]).convert("L").crop((3, 5, 30, 25))  # 27 x 20 gray: padding and missing channels
    return [from_pil(a, "a.png"), from_pil(b, "b.png")]


def probe_encode(P: Probe, tag: str, model, steps: int, grid: str | None, files_out: Path | None,
                 decode_dir: Path | None):
    import numpy as np
    from bbcodec import api
    from bbcodec.format import container
    from bbcodec.images import same_image
    images = encode_images()
    params = api.coding_params(model, steps, grid=grid)
    data, rep = api.compress(images, model, params, bootstrap=None, threads=1)
    c = container.parse(data)
    # the header less what records the arithmetic and what follows from the payload (its length and crc32)
    header = {k: v for k, v in c.header.items() if k not in ("arithmetic", "payload_bytes", "payload_crc32")}
    key = f"encode.{tag}.K{steps}"
    P.put(f"{key}.payload", c.payload)
    P.put(f"{key}.header_less_arithmetic_and_payload_fields", json.dumps(header, sort_keys=True))
    P.put(f"{key}.file_bytes", data)
    P.checks[f"{key}: arithmetic record"] = c.header.get("arithmetic")
    P.checks[f"{key}: bytes"] = len(data)
    P.checks[f"{key}: coding record"] = c.header["coding"]
    out, _ = api.decompress(data, model, any_arithmetic=True)
    P.checks[f"{key}: decodes here"] = all(same_image(x, y) for x, y in zip(images, out))
    if files_out is not None:
        files_out.mkdir(parents=True, exist_ok=True)
        (files_out / f"{tag}.K{steps}.bbc").write_bytes(data)
    if decode_dir is not None:
        f = decode_dir / f"{tag}.K{steps}.bbc"
        ref = f.read_bytes()
        try:
            api.decompress(ref, model)
            strict = "ok"
        except Exception as e:  # noqa: BLE001
            strict = f"{type(e).__name__}"
        try:
            out, _ = api.decompress(ref, model, any_arithmetic=True)
            loose = "ok" if all(same_image(x, y) for x, y in zip(images, out)) else "WRONG PICTURE"
        except Exception as e:  # noqa: BLE001
            loose = f"{type(e).__name__}: {e}"[:200]
        P.checks[f"{key}: default's file, strict decode"] = strict
        P.checks[f"{key}: default's file, --any-arithmetic decode"] = loose


def probe(args) -> dict:
    import numpy as np
    import torch
    threads_at_start = torch.get_num_threads()
    torch.set_num_threads(1)
    from numpy._core._multiarray_umath import __cpu_features__
    from bbcodec.format.header import arithmetic
    from bbcodec.registry import load_model
    import importlib.metadata as md

    t0 = time.time()
    P = Probe()
    meta = {"env": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
            "torch": torch.__version__, "numpy": np.__version__, "constriction": md.version("constriction"),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_threads_at_start": threads_at_start,
            "numpy_cpu_features_off": sorted(k for k, v in __cpu_features__.items() if not v and k in NUMPY_X86),
            "arithmetic_record": arithmetic("cpu")}
    tiles = cifar_tiles(N_TILES)
    P.put("inputs.tiles", tiles)

    tmp = None
    tiny_dir = Path(args.tiny) if args.tiny else None
    if tiny_dir is None:
        tmp = tempfile.TemporaryDirectory()
        tiny_dir = make_tiny_model(Path(tmp.name) / "tiny")
    # a fresh tiny model's weights in this process (torch's RNG and normal_ under this setting)
    with tempfile.TemporaryDirectory() as d:
        fresh = make_tiny_model(Path(d) / "t")
        P.put("torch_rng.tiny_model_init", state_hash(torch.load(fresh / "weights.pt", weights_only=True)))
    torch.set_num_threads(1)

    model = load_model(None)
    tiny = load_model(str(tiny_dir))
    P.put("inputs.default_model_weights", state_hash(model.vdm.state_dict()))
    P.put("inputs.tiny_model_weights", state_hash(tiny.vdm.state_dict()))
    meta["default_model"] = model.name

    probe_torch_ops(P)
    probe_network(P, "default", model.vdm.net, tiles)
    probe_network(P, "tiny", tiny.vdm.net, tiles)
    probe_layers(P, "default", model.vdm.net, tiles)
    spec = probe_chainspec(P, "default", model, 100)
    probe_chainspec(P, "tiny", tiny, 100)
    probe_numpy(P, spec)
    probe_constants(P)
    probe_constriction(P, spec)
    files_out = Path(args.files_out) if args.files_out else None
    decode_dir = Path(args.decode_dir) if args.decode_dir else None
    probe_encode(P, "tiny", tiny, 3, None, files_out, decode_dir)
    probe_encode(P, "default", model, 10, "uniform", files_out, decode_dir)
    meta["seconds"] = round(time.time() - t0, 1)
    if args.raw:
        np.savez(args.raw, **{k.replace("/", "_"): np.asarray(v) for k, v in P.raw.items()})
    if tmp is not None:
        tmp.cleanup()
    return {"meta": meta, "hashes": P.h, "checks": P.checks}


# ---------------------------------------------------------------------------------------------------
# run

ENV_VARS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "NPY_DISABLE_CPU_FEATURES", "OMP_NUM_THREADS",
            "MKL_ENABLE_INSTRUCTIONS", "GLIBC_TUNABLES")
NUMPY_X86 = ("SSE3", "SSSE3", "SSE41", "POPCNT", "SSE42", "X86_V2", "AVX", "F16C", "FMA3", "AVX2", "X86_V3",
             "AVX512F", "AVX512CD", "AVX512VL", "AVX512BW", "AVX512DQ", "AVX512_SKX", "X86_V4", "AVX512_CLX",
             "AVX512_CNL", "AVX512_ICL", "AVX512_SPR")


def numpy_avx512_names() -> str:
    """The AVX-512 feature names numpy reports as present here, with its group name X86_V4 (numpy 2.4
    dispatches on the groups X86_V3 / X86_V4 / AVX512_ICL / AVX512_SPR; naming only AVX512F changes nothing)."""
    from numpy._core._multiarray_umath import __cpu_features__ as f
    return " ".join(k for k, v in f.items() if v and ("AVX512" in k or k == "X86_V4"))


def settings() -> list[tuple[str, dict, str]]:
    """(name, environment, what it stands for)."""
    avx512 = numpy_avx512_names()
    return [
        ("default", {}, "as shipped: torch AVX512 kernels, oneDNN and MKL at their best ISA, numpy AVX512 loops"),
        ("default-again", {}, "the default once more: run-to-run reproducibility"),
        ("aten=default", {"ATEN_CPU_CAPABILITY": "default"}, "ATen's non-vectorised kernels"),
        ("aten=avx2", {"ATEN_CPU_CAPABILITY": "avx2"}, "a CPU without AVX-512, as ATen sees it"),
        ("aten=avx512", {"ATEN_CPU_CAPABILITY": "avx512"}, "what ATen picks here anyway"),
        ("onednn=AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "oneDNN (convolutions) limited to AVX2"),
        ("aten=avx2+onednn=AVX2", {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
         "both: closest to an AVX2-only CPU for the network"),
        ("npy-avx512", {"NPY_DISABLE_CPU_FEATURES": avx512}, "numpy's AVX-512 loops off (its reported names)"),
        ("omp=2", {"OMP_NUM_THREADS": "2"}, "OMP_NUM_THREADS=2 (the coder still sets one torch thread)"),
        # beyond the brief's list
        ("aten=default+onednn=AVX2", {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX2"},
         "completes ATen {default, avx2, avx512} x oneDNN {unset, AVX2}"),
        ("npy=AVX512F", {"NPY_DISABLE_CPU_FEATURES": "AVX512F"}, "one feature name alone (numpy 2.4 ignores it)"),
        ("npy-baseline", {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL"},
         "numpy at its X86_V2 baseline (no AVX2/FMA/AVX-512 loops)"),
        ("mkl=AVX2", {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, "MKL (matmul, einsum) limited to AVX2"),
        ("glibc-noFMA", {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA"},
         "glibc's libm without its FMA/AVX2 variants (ifunc)"),
        ("npy-baseline+glibc-noFMA", {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL",
                                      "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA"},
         "numpy's scalar loops call glibc's libm: does its FMA variant matter?"),
        ("npy-avx512+glibc-noFMA", {"NPY_DISABLE_CPU_FEATURES": avx512, "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA"},
         "numpy without AVX-512 (an AVX2 CPU) on glibc's non-FMA libm"),
        ("all-low", {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                     "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL",
                     "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA"},
         "every library at its lowest x86-64 level: an old CPU, roughly"),
    ]


def group_of(key: str) -> str:
    parts = key.split(".")
    if parts[0] in ("layers", "chainspec"):
        return ".".join(parts[:2] if parts[0] == "layers" else parts[:3])
    if parts[0] == "net":
        return ".".join(parts[:4])  # net.<model>.<layout>.<batching>
    if parts[0] == "encode":
        return key
    return key


def ulp_gap(a, b) -> tuple[int, str] | None:
    """Largest distance in units in the last place, in float32 where both arrays hold float32 values
    (the network's outputs, converted to float64), else in float64; NaNs (unused entries) skipped."""
    import numpy as np
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != np.float64:
        return None
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if not a.size:
        return 0, "float64"
    f32 = np.array_equal(a.astype(np.float32).astype(np.float64), a) and \
        np.array_equal(b.astype(np.float32).astype(np.float64), b)
    it, ft = (np.int32, np.float32) if f32 else (np.int64, np.float64)
    ia = a.astype(ft).view(it).astype(np.int64)
    ib = b.astype(ft).view(it).astype(np.int64)
    lo = -(2 ** 31) if f32 else None
    if f32:
        ia = np.where(ia < 0, lo - ia, ia)
        ib = np.where(ib < 0, lo - ib, ib)
        return int(np.abs(ia - ib).max()), "float32"
    ia = np.where(ia < 0, np.int64(-2**63) - ia, ia)
    ib = np.where(ib < 0, np.int64(-2**63) - ib, ib)
    return int(np.abs(ia - ib).max()), "float64"


def run(args):
    import numpy as np
    RESULTS.mkdir(parents=True, exist_ok=True)
    sets = settings()
    if args.only:
        sets = [s for s in sets if s[0] in args.only or s[0] == "default"]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "bbcodec"], capture_output=True, text=True,
                           cwd=REPO).stdout.strip()
    out = {"command": "python bench/studies/2026-12-04-arithmetic-audit/audit.py run", "commit": commit,
           "bbcodec_uncommitted_changes": dirty, "settings": {}, "probes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tiny = make_tiny_model(tmp / "tiny")
        raws = {}
        for name, env, what in sets:
            e = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
            e.update(env)
            e["PYTHONHASHSEED"] = "0"
            e.setdefault("BBCODEC_CACHE", str(tmp / "cache"))
            cmd = [sys.executable, str(Path(__file__)), "probe", "--tiny", str(tiny), "--raw", str(tmp / f"{name}.npz")]
            cmd += ["--files-out", str(tmp / "files")] if name == "default" else ["--decode-dir", str(tmp / "files")]
            t = time.time()
            r = subprocess.run(cmd, env=e, capture_output=True, text=True, cwd=REPO)
            print(f"{name}: rc {r.returncode}, {time.time() - t:.0f} s", flush=True)
            if r.returncode != 0:
                print(r.stderr[-3000:], file=sys.stderr)
                raise SystemExit(1)
            out["settings"][name] = {"env": env, "what": what}
            out["probes"][name] = json.loads(r.stdout)
            raws[name] = dict(np.load(tmp / f"{name}.npz"))
        # compare with the default
        ref = out["probes"]["default"]["hashes"]
        ref_raw = raws["default"]
        diff = {}
        for key in ref:
            row = {}
            for name in out["probes"]:
                if name == "default":
                    continue
                if out["probes"][name]["hashes"].get(key) != ref[key]:
                    rk = key.replace("/", "_")
                    info = {"differs": True}
                    if rk in ref_raw and rk in raws[name]:
                        a, b = ref_raw[rk], raws[name][rk]
                        if a.shape == b.shape:
                            ok = np.isfinite(a) & np.isfinite(b)
                            info["max_abs_diff"] = float(np.abs(a[ok] - b[ok]).max())
                            info["max_rel_diff"] = float((np.abs(a[ok] - b[ok]) / np.maximum(np.abs(a[ok]), 1e-300)).max())
                            info["frac_elems_differ"] = float(np.mean(a[ok] != b[ok]))
                            g = ulp_gap(a, b)
                            if g is not None:
                                info["max_ulps"], info["ulps_of"] = g
                    row[name] = info
            diff[key] = row
        out["differs_from_default"] = diff
    (RESULTS / "audit.json").write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")
    (RESULTS / "audit.md").write_text(markdown(out))
    print(f"wrote {RESULTS / 'audit.json'} and {RESULTS / 'audit.md'}")


def markdown(out: dict) -> str:
    names = [n for n in out["probes"] if n != "default"]
    diff = out["differs_from_default"]
    keys = list(diff)
    groups: dict[str, list[str]] = {}
    for k in keys:
        groups.setdefault(group_of(k), []).append(k)
    lines = ["# Stage hashes against the default setting", "", f"Commit {out['commit']}"
             + (" (bbcodec/ with uncommitted changes)" if out["bbcodec_uncommitted_changes"] else "") + ".", "",
             "`=` same sha256 as under `default`; `≠ a/b`: a of the stage's b hashed arrays differ "
             "(max |diff| where the arrays were kept).", "",
             "Last column: how many different results the stage gave over all settings (a tuple of its hashes).", "",
             "| stage | " + " | ".join(f"`{n}`" for n in names) + " | distinct |",
             "|---|" + "---|" * (len(names) + 1)]
    for g, ks in groups.items():
        distinct = len({tuple(out["probes"][n]["hashes"].get(k) for k in ks) for n in out["probes"]})
        cells = []
        for n in names:
            d = [k for k in ks if n in diff[k]]
            if not d:
                cells.append("=")
                continue
            c = f"≠ {len(d)}/{len(ks)}" if len(ks) > 1 else "≠"
            mags = [diff[k][n]["max_abs_diff"] for k in d if "max_abs_diff" in diff[k][n]]
            ulps = [(diff[k][n]["max_ulps"], diff[k][n]["ulps_of"]) for k in d if "max_ulps" in diff[k][n]]
            if mags:
                c += f" ({max(mags):.1e}"
                if ulps:
                    u = max(ulps)
                    c += f"; {u[0]} ulp{'32' if u[1] == 'float32' else '64'}"
                c += ")"
            cells.append(c)
        lines.append(f"| {g} | " + " | ".join(cells) + f" | {distinct} |")
    lines += ["", "## Which settings give the same result (stages with more than one)", ""]
    for g, ks in groups.items():
        cls: dict[tuple, list[str]] = {}
        for n in out["probes"]:
            cls.setdefault(tuple(out["probes"][n]["hashes"].get(k) for k in ks), []).append(n)
        if len(cls) > 1:
            lines.append(f"- {g}: " + " | ".join(", ".join(f"`{n}`" for n in v) for v in cls.values()))
    lines += ["", "## In-process checks", "", "| check | " + " | ".join(f"`{n}`" for n in out["probes"]) + " |",
              "|---|" + "---|" * len(out["probes"])]
    ckeys = list(out["probes"]["default"]["checks"])
    for n in out["probes"]:
        for k in out["probes"][n]["checks"]:
            if k not in ckeys:
                ckeys.append(k)
    sens = [k for k in ckeys if k.startswith("constriction sensitivity")]
    ckeys = [k for k in ckeys if k not in sens]
    for k in ckeys:
        if "arithmetic record" in k or ": params" in k or "coding record" in k:
            continue
        vals = []
        for n in out["probes"]:
            v = out["probes"][n]["checks"].get(k, "")
            v = f"{v:.1e}" if isinstance(v, float) else str(v)
            vals.append(v.split(":")[0] if ":" in v and not v[0].isdigit() else v)
        lines.append(f"| {k} | " + " | ".join(vals) + " |")
    lines += ["", "## constriction's sensitivity (in-process, same under every setting: "
              + str(all(out["probes"][n]["checks"].get(k) == out["probes"]["default"]["checks"][k]
                        for n in out["probes"] for k in sens)) + ")", "",
              "Do the pushed words change when the float parameters move by a relative 2^-k?", ""]
    for k in sens:
        lines.append(f"- {k.split(': ', 1)[1]}: {out['probes']['default']['checks'][k]}")
    lines += ["", "## Layers of the default model's network (plain, batch 4, gamma -2): first that differs", ""]
    for n in names:
        lk = [k for k in keys if k.startswith("layers.") and n in diff[k]]
        tot = len([k for k in keys if k.startswith("layers.")])
        lines.append(f"- `{n}`: {len(lk)}/{tot} differ" + (f"; first `{lk[0].split('.', 3)[3]}`" if lk else ""))
    lines += ["", "## Settings", ""]
    for n, s in out["settings"].items():
        env = " ".join(f"{k}={v!r}" for k, v in s["env"].items()) or "(none)"
        sec = out["probes"][n]["meta"]["seconds"]
        lines.append(f"- `{n}`: {env} — {s['what']} (probe {sec} s; torch capability "
                     f"{out['probes'][n]['meta']['torch_cpu_capability']})")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--tiny")
    p.add_argument("--files-out")
    p.add_argument("--decode-dir")
    p.add_argument("--raw")
    r = sub.add_parser("run")
    r.add_argument("--only", nargs="*")
    args = ap.parse_args()
    if args.mode == "probe":
        sys.path.insert(0, str(REPO))
        json.dump(probe(args), sys.stdout, indent=1)
        print()
    else:
        run(args)


if __name__ == "__main__":
    main()
