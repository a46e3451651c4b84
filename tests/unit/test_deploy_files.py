"""The deployment files agree with the code (Docker cannot run here, so this is what is checked):
every `obc-ledger` command they run exists and parses with their environment, every
OBC_LEDGER_* variable they name is one the CLI reads, every variable the CLI reads is in the
table of deploy/README.md, every image is pinned to a version, and compose has its services."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.env_table import EXTRAS, variables
from ledger.entrypoints.cli.main import apply_env_defaults, build_parser, env_name, option_actions

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
README = DEPLOY / "README.md"
K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))
LEDGER_IMAGE = "obc-ledger:"
ROLE_SERVICES = {
    "ledger-consumer": ["consume"],
    "ledger-projections": ["projections", "run", "--follow"],
    "ledger-publisher": ["publish-decisions"],
}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def k8s_documents() -> list[dict[str, Any]]:
    return [d for path in K8S for d in yaml.safe_load_all(path.read_text()) if d]


def cli_variables() -> set[str]:
    return {env_name(action) for _, action in option_actions(build_parser())}


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_path(tokens: list[str]) -> list[str]:
    """The command (and sub-command) named by the arguments after `obc-ledger`; raises if unknown."""
    parser, path, skip = build_parser(), [], False
    takes_value = {o for _, a in option_actions(parser) if a.nargs != 0 for o in a.option_strings}
    for token in tokens:
        if skip:
            skip = False
            continue
        if token.startswith("-"):
            skip = token in takes_value
            continue
        children = subcommands(parser)
        if not children:
            break
        if token not in children:
            raise AssertionError(f"obc-ledger {' '.join(path + [token])}: no such command")
        parser, path = children[token], path + [token]
    if subcommands(parser):
        raise AssertionError(f"obc-ledger {' '.join(path)}: an action is missing")
    return path


def parses(args: list[str], environment: dict[str, Any] | None = None) -> argparse.Namespace:
    """Parse as `obc-ledger` would with this environment (a usage error fails the test)."""
    parser = build_parser()
    apply_env_defaults(parser, {k: str(v) for k, v in (environment or {}).items()})
    return parser.parse_args(args)


# ------------------------------------------------------------------ what the files run


def compose_ledger_services() -> dict[str, dict[str, Any]]:
    return {
        name: s
        for name, s in compose()["services"].items()
        if str(s.get("image", "")).startswith(LEDGER_IMAGE)
    }


def k8s_containers() -> Iterator[dict[str, Any]]:
    for doc in k8s_documents():
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        yield from spec.get("initContainers", []) + spec.get("containers", [])


def invocations() -> Iterator[tuple[str, list[str]]]:
    """(where, argv after `obc-ledger`) for every run of the CLI in compose, k8s, Dockerfile and README."""
    for name, service in compose_ledger_services().items():
        if service.get("command") and service.get("entrypoint", ["obc-ledger"]) == ["obc-ledger"]:
            yield f"compose {name}", list(service["command"])
        test = service.get("healthcheck", {}).get("test", [])
        if "obc-ledger" in test:
            yield f"compose {name} healthcheck", test[test.index("obc-ledger") + 1 :]
    for container in k8s_containers():
        if container["image"].startswith(LEDGER_IMAGE) and "args" in container:
            yield f"k8s {container['name']}", list(container["args"])
        probe = container.get("livenessProbe", {}).get("exec", {}).get("command", [])
        for text in [" ".join(probe), *container.get("command", [])]:
            for match in re.finditer(r"obc-ledger ([^;|>&]+)", text):
                yield f"k8s {container['name']} command", shlex.split(match.group(1))
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("CMD"):
            yield "Dockerfile CMD", json.loads(line[3:].strip())
    text = README.read_text()
    code = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S) + re.findall(r"`([^`\n]+)`", text)
    for block in code:
        for match in re.finditer(r"(?<![\w.-])(?:obc-ledger|ledger-cli)((?: +[^\s`|;&#]+)+)", block):
            yield "deploy/README.md", match.group(1).split()


def test_every_obc_ledger_command_the_deployment_files_run_exists():
    seen = [(where, args) for where, args in invocations() if args and args != ["--help"]]
    assert len(seen) >= 10, "the scan found the commands"
    for where, args in seen:
        try:
            command_path(args)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from None
    readme_commands = {" ".join(command_path(a)) for w, a in seen if w == "deploy/README.md"}
    assert {"consume", "projections rebuild", "verify", "digest", "publish-decisions"} <= readme_commands


def test_the_workers_commands_parse_with_their_environment_and_take_settings_only_from_it():
    services = compose_ledger_services()
    for name, role in ROLE_SERVICES.items():
        service = services[name]
        assert service["command"] == role
        args = parses(service["command"], service["environment"])
        assert args.db.startswith("postgresql://"), name
        options = [a for a in service["command"] if a.startswith("-")]
        flags = {o for _, a in option_actions(build_parser()) if a.nargs == 0 for o in a.option_strings}
        assert set(options) <= flags, f"{name}: settings belong in its environment, not its command"
    consumer = parses(["consume"], services["ledger-consumer"]["environment"])
    assert (
        consumer.topics == ["ledger.records"] and consumer.group and consumer.bootstrap.count(",") == 2
    )
    publisher = parses(["publish-decisions"], services["ledger-publisher"]["environment"])
    assert publisher.topic == "ledger.decisions" and publisher.until_idle is None, (
        "a worker runs until stopped"
    )
    assert parses(["projections", "run", "--follow"], services["ledger-projections"]["environment"]).follow


def test_every_obc_ledger_variable_the_deployment_files_name_is_one_the_cli_reads():
    known = cli_variables() | set(EXTRAS)
    files = [COMPOSE, DOCKERFILE, README, *K8S, *DEPLOY.glob("*.py")]
    named = {
        (path.name, v)
        for path in files
        for v in re.findall(r"OBC_LEDGER_[A-Z0-9_]*[A-Z0-9]", path.read_text())
    }
    assert len(named) > 20
    unknown = sorted((f, v) for f, v in named if v not in known)
    assert not unknown, f"variables no code reads: {unknown}"


def readme_table() -> dict[str, str]:
    """Variable -> its Commands cell, from the table of deploy/README.md."""
    rows = re.findall(r"^\| `(OBC_LEDGER_[A-Z0-9_]+)` \| [^|]* \| ([^|]*) \|", README.read_text(), flags=re.M)
    return dict(rows)


def test_every_variable_the_cli_takes_is_in_the_readme_table_with_the_commands_that_read_it():
    table = readme_table()
    missing = cli_variables() - set(table)
    assert not missing, (
        f"add to deploy/README.md (python -m deploy.env_table prints the table): {sorted(missing)}"
    )
    assert set(table) == cli_variables() | set(EXTRAS), "no row for a variable the CLI does not read"
    for name, entry in variables().items():
        commands = entry["commands"]
        cell = table[name]
        if "(global)" in commands:
            assert cell.strip() == "every command", name
        else:
            assert set(re.findall(r"`([^`]+)`", cell)) == commands, (
                f"{name}: commands are now {sorted(commands)}"
            )


def images() -> list[tuple[str, str]]:
    found = [("compose " + n, s["image"]) for n, s in compose()["services"].items() if "image" in s]
    found += [(f"k8s {c['name']}", c["image"]) for c in k8s_containers()]
    found += [
        ("Dockerfile", line.split()[1])
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("FROM")
    ]
    return found


@pytest.mark.parametrize(("where", "image"), images())
def test_every_image_is_pinned_to_a_version(where, image):
    name, _, tag = image.rpartition(":") if "@" not in image else (image, "", "digest")
    assert name and tag, f"{where}: {image} has no tag"
    assert tag != "latest" and (tag == "digest" or re.match(r"\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?$", tag)), (
        f"{where}: {image} is not pinned to a version"
    )


def test_compose_has_a_three_broker_kraft_kafka_postgres_and_the_ledger_workers_with_health_checks():
    services = compose()["services"]
    assert {
        "kafka-1",
        "kafka-2",
        "kafka-3",
        "kafka-init",
        "postgres",
        "ledger-init",
        "ledger-consumer",
        "ledger-projections",
        "ledger-publisher",
    } <= set(services)
    voters = set()
    for n in (1, 2, 3):
        env = services[f"kafka-{n}"]["environment"]
        assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
        assert env["KAFKA_NODE_ID"] == n
        voters.add(env["KAFKA_CONTROLLER_QUORUM_VOTERS"])
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2 and env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    for name in ("kafka-1", "kafka-2", "kafka-3", "postgres", *ROLE_SERVICES):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    replicas = re.fullmatch(
        r"\$\{CONSUMER_REPLICAS:-(\d+)\}", str(services["ledger-consumer"]["deploy"]["replicas"])
    )
    assert replicas and int(replicas.group(1)) >= 2, "several consumers, set by CONSUMER_REPLICAS"
    for name in ("ledger-projections", "ledger-publisher"):
        assert services[name]["deploy"]["replicas"] == 1, f"{name}: one at a time"
    for name in ROLE_SERVICES:
        assert services[name]["depends_on"]["ledger-init"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["CREATE_TABLE"] == "false", "only ledger-init runs the DDL"


def test_the_topics_created_are_the_ones_the_workers_use_with_partitions_and_retention():
    services = compose()["services"]
    script = services["kafka-init"]["command"][0]
    created = re.findall(
        r"^create (\S+) \"\$\$(\w+)_PARTITIONS\" \"\$\$(\w+)_RETENTION_MS\"", script, flags=re.M
    )
    topics = {t for t, _, _ in created}
    consumed = parses(["consume"], services["ledger-consumer"]["environment"]).topics
    published = parses(["publish-decisions"], services["ledger-publisher"]["environment"]).topic
    assert topics == {*consumed, *(f"{t}.dlq" for t in consumed), published}
    env = services["kafka-init"]["environment"]
    for _, partitions, retention in created:
        assert f"{partitions}_PARTITIONS" in env and f"{retention}_RETENTION_MS" in env
    assert "--replication-factor 3" in script and "min.insync.replicas=2" in script
    strimzi = {d["metadata"]["name"]: d["spec"] for d in k8s_documents() if d["kind"] == "KafkaTopic"}
    assert set(strimzi) == topics
    assert (
        strimzi["ledger.records.dlq"]["partitions"] == strimzi["ledger.records"]["partitions"]
    )
    assert all(spec["config"]["retention.ms"] > 0 and spec["replicas"] == 3 for spec in strimzi.values())


def test_the_backup_dumps_every_event_store_table():
    script = compose()["services"]["pg-backup"]["command"][0]
    assert set(re.findall(r"--table (\w+)", script)) == {
        "ledger_events",
        "ledger_snapshots",
        "notification_tracking",
        "record_index",
        "event_hashes",
    }


def test_the_image_installs_the_project_and_runs_the_cli_as_a_non_root_user():
    import tomllib

    lines = [
        line.strip() for line in DOCKERFILE.read_text().splitlines() if line and not line.startswith("#")
    ]
    assert lines[0].startswith("FROM python:3.11.")
    scripts = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]["scripts"]
    assert 'ENTRYPOINT ["obc-ledger"]' in lines and "obc-ledger" in scripts
    assert any(line.startswith("RUN pip install .") for line in lines)
    packages = [
        p.rstrip("*")
        for p in tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["tool"]["setuptools"][
            "packages"
        ]["find"]["include"]
    ]
    copied = {line.split()[1] for line in lines if line.startswith("COPY")}
    assert set(packages) <= copied, "every package the project installs is copied into the build"
    user = [line.split()[1] for line in lines if line.startswith("USER")]
    assert user and user[-1] not in ("root", "0")
