"""fetch_ics against a real HTTP server on the loopback: every way a calendar's server can
fail ends as a CalendarError with its code, never as another exception."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import icalendar
import pytest

from portal.booking.busy import CalendarError, busy_from_ics
from portal.booking.ics import fetch_ics

LIMIT = 10_000  # max_bytes in these tests
SHORT = 0.5  # seconds: the timeout in these tests
LONG = 10.0  # for the tests of something else: a loaded machine may be slow
STOP = threading.Event()  # releases the slow handlers when the tests are done


def calendar_body() -> bytes:
    calendar = icalendar.Calendar()
    calendar.version = "2.0"
    calendar.prodid = "-//Tests//Server//EN"
    calendar.add_component(
        icalendar.Event.new(
            start=datetime(2026, 1, 5, 9, tzinfo=UTC), end=datetime(2026, 1, 5, 10, tzinfo=UTC)
        )
    )
    return calendar.to_ical()


GOOD = calendar_body()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests say what matters."""

    def send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path
        try:
            if path == "/good.ics":
                self.send(200, GOOD, Content_Type="text/calendar; charset=utf-8")
            elif path == "/missing.ics":
                self.send(404, b"not here")
            elif path == "/huge.ics":
                self.send(200, b"X" * (LIMIT + 1))
            elif path == "/huge-unannounced.ics":
                # HTTP/1.0 without Content-Length: the body ends when the connection closes.
                self.send_response(200)
                self.end_headers()
                for _ in range(LIMIT // 1000 + 1):
                    self.wfile.write(b"X" * 1000)
            elif path == "/bomb.ics":
                self.send(200, gzip.compress(b"X" * (LIMIT * 10)), Content_Encoding="gzip")
            elif path.startswith("/hops/"):
                left = int(path.removeprefix("/hops/"))
                self.send(302, Location="/good.ics" if left == 1 else f"/hops/{left - 1}")
            elif path == "/to-ftp":
                self.send(302, Location="ftp://127.0.0.1/calendar.ics")
            elif path == "/slow.ics":
                STOP.wait(SHORT * 6)
                self.send(200, GOOD)
            elif path == "/trickle.ics":
                # Answers at once, then a byte now and then: each read is quick, the whole
                # never ends.
                self.send_response(200)
                self.send_header("Content-Length", str(LIMIT))
                self.end_headers()
                for _ in range(30):
                    if STOP.wait(SHORT / 5):
                        break
                    self.wfile.write(b"X")
                    self.wfile.flush()
            else:
                self.send(500)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first, as the timeout tests want


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    STOP.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


async def fetch_error(url: str, seconds: float = LONG, **options: object) -> CalendarError:
    with pytest.raises(CalendarError) as caught:
        await fetch_ics(url, max_bytes=LIMIT, timeout=seconds, **{"allow_private": True, **options})  # type: ignore[arg-type]
    assert caught.value.message  # a sentence for the expert
    return caught.value


async def test_a_good_calendar_is_fetched_and_read(server: str) -> None:
    data = await fetch_ics(f"{server}/good.ics", max_bytes=LIMIT, timeout=LONG, allow_private=True)
    assert data == GOOD
    busy = busy_from_ics(
        data, datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC), tz="UTC"
    )
    assert busy == [(datetime(2026, 1, 5, 9, tzinfo=UTC), datetime(2026, 1, 5, 10, tzinfo=UTC))]


async def test_an_error_status_is_http_status(server: str) -> None:
    error = await fetch_error(f"{server}/missing.ics")
    assert (error.code, error.detail) == ("http_status", "HTTP 404")


@pytest.mark.parametrize("path", ["/huge.ics", "/huge-unannounced.ics", "/bomb.ics"])
async def test_a_body_past_the_limit_is_too_large(server: str, path: str) -> None:
    """Announced or not, and counted after decompression (a small gzip body can unpack to
    gigabytes)."""
    assert (await fetch_error(server + path)).code == "too_large"


async def test_redirects_are_followed_up_to_five(server: str) -> None:
    # Six round trips: a loaded machine may need more than the timeout tests' half second.
    assert (
        await fetch_ics(f"{server}/hops/5", max_bytes=LIMIT, timeout=LONG, allow_private=True)
        == GOOD
    )
    error = await fetch_error(f"{server}/hops/6")
    assert (error.code, error.detail) == ("unreachable", "more than 5 redirects")


async def test_the_redirect_limit_holds_with_the_callers_client(server: str) -> None:
    async with httpx.AsyncClient(follow_redirects=True, max_redirects=20) as client:
        assert (await fetch_error(f"{server}/hops/6", client=client)).code == "unreachable"
        assert await fetch_ics(f"{server}/hops/2", client=client, allow_private=True) == GOOD


async def test_a_redirect_away_from_http_is_a_bad_url(server: str) -> None:
    assert (await fetch_error(f"{server}/to-ftp")).code == "bad_url"


@pytest.mark.parametrize("path", ["/slow.ics", "/trickle.ics"])
async def test_a_slow_server_is_unreachable(server: str, path: str) -> None:
    """The timeout bounds the whole exchange, not each read: a server that trickles bytes
    is cut off too."""
    error = await fetch_error(server + path, seconds=SHORT)
    assert error.code == "unreachable"
    assert "within" in error.detail


async def test_a_closed_port_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert (await fetch_error(f"http://127.0.0.1:{port}/calendar.ics")).code == "unreachable"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "not a url",
        "calendar.ics",
        "ftp://example.com/calendar.ics",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "https://[::1",
        "http://xn--.example/",
    ],
)
async def test_a_bad_url_is_refused_before_any_request(url: str) -> None:
    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"requested {request.url}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(no_network)) as client:
        assert (await fetch_error(url, client=client)).code == "bad_url"


async def test_webcal_is_fetched_over_https() -> None:
    requested: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(200, content=GOOD)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        data = await fetch_ics(
            "webcal://calendar.example/u/42/basic.ics", client=client, allow_private=True
        )
    assert data == GOOD
    assert requested == ["https://calendar.example/u/42/basic.ics"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "[::1]"])
async def test_addresses_inside_our_network_are_refused(server: str, host: str) -> None:
    """An expert's address must not reach the portal's own network (loopback, private
    ranges, cloud metadata): refused before any request, by default."""
    port = server.rsplit(":", 1)[1]
    with pytest.raises(CalendarError) as caught:
        await fetch_ics(f"http://{host}:{port}/good.ics", timeout=SHORT)
    assert caught.value.code == "private"


async def test_a_redirect_into_our_network_is_refused(server: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": f"{server}/good.ics"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(CalendarError) as caught:
            await fetch_ics("https://93.184.215.14/calendar.ics", client=client, timeout=SHORT)
    assert caught.value.code == "private"
