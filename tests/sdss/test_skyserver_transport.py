"""The pooled keep-alive transport under ``SkyServerClient._request``: connections reused per thread,
the per-request bounds kept on a reused connection, redirects followed without reading their bodies,
retries logged at INFO with their reason, the User-Agent, and the data-release helpers
(``--data-release``, ``check_tables``, ``explore_url``), all against a loopback server."""

from __future__ import annotations

import argparse
import logging
import threading
import time

import pytest

from faulty_server import TRANSIENT_ACTIONS, FaultyServer, key_of
from galmet import __version__
from galmet.errors import ConfigError
from galmet.sdss.skyserver import (
    DATA_RELEASES,
    PAPER_TABLES,
    PROJECT_URL,
    RetryPolicy,
    SkyServerClient,
    SkyServerError,
    check_tables,
    explore_url,
    release_of,
    retry_reason,
)

NO_RETRY = RetryPolicy(retries=0)


# -- connection reuse ------------------------------------------------------------------------
@pytest.mark.parametrize("keep_alive, connections", [(True, 1), (False, 8)])
def test_one_worker_reuses_one_connection_unless_keep_alive_is_off(keep_alive, connections):
    with FaultyServer(keep_alive=True) as srv:
        with SkyServerClient(srv.url, timeout=5, policy=NO_RETRY, keep_alive=keep_alive) as client:
            for i in range(8):
                _, image, attempts = client.get_cutout(10 + i, 1, size=16)
                assert image.shape == (16, 16, 3) and attempts == 1
        assert srv.connections == connections
        assert sum(srv.counts.values()) == 8


def test_each_thread_has_its_own_connection():
    with FaultyServer(keep_alive=True) as srv, SkyServerClient(srv.url, timeout=5, policy=NO_RETRY) as client:
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for i in range(5):
                    client.get_cutout(t, i, size=16)
            except BaseException as exc:  # noqa: BLE001 - reported by the assert below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors
        assert srv.connections == 3 and sum(srv.counts.values()) == 15


@pytest.mark.parametrize(
    "action, reason",
    [
        ("trickle", "no complete response within the 1 s deadline"),
        ("dribble", "no complete response within the 1 s deadline"),
        ("endless", "body is over the 65536-byte cap"),
        ("huge", "body of 10737418240 bytes is over the 65536-byte cap"),
        ("junk_small", "100 bytes of junk after the end of the JPEG"),
        ("html", "HTML error page"),
        ("short", "connection closed after"),
    ],
)
def test_the_bounds_hold_on_a_reused_connection(action, reason):
    # the faulty answer comes on the connection the first (good) cutout opened: the watchdog must
    # know its socket belongs to the new request's deadline
    with FaultyServer({key_of(1, 2): [action, "ok"]}, keep_alive=True, trickle_seconds=0.05) as srv:
        client = SkyServerClient(srv.url, timeout=1.0, policy=NO_RETRY, max_bytes=1 << 16)
        client.get_cutout(0, 0, size=16)
        t0 = time.monotonic()
        with pytest.raises(SkyServerError) as err:
            client.get_cutout(1, 2, size=16, where="cutout")
        elapsed = time.monotonic() - t0
        assert srv.connections == 1  # it was the reused connection
        assert reason in str(err.value) and "\n" not in str(err.value)
        assert elapsed < 1.0 + 1.5, elapsed
        _, image, _ = client.get_cutout(1, 2, size=16)  # a broken connection does not poison the next request
        assert image.shape == (16, 16, 3)
        client.close()


@pytest.mark.parametrize("action", TRANSIENT_ACTIONS)
def test_each_transient_fault_on_a_reused_connection_is_retried_to_a_valid_image(action):
    key = key_of(1.0, 2.0)
    with FaultyServer({key: [action, "ok"]}, keep_alive=True, slow_seconds=1.5, retry_after="0") as srv:
        with SkyServerClient(srv.url, timeout=0.6, policy=RetryPolicy(retries=2, backoff_base=0.001)) as client:
            client.get_cutout(0, 0, size=16)
            body, image, attempts = client.get_cutout(1.0, 2.0, size=16)
        assert attempts == 2 and srv.counts[key] == 2
        assert image.shape == (16, 16, 3) and body == srv.jpeg(key, 16, 16)
        # the fault answered on the kept-alive connection; only a fault that ends the connection costs a new one
        assert 1 <= srv.connections <= 2


def test_a_server_that_closes_idle_connections_costs_nothing():
    # HTTP/1.0 server: every connection closes after its response; the pool opens a new one
    with FaultyServer() as srv, SkyServerClient(srv.url, timeout=5, policy=NO_RETRY) as client:
        for i in range(4):
            assert client.get_cutout(i, 0, size=16)[2] == 1
        assert srv.connections == 4


