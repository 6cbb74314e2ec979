"""The flow baseline (issue 20): a coupling flow for 8-bit images coded by local bits-back.

    net.py    `Flow` (squeeze, affine couplings with tanh-bounded log-scales, multi-scale split,
              uniform dequantization), built from a typed `FlowConfig`; `Flow.nll_bits` is the
              dequantization bound -log2 p(y) + 7 D in bits per image, the training loss
              (`Flow.bpd` per subpixel).  No coding code.
    codec.py  `flow_codec(flow, shape, params)`: a `Codec` for uint8 batches [B, C, H, W] on the
              ANS stack, composed with `bitsback.bitswap_chain` from per-layer codecs: dequantization
              popped, each coupling coded exactly on an integer grid by bits-back over overlapping
              bins (cost exactly -log2 a per transformed coordinate, a rounded to R / 2^m), the final
              latent pushed with discretized N(0, 1) bins.  `FlowCodingParams` (grid_bits k = 16,
              scale_bits m = 16, top_bits c = 5, top_range 64) are the precision parameters;
              `FlowStats` the encoder's per-image ideal bits and the flow's own -log2 p on the path.

What integration still needs (none of it is done here; `api`, `cli`, `format` and `registry` are
untouched):
- A codec id in the container (today only the diffusion codec's) and header fields for
  `FlowCodingParams` (all four values) and the flow's `FlowConfig`/weights hash via the model name,
  with a golden file.  A float network binds the file to the machine's arithmetic like the
  diffusion prior's float models: record the same fingerprint (torch build, ISA, threads) and
  replay the encoder's batches (the flow's (a, t) depend only on their own image, but float
  results still depend on batch size and layout).  An integer coupling network (as
  `diffusion/intnet.py`) would make files portable; the codec only needs (R, T) to be exact.
- Registry: `models/<name>/config.json` with `arch: "realnvp"` -> `Flow.from_config`; the
  registry today builds a `VDM` for every model and must dispatch on `arch`.
- Tiles: the flow codes every subpixel of a [C, H, W] tile with H, W multiples of
  `flow.tile_multiple` (4 for two levels).  Edge-tile padding and the missing channels of grey
  images cannot be left uncoded (there is no "known context" input in a coupling): either code them
  as pixels replicated from the edge (cheap for a trained flow: near-deterministic values, but
  still paid, to be measured), or train a flow per channel count (1 and 3) and pad by
  replication; alpha and palettes stay side data as today.
- Batches in flight and bootstrap: the chain's deficit per tile is at least (k - 7) bits per
  subpixel (dequantization, popped first) plus what expanding couplings pop before the contracting
  ones push (measured 15 bits per subpixel at k = 16 on a briefly trained flow, 9 at k = 10; see
  `codec`); `Stack.low` measures it, so the existing ramp and bootstrap logic applies once the tile
  codec is swapped.  A smaller grid_bits cuts it at the same rate: choose the default on the
  shipped flow (k = 12 looks like the better trade).
- Training: `bbcodec train` must build a `Flow` for `arch: realnvp` and minimise `Flow.bpd(x)`
  (fresh uniform u per step) with the same EMA and resume logic; the model card states
  `Flow.nll_bits` on the first 1000 CIFAR-10 test images (the dequantization bound, which the
  codec achieves within its measured gap).  Data-dependent init of the couplings is not needed
  (their output layers start at zero: an identity flow).
- Bench: `bbcodec bench --codec flow` rows (achieved bits/dim vs `FlowStats.flow_bits`, initial
  bits apart, encode/decode seconds).
"""
from .codec import FlowCodingParams, FlowNet, FlowStats, bin_choice, flow_codec
from .net import Flow, FlowConfig

__all__ = ["Flow", "FlowConfig", "FlowCodingParams", "FlowNet", "FlowStats", "bin_choice", "flow_codec"]
