"""The local endpoint: Python's threading HTTP server in front of ``PredictionService.handle``.

The standard library's server is chosen on purpose: it adds no dependency and no import time,
and all behaviour (routing, limits, errors) stays in the service that the cloud adapters call,
so what a user sees here is what the functions answer.
"""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from core.errors import PayloadTooLarge, RequestError
from core.http.messages import HttpRequest, HttpResponse
from core.http.service import PredictionService


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries Content-Length
    # headers and body leave in two writes; with Nagle on, the body waits for a delayed ACK (~40 ms)
    disable_nagle_algorithm = True
    # a client that stops sending (a stalled body, an idle keep-alive) frees its thread after this
    timeout = 60
    server_version = "serverless-ml"
    sys_version = ""  # no Python version in the Server header
    service: PredictionService  # set on the subclass made by make_server
    respond: Callable[[HttpRequest], HttpResponse]  # likewise: service.handle, or a provider's adapter

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = HttpRequest(
            method=self.command, path=parts.path, headers=headers, query=dict(parse_qsl(parts.query))
        )
        try:
            body = self._read_body(headers)
        except RequestError as exc:
            self.close_connection = True  # the unread rest of the body must not become a request
            self._send(self.service.handle(request.with_error(exc)))
            return
        self._send(self.respond(request.with_body(body)))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

    def __getattr__(self, name: str):
        # any other method (TRACE, QUERY, ...): the service answers it (405 with Allow, or 404) as
        # the functions do, instead of http.server's HTML 501
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _read_body(self, headers: dict[str, str]) -> bytes:
        limit = self.service.settings.max_body_bytes
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return self._read_chunked(limit)
        length_text = headers.get("content-length", "0").strip() or "0"
        # ASCII digits only: str.isdigit() is also true for '²' or '٣', which int() then refuses
        if not (length_text.isascii() and length_text.isdigit()):
            raise RequestError(f"Content-Length {length_text[:20]!r} is not a number of bytes")
        length = int(length_text)
        if length > limit:
            raise PayloadTooLarge(
                f"the body has {length} bytes; at most {limit} bytes are accepted (MAX_BODY_BYTES); "
                "split the rows over several requests or use batch prediction"
            )
        return self.rfile.read(length) if length else b""

    def _read_chunked(self, limit: int) -> bytes:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(65537).split(b";", 1)[0].strip()
            # hex digits only: int(..., 16) also takes '-1' (a read to the end of the connection,
            # which waits for the client to hang up), '+5', '0x5' and '1_0'
            if not size_line or size_line.strip(b"0123456789abcdefABCDEF"):
                raise RequestError("the chunked body is malformed; expected hexadecimal chunk sizes")
            size = int(size_line, 16)
            if size == 0:
                while self.rfile.readline(65537).strip():  # trailers
                    pass
                return bytes(body)
            if len(body) + size > limit:
                raise PayloadTooLarge(
                    f"the body exceeds {limit} bytes; at most {limit} bytes are accepted (MAX_BODY_BYTES)"
                )
            body += self.rfile.read(size)
            self.rfile.readline(65537)

    def _send(self, response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args) -> None:
        # the service logs one structured line per request; http.server's own line would repeat it
        return


def make_server(
    service: PredictionService,
    host: str = "127.0.0.1",
    port: int = 8080,
    respond: Callable[[HttpRequest], HttpResponse] | None = None,
) -> ThreadingHTTPServer:
    """A ready-to-serve HTTP server bound to ``host:port`` (port 0 picks a free one).

    Requests go to ``respond`` (default: ``service.handle``); a provider emulation passes its
    adapter instead. A body refused before it is read is answered by ``service.handle``, as a request
    that carries its error.
    """
    handler = type("Handler", (_Handler,), {"service": service, "respond": staticmethod(respond or service.handle)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