# -- redirects ---------------------------------------------------------------------------------
def test_a_redirect_is_followed_without_reading_its_body():
    # the endless redirect body is never read: the image arrives at once, in one attempt
    with FaultyServer({key_of(1, 1): ["redirect", "ok"], key_of(2, 2): ["redirect_endless", "ok"]}) as srv:
        client = SkyServerClient(srv.url, timeout=3, policy=NO_RETRY, max_bytes=1 << 16)
        for ra in (1, 2):
            t0 = time.monotonic()
            _, image, attempts = client.get_cutout(ra, ra, size=16)
            assert image.shape == (16, 16, 3) and attempts == 1
            assert time.monotonic() - t0 < 2.0
            assert srv.counts[key_of(ra, ra)] == 2


def test_a_redirect_loop_is_a_one_line_error():
    with FaultyServer({key_of(1, 1): ["redirect"]}) as srv:
        client = SkyServerClient(srv.url, timeout=3, policy=NO_RETRY)
        with pytest.raises(SkyServerError, match="more than 5 redirects"):
            client.get_cutout(1, 1, size=16)
        assert srv.counts[key_of(1, 1)] == 6


# -- retries at INFO ---------------------------------------------------------------------------
def test_retries_are_logged_at_info_with_reason_and_attempt(caplog):
    plan = ["503", "html", "truncated", "slow", "reset", "ok"]
    with FaultyServer({key_of(1, 2): plan}, slow_seconds=1.5) as srv:
        client = SkyServerClient(srv.url, timeout=0.5, policy=RetryPolicy(retries=5, backoff_base=0.001))
        with caplog.at_level(logging.INFO, logger="galmet.sdss.skyserver"):
            _, _, attempts = client.get_cutout(1, 2, size=16, where="cutout 7")
    assert attempts == 6
    records = [r for r in caplog.records if r.name == "galmet.sdss.skyserver"]
    assert all(r.levelno == logging.INFO for r in records)
    assert [r.attempt for r in records] == [1, 2, 3, 4, 5]
    assert [r.retry_reason for r in records] == ["HTTP 503", "HTML page", "truncated", "timeout", "connection"]
    first = records[0].getMessage()
    assert first.startswith("cutout 7: attempt 1 of 6 failed (HTTP 503: HTTP 503 Service Unavailable")
    assert "retrying in" in first and "\n" not in first


@pytest.mark.parametrize(
    "error, reason",
    [
        ("HTTP 429 Too Many Requests (text error page: 'Too Many Requests')", "HTTP 429"),
        ("no complete response within the 30 s deadline", "timeout"),
        ("timed out after 30 s", "timeout"),
        ("connection failed (ConnectionRefusedError: [Errno 111] Connection refused)", "connection"),
        ("not a JPEG: HTML error page: 'Connection timed out'", "HTML page"),
        ("not a JPEG: text error page: 'ERROR'", "text page"),
        ("empty body", "empty body"),
        ("12 bytes of junk after the end of the JPEG", "junk"),
        ("body of 99 bytes is over the 64-byte cap", "oversized"),
        ("cannot decode image (truncated JPEG: 10 bytes and no end-of-image marker)", "truncated"),
        ("image is 8x8 pixels, expected 16x16", "wrong size"),
        ("malformed CSV (ParserError: x)", "bad body"),
    ],
)
def test_retry_reason(error, reason):
    assert retry_reason(error) == reason


# -- who we are ----------------------------------------------------------------------------------
def test_every_request_names_galmet_its_version_and_project_url():
    with FaultyServer(keep_alive=True) as srv, SkyServerClient(srv.url, timeout=5, policy=NO_RETRY) as client:
        client.get_cutout(1, 1, size=16)
        client.get_cutout(2, 2, size=16)
        assert len(srv.user_agents) == 2
        for agent in srv.user_agents:
            assert agent.startswith(f"galmet/{__version__} ") and PROJECT_URL in agent


# -- data releases ---------------------------------------------------------------------------------
def test_release_of_and_explore_url():
    assert release_of("https://skyserver.sdss.org/dr16/") == "DR16"
    assert release_of("https://skyserver.sdss.org/DR14") == "DR14"
    assert release_of("http://127.0.0.1:8080") is None
    assert explore_url(1237648720693755918) == (
        "https://skyserver.sdss.org/dr14/en/tools/explore/summary.aspx?id=1237648720693755918"
    )
    assert explore_url(5, "dr17").startswith(DATA_RELEASES["DR17"] + "/en/tools/explore/")


def _tables_responder(tables, calls):
    def reply(cmd, n):
        calls.append(cmd)
        assert "DBObjects" in cmd and all(f"'{t}'" in cmd for t in PAPER_TABLES)
        return 200, "text/plain", ("#Table1\nname\n" + "".join(f"{t}\n" for t in tables)).encode()

    return reply


def test_check_tables_passes_when_every_paper_table_exists():
    calls: list[str] = []
    names = [t.lower() for t in PAPER_TABLES]  # SQL Server names are case-insensitive
    with FaultyServer(sql_responder=_tables_responder(names, calls)) as srv:
        check_tables(SkyServerClient(srv.url, timeout=5, policy=NO_RETRY), release="DR16")
    assert len(calls) == 1


