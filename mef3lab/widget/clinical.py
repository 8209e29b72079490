"""The clinical review a `Scroller` owns besides its view state: events, and refusals reported.

`ClinicalReview` keeps the events a reviewer marks and reports every refusal back through
one callback, so the widget shows the same text the Python call raises (`guard`). The
montage and filters are part of the view state (state.py). `MENUS` are the toolbar's
montage and filter choices, sent to the front end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import pandas as pd

from ..errors import Mef3LabError
from ..signal.filters import HFO_BANDS, hfo_bands
from . import events as ev
from .montage import CHAINS, SHAFT_MONTAGES

__all__ = ["MENUS", "ClinicalReview", "menus_for"]

T = TypeVar("T")

#: Display-filter cut-offs the toolbar offers, in Hz (any other value can be set from Python).
HIGHPASS_HZ = (0.1, 0.3, 0.5, 1.0, 2.0, 5.0, 80.0, 250.0)  # 80, 250: the HFO bands' edges
LOWPASS_HZ = (15.0, 30.0, 35.0, 50.0, 70.0, 100.0, 250.0, 500.0)
NOTCH_HZ = (50.0, 60.0)


def _menu(trait: str, title: str, off: str, options: list[tuple[str, object]]) -> dict:
    return {
        "trait": trait,
        "title": title,
        "options": [{"label": label, "value": value} for label, value in [(off, None), *options]],
    }


#: The toolbar's menus: the trait each one sets, its title, its options (label, value). The
#: montage menu shows the option named by `montage_label` ("pairs" matches none); a filter
#: menu the option of its trait's (first) value.
MENUS: list[dict] = [
    {
        **_menu(
            "montage",
            "montage",
            "as recorded",
            [(m, m) for m in ("average", *CHAINS, *SHAFT_MONTAGES)],
        ),
        "label_trait": "montage_label",
    },
    _menu("highpass", "high-pass (Hz)", "HP off", [(f"HP {f:g}", f) for f in HIGHPASS_HZ]),
    _menu("lowpass", "low-pass (Hz)", "LP off", [(f"LP {f:g}", f) for f in LOWPASS_HZ]),
    _menu(
        "notch",
        "notch (Hz, with its first harmonic)",
        "notch off",
        [(f"notch {f:g}", f) for f in NOTCH_HZ],
    ),
    _menu(
        "band",
        "HFO view: a zero-phase band-pass",
        "no HFO band",
        [(f"{name} {lo:g}-{hi:g} Hz", name) for name, (lo, hi) in HFO_BANDS.items()],
    ),
]


def menus_for(fs: float) -> list[dict]:
    """`MENUS` for channels whose fastest rate is `fs`: filters and HFO bands below its Nyquist."""
    bands = {None, *hfo_bands(fs)}
    out = []
    for menu in MENUS:
        if menu["trait"] == "band":
            menu = {**menu, "options": [o for o in menu["options"] if o["value"] in bands]}
            if len(menu["options"]) == 1:
                continue  # too slow for any band: no menu
        elif menu["trait"] in ("highpass", "lowpass"):
            below = [o for o in menu["options"] if o["value"] is None or o["value"] < fs / 2]
            menu = {**menu, "options": below}
        out.append(menu)
    return out


class ClinicalReview:
    """The events behind one scroller, and the refusals it reports.

    Parameters
    ----------
    recorded : sequence of str
        The channels the scroller shows as recorded, in its order.
    rates : mapping of str to float
        The sampling rate in Hz of every channel of the recording.
    duration_s : float
        The recording's length in seconds; events must lie inside it.
    report : callable
        Called with the text of every refusal before it is raised (the scroller shows it).
    events_path : Path, optional
        Where `save_events` writes without a path (beside the recording); None when the
        recording is on a server.
    """

    def __init__(
        self,
        recorded: Sequence[str],
        rates: Mapping[str, float],
        duration_s: float,
        report: Callable[[str], None],
        events_path: Path | None = None,
    ) -> None:
        self.recorded = tuple(recorded)
        self.rates = rates
        self.duration_s = duration_s
        self.events_path = events_path
        self._report = report
        self._events = ev.empty()

    def guard(self, action: Callable[[], T]) -> T:
        """The result of `action()`; a ValueError or `Mef3LabError` is reported, then raised.

        Parameters
        ----------
        action : callable
            What to run, without arguments.

        Returns
        -------
        object
            What `action` returns.

        Raises
        ------
        ValueError, Mef3LabError
            What `action` raised, after `report` was given its text.
        """
        try:
            return action()
        except (ValueError, Mef3LabError) as e:
            self._report(str(e))
            raise

    # -- filters ----------------------------------------------------------------------
    def notch_frequencies(self, value: float | str | Sequence[float] | None) -> list[float]:
        """The notch frequencies `value` means.

        Parameters
        ----------
        value : float, str, sequence of float or None
            None: no notch; a number: it and its first harmonic, those below the fastest
            recorded channel's Nyquist frequency (the number alone if neither is); a
            sequence: those frequencies.

        Returns
        -------
        list of float
            The frequencies in Hz.
        """
        if value is None:
            return []
        if isinstance(value, (int, float, str)):
            fs = max(self.rates[c] for c in self.recorded)
            value = [f for f in (float(value), 2.0 * float(value)) if f < fs / 2] or [float(value)]
        return [float(f) for f in value]

    # -- events ------------------------------------------------------------------------
    @property
    def events(self) -> pd.DataFrame:
        """A copy of the events: onset, duration (seconds from the start), trial_type."""
        return self._events.copy()

    @property
    def marks(self) -> list[dict]:
        """The events as the front end draws them: ``[{t, duration, text}]``."""
        return [
            {"t": float(r.onset), "duration": float(r.duration), "text": str(r.trial_type)}
            for r in self._events.itertuples()
        ]

    def mark(self, onset: float, duration: float, text: str) -> None:
        """Add an event.

        Parameters
        ----------
        onset, duration : float
            Seconds from the recording start, and its length in seconds.
        text : str
            What it is (the ``trial_type`` column).

        Raises
        ------
        ValueError
            When it lies outside the recording (reported).
        """
        self._events = self.guard(
            lambda: ev.with_event(self._events, onset, duration, text, self.duration_s)
        )

    def save_events(self, path: str | Path | None) -> Path:
        """Write the events as a BIDS-style events.tsv, at `path` or at `events_path`.

        Parameters
        ----------
        path : str or Path, optional
            The file; None: `events_path`.

        Returns
        -------
        Path
            The file written.

        Raises
        ------
        ValueError
            When `path` is a MEF session, or None for a recording on a server (reported).
        """

        def save() -> Path:
            if path is not None:
                return ev.save(self._events, path)
            if self.events_path is None:
                raise ValueError(
                    "the recording is on a server: give save_events a path on this machine"
                )
            return ev.save(self._events, self.events_path)

        return self.guard(save)

    def load_events(self, path: str | Path, outside: str = "raise") -> None:
        """Replace the events with those of an events.tsv.

        Parameters
        ----------
        path : str or Path
            The file.
        outside : {"raise", "skip"}, optional
            What events outside the recording do: refuse the file, or are left out with a
            warning (a run's own events.tsv, so that the run still opens).

        Raises
        ------
        ValueError
            When it cannot be read, lacks columns, or has times outside the recording
            (reported).
        """
        self._events = self.guard(lambda: ev.load(path, self.duration_s, outside))
