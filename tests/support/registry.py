"""A loopback HTTP server answering the part of the Confluent Schema Registry REST API the
ledger uses (POST /subjects/{subject}/versions, GET /schemas/ids/{id}), as documented by
Confluent. No Confluent-compatible registry is installable from the package index here
(Confluent's is a Java service; Karapace is not on PyPI), so this stands in for one.
Ids start at 101 so that they never coincide with the ledger's fixed local ids.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryServer:
    def __init__(self, credentials: tuple[str, str] | None = None, first_id: int = 101) -> None:
        self.schemas: dict[int, str] = {}  # id -> schema text as registered
        self.subjects: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str]] = []
        self.failing = False  # answer 503 to everything
        self._next = first_id
        self._lock = threading.Lock()
        self._auth = None if credentials is None else "Basic " + base64.b64encode(
            ":".join(credentials).encode()).decode()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _refused(self) -> bool:
                server.requests.append((self.command, self.path))
                if server.failing:
                    self._answer(503, {"error_code": 50003, "message": "unavailable"})
                    return True
                if server._auth and self.headers.get("Authorization") != server._auth:
                    self._answer(401, {"error_code": 401, "message": "Unauthorized"})
                    return True
                return False

            def do_GET(self) -> None:  # noqa: N802
                if self._refused():
                    return
                parts = self.path.strip("/").split("/")
                if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and parts[2].isdigit():
                    text = server.schemas.get(int(parts[2]))
                    if text is None:
                        self._answer(404, {"error_code": 40403, "message": "Schema not found"})
                    else:
                        self._answer(200, {"schema": text})
                    return
                self._answer(404, {"error_code": 404, "message": "HTTP 404 Not Found"})

            def do_POST(self) -> None:  # noqa: N802
                if self._refused():
                    return
                parts = self.path.strip("/").split("/")
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
                    self._answer(200, {"id": server.register(unquote(parts[1]), body["schema"])})
                    return
                self._answer(404, {"error_code": 404, "message": "HTTP 404 Not Found"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def register(self, subject: str, text: str) -> int:
        """The id of this schema (the same for the same schema, as the real registry does)."""
        canonical = json.dumps(json.loads(text), sort_keys=True)
        with self._lock:
            for schema_id, known in self.schemas.items():
                if json.dumps(json.loads(known), sort_keys=True) == canonical:
                    break
            else:
                schema_id, self._next = self._next, self._next + 1
                self.schemas[schema_id] = text
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "RegistryServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
