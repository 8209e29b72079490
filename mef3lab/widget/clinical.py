"""The clinical review state of the scroller: montage, display filters, bad channels and events.

A mixin of `Scroller` (it uses the host's `_recorded` channel names, `_rates`, `_rec`,
`duration`, `page_seconds`, the channel traits, `message`, `_ready` and `_request`):
what the reviewer sets, checked before it takes effect, and turned into the `Review`
that travels with every page request. Bad settings are refused with a message shown in
the widget and the same text raised from the Python call; the view on screen stays.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import traitlets as t

from ..errors import Mef3LabError
from ..signal.filters import DisplayFilter
from . import events as ev
from .montage import Derivation, MontageSpec, resolve
from .review import Review

__all__ = ["ClinicalReview"]


class ClinicalReview(t.HasTraits):
    """Montage, filters, bad channels and events of a scroller (scriptable; the front end sets the same)."""

    montage = t.Any(
        None, help="None (as recorded), 'average', 'double banana', 'transverse' or ['A-B', ...]"
    )
    montage_label = t.Unicode("as recorded", help="the montage on screen, as text").tag(sync=True)
    highpass = t.Float(
        None, allow_none=True, help="display high-pass cut-off in Hz (None: off)"
    ).tag(sync=True)
    lowpass = t.Float(None, allow_none=True, help="display low-pass cut-off in Hz (None: off)").tag(
        sync=True
    )
    notch = t.Any(
        [], help="notch frequencies in Hz: a list, or a number (it and its first harmonic)"
    ).tag(sync=True)
    note = t.Unicode("", help="what the montage skipped, for the reviewer").tag(sync=True)
    bad_channels = t.List(t.Unicode(), help="rows marked bad (drawn greyed)").tag(sync=True)
    marks = t.List(t.Dict(), help="[{t, duration, text}] the events marked, for drawing").tag(
        sync=True
    )

    @property
    def events(self) -> pd.DataFrame:
        """The events marked or loaded: onset and duration (seconds from the start), trial_type (text)."""
        return self._events.copy()

    def mark(self, onset: float, duration: float = 0.0, text: str = "event") -> None:
        """Mark an event (what the `m` key does at the cursor)."""
        self._events = self._guard(
            lambda: ev.with_event(self._events, onset, duration, text, self.duration)
        )
        self._sync_marks()

    def save_events(self, path: str | Path | None = None) -> Path:
        """Write the events as BIDS-style events.tsv: at `path`, or next to the recording (never into it)."""

        def save() -> Path:
            if path is not None:
                return ev.save(self._events, path)
            if self._rec.mef3.spec.remote:
                raise ValueError(
                    "the recording is on a server: give save_events a path on this machine"
                )
            return ev.save(self._events, ev.events_path(self._rec.mef3.spec.path))

        return self._guard(save)

    def load_events(self, path: str | Path) -> pd.DataFrame:
        """Replace the events with those of an events.tsv (checked: columns, numbers, times inside)."""
        self._events = self._guard(lambda: ev.load(path, self.duration))
        self._sync_marks()
        return self.events

    def _guard(self, action):
        """`action()`, or its ValueError shown in the widget and raised again with the same text."""
        try:
            return action()
        except (ValueError, Mef3LabError) as e:
            self.message = str(e)
            raise

    def _sync_marks(self) -> None:
        self.marks = [
            {"t": float(r.onset), "duration": float(r.duration), "text": str(r.trial_type)}
            for r in self._events.itertuples()
        ]

    @t.validate("montage")
    def _valid_montage(self, proposal: dict) -> MontageSpec:
        spec = proposal["value"]
        derivations, notes = self._guard(lambda: resolve(spec, self._recorded, self._rates))
        self._derivations = derivations
        self._notes = notes
        return spec

    @t.observe("montage")
    def _montage_changed(self, change: dict) -> None:
        names = [d.name for d in self._derivations]
        spec = change["new"]
        ready, self._ready = (
            self._ready,
            False,
        )  # one request for the whole switch, not one per trait
        with self.hold_sync():
            self.note = "; ".join(self._notes)
            self.montage_label = (
                "as recorded" if spec is None else spec if isinstance(spec, str) else "pairs"
            )
            self._set_review()
            self.all_channels = names
            self.first_row = 0
            self.rows = min(max(self.rows, 1), len(names))
            self.channels = names
        self._ready = ready
        if ready:
            self._request()

    @t.validate("highpass", "lowpass")
    def _valid_cutoff(self, proposal: dict) -> float | None:
        value = proposal["value"]
        name = proposal["trait"].name
        if value is not None and self._ready:
            self._guard(
                lambda: self._check_filter(
                    replace(self._filter(), **{name: float(value)}), self.page_seconds
                )
            )
        return value

    @t.validate("notch")
    def _valid_notch(self, proposal: dict) -> list[float]:
        value = proposal["value"]
        if value is None:
            return []
        if isinstance(value, (int, float, str)):
            fs = max(self._rates[c] for c in self._recorded)
            value = [f for f in (float(value), 2.0 * float(value)) if f < fs / 2] or [float(value)]
        value = [float(f) for f in value]
        if self._ready:
            self._guard(
                lambda: self._check_filter(
                    replace(self._filter(), notch=tuple(value)), self.page_seconds
                )
            )
        return value

    @t.observe("highpass", "lowpass", "notch")
    def _filter_changed(self, change: dict) -> None:
        self._set_review()
        if self._ready:
            self._request()

    def _filter(self) -> DisplayFilter:
        return DisplayFilter(self.highpass, self.lowpass, tuple(self.notch or ()))

    def _check_filter(self, f: DisplayFilter, page_s: float) -> None:
        for fs in sorted({self._rates[c] for d in self._all_derivations() for c in d.inputs}):
            f.check(fs, page_s)

    def _all_derivations(self) -> tuple[Derivation, ...]:
        return getattr(self, "_derivations", None) or resolve(None, self._recorded)[0]

    def _set_review(self) -> None:
        f = self._filter()
        plain = self.montage is None and not f.active
        self._review = None if plain else Review(self._all_derivations(), f)
