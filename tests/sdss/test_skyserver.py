"""SkyServer client: retries, backoff, Retry-After, rate limit, error shapes, fetch_cutout."""

from __future__ import annotations

import random
import threading
import time
import urllib.parse

import numpy as np
import pytest

from faulty_server import ERROR_HTML, TRANSIENT_ACTIONS, FaultyServer, fake_image, key_of
from galmet.io.images import decode_image, encode_jpeg
from galmet.sdss.skyserver import (
    BadBody,
    Interrupted,
    RateLimiter,
    Response,
    RetryPolicy,
    SkyServerClient,
    SkyServerError,
    TransportError,
    describe_body,
    fetch_cutout,
    parse_retry_after,
    parse_sql_csv,
)

FAST = RetryPolicy(retries=3, backoff_base=0.001)


class Scripted(SkyServerClient):
    """A client whose _request (the choke point) replays a script of responses/exceptions."""

    def __init__(self, script, **kw):
        kw.setdefault("policy", FAST)
        super().__init__("http://127.0.0.1:9", **kw)
        self.script, self.urls = list(script), []

    def _request(self, url, timeout):
        self.urls.append(url)
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        return item


def ok_csv(rows=2):
    lines = ["#Table1", "objID,ra,dec,oh_p50"] + [
        f"{1237648704043942146 + i},{10 + i},{1 + i},8.9" for i in range(rows)
    ]
    return Response(200, {}, ("\n".join(lines) + "\n").encode())


def test_urls_carry_the_parameters():
    c = SkyServerClient("http://127.0.0.1:1/dr14/")
    q = urllib.parse.parse_qs(urllib.parse.urlparse(c.cutout_url(150.1, -2.5, 0.296, 128)).query)
    assert urllib.parse.urlparse(c.cutout_url(1, 2)).path == "/dr14/SkyServerWS/ImgCutout/getjpeg"
    assert {k: v[0] for k, v in q.items()} == {
        "ra": "150.10000000",
        "dec": "-2.50000000",
        "scale": "0.296",
        "width": "128",
        "height": "128",
    }
    sq = urllib.parse.parse_qs(urllib.parse.urlparse(c.sql_url("SELECT TOP 1 objID FROM Galaxy")).query)
    assert sq == {"cmd": ["SELECT TOP 1 objID FROM Galaxy"], "format": ["csv"]}


def test_bad_base_url_is_a_one_line_error():
    with pytest.raises(Exception, match="must start with http"):
        SkyServerClient("skyserver.sdss.org")


def test_sql_csv_with_table_prefix_keeps_64bit_ids():
    df = parse_sql_csv(ok_csv(3).body)
    assert list(df.columns) == ["objID", "ra", "dec", "oh_p50"]
    assert df["objID"].iloc[2] == 1237648704043942148  # exact, not rounded through float


@pytest.mark.parametrize(
    "body, shape",
    [
        (ERROR_HTML, "HTML error page"),
        (b"ERROR: Incorrect syntax near 'FROM'.", "text error page"),
        (b"", "empty body"),
        (b"#Table1\n", "no CSV header"),
    ],
)
def test_sql_error_shapes_with_status_200_are_recognised(body, shape):
    with pytest.raises(BadBody, match=shape):
        parse_sql_csv(body)


def test_csv_without_the_expected_columns_is_rejected():
    with pytest.raises(BadBody, match=r"CSV header lacks columns \['objID'\]"):
        parse_sql_csv(b"#Table1\nra,dec\n1,2\n")


def test_status_200_error_page_is_retried_then_reported_with_its_chunk():
    c = Scripted([Response(200, {}, ERROR_HTML)])
    with pytest.raises(SkyServerError) as info:
        c.sql_search("SELECT 1", where="chunk 2/3 (ra 120-240 deg)")
    msg = str(info.value)
    assert msg.startswith("chunk 2/3 (ra 120-240 deg): ") and "HTML error page" in msg and "\n" not in msg
    assert len(c.urls) == 4 and info.value.attempts == 4


def test_transient_then_ok_returns_the_table():
    c = Scripted([Response(500, {}, ERROR_HTML), TransportError("timed out"), Response(200, {}, b""), ok_csv()])
    df = c.sql_search("SELECT 1")
    assert len(df) == 2 and len(c.urls) == 4


def test_404_is_permanent_and_not_retried():
    c = Scripted([Response(404, {}, ERROR_HTML)])
    with pytest.raises(SkyServerError) as info:
        c.sql_search("SELECT 1", where="chunk 1/1")
    assert info.value.permanent and info.value.attempts == 1 and "HTTP 404" in str(info.value)


