"""The one-line warning for history rows HA sent that the archive cannot keep."""

from __future__ import annotations

from collections.abc import Mapping

from ha_pipeline.timeseries.events import MAX_STATE_LENGTH

#: What each reason of ``history_to_events`` means to a reader of the run log.
REJECT_MEANINGS = {
    "malformed_row": "not a state row",
    "missing_lu": "no last_updated time",
    "invalid_lu": "an unreadable last_updated time",
    "outside_window": "stamped outside the hour asked for",
    "missing_state": "no state",
    "non_string_state": "a state that is not text",
    "state_too_long": f"a state over {MAX_STATE_LENGTH} characters, which HA itself never records",
    "duplicate_time": "a second row of one entity at the same microsecond; HA's later row is kept",
}


def rejected_rows_sentence(rejects: Mapping[str, int]) -> str | None:
    """One sentence naming each reason and its count, most frequent first; None when nothing was rejected."""
    counted = sorted(((n, reason) for reason, n in rejects.items() if n), key=lambda item: (-item[0], item[1]))
    if not counted:
        return None
    parts = ", ".join(f"{n} {reason} ({REJECT_MEANINGS.get(reason, 'unknown reason')})" for n, reason in counted)
    total = sum(n for n, _ in counted)
    return (
        f"Skipped {total} history row(s) Home Assistant sent that cannot be archived: {parts}. "
        "The rest of the hour was stored; `rejects_by_reason` in the materialization has the counts."
    )
