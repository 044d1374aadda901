"""The service-neutral HTTP transport (``galmet.sdss.transport``) and the one definition of the
client and download settings: a service other than SkyServer on the same client, settings
checked once in the library with errors naming parameters, and the command line's option types
derived from the same ranges."""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass

import pytest

from faulty_server import FaultyServer, key_of
from galmet.errors import ConfigError
from galmet.sdss.catalog import QUERY_RANGES, QUERY_SETTINGS, Cuts, ra_bands
from galmet.sdss.download import DOWNLOAD_RANGES, DownloadOptions
from galmet.sdss.skyserver import CUTOUT_SETTINGS, SkyServerClient
from galmet.sdss.transport import (
    SETTING_RANGES,
    BadBody,
    ClientSettings,
    HttpClient,
    Range,
    RetryPolicy,
    ServiceError,
)


class EchoError(ServiceError):
    """The failures of the test service."""


@dataclass
class EchoClient(HttpClient):
    """A service that is not SkyServer: the bytes of one path, refused when they do not start as asked."""

    error = EchoError
    user_agent = "echo-test/1"
    log = logging.getLogger("echo-test")

    def fetch(self, ra: float, dec: float, starts: bytes = b"\xff\xd8", *, get_query_payload: bool = False):
        payload = self.payload("/SkyServerWS/ImgCutout/getjpeg", {"ra": ra, "dec": dec, "width": 16, "height": 16})
        if get_query_payload:
            return payload

        def accept(body: bytes) -> bytes:
            if not body.startswith(starts):
                raise BadBody("not what was asked for")
            return body

        return self.call(payload.full_url, accept, where=f"echo {ra},{dec}")


def test_a_service_on_the_transport_gets_the_retries_its_error_its_logger_and_its_user_agent(caplog):
    with FaultyServer({key_of(1, 2): ["503", "ok"], key_of(3, 4): ["404"]}, retry_after="0") as srv:
        with EchoClient(srv.url, timeout=2, policy=RetryPolicy(retries=2, backoff_base=0.001)) as echo:
            with caplog.at_level(logging.INFO, logger="echo-test"):
                body, attempts = echo.fetch(1, 2)
            assert attempts == 2 and body == srv.jpeg(key_of(1, 2), 16, 16)
            with pytest.raises(EchoError, match=r"^echo 3,4: HTTP 404") as err:
                echo.fetch(3, 4)
            assert err.value.permanent and err.value.attempts == 1
            with pytest.raises(EchoError, match="not what was asked for"):
                echo.fetch(1, 2, starts=b"GIF")
        assert set(srv.user_agents) == {"echo-test/1"}
    assert [r.retry_reason for r in caplog.records if r.name == "echo-test"] == ["HTTP 503"]


def test_the_transport_names_no_service():
    import inspect

    import galmet.sdss.transport as transport

    source = inspect.getsource(transport)
    assert "SkyServer" not in source.replace("galmet.sdss.skyserver.SkyServerClient", "")
    assert issubclass(SkyServerClient, HttpClient)
    assert EchoClient("http://127.0.0.1:9").fetch(1, 2, get_query_payload=True).url == (
        "http://127.0.0.1:9/SkyServerWS/ImgCutout/getjpeg"
    )


# -- settings: one owner, checked once, named by parameter ----------------------------------------
@pytest.mark.parametrize(
    "make, param",
    [
        (lambda: ClientSettings(rate=-1.0).check(), "rate"),
        (lambda: ClientSettings(timeout=0).check(), "timeout"),
        (lambda: ClientSettings(max_bytes=10).check(), "max_bytes"),
        (lambda: HttpClient("http://127.0.0.1:9", rate=math.nan), "rate"),
        (lambda: SkyServerClient("http://127.0.0.1:9", timeout=-1), "timeout"),
        (lambda: RetryPolicy(retries=-1), "retries"),
        (lambda: RetryPolicy(backoff_base=math.inf), "backoff_base"),
        (lambda: DownloadOptions(rate=2000.0).check(), "rate"),
        (lambda: DownloadOptions(workers=0).check(), "workers"),
        (lambda: DownloadOptions(retries=True).check(), "retries"),
        (lambda: DownloadOptions(max_failures=1.5).check(), "max_failures"),
        (lambda: DownloadOptions(scale=0.0).check(), "scale"),
        (lambda: ra_bands(0), "chunks"),
        (lambda: Cuts(mag_min=30.0).check(), ("mag_min", "mag_max")),
        (lambda: Cuts(z_min=math.nan).check(), "z_min"),
    ],
)
def test_library_errors_name_the_parameter_never_a_flag(make, param):
    with pytest.raises(ConfigError) as err:
        make()
    assert err.value.param == param
    first = param[0] if isinstance(param, tuple) else param
    assert str(err.value).startswith(f"{first} ") and "--" not in str(err.value)


def test_the_defaults_have_one_owner():
    d = DownloadOptions()
    assert d.settings() == CUTOUT_SETTINGS  # the download's client settings are the cutouts'
    assert (d.timeout, d.retries, d.rate, d.backoff_base, d.max_bytes) == (30.0, 5, 5.0, 1.0, 4 << 20)
    assert (d.workers, d.size, d.scale, d.max_failures) == (8, 128, 0.296, 0.05)
    assert (QUERY_SETTINGS.timeout, QUERY_SETTINGS.rate, QUERY_SETTINGS.max_bytes) == (180.0, 1.0, 256 << 20)
    client = d.client()
    assert (client.timeout, client.policy.retries, client.rate, client.max_bytes) == (30.0, 5, 5.0, 4 << 20)
    assert RetryPolicy().retries == ClientSettings().retries and HttpClient("http://x").timeout == 30.0


def _probes(accepted: Range) -> list:
    """Values at and around the bounds of ``accepted``."""
    step = 1 if accepted.integer else 1e-9 * max(1.0, abs(accepted.hi))
    return [accepted.lo - step, accepted.lo, accepted.lo + step, accepted.hi - step, accepted.hi, accepted.hi + step]


@pytest.mark.parametrize(
    "name, accepted",
    [*SETTING_RANGES.items(), *DOWNLOAD_RANGES.items(), *QUERY_RANGES.items()],
)
def test_the_command_line_accepts_exactly_what_the_library_accepts(name, accepted):
    from galmet.cli.options import option_type

    parse = option_type(accepted)
    for value in _probes(accepted):
        value = int(value) if accepted.integer else value
        try:
            accepted.check(name, value)
            library = True
        except ConfigError:
            library = False
        try:
            parse(repr(value))
            cli = True
        except argparse.ArgumentTypeError:
            cli = False
        assert cli == library, (name, value)


@pytest.mark.parametrize("command", ["download", "catalog"])
def test_each_commands_server_defaults_are_the_librarys(command):
    from galmet.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    args = sub.parse_args(["ds"] if command == "download" else [])
    owner = DownloadOptions().settings() if command == "download" else QUERY_SETTINGS
    assert ClientSettings(args.timeout, args.retries, args.rate, args.backoff_base, args.max_bytes) == owner


def test_cli_shows_flags_for_the_librarys_parameter_errors(capsys):
    from galmet.cli.main import main

    assert main(["catalog", "--dry-run", "--mag-min", "30"]) == 2
    assert capsys.readouterr().err.strip() == (
        "galmet catalog: error: --mag-min 30 must be below --mag-max 25 (no galaxy could pass)"
    )
