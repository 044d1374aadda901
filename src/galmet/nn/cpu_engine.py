"""How a model's networks run on a CPU: the engine behind ``InferenceOptions.engine``.

- ``eager``: plain PyTorch in float32 (the reference every other engine is measured against).
- ``bf16``: the same networks under ``torch.autocast("cpu", torch.bfloat16)``; fast only on a CPU
  with native bfloat16 (AVX512-BF16 or AMX: :func:`native_bf16`).
- ``openvino``: each network converted once to OpenVINO (optional extra ``galmet[fast]``) and
  compiled for this CPU with its default precision (bfloat16 where the CPU has it). The converted
  network returns the output *and* the penultimate embedding, so the out-of-domain score still
  comes from the prediction's own forward pass.

``auto`` (the default) is the first of openvino, bf16 (native only), eager that works here, or
what the environment variable ``GALMET_ENGINE`` names. Measured on galmet's bundles, each keeps
the predictions within 0.002 dex RMS of eager float32 (``tests/nn/test_cpu_engine.py``,
``benchmarks/cpu_inference.py``). A fast path that cannot be imported, converted or compiled
falls back to the next with one log line, never an error. Compiled networks are cached on the
:class:`~galmet.nn.inference.GalmetModel` (per input shape and thread count), so repeated calls
(the shards of a positions job) compile once; the converted networks are kept on disk
(:func:`openvino_cache_dir`, keyed by their weights), so the conversion (about a second per
network) is paid once per machine, not once per run. Gradients (``galmet explain``) never come here.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from galmet._env import env
from galmet._version import __version__
from galmet.errors import ConfigError
from galmet.nn.embedding import forward_with_embedding
from galmet.nn.net import GalmetNet
from galmet.nn.options import ENGINES

log = logging.getLogger(__name__)

#: The environment variable that says what ``auto`` means on a CPU.
ENGINE_ENV = "GALMET_ENGINE"
#: Version of the converted networks kept on disk (:func:`converted_network`).
CACHE_FORMAT = 1

#: The most a fast engine may change a model's predictions, RMS in dex (target units): checked on
#: each model's first batch (:data:`VET_IMAGES` images), else eager float32 runs instead.
FAST_TOLERANCE_DEX = 0.002

#: Images of the first batch on which a fast engine is compared with eager float32, once per model.
VET_IMAGES = 16
#: CPU flags (``/proc/cpuinfo``) of native bfloat16 arithmetic.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: (raw outputs, member-major, one per view; embeddings of the first view (M, B, D) or None).
Forward = tuple[list[torch.Tensor], np.ndarray | None]


def native_bf16() -> bool:
    """True when this CPU does bfloat16 arithmetic natively (AVX512-BF16 or AMX-BF16): where
    bfloat16 autocast is faster than float32 instead of slower."""
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    try:
        if probe is not None and probe():
            return True
    except RuntimeError:
        pass
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set(text.split())
    return any(f in flags for f in BF16_FLAGS)


def openvino_available() -> bool:
    """True when the ``openvino`` package can be found (it is imported only when used)."""
    try:
        return importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):
        return False


def engine_candidates(requested: str) -> list[str]:
    """The engines to try, in order, for ``requested`` on a CPU: the fast path asked for (or, for
    ``auto``, ``GALMET_ENGINE`` or the fastest this machine supports), then its fallbacks, ending
    with ``eager``. ConfigError (one line) for an unknown name."""
    if requested not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {requested!r}", param="engine")
    if requested == "auto":
        chosen = env(ENGINE_ENV)
        if chosen is not None and chosen not in ENGINES[1:]:
            raise ConfigError(f"{ENGINE_ENV}={chosen!r}: must be one of {', '.join(ENGINES[1:])}", param="engine")
        requested = chosen or ("openvino" if openvino_available() else "bf16" if native_bf16() else "eager")
    order = {"openvino": ["openvino", "bf16", "eager"], "bf16": ["bf16", "eager"], "eager": ["eager"]}[requested]
    # a fallback to bf16 only where it is native (it is slower than float32 elsewhere)
    return [e for e in order if e == requested or e != "bf16" or native_bf16()]


class Engine:
    """Runs the members of a model over the views of a batch: :meth:`forward`.

    Attributes
    ----------
    name : str
        ``eager``, ``bf16`` or ``openvino``: what actually runs (recorded in the predictions' metadata).
    """

    name = "eager"

    def __init__(self, nets: list[GalmetNet]) -> None:
        self.nets = nets

    def context(self) -> contextlib.AbstractContextManager:
        """Entered around the forward passes (autocast for ``bf16``)."""
        return contextlib.nullcontext()

    def forward(self, inputs: list[torch.Tensor], embed: bool) -> Forward:
        """Every network's raw outputs for every view of the batch, member-major (member 0's views
        first); with ``embed`` also each network's penultimate embedding of the first view (the
        image as it is), taken in the same pass: float32 (M, B, 512), else None."""
        nets = self.nets
        if not embed:
            return [net(v) for net in nets for v in inputs], None
        raw: list[torch.Tensor] = []
        embeddings = []
        for net in nets:
            out, emb = forward_with_embedding(net, inputs[0])
            raw += [out] + [net(v) for v in inputs[1:]]
            embeddings.append(emb.float().cpu().numpy())
        return raw, np.stack(embeddings)


class Bf16Engine(Engine):
    """The eager networks under bfloat16 autocast on the CPU."""

    name = "bf16"

    def context(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cpu", dtype=torch.bfloat16)


class _WithEmbedding(torch.nn.Module):
    """A network as one graph returning (output (N, T), penultimate embedding (N, 512))."""

    def __init__(self, net: GalmetNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return forward_with_embedding(self.net, x)


class OpenVinoEngine(Engine):
    """Each member compiled by OpenVINO for inputs (any batch, C, H, W), returning output and embedding."""

    name = "openvino"

    def __init__(self, compiled: list) -> None:
        super().__init__([])
        self.compiled = compiled

    def _run(self, compiled, x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        result = compiled(np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32))
        return torch.from_numpy(np.asarray(result[0])), np.asarray(result[1])

    def forward(self, inputs: list[torch.Tensor], embed: bool) -> Forward:
        raw: list[torch.Tensor] = []
        embeddings = []
        for compiled in self.compiled:
            for i, v in enumerate(inputs):
                out, emb = self._run(compiled, v)
                raw.append(out)
                if i == 0:
                    embeddings.append(emb.astype(np.float32, copy=False))
        return raw, (np.stack(embeddings) if embed else None)


def compile_openvino(nets: list[GalmetNet], shape: tuple[int, int, int], threads: int) -> OpenVinoEngine:
    """Convert (or read from the disk cache, :func:`converted_network`) and compile every network
    for float32 inputs (any batch, *shape*; -1 for any height or width) on ``threads`` CPU threads,
    in OpenVINO's default precision for this CPU; logs the time it took."""
    import openvino as ov

    start = time.perf_counter()
    core = ov.Core()
    compiled, fresh = [], 0
    for net in nets:
        converted, converted_now = converted_network(core, net, shape)
        fresh += converted_now
        compiled.append(core.compile_model(converted, "CPU", {"INFERENCE_NUM_THREADS": int(threads)}))
    log.info(
        "openvino: %d network(s) for %s inputs ready in %.1f s (%d converted, %d from the cache %s)",
        len(nets),
        "x".join(map(str, shape)),
        time.perf_counter() - start,
        fresh,
        len(nets) - fresh,
        openvino_cache_dir(),
    )
    return OpenVinoEngine(compiled)


