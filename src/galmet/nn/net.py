"""The paper's network: a torchvision ResNet body and the fastai 0.7 regression head.

- :func:`build_model`: ``GalmetNet`` = torchvision ResNet-18/34/50 without avgpool/fc (``.body``)
  followed by the fastai 0.7 head (``.head``): concat(adaptive max pool, adaptive avg pool) ->
  flatten -> BatchNorm1d(2C) -> Dropout(0.25) -> Linear(2C, 512) -> ReLU -> BatchNorm1d(512) ->
  Dropout(0.5) -> Linear(512, n_targets), C = the body's output channels (512 or 2048).
- :func:`layer_groups`: the paper's three groups, (1) stem + layer1 + layer2, (2) layer3 + layer4,
  (3) head; :func:`freeze_body` freezes the body as fastai 0.7 did (BatchNorm statistics included).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from galmet.columns import ARCHS
from galmet.errors import ConfigError
from galmet.nn.weights import imagenet_state_dict, load_body_state, local_body_state

HEAD_DESCRIPTION = (
    "concat(AdaptiveMaxPool2d(1), AdaptiveAvgPool2d(1)) -> Flatten -> BatchNorm1d(2C) -> Dropout(0.25) -> "
    "Linear(2C, 512) -> ReLU -> BatchNorm1d(512) -> Dropout(0.5) -> Linear(512, n_targets)"
)
#: Stem modules of a torchvision ResNet, in forward order (layer group 1 with layer1, layer2).
_STEM = ("conv1", "bn1", "relu", "maxpool")
#: The ``loss`` of a heteroscedastic head: per target a mean and a log-variance (``--loss gaussian``).
GAUSSIAN = "gaussian"
#: Bounds of a predicted log-variance (standardised target units), for a stable likelihood.
LOGVAR_RANGE = (-12.0, 6.0)


def outputs_per_target(loss: str | None) -> int:
    """Network outputs per target: 2 (mean, log-variance) for the gaussian head, else 1."""
    return 2 if loss == GAUSSIAN else 1


def gaussian_split(out: torch.Tensor, n_targets: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, log-variance) of a gaussian head's output (N, 2T): each (N, T), the log-variance
    clamped to :data:`LOGVAR_RANGE`."""
    return out[:, :n_targets], out[:, n_targets : 2 * n_targets].clamp(*LOGVAR_RANGE)


class AdaptiveConcatPool2d(nn.Module):
    """fastai's pooling: adaptive max pool and adaptive avg pool to 1x1, concatenated (max first).

    (N, C, H, W) -> (N, 2C, 1, 1).
    """

    def __init__(self) -> None:
        super().__init__()
        self.mp = nn.AdaptiveMaxPool2d(1)
        self.ap = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.mp(x), self.ap(x)], 1)


def make_head(in_channels: int, n_targets: int = 1) -> nn.Sequential:
    """The fastai 0.7 regression head for a body with ``in_channels`` output channels.

    Linear weights are Kaiming-normal initialised, as fastai 0.7's ``ConvLearner`` did.
    """
    head = nn.Sequential(
        AdaptiveConcatPool2d(),
        nn.Flatten(),
        nn.BatchNorm1d(2 * in_channels),
        nn.Dropout(0.25),
        nn.Linear(2 * in_channels, 512),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(512),
        nn.Dropout(0.5),
        nn.Linear(512, n_targets),
    )
    for m in head.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            nn.init.zeros_(m.bias)
    return head


class GalmetNet(nn.Module):
    """ResNet body + regression head: float (N, 3, H, W) -> float (N, n_targets).

    Attributes
    ----------
    body : nn.Sequential
        The torchvision ResNet's children except ``avgpool`` and ``fc``, by name
        (``conv1, bn1, relu, maxpool, layer1 .. layer4``).
    head : nn.Sequential
        See :func:`make_head`.
    arch : str
        ``resnet10``, ``resnet18``, ``resnet34`` or ``resnet50``.
    body_frozen : bool
        Set by :func:`freeze_body`; while True, :meth:`train` keeps the body's BatchNorm
        layers in eval mode (running statistics frozen), as fastai 0.7 did.
    """

    def __init__(self, body: nn.Sequential, head: nn.Sequential, arch: str) -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.arch = arch
        self.body_frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def train(self, mode: bool = True) -> GalmetNet:
        super().train(mode)
        if mode and self.body_frozen:
            for m in self.body.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self


