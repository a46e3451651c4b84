"""A loopback HTTP server answering the Confluent Schema Registry REST API as stock clients
use it (confluent-kafka's ``SchemaRegistryClient``, ``AvroSerializer``, ``AvroDeserializer``;
the Java serializers send the same requests), as documented by Confluent. No Confluent-
compatible registry is installable from the package index here (Confluent's is a Java
service; Karapace is not on PyPI), so this stands in for one.

Like the real registry: paths are matched without their query strings (``?normalize=``,
``?subject=``, ``?format=``, ``?deleted=`` are accepted); an id is global (the same schema
under two subjects has one id); each subject is checked for compatibility on registration
(BACKWARD by default, settable with ``PUT /config`` and ``PUT /config/{subject}``; NONE,
BACKWARD, FORWARD, FULL and their ``_TRANSITIVE`` forms, checked with the ``avro``
package's reader/writer checker, record names included) and an incompatible schema is
refused with HTTP 409 (error 409); a schema that does not parse is 422 (error 42201).
Avro only: another ``schemaType`` is 422. Schemas are compared as JSON documents with
sorted keys, whatever ``normalize`` says. Ids start at 101 so that they never coincide with
the ledger's fixed local ids.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
LEVELS = {
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
}


class RegistryError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _canonical(text: str) -> str:
    return json.dumps(json.loads(text), sort_keys=True)


def _problems(reader_text: str, writer_text: str) -> list[str]:
    """Why data written with WRITER cannot be read with READER (empty: it can)."""
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
    from avro.schema import parse

    result = ReaderWriterCompatibilityChecker().get_compatibility(parse(reader_text), parse(writer_text))
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return sorted(str(m) for m in result.messages) or sorted(k.value for k in result.incompatibilities)


class RegistryServer:
    def __init__(
        self, credentials: tuple[str, str] | None = None, first_id: int = 101, compatibility: str = "BACKWARD"
    ) -> None:
        self.schemas: dict[int, str] = {}  # id -> schema text as first registered
        self.subjects: dict[str, list[int]] = {}  # subject -> ids, version n at index n - 1
        self.requests: list[tuple[str, str]] = []  # (method, path without the query string)
        self.queries: list[tuple[str, str, dict[str, list[str]]]] = []  # (method, path, query)
        self.compatibility = compatibility  # the global level
        self.subject_compatibility: dict[str, str] = {}
        self.failing = False  # answer 503 to everything
        self._next = first_id
        self._lock = threading.Lock()
        self._auth = (
            None
            if credentials is None
            else "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        )
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

            def _handle(self) -> None:
                split = urlsplit(self.path)
                path, query = split.path, parse_qs(split.query)
                server.requests.append((self.command, path))
                server.queries.append((self.command, path, query))
                length = int(self.headers.get("Content-Length", 0) or 0)
                raw = self.rfile.read(length) if length else b""
                if server.failing:
                    self._answer(503, {"error_code": 50003, "message": "unavailable"})
                    return
                if server._auth and self.headers.get("Authorization") != server._auth:
                    self._answer(401, {"error_code": 401, "message": "Unauthorized"})
                    return
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    self._answer(400, {"error_code": 400, "message": "request body is not JSON"})
                    return
                parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
                try:
                    status, answer = server.route(self.command, parts, query, body)
                except RegistryError as exc:
                    self._answer(exc.status, {"error_code": exc.code, "message": exc.message})
                    return
                self._answer(status, answer)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ the model

    def level(self, subject: str) -> str:
        return self.subject_compatibility.get(subject, self.compatibility)

    def _id_of(self, text: str) -> int | None:
        canonical = _canonical(text)
        for schema_id, known in self.schemas.items():
            if _canonical(known) == canonical:
                return schema_id
        return None

    def incompatibilities(self, subject: str, text: str, version: str | None = None) -> list[str]:
        """Why ``text`` may not be registered next under ``subject`` at its compatibility level
        (against one ``version`` only, when given, as ``POST /compatibility/.../versions/{v}``)."""
        level = self.level(subject)
        versions = list(enumerate(self.subjects.get(subject, []), start=1))
        if level == "NONE" or not versions:
            return []
        if version is not None:
            earlier = [self._version(subject, version)]
        else:
            earlier = versions if level.endswith("_TRANSITIVE") else versions[-1:]
        problems = []
        for number, schema_id in earlier:
            old = self.schemas[schema_id]
            if level.startswith(("BACKWARD", "FULL")):
                problems += [f"cannot read version {number}: {p}" for p in _problems(text, old)]
            if level.startswith(("FORWARD", "FULL")):
                problems += [f"version {number} cannot read it: {p}" for p in _problems(old, text)]
        return problems

    def register(self, subject: str, text: str) -> int:
        """The id of this schema under ``subject`` (the same for the same schema, as the real
        registry does); RegistryError(409) when the subject's compatibility level refuses it."""
        try:
            document = json.loads(text)
            from avro.schema import parse

            parse(json.dumps(document))
        except Exception as exc:
            raise RegistryError(422, 42201, f"Invalid schema: {exc}"[:300]) from None
        with self._lock:
            versions = self.subjects.setdefault(subject, [])
            schema_id = self._id_of(text)
            if schema_id is not None and schema_id in versions:
                return schema_id
            problems = self.incompatibilities(subject, text)
            if problems:
                if not versions:
                    del self.subjects[subject]
                raise RegistryError(
                    409,
                    409,
                    f"Schema being registered is incompatible with an earlier schema "
                    f'for subject "{subject}" ({self.level(subject)}): ' + "; ".join(problems),
                )
            if schema_id is None:
                schema_id, self._next = self._next, self._next + 1
                self.schemas[schema_id] = text
            versions.append(schema_id)
            return schema_id

    def _version(self, subject: str, version: str) -> tuple[int, int]:
        versions = self.subjects.get(subject)
        if not versions:
            raise RegistryError(404, 40401, f"Subject '{subject}' not found.")
        if version in ("latest", "-1"):
            return len(versions), versions[-1]
        if not version.isdigit() or not 1 <= int(version) <= len(versions):
            raise RegistryError(404, 40402, f"Version {version} not found.")
        return int(version), versions[int(version) - 1]

    def _schema_body(self, body: Any) -> str:
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
            raise RegistryError(422, 42201, 'Invalid schema: the body needs a "schema" string')
        if body.get("schemaType", "AVRO") != "AVRO":
            raise RegistryError(
                422,
                42201,
                f"Invalid schema: this stand-in registry holds AVRO schemas only, not {body['schemaType']}",
            )
        if body.get("references"):
            raise RegistryError(422, 42201, "Invalid schema: schema references are not supported here")
        return body["schema"]

    def route(self, method: str, parts: list[str], query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        n = len(parts)
        if method == "GET" and parts == ["schemas", "types"]:
            return 200, ["AVRO"]
        if n >= 3 and parts[:2] == ["schemas", "ids"] and method == "GET":
            if not parts[2].isdigit() or int(parts[2]) not in self.schemas:
                raise RegistryError(404, 40403, "Schema not found")
            schema_id = int(parts[2])
            text = self.schemas[schema_id]
            if n == 3:
                return 200, {"schema": text}
            if parts[3:] == ["schema"]:
                return 200, json.loads(text)
            if parts[3:] == ["subjects"]:
                return 200, sorted(s for s, ids in self.subjects.items() if schema_id in ids)
            if parts[3:] == ["versions"]:
                return 200, [
                    {"subject": s, "version": ids.index(schema_id) + 1}
                    for s, ids in sorted(self.subjects.items())
                    if schema_id in ids
                ]
        if parts == ["subjects"] and method == "GET":
            return 200, sorted(s for s, ids in self.subjects.items() if ids)
        if n >= 2 and parts[0] == "subjects":
            subject = parts[1]
            if n == 3 and parts[2] == "versions" and method == "POST":
                return 200, {"id": self.register(subject, self._schema_body(body))}
            if n == 3 and parts[2] == "versions" and method == "GET":
                self._version(subject, "latest")
                return 200, list(range(1, len(self.subjects[subject]) + 1))
            if n in (4, 5) and parts[2] == "versions" and method == "GET":
                version, schema_id = self._version(subject, parts[3])
                if n == 5 and parts[4] == "schema":
                    return 200, json.loads(self.schemas[schema_id])
                if n == 4:
                    return 200, {
                        "subject": subject,
                        "version": version,
                        "id": schema_id,
                        "schema": self.schemas[schema_id],
                    }
            if n == 2 and method == "POST":  # is this schema registered under the subject?
                text = self._schema_body(body)
                if not self.subjects.get(subject):
                    raise RegistryError(404, 40401, f"Subject '{subject}' not found.")
                schema_id = self._id_of(text)
                if schema_id is None or schema_id not in self.subjects[subject]:
                    raise RegistryError(404, 40403, "Schema not found")
                return 200, {
                    "subject": subject,
                    "id": schema_id,
                    "version": self.subjects[subject].index(schema_id) + 1,
                    "schema": self.schemas[schema_id],
                }
        if parts and parts[0] == "config" and n <= 2:
            subject = parts[1] if n == 2 else None
            if method == "GET":
                if (
                    subject is not None
                    and subject not in self.subject_compatibility
                    and query.get("defaultToGlobal", ["false"])[0].lower() != "true"
                ):
                    raise RegistryError(
                        404,
                        40408,
                        f"Subject '{subject}' does not have subject-level compatibility configured",
                    )
                return 200, {"compatibilityLevel": self.level(subject) if subject else self.compatibility}
            if method == "PUT":
                level = str((body or {}).get("compatibility", "")).upper()
                if level not in LEVELS:
                    raise RegistryError(422, 42203, f"Invalid compatibility level {level!r}")
                if subject is None:
                    self.compatibility = level
                else:
                    self.subject_compatibility[subject] = level
                return 200, {"compatibility": level}
        if (
            n in (4, 5)
            and parts[:2] == ["compatibility", "subjects"]
            and parts[3] == "versions"
            and method == "POST"
        ):
            problems = self.incompatibilities(parts[2], self._schema_body(body), parts[4] if n == 5 else None)
            answer: dict[str, Any] = {"is_compatible": not problems}
            if query.get("verbose", ["false"])[0].lower() == "true":
                answer["messages"] = problems
            return 200, answer
        raise RegistryError(404, 404, "HTTP 404 Not Found")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> RegistryServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
