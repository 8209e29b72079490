"""How names and units written by real acquisition systems are read (`mef3lab.model`)."""

from __future__ import annotations

import doctest

import pytest

import mef3lab.model
from mef3lab.model import (
    ORDER_ACQUISITION,
    ORDER_NATURAL,
    canonical_units,
    channel_order,
    contact_parts,
    natural_key,
    shafts,
)


@pytest.mark.parametrize(
    ("text", "symbol"),
    [
        ("uV", "µV"),
        ("µV", "µV"),  # micro sign
        ("μV", "µV"),  # Greek mu
        ("microvolts", "µV"),
        (" Micro Volts ", "µV"),
        ("UV", "µV"),
        ("b'uV'", "µV"),  # the bytes repr one writer stores
        ('b"microvolts"', "µV"),
        (b"uV\x00\x00", "µV"),
        ("mV", "mV"),
        ("millivolts", "mV"),
        ("V", "V"),
        ("volts", "V"),
        ("b'V'", "V"),
    ],
)
def test_units_spellings_become_one_symbol(text, symbol):
    assert canonical_units(text) == symbol


@pytest.mark.parametrize(
    ("text", "kept"), [("  counts ", "counts"), ("", ""), (None, ""), ("b'°C'", "°C"), ("%", "%")]
)
def test_unknown_units_come_back_stripped_never_a_wrong_unit(text, kept):
    assert canonical_units(text) == kept


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("LA10", ("LA", 10)),
        ("RB'3", ("RB'", 3)),
        ("Fp1", ("Fp", 1)),
        ("LA 2", ("LA", 2)),
        ("G_12", ("G", 12)),
        ("ECG", ("ECG", None)),
        ("17", ("17", None)),
        ("", ("", None)),
    ],
)
def test_contact_parts(name, parts):
    assert contact_parts(name) == parts


def test_natural_order_puts_contact_10_after_9():
    names = ["LA10", "RB1", "LA2", "la3", "LA1", "LA9", "ECG", "RB12", "RB2"]
    assert sorted(names, key=natural_key) == [
        "ECG",
        "LA1",
        "LA2",
        "la3",
        "LA9",
        "LA10",
        "RB1",
        "RB2",
        "RB12",
    ]


def test_shafts_by_name_in_contact_order_singletons_and_unnumbered_left_out():
    names = ["RB'2", "LA10", "LA2", "ECG", "LA1", "RB'1", "Cz"]
    assert shafts(names) == {"RB'": ("RB'1", "RB'2"), "LA": ("LA1", "LA2", "LA10")}
    assert shafts(["ECG", "Cz", "EMG1"]) == {}


def test_scalp_electrodes_are_no_shaft_unless_a_caller_groups_them():
    scalp = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "T3", "T5", "O1", "O2", "Cz"]
    assert shafts(scalp) == {}
    # a depth shaft named like a scalp row is one as soon as a contact is not a scalp name
    assert shafts(["C1", "C2", "C12"]) == {"C": ("C1", "C2", "C12")}
    assert shafts(["C3", "C4"], groups={"C3": "grid", "C4": "grid"}) == {"grid": ("C3", "C4")}


def test_shafts_take_the_callers_groups_and_fall_back_to_names():
    names = ["A1", "A2", "B1", "B2", "X7", "X8"]
    groups = {"X7": "depth", "X8": "depth", "B1": "A"}
    assert shafts(names, groups) == {
        "A": ("A1", "A2", "B1"),  # by each name's label, then contact number
        "depth": ("X7", "X8"),
    }


def test_channel_order_by_distinct_acquisition_numbers():
    assert channel_order(["C3", "C4", "Fz", "Pz"], [4, 2, 5, 0]) == (
        ("Pz", "C4", "C3", "Fz"),
        ORDER_ACQUISITION,
    )


@pytest.mark.parametrize("numbers", [[1, 1, 1, 1], [3, None, 1, 2], [0, 2, 2, 1]])
def test_channel_order_natural_when_numbers_repeat_or_are_missing(numbers):
    assert channel_order(["LA10", "RB1", "LA2", "LA1"], numbers) == (
        ("LA1", "LA2", "LA10", "RB1"),
        ORDER_NATURAL,
    )


def test_channel_order_lengths_must_match():
    with pytest.raises(ValueError, match="2 names but 1"):
        channel_order(["a", "b"], [1])


def test_docstring_examples_run():
    assert doctest.testmod(mef3lab.model).failed == 0