def test_a_status_error_quotes_the_body():
    c = Scripted([Response(400, {}, b"Incorrect syntax near the keyword 'FROM'.")])
    with pytest.raises(SkyServerError, match=r"chunk 1/1: HTTP 400 Bad Request \(text error page: \"Incorrect syntax"):
        c.sql_search("SELECT FROM", where="chunk 1/1")


def test_retry_after_seconds_and_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = time.time()
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30))
    assert 28 <= parse_retry_after(date, now=now) <= 31


def test_backoff_grows_exponentially_with_bounded_jitter_and_respects_retry_after():
    p = RetryPolicy(backoff_base=1.0, backoff_max=10.0)
    rng = random.Random(0)
    for retry, full in [(0, 1), (1, 2), (2, 4), (3, 8), (6, 10)]:
        waits = [p.delay(retry, rng=rng) for _ in range(200)]
        assert full / 2 <= min(waits) and max(waits) <= full
        assert max(waits) - min(waits) > full / 4  # really jittered
    assert p.delay(0, retry_after=5.0, rng=rng) == 5.0
    assert p.delay(0, retry_after=1e6, rng=rng) == p.max_retry_after


def test_rate_limiter_spaces_requests_over_threads():
    limiter = RateLimiter(50.0)
    stamps, lock = [], threading.Lock()

    def go():
        for _ in range(5):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=go) for _ in range(4)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - t0 >= 19 / 50 - 0.01
    gaps = np.diff(sorted(stamps))
    assert np.median(gaps) >= 0.015


def test_stop_event_interrupts_backoff():
    stop = threading.Event()
    c = Scripted([Response(503, {"retry-after": "30"}, b"")], policy=RetryPolicy(retries=3))
    threading.Timer(0.2, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(Interrupted):
        c.sql_search("SELECT 1", stop=stop)
    assert time.monotonic() - t0 < 5


def test_describe_body():
    assert describe_body(b"  ") == "empty body"
    assert "Server Error" in describe_body(ERROR_HTML)
    assert describe_body(b"ERROR: busy").startswith("text error page")
    assert "not the data" in describe_body(bytes(range(256)) * 4)


# -- against the real local server ---------------------------------------------------------
def test_fetch_cutout_returns_the_served_image():
    with FaultyServer() as srv:
        img = fetch_cutout(12.5, 3.25, size=16, base_url=srv.url, timeout=1, retries=0)
        assert img.shape == (16, 16, 3) and img.dtype == np.uint8
        served = decode_image(srv.jpeg(key_of(12.5, 3.25), 16, 16))
        assert np.array_equal(img, served)
        assert srv.counts[key_of(12.5, 3.25)] == 1


@pytest.mark.parametrize("action", TRANSIENT_ACTIONS)
def test_each_transient_fault_is_retried_to_a_valid_image(action):
    key = key_of(1.0, 2.0)
    with FaultyServer({key: [action, "ok"]}, slow_seconds=1.5, retry_after="0") as srv:
        c = SkyServerClient(srv.url, timeout=0.6, policy=FAST)
        body, img, attempts = c.get_cutout(1.0, 2.0, size=16)
        assert attempts == 2 and srv.counts[key] == 2
        assert img.shape == (16, 16, 3) and body == srv.jpeg(key, 16, 16)


def test_retry_after_from_the_server_is_honoured():
    key = key_of(5.0, 5.0)
    with FaultyServer({key: ["503ra", "ok"]}, retry_after="1") as srv:
        c = SkyServerClient(srv.url, timeout=1, policy=RetryPolicy(retries=2, backoff_base=0.001))
        c.get_cutout(5.0, 5.0, size=16)
        t = srv.times(key)
        assert len(t) == 2 and t[1] - t[0] >= 0.95


@pytest.mark.parametrize(
    "action, attempts, text",
    [
        ("404", 1, "HTTP 404"),
        ("wrongsize", 1, "expected 16x16"),  # a wrong answer: a retry would repeat it
        ("grey", 1, "image mode is L, expected RGB"),
        ("png", 1, "not a JPEG"),
        ("junk_small", 1, "100 bytes of junk"),
        ("bomb", 1, "12000x12000"),
    ],
)
def test_permanent_faults_fail_with_one_line(action, attempts, text):
    key = key_of(7.0, 8.0)
    with FaultyServer({key: [action]}) as srv:
        with pytest.raises(SkyServerError) as info:
            fetch_cutout(7.0, 8.0, size=16, base_url=srv.url, timeout=1, retries=2, backoff_base=0.001)
        assert info.value.permanent and info.value.attempts == attempts == srv.counts[key]
        assert text in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "action, text", [("html", "HTML error page"), ("truncated", "cannot decode"), ("empty", "empty")]
)
def test_an_error_page_to_the_last_try_is_transient(action, text):
    # what an overloaded server sends: a later run tries again (a wrong answer would be permanent)
    key = key_of(7.0, 8.0)
    with FaultyServer({key: [action]}) as srv:
        with pytest.raises(SkyServerError) as info:
            fetch_cutout(7.0, 8.0, size=16, base_url=srv.url, timeout=1, retries=2, backoff_base=0.001)
        assert not info.value.permanent and info.value.attempts == 3 == srv.counts[key]
        assert text in str(info.value) and "\n" not in str(info.value)


