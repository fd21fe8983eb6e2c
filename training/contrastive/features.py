"""Pre-trained encoders as per-pixel feature extractors (card task `features`), exported to ONNX.

A land-cover head in the user's own classes (models/, no torch) is fitted on these features. The extractor
is the encoder's hypercolumn: every stage upsampled to the input size and concatenated (width 8: 8 + 16 +
32 = 56 channels), so each pixel gets its own fine and context features at the input resolution.

S2 extractors take 12 bands (no B10): B10 (cirrus) is missing from L2A products and from BigEarthNet, and
a normalised band of 0 (its pool mean) adds nothing to the first convolution, so dropping B10's weights
gives exactly the encoder's output with B10 at its mean; L1C and L2A rasters both work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...models.bands import S2L1C_BANDS
from ...models.card import FEATURES, InputSpec, ModelCard
from ..common.export import export_onnx
from .cards import CREDITS, NORMALISATION
from .encoders import ResNetEncoder

DROPPED_S2 = "B10"
OUTPUT = "features"
# name -> (input, what trained it); the two multimodal ones are bundled (models/weights), the others are
# the study's comparisons (training/ownclasses).
EXTRACTORS: dict[str, tuple[str, str]] = {
    "encoder_s2_multimodal": ("s2", "multimodal"),
    "encoder_s1_multimodal": ("s1", "multimodal"),
    "encoder_s2_simclr": ("s2", "simclr_s2"),
    "encoder_s2_random": ("s2", "random"),
}
BUNDLED = ("encoder_s2_multimodal", "encoder_s1_multimodal")


class Hypercolumn(nn.Module):
    """Encoder -> (N, sum of stage widths, H, W): each stage bilinearly upsampled to the input size.

    Any H and W work: the input is padded (edge values repeated) to the encoder's stride and cropped back.
    """

    def __init__(self, encoder: ResNetEncoder) -> None:
        super().__init__()
        self.encoder = encoder.eval()
        self.stride = 2 ** (len(encoder.channels) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        ph, pw = (self.stride - h % self.stride) % self.stride, (self.stride - w % self.stride) % self.stride
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        feats = self.encoder(x)
        ups = [feats[0]] + [
            F.interpolate(f, scale_factor=float(2**i), mode="bilinear", align_corners=False)
            for i, f in enumerate(feats[1:], start=1)
        ]
        return torch.cat(ups, dim=1)[..., :h, :w]

    @property
    def dim(self) -> int:
        return sum(self.encoder.channels)


def encoder_from(
    state: dict[str, torch.Tensor] | None, in_ch: int, width: int, seed: int = 0
) -> ResNetEncoder:
    """A ResNetEncoder with pre-trained `state`, or freshly initialised from `seed` when `state` is None."""
    torch.manual_seed(seed)
    enc = ResNetEncoder(in_ch, width)
    if state is not None:
        enc.load_state_dict(state)
    return enc.eval()


def drop_s2_band(
    enc: ResNetEncoder, spec: InputSpec, band: str = DROPPED_S2
) -> tuple[ResNetEncoder, InputSpec]:
    """The encoder and its card input without `band` (its first-layer weights removed; see module doc)."""
    i = list(spec.bands).index(band)
    keep = [j for j in range(len(spec.bands)) if j != i]
    old = enc.stem[0]
    conv = nn.Conv2d(len(keep), old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
    conv.weight.data = old.weight.data[:, keep].clone()
    enc.stem[0] = conv
    enc.in_ch = len(keep)
    new = InputSpec(
        spec.name, spec.sensor, [spec.bands[j] for j in keep], spec.units, [spec.mean[j] for j in keep],
        [spec.std[j] for j in keep], spec.clip, spec.nodata, spec.level,
    )  # fmt: skip
    return enc, new


def feature_card(name: str, spec: InputSpec, dim: int, method: str, training: dict[str, Any]) -> ModelCard:
    """Card of a feature extractor: no classes, D channels per pixel; says what trained it."""
    what = {
        "multimodal": "multimodal contrastive pre-training (cross-modal InfoNCE between co-located S1 and S2 "
        "crops, Wilson et al. 2022)",
        "simclr_s2": "SimCLR on S2 alone (two augmented views, NT-Xent)",
        "random": "nothing: random initial weights (the study's control)",
    }[method]
    sensor = "Sentinel-1 [VV, VH] dB" if spec.name == "s1" else "Sentinel-2 L1C or L2A, 12 bands (no B10)"
    desc = (
        f"Per-pixel feature extractor on {sensor}: {dim} features per pixel (N, {dim}, H, W) at the input "
        f"resolution, the hypercolumn of a small ResNet encoder trained by {what}. No land-cover label was "
        "used to train it; fit a head on these features with your own labelled polygons."
    )
    return ModelCard(
        name=name, task=FEATURES, inputs=[spec], classes=[], tile_size=256, overlap=16, resolution_m=10.0,
        output_kind="features", description=desc, metrics={"dim": dim},
        training={**training, "method": method, "normalisation": NORMALISATION,
                  "code": "contrasat.training.contrastive.features"},
        license="GPL-2.0-or-later",
    ).validate()  # fmt: skip


def export_extractor(enc: ResNetEncoder, card: ModelCard, path: str | Path) -> float:
    """Write the encoder's hypercolumn to `path` (input named by the card, output "features"); parity diff."""
    (spec,) = card.inputs
    net = Hypercolumn(enc)
    c, axes = len(spec.bands), {0: "n", 2: "h", 3: "w"}
    return export_onnx(
        net, card, path, example={spec.name: (1, c, 64, 64)}, dynamic={spec.name: axes, OUTPUT: axes},
        checks=[{spec.name: (2, c, 64, 64)}, {spec.name: (1, c, 37, 53)}], output=OUTPUT,
    )  # fmt: skip