def openvino_cache_dir() -> Path:
    """Where converted networks are kept: ``$GALMET_CACHE_DIR/openvino``, else
    ``~/.cache/galmet/openvino``."""
    return Path(env("GALMET_CACHE_DIR") or Path.home() / ".cache" / "galmet") / "openvino"


def network_key(net: GalmetNet, shape: tuple[int, int, int]) -> str:
    """A hex digest naming a network's conversion: its weights and buffers, the input shape, and
    the versions of galmet, torch and OpenVINO (a new version converts afresh)."""
    import openvino as ov

    h = hashlib.sha256(f"{CACHE_FORMAT} {__version__} {torch.__version__} {ov.__version__} {shape}".encode())
    for name, tensor in net.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name} {t.dtype} {tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:32]


def converted_network(core, net: GalmetNet, shape: tuple[int, int, int]) -> tuple[object, bool]:
    """(the OpenVINO model of ``net`` returning (output, embedding), True when converted now):
    read from :func:`openvino_cache_dir` when converted before, else converted from PyTorch and
    kept there (written to a temporary folder renamed into place; float32 weights, as converted).
    A cache that cannot be read or written is skipped (logged), never an error."""
    import openvino as ov

    folder = openvino_cache_dir() / network_key(net, shape)
    if (folder / "model.xml").is_file():
        try:
            return core.read_model(str(folder / "model.xml")), False
        except Exception as exc:  # noqa: BLE001 - a damaged cache entry: convert again
            log.warning("openvino: cannot read %s (%s); converting again", folder, _line(exc))
            shutil.rmtree(folder, ignore_errors=True)  # galmet's own cache entry
    example = torch.zeros((1, *(d if d > 0 else 64 for d in shape)))  # -1: any size
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation notices
        converted = ov.convert_model(_WithEmbedding(net.eval()), example_input=example, input=[(-1, *shape)])
    _keep(converted, folder)
    return converted, True


