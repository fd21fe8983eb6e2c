"""A bundled flood model's ONNX weights loaded back into the torch network it was exported from.

The exporter folds each BatchNorm into the convolution before it, so the file holds one weight and one
bias per convolution. They are loaded into the same network with every BatchNorm set to the identity
(running mean 0, running variance 1 - eps, scale 1) and its shift carrying the folded bias; those
BatchNorms must then stay in eval mode (`hold_batchnorm`). Convolutions are matched in the order the
network runs them, which is the order of the ONNX graph, and the result is checked against ONNX Runtime on
the same input: a model that does not load exactly is refused, never fine-tuned from a wrong start.

A network without BatchNorm whose card names it (`training.network`, e.g. the anchored network of
`flood_s1_anchored`, networks/anchored.py) is rebuilt from that entry and the card's normalisation, and its
parameters are read by name. The ensemble (`flood_s1_ensemble`) averages two networks' probabilities: no
single set of weights to train, so it stays refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

from ...models.card import ModelCard, read_card
from ...models.errors import ModelError
from ..common.networks.anchored import AnchoredContext, from_entry
from ..common.networks.segnet import SegNet
from ..common.networks.unet import UNet

CONVS = (nn.Conv2d, nn.ConvTranspose2d)
LOAD_TOL = 1e-3  # max |ORT - torch| of probabilities once loaded
THRESHOLD_LR = 0.02  # dB per step (AdamW): a 200-step fine-tune can move the VH threshold by up to 4 dB


class FloodNet(nn.Module):
    """A fine-tunable flood network: `encoder` and `decoder` parameter groups over one module."""

    def __init__(self, net: nn.Module, kind: str) -> None:
        super().__init__()
        self.net, self.kind = net, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def encoder_parameters(self) -> list[nn.Parameter]:
        if self.kind == "anchored":
            return self.net.encoder_parameters()
        parts = self.net.encoders if self.kind == "segnet" else self.net.down
        return list(parts.parameters())

    def fast_parameters(self) -> list[nn.Parameter]:
        """Parameters in physical units that train at THRESHOLD_LR, not the recipe's rate: the anchored
        network's VH threshold (dB). At 1e-4 per step it could not move by a tenth of a dB in a fine-tune, so
        labels saying "this water at -19 dB is water" could never win against the start model's -20 dB."""
        return [self.net.threshold] if self.kind == "anchored" else []

    @property
    def multiple(self) -> int:
        """H and W of an input must be multiples of this (the anchored network takes any size; 8 keeps its
        context levels aligned with the pixels)."""
        return 4 if self.kind == "segnet" else 8


def architecture(proto: onnx.ModelProto) -> tuple[str, nn.Module]:
    """The torch network a flood ONNX graph was exported from, by its initializer names and shapes."""
    inits = {i.name: i for i in proto.graph.initializer}
    if "net.decoder.head.weight" in inits and len(proto.graph.input) == 1:
        width = inits["net.decoder.head.weight"].dims[1]
        return "segnet", SegNet(["s1"], classes=inits["net.decoder.head.weight"].dims[0], width=width)
    if "net.head.weight" in inits and "net.up.0.weight" in inits:
        depth = sum(1 for n in inits if n.startswith("net.up.") and n.endswith(".weight"))
        head = inits["net.head.weight"]
        return "unet", UNet(in_ch=2, classes=head.dims[0], width=head.dims[1], depth=depth)
    raise ModelError("cannot fine-tune this model: its network is not a U-Net, a pre-trained-encoder SegNet "
                     "or a network its card describes (fine-tunable: flood_s1_anchored, flood_s1_contrastive, "
                     "flood_s1_unet)")  # fmt: skip


def network_entry(card: ModelCard) -> dict | None:
    """The card's description of its torch network (`training.network`), also through a fine-tune's base."""
    training = card.training or {}
    while isinstance(training, dict):
        if isinstance(training.get("network"), dict):
            return training["network"]
        training = (training.get("base_model") or {}).get("training")
    return None


def _load_named(path: Path, card: ModelCard, entry: dict) -> FloodNet:
    """A network rebuilt from the card's entry, its parameters and buffers read by name from the file."""
    spec = card.inputs[0]
    try:
        net = from_entry(entry, spec.mean, spec.std)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{card.name}: its card's network entry cannot be rebuilt ({exc})") from exc
    proto = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    # the exporter keeps one initializer for equal tensors (e.g. the zero biases of untrained heads) and
    # gives the others as Identity nodes of it
    for node in proto.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            inits.setdefault(node.output[0], inits[node.input[0]])
    state = net.state_dict()
    missing = [k for k in state if f"net.{k}" not in inits]
    if missing:
        raise ModelError(
            f"{card.name}: the file lacks {len(missing)} of the network's weights ({missing[0]}, ...)"
        )
    for k, v in state.items():
        w = inits[f"net.{k}"]
        if tuple(w.shape) != tuple(v.shape):
            raise ModelError(f"{card.name}: weight {k} has shape {w.shape}, not {tuple(v.shape)}")
        state[k] = torch.from_numpy(np.array(w))
    net.load_state_dict(state)
    return FloodNet(net, "anchored").eval()


