"""A local HTTP server answering the Stripe API calls the portal makes, the way Stripe
answers them, so that tests drive the real `stripe` SDK over HTTP and nothing leaves the
machine. Tests set what Stripe "knows" (sessions, payment intents) and read the calls."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest


class StripeStub:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.down = False  # answer every call with a 500, like an outage
        self.url = ""

    def session(self, purchase_id: int, **fields: Any) -> str:
        """A Checkout Session Stripe knows about, for one purchase; its id."""
        session_id = f"cs_test_{purchase_id}"
        self.sessions[session_id] = {
            "id": session_id,
            "object": "checkout.session",
            "client_reference_id": str(purchase_id),
            "status": "open",
            "payment_status": "unpaid",
            "payment_intent": None,
            "url": f"https://checkout.stripe.test/pay/{session_id}",
            **fields,
        }
        return session_id

    def answer(self, method: str, path: str, body: str) -> tuple[int, dict[str, Any]]:
        if self.down:
            return 500, {"error": {"type": "api_error", "message": "Stripe is down"}}
        if method == "POST" and path == "/v1/checkout/sessions":
            form = {name: values[0] for name, values in parse_qs(body).items()}
            price = "line_items[0][price_data]"
            session_id = self.session(
                int(form["client_reference_id"]),
                metadata={
                    name[len("metadata[") : -1]: value
                    for name, value in form.items()
                    if name.startswith("metadata[")
                },
                amount_total=int(form[f"{price}[unit_amount]"]),
                currency=form[f"{price}[currency]"],
            )
            return 200, self.sessions[session_id]
        if method == "GET" and path.startswith("/v1/checkout/sessions/"):
            found = self.sessions.get(path.rsplit("/", 1)[1])
        elif method == "GET" and path.startswith("/v1/payment_intents/"):
            found = self.payment_intents.get(path.rsplit("/", 1)[1])
        else:
            found = None
        if found is None:
            return 404, {"error": {"type": "invalid_request_error", "message": "No such object"}}
        return 200, found


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        path = self.path.split("?", 1)[0]
        stub = self.server.stub
        stub.calls.append(
            {
                "method": self.command,
                "path": path,
                "body": body,
                "idempotency_key": self.headers.get("Idempotency-Key"),
                "authorization": self.headers.get("Authorization"),
            }
        )
        status, answer = stub.answer(self.command, path, body)
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    stub: StripeStub


@pytest.fixture
def stripe_stub() -> Iterator[StripeStub]:
    stub = StripeStub()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.stub = stub
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
