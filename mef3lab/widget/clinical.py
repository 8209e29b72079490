"""The clinical review state a `Scroller` owns: montage, display-filter checks and events.

`ClinicalReview` checks what the reviewer sets before it takes effect and turns it into
the `Review` that travels with every page request. The scroller keeps the traitlets (the
front end syncs with them) and calls this object; the object reports a refusal back
through one callback, so the widget shows the same text the Python call raises.
`MENUS` are the toolbar's montage and filter choices, sent to the front end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import pandas as pd

from ..errors import Mef3LabError
from ..signal.filters import DisplayFilter
from . import events as ev
from .montage import CHAINS, Derivation, MontageSpec, resolve
from .review import Review

__all__ = ["MENUS", "ClinicalReview"]

T = TypeVar("T")

#: Display-filter cut-offs the toolbar offers, in Hz (any other value can be set from Python).
HIGHPASS_HZ = (0.1, 0.3, 0.5, 1.0, 2.0, 5.0)
LOWPASS_HZ = (15.0, 30.0, 35.0, 50.0, 70.0, 100.0)
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
        **_menu("montage", "montage", "as recorded", [(m, m) for m in ("average", *CHAINS)]),
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
]


class ClinicalReview:
    """The montage, filter checks and events behind one scroller.

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

    Attributes
    ----------
    derivations : tuple of Derivation
        Every row the montage on screen can show (as recorded until a montage is chosen).
    notes : list of str
        What the montage on screen skipped, for the reviewer.
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
        self.derivations: tuple[Derivation, ...] = resolve(None, self.recorded)[0]
        self.notes: list[str] = []
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

    # -- montage and filters -----------------------------------------------------------
    def choose_montage(self, spec: MontageSpec) -> None:
        """Resolve `spec` into `derivations` and `notes`; if refused, both stay.

        Parameters
        ----------
        spec : None, str or sequence of str
            As `montage.resolve` takes it.

        Raises
        ------
        ValueError, UnknownChannelError
            When the montage is unknown or names channels the recording lacks (reported).
        """
        self.derivations, self.notes = self.guard(lambda: resolve(spec, self.recorded, self.rates))

    def check_filter(self, f: DisplayFilter, page_s: float) -> None:
        """Refuse `f` if it cannot run, on pages of `page_s`, at a rate the montage uses.

        Parameters
        ----------
        f : DisplayFilter
            The filter to check.
        page_s : float
            The page length in seconds (a high-pass needs a pad of a few page lengths at most).

        Raises
        ------
        ValueError
            Saying what would work instead (reported).
        """
        rates = sorted({self.rates[c] for d in self.derivations for c in d.inputs})

        def check() -> None:
            for fs in rates:
                f.check(fs, page_s)

        self.guard(check)

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

    def review(self, montage: MontageSpec, f: DisplayFilter) -> Review | None:
        """What page requests carry: the derivations and `f`, or None when both are plain.

        Parameters
        ----------
        montage : None, str or sequence of str
            The montage on screen (None: as recorded).
        f : DisplayFilter
            The display filter on screen.

        Returns
        -------
        Review or None
            None when the channels are shown as recorded and unfiltered.
        """
        return None if montage is None and not f.active else Review(self.derivations, f)

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

    def load_events(self, path: str | Path) -> None:
        """Replace the events with those of an events.tsv.

        Parameters
        ----------
        path : str or Path
            The file.

        Raises
        ------
        ValueError
            When it cannot be read, lacks columns, or has times outside the recording
            (reported).
        """
        self._events = self.guard(lambda: ev.load(path, self.duration_s))
