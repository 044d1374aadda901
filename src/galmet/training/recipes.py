"""Training recipes as torch optimizers and ``torch.optim.lr_scheduler`` schedulers.

A recipe is a list of :class:`Phase` objects. Each phase gets a fresh optimizer (AdamW, or SGD
with momentum for ``notebook``) with one parameter group per layer group (stem+layer1+layer2,
layer3+layer4, head) -- as fastai 0.7 built a new optimizer for every ``fit`` call -- and a
scheduler stepped once per optimizer step.

``paper`` (Wu & Boada 2019, appendix A)::

    phase "frozen":   body frozen, every group at lr 0.1, one cosine cycle per epoch (2 epochs)
    phase "unfrozen": everything trainable, max lrs 1e-3 / 1e-2 / 1e-2, SGDR cycles 1, 1, 2, 4 epochs

Within a cycle of ``L`` steps the lr at step ``j`` (0-based) is ``max_lr * (1 + cos(pi j / L)) / 2``
(``CosineAnnealingLR(T_max=L)``, ``eta_min=0``); cycles are chained with ``SequentialLR``, which
restarts each at its maximum (SGDR warm restarts).

``onecycle``: one phase, everything trainable, ``OneCycleLR`` over all steps (cosine warm-up over
``pct_start`` of the steps from ``max_lr / div_factor``, cosine annealing to
``max_lr / div_factor / final_div_factor``; AdamW beta1 cycled 0.95 -> 0.85 -> 0.95).

``notebook`` (the authors' released training notebook, fastai 0.7)::

    phase "frozen":          body frozen, lr 0.1 held constant (``fit(lr, 2)``: no cycle_len)
    phase "unfrozen-const":  everything trainable, lr 0.1 constant for 1 epoch (``fit(lr, 1)``)
    phase "unfrozen":        lr 0.1, SGDR cycles 1, 2, 4 epochs (``fit(lr, 3, cycle_len=1,
                             cycle_mult=2)``), the first 1/20 of the first cycle at lr / 100

with SGD (momentum 0.9, no weight decay) and a fresh optimizer per fit. The warm-up is fastai
0.7's ``CosAnneal``: while the fit's step is below ``cycle_steps / 20`` the lr is ``lr / 100``,
and the cosine keeps counting those steps (:class:`FastaiSGDR`, a ``LambdaLR`` factor: torch has
no scheduler for it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

import torch
from torch.optim.lr_scheduler import ConstantLR, CosineAnnealingLR, LambdaLR, LRScheduler, OneCycleLR, SequentialLR

from galmet.errors import ConfigError
from galmet.training.config import TrainConfig


@dataclass(frozen=True)
class Phase:
    """A stretch of training with one optimizer and one scheduler.

    Attributes
    ----------
    name : str
        ``"frozen"``, ``"unfrozen"`` or ``"onecycle"``.
    start_epoch : int
        Global index (0-based) of the phase's first epoch.
    epochs : int
        Length of the phase, epochs.
    frozen : bool
        Body parameters frozen (only the head trains).
    lrs : tuple of 3 float
        Maximum learning rate of each layer group.
    cycles : tuple of int
        SGDR cycle lengths in epochs (``schedule`` "sgdr"); empty otherwise.
    schedule : {"sgdr", "constant", "onecycle"}
        Cosine cycles with warm restarts, a constant lr, or ``OneCycleLR``.
    warmup : float
        ``sgdr``: fraction of the first cycle held at lr / 100 (fastai 0.7; 0 for the paper's text).
    """

    name: str
    start_epoch: int
    epochs: int
    frozen: bool
    lrs: tuple[float, ...]
    cycles: tuple[int, ...] = ()
    schedule: str = "sgdr"
    warmup: float = 0.0

    @property
    def end_epoch(self) -> int:
        """Global index one past the phase's last epoch."""
        return self.start_epoch + self.epochs


def build_phases(config: TrainConfig) -> list[Phase]:
    """The phases of ``config``'s recipe (``config`` must be :meth:`~TrainConfig.resolved`)."""
    lrs = config.group_lrs
    if config.recipe == "onecycle":
        return [Phase("onecycle", 0, config.total_epochs, False, lrs, schedule="onecycle")]
    f = config.frozen_epochs
    out = []
    if config.recipe == "notebook":
        warmup = float(config.sgdr_warmup or 0.0)
        if f:
            out.append(Phase("frozen", 0, f, True, (config.frozen_lr,) * 3, schedule="constant"))
        if config.cycles:
            first, rest = config.cycles[0], tuple(config.cycles[1:])
            out.append(Phase("unfrozen-const", f, first, False, lrs, schedule="constant"))
            if rest:
                out.append(Phase("unfrozen", f + first, sum(rest), False, lrs, rest, warmup=warmup))
        return out
    warmup = float(config.sgdr_warmup or 0.0)
    if f:
        # the paper's frozen epochs: a cycle of one epoch each (each its own fit for the warm-up)
        out.append(Phase("frozen", 0, f, True, (config.frozen_lr,) * 3, (1,) * f, warmup=warmup))
    if config.cycles:
        out.append(Phase("unfrozen", f, sum(config.cycles), False, lrs, tuple(config.cycles), warmup=warmup))
    return out


def phase_index(phases: Sequence[Phase], epoch: int) -> int:
    """Index of the phase that contains global epoch ``epoch`` (0-based)."""
    for i, p in enumerate(phases):
        if p.start_epoch <= epoch < p.end_epoch:
            return i
    raise IndexError(f"epoch {epoch} is past the end of the recipe")


def make_optimizer(
    groups: Sequence[Sequence[torch.nn.Parameter]],
    phase: Phase,
    weight_decay: float,
    optimizer: str = "adamw",
    momentum: float = 0.9,
) -> torch.optim.Optimizer:
    """AdamW (or SGD with ``momentum``, fastai 0.7's default) with one parameter group per layer
    group, at the phase's maximum lrs.

    Frozen parameters stay in their groups: with no gradient the optimizer leaves them (and
    their weight decay) untouched.
    """
    params = [p for g in groups for p in g]
    fused = bool(params) and all(p.is_cuda for p in params)
    param_groups = [{"params": list(g), "lr": lr} for g, lr in zip(groups, phase.lrs, strict=True)]
    if optimizer == "sgd":
        return torch.optim.SGD(
            param_groups, lr=phase.lrs[-1], momentum=momentum, weight_decay=weight_decay, fused=fused or None
        )
    if optimizer != "adamw":
        raise ConfigError(f"unknown optimizer {optimizer!r} (adamw or sgd)")
    return torch.optim.AdamW(param_groups, lr=phase.lrs[-1], weight_decay=weight_decay, fused=fused or None)


class FastaiSGDR:
    """The lr factor of fastai 0.7's ``CosAnneal`` over one ``fit`` of SGDR cycles, for ``LambdaLR``.

    Step ``j`` of the fit (0-based) inside a cycle of ``L`` steps, at position ``k``, has factor
    ``(1 + cos(pi k / L)) / 2``, except that while ``j < warmup * L_1`` (``L_1``: the first cycle)
    it is 1/100. Past the last cycle the last factor is repeated.

    Parameters
    ----------
    cycle_steps : sequence of int
        Steps of each cycle.
    warmup : float
        fastai 0.7: 1/20.
    """

    def __init__(self, cycle_steps: Sequence[int], warmup: float) -> None:
        self.cycle_steps = [int(n) for n in cycle_steps]
        self.warmup = float(warmup)

    def __call__(self, step: int) -> float:
        if step < self.warmup * self.cycle_steps[0]:
            return 0.01
        k = step
        for n in self.cycle_steps:
            if k < n:
                return (1 + math.cos(math.pi * k / n)) / 2
            k -= n
        n = self.cycle_steps[-1]
        return (1 + math.cos(math.pi * (n - 1) / n)) / 2


def onecycle_pct_start(pct_start: float, total_steps: int) -> float:
    """``pct_start`` nudged so that OneCycleLR's phase boundaries stay valid on tiny runs.

    OneCycleLR ends the warm-up at step ``pct_start * total - 1`` and divides by the length of
    each phase, so that point must lie strictly between 0 and ``total - 1`` (else a zero
    division, e.g. 4 steps at 0.25 or 2 steps at 1.0). Long runs are unaffected.
    """
    end = pct_start * total_steps - 1
    end = min(max(end, 0.5), total_steps - 1.5)
    return (end + 1) / total_steps


def check_steps(config: TrainConfig, steps_per_epoch: int) -> None:
    """ConfigError (one line) when a phase of ``config`` (resolved) is too short for its schedule:
    a onecycle phase needs at least 2 optimizer steps. Lets a command refuse ``--epochs 1`` on a
    tiny set before any work instead of at the first epoch."""
    for phase in build_phases(config):
        total = phase.epochs * steps_per_epoch
        if phase.schedule == "onecycle" and total < 2:
            raise ConfigError(
                f"the onecycle recipe needs at least 2 steps, got {total} "
                f"({phase.epochs} epoch(s) x {steps_per_epoch} step(s)); more epochs or a smaller batch"
            )


def make_scheduler(
    optimizer: torch.optim.Optimizer, phase: Phase, steps_per_epoch: int, config: TrainConfig
) -> LRScheduler:
    """The phase's per-step scheduler (call ``.step()`` after every ``optimizer.step()``)."""
    if phase.schedule == "constant":
        return ConstantLR(optimizer, factor=1.0, total_iters=0)
    if phase.schedule == "onecycle":
        check_steps(config, steps_per_epoch)
        total = phase.epochs * steps_per_epoch
        return OneCycleLR(
            optimizer,
            max_lr=list(phase.lrs),
            total_steps=total,
            pct_start=onecycle_pct_start(config.pct_start, total),
            div_factor=config.div_factor,
            final_div_factor=config.final_div_factor,
            anneal_strategy="cos",
            cycle_momentum=True,
            base_momentum=0.85,
            max_momentum=0.95,
        )
    lengths = [c * steps_per_epoch for c in phase.cycles]
    if phase.warmup > 0:
        return LambdaLR(optimizer, FastaiSGDR(lengths, phase.warmup))
    cosines: list[LRScheduler] = [CosineAnnealingLR(optimizer, T_max=n, eta_min=0.0) for n in lengths]
    if len(cosines) == 1:
        return cosines[0]
    return SequentialLR(optimizer, cosines, milestones=list(accumulate(lengths))[:-1])


def current_lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    """The learning rate of every parameter group, in group order."""
    return [float(g["lr"]) for g in optimizer.param_groups]