def test_server_down_is_transient_not_permanent():
    with FaultyServer() as srv:
        url = srv.url
    with pytest.raises(SkyServerError) as info:  # nothing listens there any more
        fetch_cutout(1, 1, size=16, base_url=url, timeout=0.5, retries=1, backoff_base=0.001)
    assert not info.value.permanent and "connection failed" in str(info.value)


def test_fake_image_is_deterministic():
    a, b = fake_image("1,2", 16, 16), fake_image("1,2", 16, 16)
    assert np.array_equal(a, b) and not np.array_equal(a, fake_image("3,4", 16, 16))
    assert decode_image(encode_jpeg(a)).shape == (16, 16, 3)


# -- payload mode (astroquery's get_query_payload) ------------------------------------------------
class NoNetwork(SkyServerClient):
    """A client whose choke point fails the test: payload mode must never reach it."""

    def _request(self, url, timeout):
        raise AssertionError(f"payload mode sent a request: {url}")


def test_fetch_cutout_payload_is_the_request_it_would_send_and_sends_nothing(monkeypatch):
    from galmet.sdss.transport import HttpClient, RequestPayload

    monkeypatch.setattr(HttpClient, "_request", NoNetwork._request)
    payload = fetch_cutout(150.1, -2.5, scale=0.4, size=64, base_url="http://127.0.0.1:9/dr16/", get_query_payload=True)
    assert isinstance(payload, RequestPayload) and payload.method == "GET"
    assert payload.url == "http://127.0.0.1:9/dr16/SkyServerWS/ImgCutout/getjpeg"
    assert payload.params == {"ra": "150.10000000", "dec": "-2.50000000", "scale": "0.4", "width": 64, "height": 64}
    default = fetch_cutout(1, 2, get_query_payload=True)  # the paper's cutout on the paper's release
    assert default.url.startswith("https://skyserver.sdss.org/dr14/") and default.params["scale"] == "0.296"
    assert default.params["width"] == default.params["height"] == 128


def test_fetch_cutout_payload_takes_quantities_and_skycoord():
    pytest.importorskip("astropy")
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    payload = fetch_cutout(SkyCoord(10 * u.deg, 20 * u.deg), scale=0.5 * u.arcsec, get_query_payload=True)
    params = payload.params
    assert (params["ra"], params["dec"], params["scale"]) == ("10.00000000", "20.00000000", "0.5")


def test_payload_full_url_is_exactly_the_url_a_call_requests():
    sent = Scripted([ok_csv()])
    payload = sent.sql_search("SELECT TOP 2 objID FROM Galaxy", get_query_payload=True)
    assert sent.urls == []  # payload mode sent nothing
    sent.sql_search("SELECT TOP 2 objID FROM Galaxy")
    assert sent.urls == [payload.full_url]
    assert payload.params == {"cmd": "SELECT TOP 2 objID FROM Galaxy", "format": "csv"}
    cutout = NoNetwork("http://127.0.0.1:9").get_cutout(1.5, 2.5, 0.296, 16, get_query_payload=True)
    assert cutout.full_url == NoNetwork("http://127.0.0.1:9").cutout_url(1.5, 2.5, 0.296, 16)


def test_check_tables_and_query_catalog_payloads_send_nothing(tmp_path):
    from galmet.sdss.catalog import Cuts, chunk_queries, query_catalog
    from galmet.sdss.skyserver import check_tables

    client = NoNetwork("http://127.0.0.1:9")
    tables = check_tables(client, get_query_payload=True)
    assert "DBObjects" in tables.params["cmd"] and tables.params["format"] == "csv"
    payloads = query_catalog(client, Cuts(), chunks=3, limit=10, cache_dir=tmp_path / "c", get_query_payload=True)
    assert [p.params["cmd"] for p in payloads] == [sql for _, sql in chunk_queries(Cuts(), 3, 10)]
    assert not (tmp_path / "c").exists()  # nor touched the cache
