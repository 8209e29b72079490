"""The scroller's view state as one value, and the one function that changes it.

`ViewState` holds the montage (with every row it can show), the rows shown, the display
filter, the page and the gain; the rows on screen, their labels and the page request all
derive from it, so no part can disagree with another. `change` checks a whole proposed
state before it returns it: a refused change raises and leaves the caller's state as it was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import UnknownChannelError
from ..signal.filters import DisplayFilter
from .montage import Derivation, MontageSpec, _some, resolve
from .pages import View
from .review import Review

__all__ = ["Recorded", "ViewState", "change", "initial"]


@dataclass(frozen=True)
class Recorded:
    """What a state is checked against: the channels offered as recorded, rates, length.

    Parameters
    ----------
    channels : tuple of str
        The channels offered, in screen order as recorded.
    rates : mapping of str to float
        Every channel's sampling rate in Hz.
    duration_s : float
        The recording's length in seconds.
    shaft_of : mapping of str to str, optional
        The shaft (electrode group) of channels whose shaft is known, for the shaft
        montages; the others are grouped by name.
    """

    channels: tuple[str, ...]
    rates: Mapping[str, float] = field(hash=False, compare=False)
    duration_s: float
    shaft_of: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class ViewState:
    """What the scroller shows, as one immutable value (see `change`).

    Attributes
    ----------
    montage : None, str or tuple of str
        As the reviewer chose it: None (as recorded), a montage's name, or pairs.
    derivations : tuple of Derivation
        Every row the montage can show (the channels themselves when as recorded).
    notes : tuple of str
        What the montage skipped.
    channels : tuple of str
        The rows shown, in screen order (names of `derivations`).
    picked : tuple of str
        The channels chosen as recorded, to which "as recorded" returns.
    filter : DisplayFilter
        The display filter.
    start, page_seconds : float
        The page, in seconds from the recording start.
    first_row, rows : int
        The index in `channels` of the top row on screen, and how many rows fit on screen
        (fewer are shown when there are fewer).
    gain : float
        µV per division.
    """

    montage: MontageSpec
    derivations: tuple[Derivation, ...]
    notes: tuple[str, ...]
    channels: tuple[str, ...]
    picked: tuple[str, ...]
    filter: DisplayFilter
    start: float
    page_seconds: float
    first_row: int
    rows: int
    gain: float

    @property
    def review(self) -> Review | None:
        """What page requests carry: None when shown as recorded and unfiltered."""
        if self.montage is None and not self.filter.active:
            return None
        return Review(self.derivations, self.filter)

    @property
    def shown(self) -> tuple[str, ...]:
        """The rows on screen now, top to bottom."""
        return self.channels[self.first_row : self.first_row + self.rows]

    @property
    def montage_label(self) -> str:
        """The montage as the toolbar names it."""
        if self.montage is None:
            return "as recorded"
        return self.montage if isinstance(self.montage, str) else "pairs"

    def view(self) -> View:
        """The page request of this state."""
        return View(
            round(self.start * 1e6), round(self.page_seconds * 1e6), self.shown, self.review
        )

    def summary(self) -> dict[str, Any]:
        """What a reply says about the state it answers (for the front end and tests)."""
        return {
            "montage": self.montage_label,
            "channels": list(self.shown),
            "start": self.start,
            "page_seconds": self.page_seconds,
            "filter": [self.filter.highpass, self.filter.lowpass, list(self.filter.notch)],
        }


def initial(recorded: Recorded, channels: Sequence[str] | None, **changes: Any) -> ViewState:
    """The first state: `channels` (default: all offered) as recorded, then `changes`.

    Parameters
    ----------
    recorded : Recorded
        What the state is checked against.
    channels : sequence of str, optional
        The channels shown as recorded.
    **changes
        Fields to set, as `change` takes them.

    Returns
    -------
    ViewState
        The state, checked.

    Raises
    ------
    ValueError, mef3lab.errors.Mef3LabError
        As `change`.
    """
    derivations, _ = resolve(None, recorded.channels)
    base = ViewState(
        montage=None,
        derivations=derivations,
        notes=(),
        channels=recorded.channels,
        picked=recorded.channels,
        filter=DisplayFilter(),
        start=0.0,
        page_seconds=10.0,
        first_row=0,
        rows=20,
        gain=50.0,
    )
    if channels is not None:
        changes = {"channels": channels, **changes}
    return change(base, recorded, **changes)


def change(state: ViewState, recorded: Recorded, **changes: Any) -> ViewState:
    """`state` with `changes`, every consequence applied, the whole of it checked.

    A new montage shows all its rows (as recorded: the channels picked last); new
    channels keep the montage; rows and the top row stay within the channels; the start
    stays within the recording; a filter must suit every rate the rows are read at and
    the page length.

    Parameters
    ----------
    state : ViewState
        The state now.
    recorded : Recorded
        What the state is checked against.
    **changes
        Any of ``montage``, ``channels``, ``highpass``, ``lowpass``, ``notch`` (frequencies
        in Hz), ``start``, ``page_seconds``, ``first_row``, ``rows``, ``gain``.

    Returns
    -------
    ViewState
        The new state (`state` itself when nothing changes).

    Raises
    ------
    ValueError
        Saying why, for a value that is not a number, a montage or filter that cannot be,
        or a channel not among the rows.
    mef3lab.errors.UnknownChannelError
        For a montage naming channels the recording lacks.
    TypeError
        For a field `ViewState` does not have.
    """
    unknown = set(changes) - {
        "montage",
        "channels",
        "highpass",
        "lowpass",
        "notch",
        "start",
        "page_seconds",
        "first_row",
        "rows",
        "gain",
    }
    if unknown:
        raise TypeError(f"not a field of the scroller's state: {', '.join(sorted(unknown))}")
    new = state
    if "montage" in changes:
        new = _with_montage(new, recorded, changes["montage"])
    if {"highpass", "lowpass", "notch"} & set(changes):
        f = new.filter
        new = replace(
            new,
            filter=DisplayFilter(
                _cutoff(changes.get("highpass", f.highpass), "high-pass"),
                _cutoff(changes.get("lowpass", f.lowpass), "low-pass"),
                tuple(_cutoff(n, "notch") for n in changes.get("notch", f.notch)),
            ),
        )
    if "channels" in changes:
        new = _with_channels(new, changes["channels"])
    if "page_seconds" in changes:
        new = replace(
            new, page_seconds=_positive(changes["page_seconds"], "page_seconds", "seconds")
        )
    if "gain" in changes:
        new = replace(new, gain=_positive(changes["gain"], "gain", "µV per division"))
    start = changes.get("start", new.start)
    if not _finite(start):
        raise ValueError(f"start must be a number of seconds, not {start!r}")
    rows = int(changes.get("rows", new.rows))
    if rows < 1:
        raise ValueError(f"rows must be at least 1, not {rows}")
    first = int(changes.get("first_row", new.first_row))
    new = replace(
        new,
        start=min(max(float(start), 0.0), max(0.0, recorded.duration_s - new.page_seconds)),
        rows=rows,
        first_row=min(max(first, 0), len(new.channels) - min(rows, len(new.channels))),
    )
    if (
        new.filter != state.filter
        or new.derivations != state.derivations
        or (new.page_seconds != state.page_seconds)
    ):
        rates = sorted({recorded.rates[c] for d in new.derivations for c in d.inputs})
        for fs in rates:
            new.filter.check(fs, new.page_seconds)
    return new if new != state else state


def _with_montage(state: ViewState, recorded: Recorded, spec: MontageSpec) -> ViewState:
    spec = _normal(spec)
    if spec == state.montage:
        return state
    derivations, notes = resolve(
        spec, recorded.channels, dict(recorded.rates), dict(recorded.shaft_of) or None
    )
    rows = state.picked if spec is None else tuple(d.name for d in derivations)
    return replace(
        state,
        montage=spec,
        derivations=derivations,
        notes=tuple(notes),
        channels=rows,
        first_row=0,
    )


def _with_channels(state: ViewState, names: Sequence[str]) -> ViewState:
    if isinstance(names, str):
        names = [names]
    names = tuple(str(n) for n in names)
    if not names:
        raise ValueError("channels must name at least one channel")
    known = {d.name for d in state.derivations}
    missing = [n for n in names if n not in known]
    if missing and state.montage is None:
        raise UnknownChannelError(
            f"no channel {', '.join(repr(n) for n in missing)} among those offered: "
            f"{_some([d.name for d in state.derivations])}"
        )
    if missing:
        where = f"the {state.montage_label} montage"
        raise ValueError(
            f"{', '.join(missing)} not among the rows of {where}; "
            f"it has {_some([d.name for d in state.derivations])}"
        )
    if len(set(names)) < len(names):
        raise ValueError(f"channels name a row twice: {', '.join(names)}")
    picked = names if state.montage is None else state.picked
    return replace(state, channels=names, picked=picked)


def _normal(spec: MontageSpec) -> MontageSpec:
    """None for every way of saying "as recorded"; a list of pairs as a tuple."""
    if spec is None:
        return None
    if isinstance(spec, str):
        kind = spec.strip().lower()
        return None if kind in ("", "as recorded", "referential") else kind
    return tuple(str(p) for p in spec)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _positive(value: Any, name: str, unit: str) -> float:
    if not (_finite(value) and float(value) > 0):
        raise ValueError(f"{name} must be a positive number of {unit}, not {value!r}")
    return float(value)


def _cutoff(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if not _finite(value):
        raise ValueError(f"a {what} frequency must be a number of Hz, not {value!r}")
    return float(value)
