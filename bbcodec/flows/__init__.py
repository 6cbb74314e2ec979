"""The flow baseline: a coupling flow for 8-bit images coded by local bits-back.

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

Integration (docs/flow.md): `priors.FlowPrior` puts `flow_codec` behind the archive coder's tile-prior
interface (tiles, batch plan, bootstrap and seed as for the diffusion prior; padding and grey channels
filled by edge replication and coded); the container's codec id "flow-lbb" with `header.FlowCoding`;
the registry builds a `Flow` for config arch "realnvp"; `bbcodec compress --model <flow>`,
`bbcodec bench --codec flow`; `python -m bbcodec.modelcard flow RUN NAME` ships a run.
"""
from .codec import FlowCodingParams, FlowNet, FlowStats, bin_choice, flow_codec
from .net import Flow, FlowConfig

__all__ = ["Flow", "FlowConfig", "FlowCodingParams", "FlowNet", "FlowStats", "bin_choice", "flow_codec"]
