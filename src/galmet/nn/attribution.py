"""Attribution maps: which pixels drive a prediction, with captum (Kokhlikyan et al. 2020).

:func:`attribution_maps` runs one of three captum methods on a model's networks, for one target
in target units (dex), on the input the network sees (the bundle's central crop, no TTA):

=========================  ====================================================================
``gradcam``                ``LayerGradCam`` on a ResNet stage (default: the deepest whose map is
                           at least 4 x 4), ReLU'd (regions that raise Z), bilinearly resampled
                           with each cell over the pixel it is centred on (:func:`place_cam`)
``integrated-gradients``   ``IntegratedGradients`` from a baseline image of the galaxy's own sky
                           colour, summed over the colour channels (signed: raises / lowers Z)
``occlusion``              ``Occlusion`` with square windows of 1/8 of the input painted with the
                           sky colour: how much Z falls when a region is hidden (signed)
=========================  ====================================================================

An ensemble's map is the mean of its members' maps (Grad-CAM) or the attribution of the mean
prediction (the other two). captum is an optional dependency (``pip install 'galmet[explain]'``);
without it every function here raises a one-line :class:`~galmet.errors.ConfigError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from galmet._optional import require
from galmet.errors import ConfigError
from galmet.nn.augment import center_crop, to_model_input
from galmet.nn.device import resolve_device, to_device
from galmet.nn.inference import GalmetModel
from galmet.nn.net import GAUSSIAN, gaussian_split

METHODS = ("gradcam", "integrated-gradients", "occlusion")
#: ResNet stages and how much each shrinks the input.
STAGES = {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
#: Smallest Grad-CAM map (pixels per side) the automatic layer choice accepts.
MIN_CAM = 4


def require_captum():
    """The ``captum.attr`` module, or a one-line ConfigError saying how to install it."""
    return require("captum.attr", "explain", "galmet explain")


class TargetOutput(nn.Module):
    """One target of some members of a model, in target units, averaged over those members: (N,).

    Takes the normalised input the networks see (N, 3, H, W); the gaussian head's mean is used.
    """

    def __init__(self, model: GalmetModel, index: int, members: list[int] | None = None) -> None:
        super().__init__()
        which = members if members is not None else list(range(len(model.nets)))
        self.nets = nn.ModuleList([model.nets[i] for i in which])
        scaling = model._member_scaling()
        self.scale = [float(scaling[i][0][index]) for i in which]
        self.shift = [float(scaling[i][1][index]) for i in which]
        self.index, self.n_targets, self.gaussian = index, len(model.targets), model.loss == GAUSSIAN

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = torch.zeros((), dtype=x.dtype, device=x.device)
        for net, a, b in zip(self.nets, self.scale, self.shift, strict=True):
            out = net(x)
            if self.gaussian:
                out = gaussian_split(out, self.n_targets)[0]
            total = total + out[:, self.index] * a + b
        return total / len(self.nets)


def choose_layer(input_size: int, layer: str = "auto") -> str:
    """The ResNet stage Grad-CAM uses: ``layer`` itself, or (``auto``) the deepest one whose map
    is at least :data:`MIN_CAM` pixels across for an input of ``input_size`` pixels."""
    if layer != "auto":
        if layer not in STAGES:
            raise ConfigError(f"layer must be auto or one of {', '.join(STAGES)}, got {layer!r}", param="layer")
        return layer
    for name in ("layer4", "layer3", "layer2"):
        if -(-input_size // STAGES[name]) >= MIN_CAM:
            return name
    return "layer1"


def place_cam(cam: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """A stage's map (N, 1, h, w) resampled to the input grid (N, 1, size, size), bilinearly, with
    each cell where it belongs.

    In a torchvision ResNet every stride-2 layer (7x7 conv, 3x3 max pool, 3x3 conv, all padded to
    keep the centre) puts output ``j`` over input ``2j``, so cell ``j`` of a stage with total
    stride ``s`` is centred on input pixel ``s j``. A plain resize (``align_corners=False``, as
    ``captum``'s ``LayerAttribution.interpolate``) would centre it on ``s j + (s - 1) / 2`` instead,
    shifting every map by about half a cell down and to the right (7.5 pixels for ``layer3``).
    """
    h, w = cam.shape[-2:]
    pix = torch.arange(size, dtype=cam.dtype, device=cam.device) / stride  # input pixel -> cell coordinate
    gy = (2 * pix / max(h - 1, 1) - 1).clamp(-1, 1)
    gx = (2 * pix / max(w - 1, 1) - 1).clamp(-1, 1)
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1)  # (size, size, 2) as (x, y)
    grid = grid.unsqueeze(0).expand(len(cam), size, size, 2)
    return torch.nn.functional.grid_sample(cam, grid, mode="bilinear", align_corners=True)


def _sky_baseline(xb: torch.Tensor, mean, std) -> torch.Tensor:
    """A normalised image of each uint8 image's border colour, shaped like ``to_model_input(xb)``."""
    size = xb.shape[1]
    b = max(1, size // 16)
    edge = torch.cat([xb[:, :b].reshape(len(xb), -1, 3), xb[:, -b:].reshape(len(xb), -1, 3)], 1)
    sky = edge.float().median(dim=1).values  # (N, 3)
    flat = sky[:, None, None, :].expand(xb.shape).round().to(torch.uint8).contiguous()
    return to_model_input(flat, mean, std)


def attribution_maps(
    model: GalmetModel,
    images,
    method: str = "gradcam",
    target: str | None = None,
    layer: str = "auto",
    batch_size: int = 8,
    device: str = "cpu",
    n_steps: int = 32,
) -> dict[str, Any]:
    """Attribution maps of uint8 images (N, H, W, 3) for one target of ``model``.

    Parameters
    ----------
    method : {"gradcam", "integrated-gradients", "occlusion"}
        See the module docstring.
    target : str, optional
        Which target (default: the model's first).
    layer : str
        Grad-CAM stage: ``auto``, ``layer1`` .. ``layer4``.
    n_steps : int
        Integrated-gradients steps.

    Returns
    -------
    dict
        ``maps`` float32 (N, S, S) on the network's input grid (S = the crop, or the image size),
        ``pred`` float64 (N,) the plain (no-TTA) prediction in target units, ``method``,
        ``layer`` (Grad-CAM) and ``input_size``.
    """
    attr = require_captum()
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}", param="method")
    name = target or model.targets[0]
    if name not in model.targets:
        raise ConfigError(f"the model predicts {', '.join(model.targets)}, not {name!r}")
    index = model.targets.index(name)
    dev = resolve_device(device)
    model.to(dev)
    for net in model.nets:
        net.eval()
    norm = model.norm
    size = model.crop or int(images.shape[1])
    stage = choose_layer(size, layer) if method == "gradcam" else None
    whole = TargetOutput(model, index).to(dev)
    maps, preds = [], []
    for start in range(0, len(images), batch_size):
        xb = center_crop(to_device(np.ascontiguousarray(images[start : start + batch_size]), dev), model.crop)
        x = to_model_input(xb, *norm).contiguous()
        with torch.no_grad():
            preds.append(whole(x).double().cpu().numpy())
        if method == "gradcam":
            cams = []
            for m, member in enumerate(model.nets):
                cam = attr.LayerGradCam(TargetOutput(model, index, [m]), getattr(member.body, str(stage)))
                a = cam.attribute(x, relu_attributions=True)
                cams.append(place_cam(a, size, STAGES[str(stage)]))
            out = torch.stack(cams).mean(0)[:, 0]
        elif method == "integrated-gradients":
            ig = attr.IntegratedGradients(whole)
            out = ig.attribute(x, baselines=_sky_baseline(xb, *norm), n_steps=n_steps).sum(1)
        else:
            w = max(2, size // 8)
            occ = attr.Occlusion(whole)
            out = occ.attribute(
                x,
                sliding_window_shapes=(3, w, w),
                strides=(3, max(1, w // 2), max(1, w // 2)),
                baselines=_sky_baseline(xb, *norm),
            )[:, 0]
        maps.append(out.detach().float().cpu().numpy())
    return {
        "maps": np.concatenate(maps),
        "pred": np.concatenate(preds),
        "method": method,
        "layer": stage,
        "input_size": size,
        "target": name,
    }
