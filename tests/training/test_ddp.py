"""DistributedDataParallel on CPU: torchrun, gloo backend, 2 processes, tiny data."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

from conftest import make_tiny_dataset
from galmet.nn.net import build_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # 13 s: two torchrun processes
def test_torchrun_two_gloo_processes_train_identical_replicas(tmp_path):
    ds = make_tiny_dataset(tmp_path / "ds", n=40, size=16)
    script = tmp_path / "worker.py"
    script.write_text(
        textwrap.dedent("""
        import os, sys
        import torch
        import galmet.training.loop as gm
        from galmet.training.loop import train
        from galmet.training.config import TrainConfig

        nets = []
        build = gm.build_model
        def recording_build(*a, **k):
            net = build(*a, **k)
            nets.append(net)
            return net
        gm.build_model = recording_build  # keep a handle on this rank's replica

        dataset, run, dump = sys.argv[1:4]
        config = TrainConfig(arch="resnet18", weights="none", batch_size=8, recipe="onecycle", epochs=2,
                             progress=False)
        train(dataset, run, config)
        rank = int(os.environ["RANK"])
        torch.save({k: v.detach().clone() for k, v in nets[0].state_dict().items()}, f"{dump}/rank{rank}.pt")
        print(f"rank {rank} of {os.environ['WORLD_SIZE']} done")
    """)
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--nnodes=1",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(script),
        str(ds),
        str(tmp_path / "run"),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0 of 2 done" in proc.stdout and "rank 1 of 2 done" in proc.stdout

    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    bundle = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    # DDP keeps the replicas' parameters identical (gradients are all-reduced every step)...
    for k, v in r0.items():
        if "running_" not in k and "num_batches" not in k:
            assert torch.equal(v, r1[k]), k
    # ...rank 0 wrote the bundle, from its own replica, and training moved the weights.
    for k, v in r0.items():
        assert torch.equal(v, bundle[k]), k
    torch.manual_seed(0)  # train() seeds the init with config.seed = 0
    init = build_model("resnet18", 1, "none").state_dict()
    assert any(not torch.equal(v, init[k]) for k, v in bundle.items())

    hist = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(hist) == 2 and hist["valid_rmse_oh_p50"].notna().all()
    assert "world_size: 2" in (tmp_path / "run" / "config.yaml").read_text()
    # 40 rows: 7 test, 7 valid, 26 train -> 13 per rank, 4 per rank per step (global batch 8) -> 3 steps.
    assert list(hist["steps"]) == [3, 3]