def test_check_tables_names_the_missing_table_in_one_line():
    calls: list[str] = []
    with FaultyServer(sql_responder=_tables_responder(PAPER_TABLES[:-1], calls)) as srv:
        with pytest.raises(ConfigError) as err:
            check_tables(SkyServerClient(srv.url, timeout=5, policy=NO_RETRY), release="DR17")
    message = str(err.value)
    assert "GalSpecExtra" in message and "DR17" in message and "\n" not in message
    assert "SpecObj," not in message  # only the missing one


def _server_args(argv):
    from galmet.cli.options import add_server_options

    p = argparse.ArgumentParser()
    add_server_options(p)
    return p.parse_args(argv)


@pytest.mark.parametrize(
    "argv, url, release",
    [
        ([], DATA_RELEASES["DR14"], "DR14"),
        (["--data-release", "dr16"], DATA_RELEASES["DR16"], "DR16"),
        (["--data-release", "DR17"], DATA_RELEASES["DR17"], "DR17"),
        (["--base-url", "http://127.0.0.1:9"], "http://127.0.0.1:9", None),
        (["--data-release", "DR16", "--base-url", "http://mirror.example/x"], "http://mirror.example/x", "DR16"),
    ],
)
def test_data_release_option_picks_the_server(argv, url, release):
    from galmet.cli.options import base_url, data_release, server_client

    args = _server_args(argv)
    assert base_url(args) == url and data_release(args) == release
    assert server_client(args).base_url == url


def test_an_empty_base_url_is_refused_not_replaced():
    from galmet.cli.options import server_client
    from galmet.errors import GalmetError

    with pytest.raises(GalmetError, match="must start with http"):
        server_client(_server_args(["--base-url", ""]))


def test_an_unknown_data_release_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        _server_args(["--data-release", "DR9"])
    assert exit_.value.code == 2 and "DR9" in capsys.readouterr().err


def test_retry_lines_are_bounded_then_summarised(caplog):
    from galmet.sdss.transport import RetryLog

    logger = logging.getLogger("galmet.retry-test")
    retries = RetryLog(logger, lines=3, every=3600)
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        for i in range(100):
            retries.retry(f"cutout {i}: attempt 1 of 2 failed", "HTTP 503" if i % 2 else "connection", 1)
        info = [r for r in caplog.records if r.levelno == logging.INFO]
        assert len(info) == 4 and "summarised" in info[-1].getMessage()  # 3 lines, then the notice
        assert retries.total == 100 and retries.reasons == {"HTTP 503": 50, "connection": 50}
        retries._last -= 3600  # an interval later: one line tallies what was not shown
        retries.retry("cutout 100: attempt 1 of 2 failed", "HTTP 503", 1)
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert (
        len(info) == 5
        and info[-1].startswith("98 more retries in the last")
        and "(50 HTTP 503, 48 connection)" in info[-1]
    )


# -- the base URL parsed whole before anything is written -------------------------------------------
BAD_BASE_URLS = [
    "http://127.0.0.1:99999",  # port out of range
    "http://127.0.0.1:65536/dr14",
    "http://127.0.0.1:abc",  # non-numeric port
    "http://127.0.0.1:0",
    "http://:80/dr14",  # empty host
    "https://[::1/dr14",  # broken IPv6 bracket
    "http://user@:8080",  # a user and no host
]


@pytest.mark.parametrize("url", BAD_BASE_URLS)
def test_check_base_url_parses_host_and_port(url):
    from galmet.cli.options import server_client
    from galmet.errors import GalmetError
    from galmet.sdss.transport import check_base_url

    for check in (lambda: check_base_url(url), lambda: server_client(_server_args(["--base-url", url]))):
        with pytest.raises(GalmetError) as err:
            check()
        assert err.value.param == "base_url" and "\n" not in str(err.value) and url in str(err.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "https://[::1]:65535/dr14", "http://mirror.example/x"])
def test_check_base_url_keeps_valid_ports(url):
    from galmet.sdss.transport import check_base_url

    assert check_base_url(url + "/") == url


@pytest.mark.parametrize("url", [u for u in BAD_BASE_URLS if not u.endswith(":0")])  # (port 0 parses; refused)
def test_an_invalid_url_at_request_time_is_permanent_not_retried(url, caplog):
    client = SkyServerClient("http://127.0.0.1:9", timeout=2, policy=RetryPolicy(retries=3, backoff_base=0.01))
    client.base_url = url  # (past the constructor's check: as a redirect or a later change could)
    with caplog.at_level(logging.INFO), pytest.raises(SkyServerError) as err:
        client.get_cutout(1, 1, size=16)
    assert err.value.permanent and err.value.attempts == 1 and "\n" not in str(err.value)
    assert "retrying" not in caplog.text
