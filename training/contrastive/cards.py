"""Model cards of the contrastive kit's exported models: S1+S2 fusion flood and S2 land cover."""

from __future__ import annotations

from typing import Any

from ...models.card import ClassInfo, InputSpec, ModelCard

LANDCOVER_CLASSES = [  # TerraMind's remap of the ESRI 10 m land-cover scheme; ESRI-like colours
    ClassInfo(0, "no data", "#00000000"),
    ClassInfo(1, "water", "#419bdfff"),
    ClassInfo(2, "trees", "#397d49ff"),
    ClassInfo(3, "flooded vegetation", "#7a87c6ff"),
    ClassInfo(4, "crops", "#e49635ff"),
    ClassInfo(5, "built area", "#c4281bff"),
    ClassInfo(6, "bare ground", "#a59b8fff"),
    ClassInfo(7, "snow/ice", "#a8ebffff"),
    ClassInfo(8, "clouds", "#616161ff"),
    ClassInfo(9, "rangeland", "#e3e2c3ff"),
]
FLOOD_CLASSES = [ClassInfo(0, "dry", "#00000000"), ClassInfo(1, "water", "#1f78b4ff")]

CREDITS = {
    "sen1floods11": "Sen1Floods11 hand-labelled chips (Bonafilia et al., CVPR Workshops 2020), CC-BY-4.0",
    "terramind": "TerraMesh examples of IBM/NASA TerraMind (Jakubik et al. 2025), Apache-2.0",
    "bigearthnet": "BigEarthNet v2 patches shipped in configilm 0.7.1 (Clasen et al.), CDLA-Permissive-1.0",
}
NORMALISATION = (
    "S1: clip dB to [-50, 5]; S2: subtract the +1000 offset when the data carry it (detected from the "
    "darkest band), clip to [0, 15000]; then (x - mean) / std with the pre-training pool's statistics"
)


def card_for(
    task: str,
    specs: dict[str, InputSpec],
    inputs: list[str],
    metrics: dict[str, Any],
    training: dict[str, Any],
) -> ModelCard:
    """Card of an exported contrastive-kit model (`task` is 'flood_fusion', 'flood_s1' or 'landcover_s2')."""
    if task == "landcover_s2":
        name, kind, classes = "landcover_s2", "land_cover", LANDCOVER_CLASSES
        desc = (
            "Small ResNet encoder + U-Net decoder on Sentinel-2 L1C (13 bands): per-pixel probabilities of the "
            "10 TerraMind land-cover classes. Trained on three 224 x 224 TerraMind sites only: a demonstrator, "
            "not a production land-cover map; read the held-out site metrics."
        )
    elif task == "flood_fusion":
        name, kind, classes = "flood_s1s2_fusion", "flood", FLOOD_CLASSES
        desc = (
            "Dual ResNet encoders (S1 [VV, VH] dB and S2 L1C 13 bands) + U-Net decoder: dry/water "
            "probabilities. Two inputs: S2 is resampled onto the S1 grid by the runtime."
        )
    else:
        name, kind, classes = "flood_s1_contrastive", "flood", FLOOD_CLASSES
        desc = (
            "ResNet encoder pre-trained contrastively + U-Net decoder on Sentinel-1 [VV, VH] dB: dry/water."
        )
    return ModelCard(
        name=name, task=kind, inputs=[specs[n] for n in inputs], classes=classes, tile_size=256, overlap=32,
        resolution_m=10.0, output_kind="probabilities", description=desc, metrics=metrics,
        training={**training, "normalisation": NORMALISATION, "code": "contrasat.training.contrastive"},
        license="GPL-2.0-or-later",
    ).validate()  # fmt: skip
