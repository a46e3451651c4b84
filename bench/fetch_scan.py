"""The cost of the consumer's own transaction scan (consumers/transactions.py) on raw polling.

Sends ``--records`` ~75-byte records with confluent-kafka to a fresh Tansu broker, once from an
idempotent producer and once in transactions of 1,000 records, then polls them all with a
read-committed kafka-python consumer, alternately without and with the scan of every Fetch
response plus a verdict per record (``--rounds`` times each). Prints msg/s; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

from confluent_kafka import Producer
from kafka import KafkaConsumer, TopicPartition

from consumers.transactions import Transactions
from deploy.servers import start_tansu

VALUE = b"\x00\x00\x00\x00\x02" + b"x" * 70


def send(bootstrap: str, topic: str, records: int, transactional: bool) -> None:
    config = {
        "bootstrap.servers": bootstrap,
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "enable.idempotence": True,
    }
    if transactional:
        config["transactional.id"] = topic
    client = Producer(config)
    if transactional:
        client.init_transactions(30)
    for start in range(0, records, 1000):
        if transactional:
            client.begin_transaction()
        for i in range(start, min(records, start + 1000)):
            client.produce(topic, key=b"contract-%d" % (i % 50), value=VALUE)
        client.poll(0)
        if transactional:
            client.commit_transaction(30)
    client.flush(30)


def poll_all(bootstrap: str, topic: str, records: int, scan: bool) -> float:  # float-ok: msg/s, not money
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_poll_records=2000,
    )
    txns = Transactions()
    if scan:
        txns.install(consumer)
    consumer.assign([TopicPartition(topic, p) for p in range(3)])
    got, started = 0, None
    try:
        while got < records:
            for tp, batch in consumer.poll(timeout_ms=500).items():
                started = started or time.monotonic()
                got += len(batch)
                if scan:
                    for r in batch:
                        txns.verdict(tp, r.offset)
                    txns.prune(tp, batch[-1].offset)
    finally:
        consumer.close()
    return got / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fetch_scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    broker = start_tansu()
    try:
        for transactional in (False, True):
            kind = "transactional" if transactional else "idempotent"
            topic = f"bench-scan-{kind}"
            broker.create_topic(topic, partitions=3)
            send(broker.bootstrap, topic, args.records, transactional)
            for _ in range(args.rounds):
                for scan in (False, True):
                    rate = poll_all(broker.bootstrap, topic, args.records, scan)
                    print(
                        f"{kind:13} {'scan + verdicts' if scan else 'plain poll':15} {rate:>10,.0f} msg/s",
                        flush=True,
                    )
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
