"""Downloads bounded in time and bytes: a total deadline per request, a body cap, trailing junk and
decompression bombs refused, against a loopback server that misbehaves (tests/faulty_server.py).

These are properties of ``SkyServerClient._request`` and of the cutout check: a later transport
(e.g. a pooled keep-alive session) must keep them, and these tests say so.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest

from faulty_server import FaultyServer, bomb_jpeg, key_of, make_catalog
from galmet.sdss.skyserver import RetryPolicy, SkyServerClient, SkyServerError

NO_RETRY = RetryPolicy(retries=0)


@pytest.mark.parametrize(
    "action, reason",
    [
        ("trickle", "no complete response within the 1 s deadline"),
        ("dribble", "no complete response within the 1 s deadline"),
        ("endless", "body is over the 65536-byte cap"),
        ("huge", "body of 10737418240 bytes is over the 65536-byte cap"),
        ("bomb", "image is 12000x12000 pixels, expected 16x16"),
        ("junk", "body of"),
        ("junk_small", "100 bytes of junk after the end of the JPEG"),
    ],
)
def test_each_request_is_bounded_in_time_and_bytes(action, reason):
    with FaultyServer({key_of(1, 2): [action]}, trickle_seconds=0.05, junk_bytes=1 << 20) as srv:
        client = SkyServerClient(srv.url, timeout=1.0, policy=NO_RETRY, max_bytes=1 << 16)
        t0 = time.monotonic()
        with pytest.raises(SkyServerError) as err:
            client.get_cutout(1, 2, size=16, where="cutout")
        elapsed = time.monotonic() - t0
    assert reason in str(err.value) and "\n" not in str(err.value)
    assert elapsed < 1.0 + 1.5, elapsed  # the deadline, not "a byte every 0.05 s for ever"
    # bodies that are not the image asked for are permanent on the last try; a deadline is not
    assert err.value.permanent == (action not in ("trickle", "dribble"))


def test_the_deadline_covers_a_slow_but_steady_body():
    # one byte every 0.05 s keeps every socket read short; only a total deadline stops it
    with FaultyServer(default_plan=("trickle",), trickle_seconds=0.05) as srv:
        client = SkyServerClient(srv.url, timeout=0.6, policy=RetryPolicy(retries=1, backoff_base=0.01))
        t0 = time.monotonic()
        with pytest.raises(SkyServerError, match="deadline.*gave up after 2 requests"):
            client.get_cutout(3, 4, size=16)
        assert time.monotonic() - t0 < 2 * 0.6 + 1.5


def test_error_pages_and_sql_bodies_are_capped_too():
    huge = b"<html>" + b"x" * (3 << 20)
    with FaultyServer(sql_responder=lambda cmd, n: (500, "text/html", huge)) as srv:
        client = SkyServerClient(srv.url, timeout=2, policy=NO_RETRY, max_bytes=1 << 20)
        with pytest.raises(SkyServerError, match="HTTP 500") as err:
            client.sql_search("SELECT 1")
        assert len(str(err.value)) < 400
    with FaultyServer(sql_responder=lambda cmd, n: (200, "text/csv", b"objID\n" + b"1\n" * (1 << 20))) as srv:
        client = SkyServerClient(srv.url, timeout=2, policy=NO_RETRY, max_bytes=1 << 20)
        with pytest.raises(SkyServerError, match="over the 1048576-byte cap"):
            client.sql_search("SELECT 1")


def test_a_good_cutout_still_passes_every_check():
    with FaultyServer() as srv:
        client = SkyServerClient(srv.url, timeout=2, policy=NO_RETRY, max_bytes=1 << 16)
        body, image, attempts = client.get_cutout(5, 6, size=16)
        assert image.shape == (16, 16, 3) and attempts == 1 and body == srv.jpeg(key_of(5, 6), 16, 16)


def test_bomb_header_is_what_the_server_sent():
    with FaultyServer() as srv:
        jpeg = srv.jpeg("k", 16, 16)
    from galmet.io.images import image_header

    h = image_header(bomb_jpeg(jpeg))
    assert (h.width, h.height) == (12000, 12000) and len(bomb_jpeg(jpeg)) == len(jpeg)


# galmet's CLI in a child that reports its own peak resident memory: VmHWM of /proc/self/status,
# the high-water mark of the process's own address space. (ru_maxrss would not do: Linux carries
# it across exec, so a child forked from a big pytest process reports the parent's size.)
_CHILD = (
    "import re, resource, sys; from pathlib import Path; from galmet.cli.main import main; rc = main(sys.argv[1:]); "
    "status = Path('/proc/self/status'); "
    "kb = int(re.search(r'VmHWM:\\s+(\\d+)', status.read_text()).group(1)) if status.exists() "
    "else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
    "print('MAXRSS_KB', kb, flush=True); sys.exit(rc)"
)


def test_acceptance_hostile_server_fails_fast_with_reasons_and_bounded_memory(tmp_path):
    """Cutouts that trickle, stream for ever, are decompression bombs or carry junk all finish --
    failed, each with its reason in the manifest -- within a few seconds of the deadline, and the
    download's peak memory (VmHWM of the process, measured in it) stays under 300 MB."""
    ds = tmp_path / "ds"
    cat = make_catalog(ds, 9)
    actions = ["trickle", "dribble", "endless", "huge", "bomb", "junk", "junk_small", "ok", "ok"]
    plans = {key_of(r, d): [a] for r, d, a in zip(cat["ra"], cat["dec"], actions, strict=True)}
    deadline = 2.0
    with FaultyServer(plans, trickle_seconds=0.2) as srv:
        t0 = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-c", _CHILD, "download", str(ds), "--base-url", srv.url, "--timeout", str(deadline)]
            + ["--retries", "0", "--rate", "0", "--size", "16", "--workers", "8", "--max-failures", "1"]
            + ["--no-progress"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        wall = time.monotonic() - t0
    assert run.returncode == 0, run.stderr
    summary = next(line for line in run.stdout.splitlines() if line.startswith("download:"))
    assert summary.startswith("download: 2 ok, 7 failed"), summary
    seconds = float(summary.rsplit(" in ", 1)[1].split()[0])  # the download's own clock
    assert seconds < deadline + 3, summary
    assert wall < deadline + 30  # plus the interpreter start-up, generously
    peak_mb = int(next(line for line in run.stdout.splitlines() if line.startswith("MAXRSS_KB")).split()[1]) / 1024
    assert peak_mb < 300, peak_mb
    man = pd.read_parquet(ds / "manifest.parquet").set_index("objID")
    reasons = {a: man.loc[o, "last_error"] for o, a in zip(cat["objID"], actions, strict=True)}
    assert (man.loc[cat["objID"][:7], "status"] == "failed").all() and (
        man.loc[cat["objID"][7:], "status"] == "ok"
    ).all()
    assert "deadline" in reasons["trickle"] and "deadline" in reasons["dribble"]
    assert "over the 4194304-byte cap" in reasons["endless"] and "over the" in reasons["huge"]
    assert "12000x12000" in reasons["bomb"]
    assert "over the" in reasons["junk"] and "junk after the end of the JPEG" in reasons["junk_small"]
    images = {p.stem for p in (ds / "images").glob("*.jpg")}
    assert images == {str(o) for o in cat["objID"][7:]}  # nothing of the bad bodies was stored
