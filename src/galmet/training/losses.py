"""Training losses: the paper's RMSE, and the beta-NLL of a heteroscedastic (gaussian) head."""

from __future__ import annotations

import torch

from galmet.nn.net import GAUSSIAN, gaussian_split


def training_loss(out: torch.Tensor, y: torch.Tensor, loss: str = "rmse", beta: float = 0.5):
    """(loss, error of the mean) of a batch, in standardised target units.

    Parameters
    ----------
    out : torch.Tensor
        Network output (N, T) for ``rmse``, (N, 2T) (means, log-variances) for ``gaussian``.
    y : torch.Tensor
        Standardised targets, float32 (N, T).
    loss : {"rmse", "gaussian"}
        ``rmse``: sqrt(mean(err**2)), the paper's loss. ``gaussian``: the mean over the batch of
        ``var.detach()**beta * (log var + err**2 / var) / 2`` (beta-NLL, Seitzer et al. 2022; the
        constant log(2 pi) / 2 is left out), which weighs each galaxy's NLL gradient by its
        variance so that the mean is not neglected where the variance is large.
    beta : float
        The beta of beta-NLL, in [0, 1].

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        The scalar loss and ``err`` = mean - y, float32 (N, T).
    """
    out = out.float()
    if loss != GAUSSIAN:
        err = out - y
        return torch.sqrt((err * err).mean()), err
    mu, logvar = gaussian_split(out, y.shape[1])
    err = mu - y
    var = logvar.exp()
    nll = 0.5 * (logvar + err * err / var)
    if beta > 0:
        nll = nll * var.detach() ** beta
    return nll.mean(), err
