"""consume --until-idle whose group never completes a join fails; it does not exit as if idle.

A member SIGKILLed in the middle of a join can hold a Tansu group until the broker expires it;
a consumer that was never assigned anything (not even "no partitions") has read nothing, and
exiting 0 would report a drained topic. The Kafka client is a stand-in that never assigns.
"""

import pytest

import consumers.consumer as consumer_module
from consumers.consumer import LedgerConsumer
from consumers.kafka import StreamError
from ledger.bootstrap import bootstrap


class NeverJoins:
    """A KafkaConsumer whose group join never completes: every poll returns nothing."""

    polls = 0

    def __init__(self, **config):
        self.config = config

    def subscribe(self, topics, listener):
        self.topics, self.listener = topics, listener

    def poll(self, timeout_ms=0, max_records=None):
        NeverJoins.polls += 1
        return {}

    def assignment(self):
        return set()

    def close(self, autocommit=False):
        pass


class Producer:
    def close(self, timeout=None):
        pass


@pytest.fixture
def never_joins(monkeypatch):
    monkeypatch.setattr(consumer_module, "KafkaConsumer", NeverJoins)
    monkeypatch.setattr(consumer_module, "ensure_topic", lambda *a, **k: 1)
    monkeypatch.setattr(consumer_module, "producer", lambda *a, **k: Producer())
    monkeypatch.setattr(consumer_module, "JOIN_GRACE_S", 0.0)
    NeverJoins.polls = 0


def test_a_group_join_that_never_completes_is_an_error_naming_the_group(never_joins, tmp_path):
    app = bootstrap(f"sqlite:///{tmp_path / 'ledger.db'}").ledger
    consumer = LedgerConsumer(
        app, "127.0.0.1:1", topics=["t"], group="g-wedged", until_idle=0.2, session_timeout_ms=100
    )
    with pytest.raises(StreamError) as raised:
        consumer.run()
    assert raised.value.code == "group_join_timeout"
    assert "'g-wedged' completed no join" in str(raised.value) and "nothing was read" in str(raised.value)
    assert NeverJoins.polls > 1  # it waited (two sessions and the grace) before giving up
    assert consumer.report.consumed == 0