def _resnet(arch: str) -> nn.Module:
    import torchvision

    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")
    if arch == "resnet10":
        from torchvision.models.resnet import BasicBlock, ResNet

        return ResNet(BasicBlock, [1, 1, 1, 1])
    return getattr(torchvision.models, arch)(weights=None)


def build_model(arch: str = "resnet34", n_targets: int = 1, weights: str | os.PathLike = "none") -> GalmetNet:
    """Build the paper's network.

    Parameters
    ----------
    arch : {"resnet10", "resnet18", "resnet34", "resnet50"}
        torchvision ResNet used as the body (``resnet10``: one basic block per stage, no ImageNet
        weights).
    n_targets : int
        Outputs of the final linear layer (one per target column).
    weights : {"none", "imagenet"} or path
        ``none``: random init. ``imagenet``: torchvision's ``IMAGENET1K_V1`` weights (downloaded,
        or read from the torch hub cache; :class:`ConfigError` saying how to get them when that
        fails). A path: a local torchvision ResNet state dict, or a galmet bundle whose body is
        reused. The head is always freshly initialised.

    Returns
    -------
    GalmetNet
    """
    if int(n_targets) < 1:
        raise ConfigError(f"n_targets must be at least 1, got {n_targets}")
    resnet = _resnet(arch)
    channels = cast(nn.Linear, resnet.fc).in_features
    body = nn.Sequential(OrderedDict((name, m) for name, m in resnet.named_children() if name not in ("avgpool", "fc")))
    model = GalmetNet(body, make_head(channels, int(n_targets)), arch)
    w = str(weights)
    if w == "none":
        return model
    state = imagenet_state_dict(arch) if w == "imagenet" else local_body_state(Path(w))
    model.body.load_state_dict(load_body_state(model.body, arch, state, "ImageNet weights" if w == "imagenet" else w))
    return model


def n_outputs(net: GalmetNet) -> int:
    """Outputs of the network's final linear layer (one per target)."""
    return cast(nn.Linear, net.head[-1]).out_features


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """The paper's three parameter groups: [stem + layer1 + layer2, layer3 + layer4, head].

    Every parameter of the model appears in exactly one group. Accepts a ``GalmetNet`` or one
    wrapped by DistributedDataParallel / torch.compile.
    """
    net = unwrap(model)
    body = net.body
    g1 = [p for name in (*_STEM, "layer1", "layer2") for p in getattr(body, name).parameters()]
    g2 = [p for name in ("layer3", "layer4") for p in getattr(body, name).parameters()]
    g3 = list(net.head.parameters())
    return [g1, g2, g3]


def freeze_body(model: nn.Module, frozen: bool = True) -> None:
    """Freeze (or unfreeze) the body: ``requires_grad`` off for all its parameters.

    While frozen, the body's BatchNorm layers also stay in eval mode (running mean/var
    frozen) even after ``model.train()``, as fastai 0.7 did for non-trainable layers; so
    epochs 1-2 of the paper recipe change only the head. The head is never frozen.
    """
    net = unwrap(model)
    for p in net.body.parameters():
        p.requires_grad_(not frozen)
    net.body_frozen = bool(frozen)
    net.train(net.training)


def unwrap(model: Any) -> GalmetNet:
    """The ``GalmetNet`` inside a DistributedDataParallel and/or torch.compile wrapper."""
    while not isinstance(model, GalmetNet):
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            raise TypeError(f"expected a GalmetNet, got {type(model).__name__}")
    return model
