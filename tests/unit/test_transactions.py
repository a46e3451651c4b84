"""The consumer's own verdicts on transactional records (consumers/transactions.py), from the batches
and markers a Fetch response carries (fakes of kafka-python's record batches)."""

from types import SimpleNamespace

from kafka import TopicPartition

from consumers.transactions import APPLY, SKIP, WAIT, Transactions

TP = TopicPartition("ledger.records", 0)


def data(base, last, pid):
    return SimpleNamespace(base_offset=base, last_offset=last, producer_id=pid, is_control_batch=False)


class Marker(SimpleNamespace):
    def __iter__(self):
        return iter([SimpleNamespace(abort=self.abort)])


def seen(*batches):
    txns = Transactions()
    for batch in batches:
        txns._note(TP, batch)
    return txns


def test_records_outside_transactional_batches_apply_and_others_wait_for_their_producers_marker():
    txns = seen(data(3, 5, pid=7))
    assert [txns.verdict(TP, o) for o in (0, 2, 3, 5, 6)] == [APPLY, APPLY, WAIT, WAIT, APPLY]
    txns._note(TP, Marker(base_offset=9, producer_id=8, is_control_batch=True, abort=True))
    assert txns.verdict(TP, 4) == WAIT, "another producer's marker decides nothing"
    txns._note(TP, Marker(base_offset=10, producer_id=7, is_control_batch=True, abort=False))
    assert txns.verdict(TP, 4) == APPLY


def test_each_record_takes_the_first_marker_of_its_producer_after_it():
    txns = seen(
        data(0, 2, pid=7),
        Marker(base_offset=3, producer_id=7, is_control_batch=True, abort=True),
        data(4, 5, pid=7),
        Marker(base_offset=6, producer_id=7, is_control_batch=True, abort=False),
        data(7, 7, pid=7),
    )
    assert [txns.verdict(TP, o) for o in range(8)] == [SKIP, SKIP, SKIP, APPLY, APPLY, APPLY, APPLY, WAIT]
    assert txns.verdict(TopicPartition("ledger.records", 1), 1) == APPLY, "per partition"


def test_what_no_later_record_needs_is_forgotten_once_saved():
    txns = seen(
        data(0, 2, pid=7),
        Marker(base_offset=3, producer_id=7, is_control_batch=True, abort=True),
        data(4, 5, pid=7),
    )
    txns.prune(TP, 3)
    part = txns._parts[TP]
    assert part.bases == [4] and part.markers == {}
    assert txns.verdict(TP, 4) == WAIT
    txns.forget(TP)
    assert txns.verdict(TP, 4) == APPLY