def _keep(converted, folder: Path) -> None:
    """Write a converted model into ``folder`` (model.xml, model.bin) atomically: a temporary
    sibling folder renamed into place; another process's finished copy wins."""
    import openvino as ov

    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        ov.save_model(converted, str(tmp / "model.xml"), compress_to_fp16=False)
        os.replace(tmp, folder)
    except OSError as exc:
        if not (folder / "model.xml").is_file():  # (else another process kept the same network first)
            log.warning("openvino: cannot keep the converted network in %s (%s)", folder, _line(exc))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: Builds an engine: (networks, input shape (C, H, W), threads) -> Engine; may raise on failure.
Builder = Callable[[list[GalmetNet], tuple[int, int, int], int], Engine]
BUILDERS: dict[str, Builder] = {
    "eager": lambda nets, shape, threads: Engine(nets),
    "bf16": lambda nets, shape, threads: Bf16Engine(nets),
    "openvino": compile_openvino,
}


def cpu_engine(requested: str, nets: list[GalmetNet], shape: tuple[int, int, int], cache: dict) -> Engine:
    """The engine for ``requested`` (``auto``, ``eager``, ``bf16``, ``openvino``) running ``nets``
    on inputs (B, *shape*) on the CPU: the first of :func:`engine_candidates` that builds, from
    ``cache`` when it was built before (same shape and thread count). A failure to build (import,
    conversion, compilation) is logged in one line, remembered in ``cache``, and the next is tried."""
    threads = torch.get_num_threads()
    candidates = engine_candidates(requested)
    for i, name in enumerate(candidates):
        key = (name, shape, threads)
        if key not in cache:
            try:
                cache[key] = BUILDERS[name](nets, shape, threads)
            except Exception as exc:  # noqa: BLE001 - any failure of a fast path falls back
                if name == "eager":
                    raise
                cache[key] = None
                nxt = candidates[i + 1]
                log.warning("engine %s unavailable (%s: %s); using %s", name, type(exc).__name__, _line(exc), nxt)
        if cache[key] is not None:
            return cache[key]
    raise AssertionError("eager always builds")  # pragma: no cover


def _line(exc: BaseException) -> str:
    """The first line of an exception's message, at most 200 characters."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:200]


def agreement_rms(fast: list[torch.Tensor], exact: list[torch.Tensor]) -> float:
    """The RMS difference (target units) between two engines' outputs of the same views: lists of
    (B, T) tensors, one per member and view, in the same order."""
    diff = torch.cat([(f.double() - e.double()).flatten() for f, e in zip(fast, exact, strict=True)])
    return float(torch.sqrt(torch.mean(diff**2))) if diff.numel() else 0.0
