"""The network's own feature space: penultimate-layer embeddings and how far an input is from training.

- :func:`penultimate`: the 512-d input of the head's last linear layer (after its BatchNorm, in
  eval mode), the representation the prediction is a linear function of.
- :func:`embed`: those embeddings for uint8 images, for every member of a model.
- :class:`EmbeddingReference`: a seeded sample of a member's *training* embeddings and the 99th
  percentile of the training galaxies' k-nearest-neighbour distance to it. An input whose distance
  exceeds that percentile is out of the training domain (bit ``EMBEDDING_OUT_OF_DOMAIN`` of the
  ``flags`` column); :func:`ood_ratio` is an input's distance over the threshold (median over
  the members of an ensemble), so > 1 means "farther than 99% of the training set".

Stored in a bundle under ``meta["embedding_stats"]`` (and per member of an ensemble) as plain data:
the reference points as base64 float16 (1,000 x 512 points take 1.4 MB of text).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from galmet.errors import ConfigError
from galmet.io.progress import progress_bar
from galmet.nn.augment import IMAGENET_MEAN, IMAGENET_STD, center_crop, to_model_input
from galmet.nn.device import resolve_device, to_device
from galmet.nn.net import GalmetNet, unwrap

#: Neighbours whose distance is used (the k-th nearest reference point).
K_NEIGHBOURS = 5
#: Training embeddings kept as the reference set.
MAX_REFERENCE = 1000
#: Percentile of the training galaxies' distances that sets the out-of-domain threshold.
PERCENTILE = 99.0
EMBEDDING_STATS_VERSION = 1


def penultimate(net: GalmetNet, x: torch.Tensor) -> torch.Tensor:
    """The input of the head's last linear layer for a normalised batch ``x`` (N, 3, H, W): (N, 512)."""
    net = unwrap(net)
    return net.head[:-1](net.body(x))


