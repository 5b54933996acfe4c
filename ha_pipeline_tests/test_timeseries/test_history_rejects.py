"""The warning line for rejected history rows."""

import inspect
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

from ha_pipeline.timeseries import events
from ha_pipeline.timeseries.events import MAX_STATE_LENGTH, history_to_events
from ha_pipeline.timeseries.history_rejects import REJECT_MEANINGS, rejected_rows_sentence


def test_nothing_rejected_says_nothing():
    assert rejected_rows_sentence(Counter()) is None
    assert rejected_rows_sentence({"outside_window": 0}) is None


def test_the_sentence_names_each_reason_with_its_count_from_real_rejects():
    start = datetime(2026, 1, 1, 10, tzinfo=UTC)
    end = start + timedelta(hours=1)
    inside = start.timestamp() + 60
    history = {
        "sensor.a": [
            {"s": "1", "lu": inside},
            {"s": "2", "lu": end.timestamp() + 5},
            {"s": "3", "lu": end.timestamp() + 9},
            {"s": "x" * (MAX_STATE_LENGTH + 1), "lu": inside + 1},
        ]
    }
    _, rejects = history_to_events(history, start, end, {})
    sentence = rejected_rows_sentence(rejects)
    assert sentence == (
        "Skipped 3 history row(s) Home Assistant sent that cannot be archived: "
        f"2 outside_window ({REJECT_MEANINGS['outside_window']}), 1 state_too_long "
        f"({REJECT_MEANINGS['state_too_long']}). The rest of the hour was stored; "
        "`rejects_by_reason` in the materialization has the counts."
    )


def test_every_reason_history_to_events_counts_has_a_meaning():
    source = inspect.getsource(events)
    block = source[source.index("    reasons = [") :]
    reasons = set(re.findall(r'\("([a-z_]+)", ', block[: block.index("\n    ]")]))
    assert "state_too_long" in reasons and reasons <= set(REJECT_MEANINGS)