def _conv_order(net: nn.Module, channels: int) -> list[nn.Module]:
    """Convolutions in the order a forward pass runs them."""
    order: list[nn.Module] = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: order.append(m))
        for m in net.modules()
        if isinstance(m, CONVS)
    ]
    with torch.no_grad():
        net.eval()(torch.zeros(1, channels, 16, 16))
    for h in hooks:
        h.remove()
    return order


def _following_bn(net: nn.Module) -> dict[nn.Module, nn.BatchNorm2d]:
    """Each convolution's BatchNorm: the module registered right after it (how both networks are built)."""
    mods = list(net.modules())
    return {
        m: nxt
        for m, nxt in zip(mods, mods[1:], strict=False)
        if isinstance(m, CONVS) and isinstance(nxt, nn.BatchNorm2d)
    }


def hold_batchnorm(net: nn.Module) -> None:
    """Keep every BatchNorm in eval mode (they carry folded weights, not statistics of a batch)."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def load_base(path: str | Path) -> tuple[FloodNet, ModelCard]:
    """The network of a flood ONNX file with its weights, and its card; ModelError when it does not load."""
    path = Path(path)
    card = read_card(path)
    if card.task != "flood" or len(card.inputs) != 1 or card.inputs[0].sensor != "S1":
        raise ModelError(f"{card.name}: only single-input Sentinel-1 flood models can be fine-tuned")
    entry = network_entry(card)
    if entry is not None:
        model = _load_named(path, card, entry)
        diff = _check(path, model)
        if diff > LOAD_TOL:
            raise ModelError(f"{card.name}: weights loaded into torch differ from ONNX Runtime by {diff:.1e}")
        return model, card
    proto = onnx.load(str(path))
    kind, net = architecture(proto)
    inits = {i.name: np.array(numpy_helper.to_array(i)) for i in proto.graph.initializer}
    nodes = [n for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    convs = _conv_order(net, 2)
    if len(nodes) != len(convs):
        raise ModelError(f"{card.name}: {len(nodes)} convolutions in the file, {len(convs)} in the network")
    bns = _following_bn(net)
    with torch.no_grad():
        for node, conv in zip(nodes, convs, strict=True):
            weight = inits[node.input[1]]
            bias = (
                inits[node.input[2]]
                if len(node.input) > 2
                else np.zeros(weight.shape[0 if isinstance(conv, nn.Conv2d) else 1], np.float32)
            )
            if tuple(weight.shape) != tuple(conv.weight.shape):
                raise ModelError(
                    f"{card.name}: weight {node.input[1]} has shape {weight.shape}, not {tuple(conv.weight.shape)}"
                )
            conv.weight.copy_(torch.from_numpy(weight))
            if conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(bias))
            else:
                bn = bns[conv]
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(bias))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
    model = FloodNet(net, kind).eval()
    diff = _check(path, model)
    if diff > LOAD_TOL:
        raise ModelError(f"{card.name}: weights loaded into torch differ from ONNX Runtime by {diff:.1e}")
    return model, card


def _check(path: Path, model: FloodNet) -> float:
    """Max |ORT - torch| of the class probabilities on a fixed input."""
    x = torch.randn(1, 2, 64, 64, generator=torch.Generator().manual_seed(0)) * 1.5
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        ref = torch.softmax(model(x), dim=1).numpy()
    return float(np.max(np.abs(got - ref)))


def random_like(model: FloodNet, seed: int) -> FloodNet:
    """The same network with fresh random weights (the random-init baseline); BatchNorm as identity."""
    torch.manual_seed(seed)
    kind = model.kind
    if kind == "anchored":
        old = model.net
        fresh = AnchoredContext([0.0, float(old.vh_mean)], [1.0, float(old.vh_std)], **old.config)
        return FloodNet(fresh, kind).eval()
    net = (
        SegNet(["s1"], 2, width=model.net.decoder.head.weight.shape[1])
        if kind == "segnet"
        else UNet(2, 2, width=model.net.head.weight.shape[1], depth=len(model.net.up))
    )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.fill_(1.0 - m.eps)
    return FloodNet(net, kind).eval()
