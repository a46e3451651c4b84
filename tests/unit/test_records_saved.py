"""A partition whose only applied record is at offset 0 has one record saved, not none.

The fault harness counted `max_tracking_id(...) or -1`, which reads offset 0 as "nothing": a round
whose partition held a single record (a null-key message landing there) looked unfinished, however
many times its consumer ran (the CI flakes of seeds 245110, 935062 and 582405).
"""

from eventsourcing.persistence import Tracking

from consumers.consumer import records_saved, tracking_name
from ledger.bootstrap import bootstrap


def test_offset_zero_counts_as_one_record_saved(tmp_path):
    app = bootstrap(f"sqlite:///{tmp_path / 'ledger.db'}").ledger
    assert records_saved(app, "t", 0) == 0
    app.recorder.insert_events([], tracking=Tracking(tracking_name("t", 0), 0))
    assert records_saved(app, "t", 0) == 1
    app.recorder.insert_events([], tracking=Tracking(tracking_name("t", 1), 41))
    assert records_saved(app, "t", 1) == 42 and records_saved(app, "t", 2) == 0
