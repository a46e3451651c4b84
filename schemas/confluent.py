"""A Confluent-compatible schema registry, when one is configured (``--registry URL``).

Without one, the ids on the wire are the fixed ids of :data:`schemas.SCHEMA_IDS`.
With one, they are the registry's:

* writing, each schema this ledger sends (records from ``produce``, dead letters,
  decisions) is registered once per process under its record's full name
  (RecordNameStrategy, e.g. ``uk.nhs.obc.ledger.Submission``: one records topic
  carries three record types) — ``POST /subjects/{subject}/versions``, which returns
  the existing id when the schema is already there;
* reading, an id is looked up once per process — ``GET /schemas/ids/{id}`` — and
  matched to a local schema by its Parsing Canonical Form. A schema the ledger does
  not have locally but whose record name it knows (a provider's newer or older
  version) is read with the writer's schema and resolved to the newest local reader,
  as Avro schema resolution defines; an id the registry does not know is a dead letter
  (``unknown_schema_id``); a registry that cannot be reached is an error, never a
  dead letter (the record is fine, the lookup failed: the consumer stops without
  saving the batch and a restart reads it again).

Credentials may be given in the URL (``https://KEY:SECRET@host``) and are sent as
HTTP basic authentication, as Confluent Cloud expects.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ledger.domain.errors import LedgerError

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
ATTEMPTS = 3
TIMEOUT_S = 10.0


class RegistryUnavailable(LedgerError):
    code = "registry_unavailable"


class RegistryRefused(LedgerError):
    """The registry answered, and said no (e.g. an incompatible schema: HTTP 409)."""

    code = "registry_refused"


class NotInRegistry(LookupError):
    pass


def full_name(schema: dict[str, Any]) -> str:
    name = schema["name"]
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


class ConfluentRegistry:
    """The subset of the Confluent Schema Registry REST API the ledger needs, cached."""

    def __init__(self, url: str, timeout: float = TIMEOUT_S) -> None:  # float-ok: seconds, not money
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LedgerError(f"--registry: {url!r} is not an http(s) URL", code="invalid_registry_url")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.timeout = timeout
        self._auth = None
        if parts.username is not None:
            pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(pair.encode()).decode()
        self._ids: dict[str, int] = {}  # canonical schema text -> id
        self._schemas: dict[int, dict[str, Any]] = {}

    def __repr__(self) -> str:  # never the credentials
        return f"ConfluentRegistry({self.url!r})"

    # ------------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": CONTENT_TYPE}
        if data is not None:
            headers["Content-Type"] = CONTENT_TYPE
        if self._auth:
            headers["Authorization"] = self._auth
        last: Exception | None = None
        for attempt in range(ATTEMPTS):
            request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return response.status, json.loads(response.read() or b"null")
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    try:
                        return exc.code, json.loads(exc.read() or b"null")
                    except ValueError:
                        return exc.code, None
                last = exc
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last = exc
            time.sleep(0.2 * (attempt + 1))
        raise RegistryUnavailable(
            f"schema registry at {self.url} did not answer {method} {path} "
            f"({ATTEMPTS} attempts; last: {last})"
        )

    @staticmethod
    def _message(answer: Any) -> str:
        if isinstance(answer, dict):
            return f"{answer.get('message', '')} (error {answer.get('error_code', '?')})"
        return str(answer)

    # ------------------------------------------------------------------ the API

    def register(self, schema: dict[str, Any]) -> int:
        """The registry's id for ``schema`` under its record's full name (registered if new)."""
        text = json.dumps(schema, sort_keys=True)
        found = self._ids.get(text)
        if found is not None:
            return found
        subject = full_name(schema)
        status, answer = self._request(
            "POST",
            f"/subjects/{urllib.parse.quote(subject, safe='')}/versions",
            {"schema": json.dumps(schema)},
        )
        if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
            raise RegistryRefused(
                f"schema registry at {self.url} refused {subject}: HTTP {status} {self._message(answer)}"
            )
        self._ids[text] = answer["id"]
        self._schemas.setdefault(answer["id"], schema)
        return answer["id"]

    def schema(self, schema_id: int) -> dict[str, Any]:
        """The schema document with this id; NotInRegistry when the registry has none."""
        found = self._schemas.get(schema_id)
        if found is not None:
            return found
        status, answer = self._request("GET", f"/schemas/ids/{schema_id}")
        if status == 404:
            raise NotInRegistry(f"schema id {schema_id} is not in the registry at {self.url}")
        if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("schema"), str):
            raise RegistryUnavailable(
                f"schema registry at {self.url}: GET /schemas/ids/{schema_id} gave "
                f"HTTP {status} {self._message(answer)}"
            )
        if answer.get("schemaType", "AVRO") != "AVRO":
            raise NotInRegistry(f"schema id {schema_id} is a {answer['schemaType']} schema, not Avro")
        try:
            document = json.loads(answer["schema"])
        except ValueError:
            raise NotInRegistry(f"schema id {schema_id} in the registry is not valid JSON") from None
        if not isinstance(document, dict) or document.get("type") != "record" or "name" not in document:
            raise NotInRegistry(f"schema id {schema_id} in the registry is not an Avro record schema")
        self._schemas[schema_id] = document
        return document
