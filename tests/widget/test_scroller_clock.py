"""Times as a reviewer types and reads them (the recording starts 2024-01-15 08:00:00 UTC)."""

from __future__ import annotations

import pytest

from mef3lab.widget.clock import clock_label, parse_time

START = 1705305600_000000  # 2024-01-15 08:00:00 UTC
DAY = 86400.0


def test_labels_are_clock_time_with_its_offset_and_seconds():
    assert clock_label(START, 0) == "2024-01-15 08:00:00.000 +00:00 (+0.000 s)"
    assert clock_label(START, 3723.25) == "2024-01-15 09:02:03.250 +00:00 (+3723.250 s)"
    assert (
        clock_label(START, 10, offset_s=11 * 3600) == "2024-01-15 19:00:10.000 +11:00 (+10.000 s)"
    )


def test_deidentified_labels_are_relative():
    assert clock_label(32_467_000_000, 10) == "1970-01-01 09:01:17.000 +00:00 (+10.000 s)"
    assert (
        clock_label(32_467_000_000, 10, relative=True)
        == "+09:01:17.000 (de-identified) (+10.000 s)"
    )
    assert parse_time("09:02:07", 32_467_000_000, 600.0, relative=True) == pytest.approx(60.0)
    with pytest.raises(ValueError, match="de-identified, so it has no dates"):
        parse_time("1970-01-01T09:02:07", 32_467_000_000, 600.0, relative=True)


@pytest.mark.parametrize(
    "text, seconds",
    [("19:30", 1800.0), ("2024-01-15T20:00:00", 3600.0), ("2024-01-15 09:00:00+00:00", 3600.0)],
)
def test_a_jump_reads_clock_times_in_the_recordings_local_time(text, seconds):
    assert parse_time(text, START, 2 * DAY, offset_s=11 * 3600) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("3600", 3600.0),
        (" 12.5 ", 12.5),
        ("08:30", 1800.0),
        ("08:00:10.5", 10.5),
        ("07:59:00", DAY - 60.0),  # before the start: the next day
        ("2024-01-15T09:00:00", 3600.0),
        ("2024-01-15 10:00:00+01:00", 3600.0),
    ],
)
def test_what_a_jump_accepts(text, seconds):
    assert parse_time(text, START, 2 * DAY) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text, message",
    [
        ("tomorrow", "neither seconds"),
        ("25:00", "not a clock time"),
        ("-1", "outside the recording"),
        ("nan", "outside the recording"),
        ("09:00", "outside the recording"),
    ],
)
def test_what_a_jump_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        parse_time(text, START, 600.0)
