"""A recording HTTP stub that answers like InfluxDB 2 (no InfluxDB 2 can be installed here)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ORG_ID = "0123456789abcdef"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class V2Stub:
    token: str
    org: str = "home"
    requests: list[Recorded] = field(default_factory=list)
    buckets: dict[str, dict] = field(default_factory=dict)
    write_replies: list[tuple[int, dict]] = field(default_factory=list)  # served first, then 204
    query_csv: list[str] = field(default_factory=list)
    metrics: str | None = None  # Prometheus text served on /metrics; None: 404 (metrics-disabled)
    metrics_status: int = 200

    def start(self) -> V2Stub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, payload: object = None, content_type: str = "application/json") -> None:
                data = b"" if payload is None else (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("X-Influxdb-Version", "v2.7.stub")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rec = Recorded(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body)
                stub.requests.append(rec)
                if parts.path == "/ping":
                    return self._reply(204)
                if self.headers.get("Authorization") != f"Token {stub.token}":
                    return self._reply(401, {"code": "unauthorized", "message": "unauthorized access"})
                q = {k: v[0] for k, v in rec.query.items()}
                if parts.path == "/api/v2/orgs":
                    return self._reply(200, {"orgs": [{"id": ORG_ID, "name": stub.org}] if q.get("org") == stub.org else []})
                if parts.path == "/api/v2/buckets" and self.command == "GET":
                    found = [b for b in stub.buckets.values() if q.get("name") in (None, b["name"])]
                    return self._reply(200, {"buckets": found})
                if parts.path == "/api/v2/buckets" and self.command == "POST":
                    req = json.loads(body)
                    bucket = {"id": f"{0x0c3dd7d2d97f4b00 + len(stub.buckets):016x}", "name": req["name"], "orgID": req["orgID"],
                              "retentionRules": req["retentionRules"]}
                    stub.buckets[bucket["id"]] = bucket
                    return self._reply(201, bucket)
                if parts.path.startswith("/api/v2/buckets/") and self.command == "PATCH":
                    bucket = stub.buckets[parts.path.rsplit("/", 1)[1]]
                    bucket["retentionRules"] = json.loads(body)["retentionRules"]
                    return self._reply(200, bucket)
                if parts.path == "/api/v2/write":
                    if stub.write_replies:
                        status, payload = stub.write_replies.pop(0)
                        return self._reply(status, payload)
                    return self._reply(204)
                if parts.path == "/api/v2/delete":
                    return self._reply(204)
                if parts.path == "/metrics" and self.command == "GET":
                    if stub.metrics is None:
                        return self._reply(404, {"code": "not found", "message": "path not found: /metrics"})
                    return self._reply(stub.metrics_status, stub.metrics.encode(), "text/plain; version=0.0.4; charset=utf-8")
                if parts.path == "/api/v2/query":
                    return self._reply(200, stub.query_csv.pop(0).encode(), "text/csv; charset=utf-8")
                return self._reply(404, {"code": "not found", "message": f"path not found: {parts.path}"})

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def of(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]
