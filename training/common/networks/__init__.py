"""The networks more than one kit builds: the flood U-Net, the ResNet encoder and the SegNet on it.

Here because the fine-tune kit loads bundled models of both the flood and the contrastive kits back into
these networks, and kits import only training/common (docs/architecture.md).
"""

from torch import nn


def n_params(model: nn.Module) -> int:
    """Number of parameters of a network (for cards and run summaries)."""
    return sum(p.numel() for p in model.parameters())
