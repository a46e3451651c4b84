"""Kafka: ``consume`` providers' Avro records, ``produce`` a provider's file, ``publish-decisions``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ledger.adapters.signing import load_signer
from ledger.domain.errors import LedgerError
from ledger.entrypoints.cli.common import emit
from ledger.entrypoints.cli.context import Context, Handler
from ledger.entrypoints.cli.errors import UsageError

BOOTSTRAP_ENV = "OBC_LEDGER_BOOTSTRAP"
CREATE_TOPICS = (
    "create the topic when it does not exist (3 partitions); without it a missing topic is an error"
)


def _kafka_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bootstrap",
        default=os.environ.get(BOOTSTRAP_ENV),
        metavar="HOST:PORT",
        help=f"Kafka bootstrap server(s), comma-separated (or ${BOOTSTRAP_ENV})",
    )
    p.add_argument(
        "--registry",
        metavar="URL",
        help="a Confluent-compatible schema registry (http[s]://[KEY:SECRET@]host:port): "
        "schema ids on the wire are its ids (default: the fixed ids of schemas/)",
    )


def consume(p: argparse.ArgumentParser, command: Any) -> Handler:
    _kafka_options(p)
    p.add_argument(
        "--topic",
        action="append",
        dest="topics",
        metavar="TOPIC",
        help="topic to consume (repeatable; default ledger.records)",
    )
    p.add_argument("--group", default="obc-ledger", help="consumer group (default obc-ledger)")
    p.add_argument(
        "--until-idle",
        type=float,
        metavar="SECONDS",
        help="exit cleanly once no record arrived for this long after the last save, no rebalance "
        "is in progress, and every partition it owns is consumed to its end; exit 1 "
        "(group_join_timeout) if the group completes no join within two sessions and 30 s",
    )
    p.add_argument(
        "--batch", type=int, default=2000, metavar="N", help="records per transaction (default 2000)"
    )
    p.add_argument(
        "--session-timeout-ms",
        type=int,
        default=10_000,
        metavar="MS",
        help="group session timeout (default 10000; joining a group takes about half of it)",
    )
    p.add_argument("--create-topics", dest="create_topics", action="store_true", help=CREATE_TOPICS)
    return cmd_consume


def produce(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("file", help="JSON-lines file ('-' for stdin)")
    _kafka_options(p)
    p.add_argument("--topic", default="ledger.records", help="topic to send to (default ledger.records)")
    p.add_argument("--check", action="store_true", help="only check the file; send nothing")
    p.add_argument("--create-topics", dest="create_topics", action="store_true", help=CREATE_TOPICS)
    p.add_argument(
        "--sign-key",
        dest="record_sign_key",
        metavar="KEY.pem",
        help="sign each record (Ed25519 over its canonical bytes) into the obc-signature header",
    )
    return cmd_produce


def publish_decisions(p: argparse.ArgumentParser, command: Any) -> Handler:
    _kafka_options(p)
    p.add_argument(
        "--topic", default="ledger.decisions", help="topic to publish to (default ledger.decisions)"
    )
    p.add_argument(
        "--until-idle",
        type=float,
        metavar="SECONDS",
        help="exit cleanly after this many seconds without a new decision",
    )
    p.add_argument(
        "--sign-key",
        dest="decision_sign_key",
        metavar="FILE",
        help="Ed25519 private key: each decision carries a decision-signature header",
    )
    return cmd_publish_decisions


def _bootstrap(args: argparse.Namespace) -> str:
    """The Kafka bootstrap servers (the schema registry, --registry, is the codec's: ctx.app.codec)."""
    if not args.bootstrap:
        raise UsageError(
            f"obc-ledger {args.command}: --bootstrap HOST:PORT is required (or set ${BOOTSTRAP_ENV})"
        )
    return args.bootstrap


def cmd_consume(args: argparse.Namespace, ctx: Context) -> int:
    bootstrap = _bootstrap(args)
    if args.batch < 1:
        raise UsageError("obc-ledger consume: --batch must be at least 1")
    consumer = ctx.app.consumer(
        bootstrap,
        args.topics,
        group=args.group,
        batch=args.batch,
        until_idle=args.until_idle,
        actor=ctx.actor,
        session_timeout_ms=args.session_timeout_ms,
        create_topics=args.create_topics,
    )
    report = consumer.run()

    def text() -> str:
        lines = [
            f"consumed {report.consumed}: accepted {report.accepted}, duplicates {report.duplicates}, "
            f"dead-lettered {report.dead_lettered}"
            + (f" (corrections among accepted: {report.corrections})" if report.corrections else "")
        ]
        for code, n in sorted(report.by_code.items()):
            lines.append(f"  dead-lettered {n:>6}  {code}")
        for (cid, year), n in sorted(report.late.items()):
            lines.append(
                f"  {n} record(s) for closed year {year} of {cid}: run `obc-ledger restate {cid} {year}`"
            )
        if report.dead_lettered:
            lines.append(
                f"  dead letters are in {', '.join(t + '.dlq' for t in consumer.topics)} and "
                f"`obc-ledger rejected list`"
            )
        return "\n".join(lines)

    emit(args, report.to_dict(), text)
    return 0


def cmd_produce(args: argparse.Namespace, ctx: Context) -> int:
    bootstrap = _bootstrap(args)
    if args.file == "-":
        buffered = sys.stdin.readlines()

        def open_lines() -> Any:
            return iter(buffered)
    else:
        path = Path(args.file)
        if not path.is_file():
            raise LedgerError(f"cannot read {args.file}: no such file", code="file_not_found")

        def open_lines() -> Any:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                yield from handle

    def show_refused(refused: list[Any]) -> None:
        if refused and not args.json:
            print(f"refused {len(refused)} line(s), not sent:")
            for r in refused:
                print(f"  line {r.line}: {r.refusal}")
            sys.stdout.flush()

    report = ctx.app.produce(
        bootstrap,
        args.topic,
        open_lines,
        check_only=args.check,
        on_refused=show_refused,
        create_topic=args.create_topics,
        signer=load_signer(args.record_sign_key) if args.record_sign_key else None,
    )
    emit(
        args,
        report.to_dict(),
        lambda: (
            f"checked {report.lines} line(s): {report.lines - len(report.refused)} valid, {len(report.refused)} refused; "
            f"nothing sent (--check)"
            if args.check
            else f"sent {report.sent} record(s) to {report.topic}"
            + (f"; refused {len(report.refused)}" if report.refused else "")
        ),
    )
    return 0


def cmd_publish_decisions(args: argparse.Namespace, ctx: Context) -> int:
    signer = None
    if args.decision_sign_key:
        signer = load_signer(args.decision_sign_key)
    report = ctx.app.publish_decisions(_bootstrap(args), args.topic, args.until_idle, signer=signer)
    emit(
        args,
        report.to_dict(),
        lambda: (
            f"published {report.published} decision(s) to {report.topic}"
            + (
                f" ({report.already_published} already there from an interrupted run, not sent again)"
                if report.already_published
                else ""
            )
        ),
    )
    return 0
