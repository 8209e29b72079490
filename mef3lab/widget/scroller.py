"""`Scroller`: page through a recording in a notebook; the widget's state and its request loop.

The model lives in the kernel; what is on screen is one `ViewState` value, mirrored in
traitlets for the front end (``scroller.js``), which draws and forwards keys and clicks.
Every change is checked whole before it is applied, then becomes one request with a new id,
served on a background thread, newest only, so the kernel never blocks (docs/scroller.md
tells the whole path).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import pandas as pd
import traitlets as t
import xarray as xr

from ..errors import Mef3LabError
from ..signal.filters import HFO_BANDS, hfo_band
from ..sources import REGISTRY, SourceSpec
from ..xr.backend import rate_label
from .clinical import MENUS, ClinicalReview, menus_for
from .clock import clock_label, parse_time
from .display import encode
from .loader import LatestLoader
from .montage import MontageSpec
from .overview import overview
from .pages import Page, View
from .readahead import PageCache, Readahead
from .review import read_reviewed
from .run_start import RunStart, derivative_events
from .scale import baselines, gain_for, step_gain
from .state import Recorded, ViewState, change, initial
from .zoom import ZOOM_SAMPLES_PER_COLUMN, EnvelopeStore

__all__ = ["Scroller"]

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
#: Seconds a new scroller waits for its first page before it is returned (and shown), once
#: a front end has reported its width (`_FRONT_WIDTH`).
FIRST_PAGE_WAIT_S = 1.0
#: Seconds the read-ahead after a page waits at most for the front end to say it drew that
#: page, once a front end has reported its width or drawn this scroller: decoding the next
#: page would otherwise take the cores from drawing this one.
READ_AHEAD_HOLD_S = 0.5
#: The traits that mirror the `ViewState`: setting one is a checked change of the state.
STATE_TRAITS = (
    "montage",
    "highpass",
    "lowpass",
    "notch",
    "channels",
    "page_seconds",
    "start",
    "rows",
    "first_row",
    "gain",
)


class Scroller(anywidget.AnyWidget):
    """An EEG page viewer for a recording `mef3lab.open_recording` returns.

    Keys while the widget has focus: ←/→ a page, Shift+←/→ half a page, ↑/↓ gain,
    PgUp/PgDn the channels above/below, Home/End the recording's start/end, ``m`` marks an
    event at the cursor; a click on a channel's label marks it bad. The same state is
    scriptable: set the attributes below, or call the methods.

    Made once a front end has drawn a scroller (so the widget's module is loaded), it reads
    its first page before it returns, so its view is drawn with the page; a page that takes
    longer than `FIRST_PAGE_WAIT_S` follows the widget instead. There, too, the next page is
    read ahead once the front end has drawn this one (or after `READ_AHEAD_HOLD_S`).

    Parameters
    ----------
    rec : xarray.Dataset or xarray.DataArray
        What `mef3lab.open_recording` returned, or one rate group's DataArray, or a
        selection of its channels (those are the channels offered).
    start : float, default 0.0
        The page start in seconds from the recording start.
    page_seconds : float, default 10.0
        The page length in seconds.
    channels : list of str, optional
        The channels shown, in screen order; default: all of `rec`'s.
    gain : float, optional
        µV per division (one division is one row's height); default: chosen from the page
        (and again when the page length, montage, filters or rows change) until one is set:
        98 % of a typical trace's values lie within 2/3 division of its page median,
        the recording's first second (an amplifier settling) left out.
    rows : int, optional
        Rows (channels) on screen at once; default 20, or fewer if fewer are shown.
    montage : None, str or list of str, optional
        None (as recorded), ``"average"``, ``"double banana"``, ``"transverse"``,
        ``"shaft bipolar"``, ``"shaft average"`` (depth and grid electrodes, see
        docs/ieeg.md), or bipolar pairs such as ``["Fp1-F3", "F3-C3"]``.
    highpass, lowpass : float, optional
        Display filter cut-offs in Hz (zero-phase; None: off).
    band : {"ripple", "fast ripple"}, optional
        An HFO view: the band-pass 80-250 Hz or 250-500 Hz (sets `highpass` and `lowpass`),
        for channels sampled fast enough.
    utc : bool, default False
        Show times in UTC instead of the recording's local time (its recorded GMT offset).
    notch : float or list of float, optional
        Notch frequencies in Hz: a number is it and its first harmonic; ``[]``: none.
        Default: a BIDS run's power-line frequency (``attrs["power_line_frequency"]``), else
        none.
    shafts : mapping of str to str, optional
        Channel -> shaft (electrode group) for the shaft montages; default: a BIDS run's
        electrode groups (``electrodes.tsv``); channels without one are grouped by name.
    **kwargs
        Passed to `anywidget.AnyWidget` (e.g. ``layout``).

    Attributes
    ----------
    start, page_seconds : float
        The page start and length in seconds (the start stops at the recording's ends).
    channels : list of str
        The rows shown, in screen order (the montage's rows when one is on screen).
    first_row, rows : int
        The index in `channels` of the top row on screen, and how many rows are on screen.
    gain : float
        µV per division.
    montage, highpass, lowpass, notch, band, utc
        As the parameters; setting one redraws the page.
    row_shafts : dict of str to str
        The shaft of each row of a shaft montage (the widget separates and labels shafts).
    utc_offset_s : int
        The recording's UTC offset in seconds (0: UTC); `deidentified` says its times are
        relative (the session was read without its level-2 password).
    bad_channels : list of str
        Channels or rows marked bad; a BIDS run's bad channels from the start (listed in
        the widget). A row is drawn greyed when it or one of its inputs is bad (`bad_rows`).
    events : pandas.DataFrame
        The events: a BIDS run's events.tsv from the start, and those marked.
    state : ViewState
        All of the above that decides what is on screen, as one value.
    message : str
        What went wrong last, as the widget shows it.
    sent, dropped, drawn : int
        Pages sent to the front end, pages dropped because a newer request came in, and
        pages a front end said it drew.
    reply, overview_bar : dict
        The newest page and the whole recording's bar as the front end gets them (its
        float32 values under ``"data"``, a binary buffer); a view made later draws them.

    Raises
    ------
    ValueError, mef3lab.errors.Mef3LabError
        When a setting is refused (an unknown montage or channel, a filter the rates or
        the page length cannot have); the state stays as it was. The same text is shown
        in the widget, whether the setting comes from Python (which raises) or from the
        toolbar (which does not).

    Examples
    --------
    >>> rec = mef3lab.open_recording("sub-01_ieeg.mefd")
    >>> w = mef3lab.Scroller(rec, page_seconds=20, montage="double banana", highpass=1.0)
    >>> w  # the last line of a cell shows it
    >>> w.go_to("08:30:00")
    >>> w.page_data()  # the rows on screen at full resolution, as a DataArray
    """

    _esm = _HERE / "scroller.js"
    _css = _HERE / "scroller.css"
    start = t.Float(0.0, help="page start, seconds from the recording start").tag(sync=True)
    page_seconds = t.Float(10.0, help="page length in seconds").tag(sync=True)
    channels = t.List(t.Unicode(), help="the channels shown, in screen order").tag(sync=True)
    all_channels = t.List(t.Unicode(), help="the channels there are to choose from").tag(sync=True)
    first_row = t.Int(0, help="index in `channels` of the top row on screen").tag(sync=True)
    rows = t.Int(20, help="rows (channels) on screen at once").tag(sync=True)
    gain = t.Float(50.0, help="µV per division (one division = one row's height)").tag(sync=True)
    width_px = t.Int(1000, help="pixel columns of the trace area (set by the front end)").tag(
        sync=True
    )
    row_px = t.Int(26, help="pixels per row").tag(sync=True)
    view_id = t.Int(0, help="id of the newest page request; replies with older ids are stale").tag(
        sync=True
    )
    # Pages and the bar are state, not messages: a front end that comes later (the first
    # view, while the module loads; a reload) gets the newest with the model.
    reply = t.Dict(
        help="the newest page: id, start, seconds, state, traces, data (float32 bytes)"
    ).tag(sync=True)
    overview_bar = t.Dict(help="the whole recording's bar: n, seconds, data (float32 bytes)").tag(
        sync=True
    )
    page_label = t.Unicode("", help="the page start as text (clock time and seconds)").tag(
        sync=True
    )
    message = t.Unicode("", help="what went wrong, for the reviewer").tag(sync=True)
    duration = t.Float(0.0).tag(sync=True)
    start_uutc = t.Int(0).tag(sync=True)
    units = t.Unicode("µV").tag(sync=True)
    annotations = t.List(
        t.Dict(), help="[{t, text, type, duration}] in seconds from the start"
    ).tag(sync=True)
    # -- clinical review (checked by the `ClinicalReview` the widget owns) ---------------
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
    bad_channels = t.List(t.Unicode(), help="channels or rows marked bad").tag(sync=True)
    bad_rows = t.List(t.Unicode(), help="rows drawn greyed: bad, or with a bad input").tag(
        sync=True
    )
    marks = t.List(t.Dict(), help="[{t, duration, text}] the events marked, for drawing").tag(
        sync=True
    )
    menus = t.List(
        t.Dict(), default_value=MENUS, help="the toolbar's montage and filter choices"
    ).tag(sync=True)
    band = t.Unicode(
        None, allow_none=True, help="HFO view: 'ripple', 'fast ripple' (a band-pass) or None"
    ).tag(sync=True)
    row_shafts = t.Dict(help="{row: shaft} of a shaft montage's rows, to separate shafts").tag(
        sync=True
    )
    utc = t.Bool(False, help="show times in UTC instead of the recording's local time").tag(
        sync=True
    )
    utc_offset_s = t.Int(0, help="the recording's UTC offset in seconds (its clock)").tag(sync=True)
    deidentified = t.Bool(False, help="times are de-identified: shown relative").tag(sync=True)

    def __init__(
        self,
        rec: xr.Dataset | xr.DataArray,
        *,
        start: float = 0.0,
        page_seconds: float = 10.0,
        channels: list[str] | None = None,
        gain: float | None = None,
        rows: int | None = None,
        montage: MontageSpec = None,
        highpass: float | None = None,
        lowpass: float | None = None,
        notch: float | list[float] | None = None,
        band: str | None = None,
        utc: bool = False,
        shafts: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        # Per thread: the loader thread sets the automatic gain while a cell sets other traits.
        self._mirroring = threading.local()
        self._applying = True  # traits set here mirror the state: no checks, no requests
        self._rec = rec
        spec = rec.mef3.spec
        self._spec = spec
        info = REGISTRY.acquire(spec).info
        present = _channels_of(rec, info.names) or list(info.names)
        run = RunStart.of(rec, present, spec.path, shafts)
        self._run = run
        self._rates = {c: g.fs for g in info.rate_groups for c in g.channels}
        self._recorded = Recorded(tuple(present), self._rates, info.duration_s, run.shaft_of)
        self._clinical = ClinicalReview(
            present,
            self._rates,
            info.duration_s,
            report=lambda text: setattr(self, "message", text),
            events_path=run.own_events,
        )
        if run.events_tsv is not None:
            self._clinical.load_events(run.events_tsv, outside="skip")
        if notch is None and run.line_hz is not None:
            notch = run.line_hz
        fastest = max(self._rates[c] for c in present)
        if band is not None:
            highpass, lowpass = self._clinical.guard(lambda: hfo_band(band, fastest))
        # checked before any thread starts: a refused widget leaves nothing running
        self._state = initial(
            self._recorded,
            channels,
            montage=montage,
            highpass=highpass,
            lowpass=lowpass,
            notch=self._clinical.notch_frequencies(notch),
            page_seconds=page_seconds,
            start=start,
            rows=rows or 20,
            gain=gain or 50.0,
        )
        self._pending: tuple[str, ViewState] | None = None  # checked by _check, for _apply
        self._auto_gain = gain is None
        self._auto_key: tuple | None = None  # what the automatic gain was chosen for
        self._lock = threading.RLock()  # the state and the traits that mirror it
        source = _Live(spec)
        self._source = source
        self._overview_width = 0
        # the bar is made apart: the next page a reviewer asks for does not wait for it
        self._overview = ThreadPoolExecutor(1, thread_name_prefix="mef3lab-overview")
        self._overview_sent: Future | None = None
        self._cache = PageCache(lambda view: read_reviewed(source, view))
        self._zoom = EnvelopeStore(source)
        self._readahead = Readahead(source, self._cache, info.end_uutc - info.start_uutc)
        self._loader = LatestLoader(self._serve)
        self.sent = 0  # replies sent to the front end
        self._read_errors = ""  # the message the last page set (its channels' read errors)
        self.dropped = 0  # replies dropped because a newer request came in
        self.drawn = 0  # pages a front end said it drew
        self._drawn_id = 0  # the newest reply a front end drew
        self._ahead_of = 0  # the reply whose read-ahead may be held for it
        notes = rec.mef3.annotations
        super().__init__(
            duration=info.duration_s,
            start_uutc=int(info.start_uutc),
            units=str(rec.attrs.get("units", "µV")).replace("uV", "µV"),
            menus=menus_for(fastest),
            utc=utc,
            utc_offset_s=info.utc_offset_s or 0,
            deidentified=info.deidentified,
            bad_channels=list(run.bads),
            marks=self._clinical.marks,
            annotations=[
                {
                    "t": float(r.time_s),
                    "text": str(r.text),
                    "type": str(r.type),
                    "duration": None if math.isnan(r.duration_s) else float(r.duration_s),
                }
                for r in notes.itertuples()
            ],
            **_traits_of(self._state),
            **{"width_px": _FRONT_WIDTH[0], **kwargs} if _FRONT_WIDTH[0] else kwargs,
        )
        self.bad_rows = _bad_rows(self._state, self.bad_channels)
        self._applying = False
        _OPEN.add(self)
        self.on_msg(self._on_msg)
        self._request()
        if _FRONT_WIDTH[0]:  # a front end has drawn one: this one's view is drawn at once
            try:  # and draws the page as it renders; a slower page follows it
                self._loader.wait(FIRST_PAGE_WAIT_S)
            except BaseException:  # interrupted: nothing of it is left running
                self.close()
                raise

    # -- the scriptable API ---------------------------------------------------------
    @property
    def page(self) -> tuple[float, float]:
        """(start, stop) of the page in seconds from the recording start."""
        return (self.start, self.start + self.page_seconds)

    def go_to(self, when: float | str) -> None:
        """Put the page start at `when`.

        Parameters
        ----------
        when : float or str
            Seconds from the recording start, or a clock time (``"08:30:00"``, in the
            clock shown, the first at or after the start) or an ISO date-time.

        Raises
        ------
        ValueError
            When `when` is none of these or lies outside the recording.
        """
        self.start = parse_time(str(when), self.start_uutc, self.duration, *self._clock())

    def next_page(self, pages: float = 1.0) -> None:
        """Move the page `pages` page lengths on (it stops at the recording's end).

        Parameters
        ----------
        pages : float, default 1.0
            How many page lengths; 0.5 is half a page.
        """
        self.start = self.start + pages * self.page_seconds

    def prev_page(self, pages: float = 1.0) -> None:
        """Move the page `pages` page lengths back (it stops at the recording's start).

        Parameters
        ----------
        pages : float, default 1.0
            How many page lengths; 0.5 is half a page.
        """
        self.start = self.start - pages * self.page_seconds

    def page_data(self) -> xr.DataArray | xr.Dataset:
        """The rows on screen at full resolution, before display decimation.

        The montage's rows (named like ``"Fp1-F3"``) with the display filters applied, or
        the channels as recorded; µV, NaN in gaps.

        Returns
        -------
        xarray.DataArray or xarray.Dataset
            A DataArray (channel, time), time in seconds from the recording start; when the
            rows on screen have different rates, a Dataset of one ``signal_<fs>Hz`` variable
            per rate (as `open_recording` names them).
        """
        page = self._cache.get(self._state.view())
        arrays = {b.fs: _block_array(b, self._rec.attrs, self.units) for b in page.blocks}
        if len(arrays) == 1:
            return next(iter(arrays.values()))
        return xr.Dataset(
            {
                f"signal_{rate_label(fs)}": a.rename(
                    {"channel": f"channel_{rate_label(fs)}", "time": f"time_{rate_label(fs)}"}
                )
                for fs, a in arrays.items()
            }
        )

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until the newest page, and the overview bar asked with it, have been served.

        For scripts and tests.

        Parameters
        ----------
        timeout : float, default 30.0
            Seconds to wait at most.

        Returns
        -------
        bool
            False if it timed out.
        """
        deadline = time.monotonic() + timeout
        if not self._loader.wait(timeout):
            return False
        sent = self._overview_sent
        if sent is None:
            return True
        try:
            sent.result(max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            return False
        except CancelledError:  # closed meanwhile
            pass
        return True

    def close(self) -> None:
        """Stop the loader and read-ahead threads and close the widget; the recording stays open."""
        if hasattr(self, "_loader"):  # a widget refused while it was made has no threads
            self._loader.close()
            self._overview.shutdown(wait=False, cancel_futures=True)
            self._cache.close()
            self._zoom.close()
        _OPEN.discard(self)
        super().close()

    def press(self, key: str, shift: bool = False) -> bool:
        """Do what `key` does in the widget.

        Parameters
        ----------
        key : str
            A DOM ``KeyboardEvent.key``: ``"ArrowRight"``, ``"PageDown"``, ``"Home"``...
        shift : bool, default False
            Whether Shift was held (arrows then move half a page).

        Returns
        -------
        bool
            Whether the key does anything.
        """
        step = 0.5 if shift else 1.0
        if key == "ArrowRight":
            self.next_page(step)
        elif key == "ArrowLeft":
            self.prev_page(step)
        elif key in ("ArrowUp", "ArrowDown"):
            self.gain = step_gain(self.gain, finer=key == "ArrowUp")
        elif key in ("PageDown", "PageUp"):
            self.first_row = self.first_row + (self.rows if key == "PageDown" else -self.rows)
        elif key == "Home":
            self.start = 0.0
        elif key == "End":
            self.start = self.duration
        else:
            return False
        return True

    # -- events ---------------------------------------------------------------------------
    @property
    def events(self) -> pd.DataFrame:
        """The events marked or loaded: onset, duration (seconds from the start), trial_type."""
        return self._clinical.events

    def mark(self, onset: float, duration: float = 0.0, text: str = "event") -> None:
        """Mark an event (what the ``m`` key does at the cursor).

        Parameters
        ----------
        onset : float
            Seconds from the recording start.
        duration : float, default 0.0
            Its length in seconds.
        text : str, default "event"
            What it is (the ``trial_type`` column).

        Raises
        ------
        ValueError
            When it lies outside the recording.
        """
        self._clinical.mark(onset, duration, text)
        self.marks = self._clinical.marks

    def save_events(self, path: str | Path | None = None, *, derivative: str | None = None) -> Path:
        """Write the events as a BIDS events.tsv, keeping every event a file there has.

        Parameters
        ----------
        path : str or Path, optional
            The file; default: beside the recording (``sub-01_ieeg.mefd`` gives
            ``sub-01_events.tsv``, a BIDS run's own events.tsv), never into it.
        derivative : str, optional
            For a BIDS run: write into the derivative dataset
            ``derivatives/<derivative>/`` of its dataset instead (same relative path; its
            ``dataset_description.json`` made if missing), leaving the raw dataset as it is.

        Returns
        -------
        Path
            The file written.

        Raises
        ------
        ValueError
            When `path` is a MEF session, is not given for a recording on a server, when
            a file already there cannot be read (it is kept), or when `derivative` is
            given for a recording that is no BIDS run or together with `path`.
        """
        if derivative is not None:
            path = self._clinical.guard(lambda: self._derivative_path(path, derivative))
        return self._clinical.save_events(path)

    def _derivative_path(self, path: str | Path | None, derivative: str) -> Path:
        run = self._run
        if path is not None:
            raise ValueError("give save_events a path or a derivative, not both")
        if run.bids_root is None or run.own_events is None:
            raise ValueError(
                "a derivative is written for a run opened with mef3lab.open_bids "
                "(whose events.tsv is known)"
            )
        return derivative_events(run.own_events, run.bids_root, derivative)

    def load_events(self, path: str | Path) -> pd.DataFrame:
        """Replace the events with those of an events.tsv.

        Parameters
        ----------
        path : str or Path
            The file: onset and duration columns in seconds, trial_type the text.

        Returns
        -------
        pandas.DataFrame
            The events now (as `events`).

        Raises
        ------
        ValueError
            When it cannot be read, lacks a column, or has times outside the recording.
        """
        self._clinical.load_events(path)
        self.marks = self._clinical.marks
        return self.events

    # -- the state ------------------------------------------------------------------------
    @property
    def state(self) -> ViewState:
        """What is on screen, as one value (the traits mirror it)."""
        return self._state

    @t.validate(*STATE_TRAITS)
    def _check(self, proposal: dict) -> Any:
        """A setting is a change of the whole state, checked before anything is applied."""
        name, value = proposal["trait"].name, proposal["value"]
        if self._applying:
            return value
        if name == "notch":
            value = self._clinical.notch_frequencies(value)
        elif name == "gain":
            self._auto_gain = False  # a gain set by hand stays
        new = self._clinical.guard(lambda: change(self._state, self._recorded, **{name: value}))
        self._pending = (name, new)
        return _traits_of(new)[name]

    @t.observe(*STATE_TRAITS)
    def _state_changed(self, event: dict) -> None:
        if self._applying:
            return
        name, new = self._pending or ("", None)
        self._pending = None
        if name != event["name"]:  # traitlets takes None without asking a validator
            value = event["new"]
            if event["name"] == "notch":
                value = self._clinical.notch_frequencies(value)
            try:
                new = self._clinical.guard(
                    lambda: change(self._state, self._recorded, **{event["name"]: value})
                )
            except Exception:
                self._apply(self._state)  # the traits mirror the state as it was
                raise
        self._apply(new)

    @t.validate("band")
    def _check_band(self, proposal: dict) -> str | None:
        """An HFO band is a change of the filter: its cut-offs, checked as any filter."""
        if self._applying:
            return proposal["value"]
        band = proposal["value"]

        def changed() -> ViewState:
            fs = max(self._rates[c] for d in self._state.derivations for c in d.inputs)
            lo, hi = (None, None) if band is None else hfo_band(band, fs)
            return change(self._state, self._recorded, highpass=lo, lowpass=hi)

        self._pending = ("band", self._clinical.guard(changed))
        return _band_of(self._pending[1])

    @t.observe("band")
    def _band_changed(self, event: dict) -> None:
        if not self._applying and self._pending and self._pending[0] == "band":
            new, self._pending = self._pending[1], None
            self._apply(new)

    @t.observe("bad_channels")
    def _bads_changed(self, event: dict) -> None:
        self.bad_rows = _bad_rows(self._state, event["new"])

    @t.observe("utc")
    def _clock_changed(self, event: dict) -> None:
        self.page_label = clock_label(self.start_uutc, self._state.start, *self._clock())

    def _clock(self) -> tuple[int | None, bool]:
        """(UTC offset, relative) of the clock shown."""
        return (None if self.utc else self.utc_offset_s), self.deidentified

    @t.observe("width_px")
    def _width_changed(self, event: dict) -> None:
        if not self._applying:
            self._request()

    @property
    def _applying(self) -> bool:
        """Whether traits this thread sets now mirror the state (no checks, no requests)."""
        return getattr(self._mirroring, "on", False)

    @_applying.setter
    def _applying(self, on: bool) -> None:
        self._mirroring.on = on

    @contextlib.contextmanager
    def _mirrored(self) -> Iterator[None]:
        """Traits this thread sets inside mirror the state (no checks, no requests)."""
        self._applying = True
        try:
            yield
        finally:
            self._applying = False

    def _apply(self, new: ViewState) -> None:
        """Make `new` the state: every trait mirrors it, then one request (none for a gain).

        While the gain is automatic, it is the one the last page chose, even if that page
        chose it after `new` was made from the state before.
        """
        with self._lock:
            old = self._state
            if self._auto_gain:
                new = replace(new, gain=old.gain)
            self._state = new
            with self._mirrored(), self.hold_sync():
                for name, value in _traits_of(new).items():
                    setattr(self, name, value)
                self.bad_rows = _bad_rows(new, self.bad_channels)
                self.message = ""
        if replace(old, gain=new.gain) != new:
            self._request()

    def _request(self) -> None:
        """A new view: one request with a new id; nothing here waits for data."""
        # under the lock: a reply, set on the loader thread under it too, never reaches the
        # front end before the request it answers
        with self._lock, self.hold_sync():
            state = self._state
            self.page_label = clock_label(self.start_uutc, state.start, *self._clock())
            self.view_id = self._loader.submit((state, self.width_px))

    def _serve(self, id: int, request: tuple[ViewState, int]) -> None:
        """On the loader thread: read (or take the read-ahead's) page; send it unless stale.

        A zoomed-out page as recorded (many samples per column) comes from the envelope
        store instead: per-column min/max of cached per-segment envelopes. The reply says
        which state it answers; anything that goes wrong is shown in the widget.
        """
        state, width = request
        view = state.view()
        try:
            self._reply(id, state, view, width)
        except Mef3LabError as e:
            self.message = f"could not read the page at {view.start_s:g} s: {type(e).__name__}: {e}"
        except Exception as e:
            log.exception("serving scroller request %d failed", id)
            self.message = f"could not draw the page at {view.start_s:g} s: {type(e).__name__}: {e}"

    def _reply(self, id: int, state: ViewState, view: View, width: int) -> None:
        zoomed = (
            view.review is None and self._samples_per_column(view, width) >= ZOOM_SAMPLES_PER_COLUMN
        )
        page: Page | None = None
        if zoomed:
            traces, buffer = self._zoom.encode(view, width)
        else:
            page = self._cache.get(view)
            if not self._loader.is_current(id):
                self.dropped += 1
                return
            traces, buffer = encode(page, width)
        if not self._loader.is_current(id):
            self.dropped += 1
            return
        median, spread = baselines(traces, buffer, view.start_s)
        for tr, m in zip(traces, median.tolist(), strict=True):
            tr["baseline"] = m if math.isfinite(m) else 0.0
        key = (state.montage, state.filter, state.page_seconds, state.shown, width)
        if self._auto_gain and key != self._auto_key:
            self._auto_key = key
            self._set_auto_gain(gain_for(spread))
        with self._lock:
            self.reply = {
                "id": id,
                "start": view.start_s,
                "seconds": view.length_s,
                "state": state.summary(),
                "traces": traces,
                "data": buffer,
            }
        self.sent += 1
        errors = page.errors if page is not None else {}
        text = "; ".join(f"{name} could not be read ({msg})" for name, msg in errors.items())
        if text or self.message == self._read_errors:  # a refusal's message stays
            self.message = text
        self._read_errors = text
        if zoomed:
            # the hint to a server only; the envelopes ahead come from the envelope store
            self._readahead.shown(view, prefetch=False)
            ahead = view.shifted(self._readahead.direction)
            if 0 <= ahead.start_us < self._source.info.end_uutc - self._source.info.start_uutc:
                self._zoom.ahead(ahead, width)
        else:
            drawing = _FRONT_WIDTH[0] or self.drawn  # a front end draws scrollers here
            self._readahead.shown(view, hold_s=READ_AHEAD_HOLD_S if drawing else 0.0)
            with self._lock:
                self._ahead_of = id
                drawn = self._drawn_id >= id  # the front end was quicker than this thread
            if drawn:
                self._cache.release()
        if width != self._overview_width:
            self._bar_for(width)

    def _set_auto_gain(self, gain: float) -> None:
        """The gain chosen from a page: the state's and the trait's, no new request."""
        with self._lock:
            self._state = replace(self._state, gain=gain)
            with self._mirrored():
                self.gain = gain

    def _samples_per_column(self, view: View, width: int) -> float:
        fastest = max(self._rates.get(c, 0.0) for c in view.channels)
        return fastest * view.length_s / max(1, width)

    def _bar_for(self, width: int) -> None:
        """Have the overview bar `width` columns wide made and sent, on its own thread."""
        self._overview_width = width
        self._overview_sent = self._overview.submit(self._send_overview, width)

    def _send_overview(self, width: int) -> None:
        """On its own thread: the whole recording's bar from the block index (nothing decoded).

        Sent once per width.
        """
        try:
            strip = overview(self._source, self._recorded.channels, width).strip()
        except Exception as e:  # shown in the widget: the pages go on without it
            if not isinstance(e, Mef3LabError):
                log.exception("the overview bar failed")
            self.message = f"no overview: {type(e).__name__}: {e}"
            return
        with self._lock:
            self.overview_bar = {
                "n": int(strip.size),
                "seconds": self.duration,
                "data": strip.tobytes(),
            }

    # -- what the front end sends ---------------------------------------------------------
    def _on_msg(self, widget: Any, content: dict, buffers: list) -> None:
        kind = content.get("type")
        if kind == "key":
            self.press(str(content.get("key", "")), bool(content.get("shift")))
        elif kind == "goto":
            try:
                self.go_to(str(content.get("text", "")))
            except ValueError as e:
                self.message = str(e)
        elif kind == "set" and content.get("name") in (*STATE_TRAITS, "band", "utc"):
            try:  # a refusal is shown in the widget (guard) and the state stays
                setattr(self, str(content["name"]), content.get("value"))
            except (ValueError, Mef3LabError, t.TraitError) as e:
                self.message = str(e)
        elif kind == "bad":
            name = str(content.get("name", ""))
            self.bad_channels = (
                [b for b in self.bad_channels if b != name]
                if name in self.bad_channels
                else [*self.bad_channels, name]
            )
        elif kind == "mark":
            with contextlib.suppress(ValueError):  # mark shows it in the widget
                self.mark(
                    float(content.get("t", self.start)),
                    float(content.get("duration", 0.0)),
                    str(content.get("text", "event")),
                )
        elif kind == "resize":
            self.width_px = _FRONT_WIDTH[0] = max(50, int(content.get("width", self.width_px)))
        elif kind == "drawn":
            self._was_drawn(int(content.get("id", 0)))

    def _was_drawn(self, id: int) -> None:
        """A front end drew reply `id`: the read-ahead held for it may start."""
        with self._lock:
            self.drawn += 1
            self._drawn_id = max(self._drawn_id, id)
            release = self._ahead_of == id
        if release:
            self._cache.release()


def _channels_of(rec: xr.Dataset | xr.DataArray, order: tuple[str, ...]) -> list[str]:
    """The channel names `rec` holds (its ``channel*`` dimensions; not ``channel_type``).

    In its own order for one rate group, in the recording's (`order`) across several.
    """
    coords = [c for c in rec.coords if str(c).startswith("channel") and c in rec.dims]
    names = [str(v) for c in coords for v in np.atleast_1d(rec[c].values)]
    if len(coords) > 1:
        names.sort(key=order.index)
    return names


def _block_array(block, attrs: dict, units: str) -> xr.DataArray:
    n = block.data.shape[1]
    time = block.first_s + np.arange(n) / block.fs
    keep = {
        k: v for k, v in attrs.items() if k.startswith("mef3_") or k in ("start_uutc", "start_time")
    }
    return xr.DataArray(
        block.data,
        dims=("channel", "time"),
        name="signal",
        coords={"channel": list(block.names), "time": ("time", time, {"units": "s"})},
        attrs={**keep, "fs": block.fs, "units": units},
    )


#: The scrollers not closed yet: closed when the interpreter exits, so their threads stop and
#: their recordings close before the readers' extension modules are torn down.
_OPEN: weakref.WeakSet[Scroller] = weakref.WeakSet()
#: The trace area's width the front end last reported (0: none yet). A new scroller starts
#: at it: its first page is read for the width it is drawn at, not read again after the
#: front end says its width.
_FRONT_WIDTH = [0]


@atexit.register
def _close_open() -> None:
    for widget in list(_OPEN):
        widget.close()


def _traits_of(state: ViewState) -> dict[str, Any]:
    """The traits that mirror `state`, as the front end reads them."""
    f = state.filter
    montage = list(state.montage) if isinstance(state.montage, tuple) else state.montage
    return {
        "montage": montage,
        "highpass": f.highpass,
        "lowpass": f.lowpass,
        "notch": list(f.notch),
        "channels": list(state.channels),
        "page_seconds": state.page_seconds,
        "start": state.start,
        "rows": state.rows,
        "first_row": state.first_row,
        "gain": state.gain,
        "all_channels": [d.name for d in state.derivations],
        "montage_label": state.montage_label,
        "note": "; ".join(state.notes),
        "band": _band_of(state),
        "row_shafts": {d.name: d.shaft for d in state.derivations if d.shaft},
    }


def _bad_rows(state: ViewState, bad: list[str]) -> list[str]:
    """The rows of `state` drawn greyed: those marked bad and those with a bad input."""
    marked = set(bad)
    return [d.name for d in state.derivations if d.name in marked or marked & set(d.inputs)]


def _band_of(state: ViewState) -> str | None:
    """The HFO band whose cut-offs the state's filter has, if any."""
    f = state.filter
    return next((k for k, v in HFO_BANDS.items() if v == (f.highpass, f.lowpass)), None)


class _Live:
    """The process's current source for a spec, looked up on every use.

    ``%mef3 stop`` and ``restart`` replace the source behind a spec (a server's for an
    in-process one and back); a scroller keeps reading through whichever is current.
    """

    def __init__(self, spec: SourceSpec) -> None:
        self._spec = spec

    def __getattr__(self, name: str) -> Any:
        return getattr(REGISTRY.acquire(self._spec), name)