def _pool_of(run: Path) -> dict[str, Any]:
    """What a pre-training run saw: its sources (with credits), exclusions and recipe size."""
    cfg = json.loads((Path(run) / "history.json").read_text(encoding="utf-8"))["config"]
    return {
        "data": [CREDITS.get(s, s) for s in cfg["sources"]], "excluded_scenes": cfg["exclude"],
        "steps": cfg["steps"], "batch": cfg["batch"], "crop": cfg["crop"], "seed": cfg["seed"],
    }  # fmt: skip


def build_extractors(runs: dict[str, Path], out: Path, names: list[str], seed: int = 0) -> dict[str, dict]:
    """Export the named extractors into `out`; `runs` maps 'multimodal'/'simclr_s2' to pre-training runs.

    The random-init extractor takes the multimodal run's normalisation (same pool) and `seed`'s weights.
    Returns {name: {'path', 'dim', 'parity'}}.
    """
    from .pool import specs_from_dict
    from .pretrain import load_encoders

    loaded = {m: load_encoders(p) for m, p in runs.items()}
    done = {}
    for name in names:
        modality, method = EXTRACTORS[name]
        src = loaded["multimodal" if method == "random" else method]
        specs = specs_from_dict(src["specs"])
        width = int(src["width"])
        in_ch = 2 if modality == "s1" else len(S2L1C_BANDS)
        state = None if method == "random" else src["encoders"][modality]
        enc, spec = encoder_from(state, in_ch, width, seed), specs[modality]
        if modality == "s2":
            enc, spec = drop_s2_band(enc, spec)
        training = (
            {"labels_used": "none", "width": width, "init_seed": seed}
            if method == "random"
            else {
                **_pool_of(runs[method]),
                "labels_used": "none (unlabelled S1/S2 pairs only)",
                "width": width,
            }
        )
        net_dim = sum(enc.channels)
        card = feature_card(name, spec, net_dim, method, training)
        diff = export_extractor(enc, card, out / f"{name}.onnx")
        done[name] = {"path": str(out / f"{name}.onnx"), "dim": net_dim, "parity": diff}
    return done
