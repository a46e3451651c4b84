"""A group join that lasts does not hide a re-created topic.

Seen on the Tansu broker: after a restart that emptied it, a member that joined and left at the
wrong moment left the consumer in a join that never completed. It then owned nothing, so neither
the check on assignment nor the one on each Fetch ran, and it waited for good while the records
topic had been re-created below the ledger's position. During a join longer than ``JOIN_CHECK_S``
the consumer now reads the ends of the partitions it last owned with a groupless client (the
Kafka client here is a stand-in; the clock is the test's).
"""

from types import SimpleNamespace

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError

import consumers.consumer as consumer_module
from consumers.consumer import JOIN_CHECK_S, LedgerConsumer
from consumers.kafka import StreamError
from ledger.bootstrap import bootstrap

TP = TopicPartition("ledger.records", 0)
OTHER = TopicPartition("ledger.records", 1)


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(consumer_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


@pytest.fixture
def ends(monkeypatch):
    """The partitions' ends the groupless read finds (an exception: the broker cannot be read)."""
    found: dict = {"ends": {TP: 34, OTHER: 5}, "reads": []}

    def high_watermarks(bootstrap, positions, timeout_s):
        found["reads"].append((dict(positions), timeout_s))
        if isinstance(found["ends"], Exception):
            raise found["ends"]
        return {tp: found["ends"][tp] for tp in positions}

    monkeypatch.setattr(consumer_module, "high_watermarks", high_watermarks)
    return found


@pytest.fixture
def consumer(tmp_path):
    app = bootstrap(f"sqlite:///{tmp_path / 'ledger.db'}").ledger
    made = LedgerConsumer(app, "127.0.0.1:1", topics=["ledger.records"])
    made._committed = {TP: 33, OTHER: -1}  # applied up to offset 33; nothing saved from the other
    return made


def test_a_join_that_lasts_stops_the_consumer_when_a_partition_ends_below_the_ledger(consumer, clock, ends):
    consumer._join_begins()
    clock[0] += JOIN_CHECK_S - 1
    consumer._check_while_joining()
    assert ends["reads"] == [], "a join of ordinary length reads nothing"

    ends["ends"] = {TP: 3, OTHER: 0}  # the topic re-created: three records where the ledger applied 34
    clock[0] += 2
    with pytest.raises(StreamError) as raised:
        consumer._check_while_joining()
    assert raised.value.code == "records_behind_ledger"
    assert "ledger.records[0] ends at offset 3 but the ledger applied it up to offset 33" in str(raised.value)
    assert ends["reads"] == [({TP: 33}, consumer_module.JOIN_CHECK_TIMEOUT_S)], (
        "only partitions with a saved position are read, and briefly"
    )


def test_ends_at_or_past_the_ledger_let_the_join_go_on_and_are_read_again_a_check_later(
    consumer, clock, ends
):
    consumer._join_begins()
    clock[0] += JOIN_CHECK_S
    consumer._check_while_joining()
    clock[0] += 1
    consumer._check_while_joining()
    assert len(ends["reads"]) == 1, "at most one read per JOIN_CHECK_S"
    clock[0] += JOIN_CHECK_S
    consumer._check_while_joining()
    assert len(ends["reads"]) == 2


def test_a_broker_that_cannot_be_read_during_the_join_is_tried_again_not_taken_for_an_error(
    consumer, clock, ends
):
    ends["ends"] = StreamError("could not read the end", code="broker_unavailable")
    consumer._join_begins()
    clock[0] += JOIN_CHECK_S
    consumer._check_while_joining()  # no exception: a broker down is waited for, as by the client
    ends["ends"] = KafkaTimeoutError("bootstrap")  # the groupless client cannot even connect
    clock[0] += JOIN_CHECK_S
    consumer._check_while_joining()
    ends["ends"] = {TP: 0, OTHER: 0}
    clock[0] += JOIN_CHECK_S
    with pytest.raises(StreamError) as raised:
        consumer._check_while_joining()
    assert raised.value.code == "records_behind_ledger"
    assert len(ends["reads"]) == 3


def test_a_revocation_inside_a_join_keeps_the_join_s_clock(consumer, clock, ends):
    consumer._join_begins()
    clock[0] += JOIN_CHECK_S / 2
    consumer._join_begins()  # the join is retried (e.g. SyncGroup failed): the same join
    clock[0] += JOIN_CHECK_S / 2
    consumer._check_while_joining()
    assert len(ends["reads"]) == 1


def test_an_assignment_ends_the_join_and_its_clock(consumer, clock, ends):
    consumer._consumer = SimpleNamespace(pause=lambda *tps: None)
    listener = consumer_module._Listener(consumer)
    listener.on_partitions_revoked([TP])
    clock[0] += JOIN_CHECK_S / 2
    listener.on_partitions_assigned([TP])
    clock[0] += JOIN_CHECK_S
    consumer._check_while_joining()
    assert ends["reads"] == [], "no join under way: the assignment's own check reads the ends"

    listener.on_partitions_lost([TP])
    clock[0] += JOIN_CHECK_S / 2 + 1
    consumer._check_while_joining()
    assert ends["reads"] == [], "a new join starts its own clock"
    clock[0] += JOIN_CHECK_S / 2
    consumer._check_while_joining()
    assert len(ends["reads"]) == 1
