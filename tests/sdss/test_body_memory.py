"""Issue 21, class F: the HTTP transport never holds a large body in memory while it reads it.

A body is streamed in chunks to a spooled temporary file with the byte cap enforced while reading:
a refused body (over the cap, or endless) costs at most the spool's memory, and an accepted
large one is held once (when it is handed over), not as a growing buffer plus a copy."""

from __future__ import annotations

import tracemalloc

import pytest

from faulty_server import CUTOUT_PATH, SQL_PATH, FaultyServer, key_of
from galmet.sdss.skyserver import SkyServerClient
from galmet.sdss.transport import SPOOL_BYTES, OversizedBody, RetryPolicy

NO_RETRY = RetryPolicy(retries=0)
MB = 1 << 20


def _peak(fn) -> int:
    """Peak Python-allocated bytes while ``fn()`` runs (its result dropped)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            fn()
        except OversizedBody:
            pass
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("action", ["endless", "huge"])
def test_a_refused_body_never_sits_in_memory(action):
    cap = 48 * MB
    with FaultyServer({key_of(1, 2): [action]}, stream_seconds=20) as srv:
        client = SkyServerClient(srv.url, timeout=20, policy=NO_RETRY, max_bytes=cap)
        url = f"{srv.url}{CUTOUT_PATH}?ra=1&dec=2&width=16&height=16"
        with pytest.raises(OversizedBody):
            client._request(url, 20)
        peak = _peak(lambda: client._request(url, 20))
    assert peak < SPOOL_BYTES + 4 * MB, peak / MB  # not the 48 MB the cap allowed


def test_a_large_accepted_body_is_held_once():
    size = 40 * MB
    body = b"objID,ra,dec\n" + b"1,2.0,3.0\n" * (size // 10)

    def responder(cmd, n):
        return (200, "text/csv", body)

    with FaultyServer({}, sql_responder=responder) as srv:
        client = SkyServerClient(srv.url, timeout=30, policy=NO_RETRY, max_bytes=64 * MB)
        url = f"{srv.url}{SQL_PATH}?cmd=select&format=csv"
        got = {}
        peak = _peak(lambda: got.setdefault("r", client._request(url, 30)))
    assert got["r"].body == body
    assert peak < len(body) + SPOOL_BYTES + 4 * MB, peak / MB  # one copy, not buffer + copy
