"""Every default of the coder in one place: the CLI, the Python API and the bench read them here."""
import os
from pathlib import Path

STEPS = 100          # diffusion steps K
GRID_BITS = 0        # latent bin = step std / 2^b
# tiles in flight: on one CPU thread the network's time per tile falls 1.8x from 1 to 8 tiles per
# call and is flat beyond; the file size does not depend on it (docs: "Tiles in flight")
PARALLEL = 8
# torch intra-op threads of the encoder. One: the decoder must replay the encoder's count (CPU float
# results depend on it), so files made with the default decode alike everywhere; and on a two-core
# machine with one core busy, two threads spin (OpenMP): a 256x256 photo took 798 s with two and
# 68 s with one (bench/results/startup_timing.json), while with both cores free two threads were
# not faster either (49 s against 36 s there; training, with larger batches, gains 1.6x).
THREADS = 1
# the flow codec's precision (`flows.codec.FlowCodingParams`): model-space grid 2^-k, coupling scales
# R / 2^m.  The rate does not depend on k, the initial deficit does (about k - 2 bits per subpixel):
# on 200 CIFAR-10 training images and the CPU-trained flow, k = 8, 10, 12 coded 3.8235, 3.8237,
# 3.8227 bits/dim with first-tile deficits of 6.1, 8.1, 10.1 bits per subpixel (16: 14.1).  10, not
# 8: at k = 8 the flow read at bin centres is 0.4% below the coded rate, so the encoder's record of
# the flow's bound on the path coded would no longer track it (docs/flow.md)
FLOW_GRID_BITS = 10
FLOW_SCALE_BITS = 16
FLOW_MODEL = "cifar10-flow-r1"  # the shipped flow (the baseline of `bbcodec bench --codec flow`)
# compress without --model codes with the registry's photo prior ("photo_default") where most of the
# pixels are in images of more than this many pixels (more than one 32x32 tile), else with its default
# prior: on the first 300 CIFAR-10 test images (32x32) the photo prior's NELBO is 3.3% above the
# CIFAR-10 prior's (3.6386 against 3.5229), on the nine test photos 4.2% below it (2.9830 against
# 3.1142; bench/studies/2026-12-05-photo-prior-nelbo)
PHOTO_PRIOR_ABOVE_PIXELS = 32 * 32
# tile sizes a diffusion network codes with (`--tile`; default `api.default_tile`: the registry's per-model
# `coding_tile` on images that fill it, else the model's own, 32): the U-Net is
# convolutional, and a larger tile gives each pixel more context and leaves fewer tile edges. At 64
# the photo prior's NELBO on the nine test photos is 0.018 bits/dim lower than at 32, at 128 0.008
# (bench/studies/2026-12-05-photo-context). 128 at most: the integer network's exact attention
# needs fewer than 2^12 positions at its 1/4-resolution level
TILES = (32, 64, 128)
# a model's larger coding tile (registry "coding_tile") is the default only for a file of at least this
# many such tiles: the bootstrap codec codes about 3 leading tiles of a file at any tile size (27 on the
# nine test photos at 32 and at 64), so a larger tile hands it more of a small file's pixels. The photo
# prior photo-vdm-t64-int (trained on 64x64 crops) at 64 against 32 on square crops of held-out photos:
# +2.5% at 4 tiles of 64 (128x128), -0.52% at 9 (192x192), -0.77% at 16 (bench/studies/
# 2026-12-05-photo-context). It was 24 for photo-vdm-p2-dt-int, trained on 32x32 crops only, which lost
# 0.18% at 9 and 0.12% at 16 and gained on all nine test photos (27 to 94 tiles)
LARGE_TILE_MIN_TILES = 9
BOOTSTRAP = "auto"   # classical codec of the first tiles: jxl, else webp
# compress asks (on a terminal) or needs --yes (in scripts) above this many estimated seconds of encoding
CONFIRM_SECONDS = 600.0
# training (`bbcodec train`, `train.TrainOptions`): what the shipped CIFAR-10 runs used
TRAIN_BATCH = 16
TRAIN_LR = 5e-4
TRAIN_EMA = 0.995
TRAIN_MINUTES = 60.0
TRAIN_VAL_IMAGES = 1000
# a plain progress line this often when stderr is not a terminal
PROGRESS_LINE_SECONDS = 30.0


def cache_dir() -> Path:
    """The user's cache folder: downloads, measured start-up constants (BBCODEC_CACHE overrides)."""
    return Path(os.environ.get("BBCODEC_CACHE", Path.home() / ".cache" / "bbcodec"))