def forward_with_embedding(net: GalmetNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass of a normalised batch ``x`` (N, 3, H, W): (the network's output, the
    :func:`penultimate` embedding (N, 512)); the output is exactly ``net(x)`` (the head's layers in turn)."""
    emb = penultimate(net, x)
    return unwrap(net).head[-1](emb), emb


@torch.inference_mode()
def embed(
    nets: list[GalmetNet],
    images,
    crop: int | None = None,
    norm: tuple | None = None,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
) -> np.ndarray:
    """Penultimate-layer embeddings of uint8 images (N, H, W, 3) for each network (no TTA).

    Returns
    -------
    numpy.ndarray
        float32 (M, N, D): M networks, D = 512.
    """
    dev = resolve_device(device)
    mean, std = norm if norm is not None else (IMAGENET_MEAN, IMAGENET_STD)
    nets = [n.to(dev).eval() for n in nets]
    n = len(images)
    parts: list[list[np.ndarray]] = [[] for _ in nets]
    starts = range(0, n, batch_size)
    show = progress if progress is not None else len(starts) > 20
    for start in progress_bar(iterable=starts, desc="embedding", unit="batch", enabled=show):
        x = to_model_input(center_crop(to_device(images[start : start + batch_size], dev), crop), mean, std)
        for m, net in enumerate(nets):
            parts[m].append(penultimate(net, x).float().cpu().numpy())
    return np.stack([np.concatenate(p) if p else np.zeros((0, 0), np.float32) for p in parts])


def _kth_distance(queries: np.ndarray, points: np.ndarray, k: int, exclude_self: bool = False) -> np.ndarray:
    """Distance from each query (Q, D) to its k-th nearest of ``points`` (R, D); float64 (Q,).

    With ``exclude_self`` the queries are ``points`` themselves and the zero self-distance is skipped.
    """
    p = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
    out = np.empty(len(queries))
    kk = min(k + (1 if exclude_self else 0), len(points))
    for s in range(0, len(queries), 2048):
        q = torch.from_numpy(np.ascontiguousarray(queries[s : s + 2048], dtype=np.float32))
        d = torch.cdist(q, p)
        out[s : s + len(q)] = torch.topk(d, kk, dim=1, largest=False).values[:, -1].double().numpy()
    return out


@dataclass
class EmbeddingReference:
    """A network's training embeddings, summarised for out-of-domain checks.

    Attributes
    ----------
    points : numpy.ndarray
        float32 (R, D): a seeded sample of at most :data:`MAX_REFERENCE` training embeddings.
    k : int
        The k of the k-nearest-neighbour distance.
    threshold : float
        The :data:`PERCENTILE` percentile of the training galaxies' distances to ``points``
        (a galaxy in ``points`` is measured to the others).
    n_train : int
        Training galaxies the percentile was taken over.
    """

    points: np.ndarray
    k: int
    threshold: float
    n_train: int

    @classmethod
    def fit(
        cls, embeddings: np.ndarray, k: int = K_NEIGHBOURS, max_points: int = MAX_REFERENCE, seed: int = 0
    ) -> EmbeddingReference:
        """Sample the reference points from training embeddings (N, D) and set the threshold."""
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or len(emb) < k + 2:
            raise ConfigError(f"embedding statistics need at least {k + 2} training galaxies, got {len(emb)}")
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(emb), min(max_points, len(emb)), replace=False))
        points = emb[keep]
        # float16 is how the points are stored: measure the threshold on the stored points
        points = points.astype(np.float16).astype(np.float32)
        inside = np.zeros(len(emb), dtype=bool)
        inside[keep] = True
        dist = np.empty(len(emb))
        dist[inside] = _kth_distance(emb[inside], points, k, exclude_self=True)
        if (~inside).any():
            dist[~inside] = _kth_distance(emb[~inside], points, k)
        return cls(points, int(k), max(float(np.percentile(dist, PERCENTILE)), 1e-6), int(len(emb)))

    def distance(self, embeddings: np.ndarray) -> np.ndarray:
        """k-th nearest-neighbour distance of each embedding (N, D) to the reference points, float64 (N,)."""
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.points.shape[1]:
            raise ConfigError(
                f"embeddings of width {emb.shape[-1]} do not match the reference's {self.points.shape[1]}"
            )
        return _kth_distance(emb, self.points, self.k)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the points as base64 float16) for a bundle's meta."""
        return {
            "version": EMBEDDING_STATS_VERSION,
            "k": self.k,
            "percentile": PERCENTILE,
            "threshold": self.threshold,
            "n_train": self.n_train,
            "shape": list(self.points.shape),
            "points_f16_b64": base64.b64encode(self.points.astype("<f2").tobytes()).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "embedding statistics") -> EmbeddingReference:
        """Read a dict written by :meth:`to_dict`; ConfigError (one line) when malformed."""
        try:
            if data.get("version") != EMBEDDING_STATS_VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            shape = tuple(int(v) for v in data["shape"])
            raw = base64.b64decode(data["points_f16_b64"], validate=True)
            points = np.frombuffer(raw, dtype="<f2").reshape(shape).astype(np.float32)
            ref = cls(points, int(data["k"]), float(data["threshold"]), int(data["n_train"]))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: malformed ({type(exc).__name__}: {exc})") from None
        if len(shape) != 2 or not 1 <= ref.k < shape[0] or not np.isfinite(points).all() or not ref.threshold > 0:
            raise ConfigError(f"{where}: malformed (shape {shape}, k {ref.k}, threshold {ref.threshold})")
        return ref


def ood_ratio(references: list[EmbeddingReference], embeddings: np.ndarray) -> np.ndarray:
    """Distance over threshold of each input, the median over the members: float64 (N,).

    Parameters
    ----------
    references : list of EmbeddingReference
        One per member, in member order.
    embeddings : numpy.ndarray
        (M, N, D) from :func:`embed`, M = ``len(references)``.
    """
    if len(references) != len(embeddings):
        raise ConfigError(f"{len(references)} embedding references for {len(embeddings)} members")
    ratios = np.stack([ref.distance(e) / ref.threshold for ref, e in zip(references, embeddings, strict=True)])
    return np.median(ratios, axis=0)
