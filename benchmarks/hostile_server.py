#!/usr/bin/env python3
"""``galmet download`` against a loopback server that trickles, sends a decompression bomb and
appends junk: wall time, peak memory and what ended up on disk.

    python benchmarks/hostile_server.py [--timeout 2] [--src SRC] [--actions trickle,bomb,junk,junk_small,ok]

``--src`` runs another galmet source tree (e.g. an older release exported with
``git archive <ref> src | tar -x -C /tmp/old``, then ``--src /tmp/old/src``) for a before/after
comparison in the same run. Actions are tests/faulty_server.py's; "endless" and "huge" are left
out by default because a client without a body cap reads them until the machine runs out of
memory. Peak memory is the download process's own VmHWM (Linux). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "tests"))

from faulty_server import FaultyServer, key_of, make_catalog  # noqa: E402

CHILD = (
    "import re, sys; from pathlib import Path; from galmet.cli.main import main; rc = main(sys.argv[1:]); "
    "print('VMHWM_KB', re.search(r'VmHWM:\\s+(\\d+)', Path('/proc/self/status').read_text()).group(1), flush=True); "
    "sys.exit(rc)"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--src", help="galmet source tree to run instead of the installed one")
    ap.add_argument("--actions", default="trickle,bomb,junk,junk_small,ok")
    ap.add_argument("--trickle-seconds", type=float, default=0.05)
    ap.add_argument("--limit", type=float, default=300.0, help="kill the download after this many seconds")
    a = ap.parse_args()
    actions = a.actions.split(",")
    env = dict(os.environ)
    if a.src:
        env["PYTHONPATH"] = str(Path(a.src).resolve()) + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as tmp:
        ds = Path(tmp) / "ds"
        cat = make_catalog(ds, len(actions))
        plans = {key_of(r, d): [x] for r, d, x in zip(cat["ra"], cat["dec"], actions, strict=True)}
        cmd = [sys.executable, "-c", CHILD, "download", str(ds), "--base-url", "{url}", "--timeout", str(a.timeout)]
        cmd += ["--retries", "0", "--rate", "0", "--size", "16", "--workers", "8", "--max-failures", "1"]
        cmd += ["--no-progress"]
        with FaultyServer(plans, trickle_seconds=a.trickle_seconds) as srv:
            t0 = time.monotonic()
            try:
                run = subprocess.run(
                    [c.format(url=srv.url) for c in cmd], capture_output=True, text=True, env=env, timeout=a.limit
                )
                out, rc = run.stdout, run.returncode
            except subprocess.TimeoutExpired as exc:
                out, rc = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or "", "killed"
            wall = time.monotonic() - t0
        stored = {p.stem for p in (ds / "images").glob("*.jpg")} if (ds / "images").is_dir() else set()
        result = {
            "src": a.src or "installed",
            "timeout": a.timeout,
            "wall_s": round(wall, 2),
            "rc": rc,
            "summary": next((x for x in out.splitlines() if x.startswith("download:")), ""),
            "vmhwm_mb": next((int(x.split()[1]) / 1024 for x in out.splitlines() if x.startswith("VMHWM_KB")), None),
            "stored": {x: str(o) in stored for o, x in zip(cat["objID"], actions, strict=True)},
        }
        man = ds / "manifest.parquet"
        if man.is_file():
            import pandas as pd

            m = pd.read_parquet(man).set_index("objID")
            result["reasons"] = {x: m.loc[o, "last_error"] for o, x in zip(cat["objID"], actions, strict=True)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
