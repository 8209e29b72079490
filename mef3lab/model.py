"""What a MEF 3.0 recording is, whichever engine read it and wherever it is read.

Channels, contiguous spans, rate groups and their sample grids, conversion-factor runs,
annotations, and the raw-count transport type; and how names and units written by real
acquisition systems are read (units, contacts, shafts, channel order). Every layer imports
these plain types from here, without importing a decoder. Why reads use a sample grid of
their own (one per sampling rate): see ``docs/readers.md``; names and units: ``docs/ieeg.md``.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from functools import cached_property

import numpy as np

from .errors import (
    CorruptDataError,
    FactorChangeError,
    MixedRatesError,
    TimeRangeError,
    UnknownChannelError,
)

#: The int32 value that marks "no sample here" in raw (count) reads: meflib's RED_NAN.
RAW_NAN = np.int32(-(2**31))

#: Values in channel units (what `Reader.read` returns).
DTYPES = {"float32": np.float32, "float64": np.float64}
#: Everything samples travel as: values, or the stored int32 counts (`Reader.read_raw`).
SAMPLE_TYPES = {**DTYPES, "int32": np.int32}


#: Spellings of the units writers store, case and spaces aside -> the canonical symbol.
_UNIT_SPELLINGS = {
    **dict.fromkeys(("uv", "µv", "μv", "microvolt", "microvolts", "microv"), "µV"),
    **dict.fromkeys(("mv", "millivolt", "millivolts", "milliv"), "mV"),
    **dict.fromkeys(("v", "volt", "volts"), "V"),
}


def canonical_units(text: str | bytes | None) -> str:
    """The canonical symbol (``"µV"``, ``"mV"`` or ``"V"``) of a units text as writers store it.

    Recognises ``uV``, ``µV`` (micro sign or Greek mu), ``microvolts``, ``mV``, ``millivolts``,
    ``V``, ``volts``, bytes, and the Python bytes repr some writers store (``"b'uV'"``),
    case, spaces, hyphens and trailing NULs aside. Values in those units never change; only
    the symbol does.

    Parameters
    ----------
    text : str, bytes or None
        The units text found in the file.

    Returns
    -------
    str
        The canonical symbol; text it does not recognise comes back stripped (never a wrong
        unit), and None or empty text as ``""``.

    Examples
    --------
    >>> canonical_units("b'uV'"), canonical_units(" Microvolts "), canonical_units("mV")
    ('µV', 'µV', 'mV')
    >>> canonical_units("counts")
    'counts'
    """
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    s = str(text).replace("\x00", "").strip()
    quoted = re.fullmatch(r"""b(['"])(.*)\1""", s)
    if quoted:
        s = quoted.group(2).strip()
    return _UNIT_SPELLINGS.get(re.sub(r"[\s_-]+", "", s).lower(), s)


_CONTACT = re.compile(r"(.*?\D)[\s_-]*(\d+)")


def contact_parts(name: str) -> tuple[str, int | None]:
    """A contact's shaft label and contact number, from its name.

    The label is everything before the trailing number (letters, an apostrophe or side
    prefix included); separators between them (space, ``-``, ``_``) are dropped.

    Parameters
    ----------
    name : str
        A channel name such as ``"LA10"``, ``"RB'3"`` or ``"Fp1"``.

    Returns
    -------
    tuple of (str, int or None)
        ``(label, number)``; ``(name, None)`` when the name does not end in a number after
        a label.

    Examples
    --------
    >>> contact_parts("LA10"), contact_parts("RB'3"), contact_parts("Fp1")
    (('LA', 10), ("RB'", 3), ('Fp', 1))
    >>> contact_parts("ECG")
    ('ECG', None)
    """
    m = _CONTACT.fullmatch(name.strip())
    if m is None:
        return name, None
    return m.group(1), int(m.group(2))


def natural_key(name: str) -> tuple:
    """A sort key that orders numbers inside names as numbers: LA1, LA2, …, LA10, RB1.

    Text compares case-insensitively (the name itself breaks ties).

    Parameters
    ----------
    name : str
        A channel name.

    Returns
    -------
    tuple
        The key, for `sorted` or `min`.

    Examples
    --------
    >>> sorted(["LA10", "RB1", "LA2", "LA1"], key=natural_key)
    ['LA1', 'LA2', 'LA10', 'RB1']
    """
    parts = re.split(r"(\d+)", name)  # text, number, text, …: like compares with like
    return (tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), name)


def _scalp_names() -> frozenset[str]:
    """The 10-20 and 10-10 scalp electrode names (and ear/mastoid references), lower case."""
    rows = {"fp": (1, 2), "af": (3, 4, 7, 8), "f": range(1, 11), "fc": range(1, 7)}
    rows |= {"ft": range(7, 11), "c": range(1, 7), "t": range(1, 11), "cp": range(1, 7)}
    rows |= {"tp": range(7, 11), "p": range(1, 11), "po": (3, 4, 7, 8), "o": (1, 2)}
    rows |= {"a": (1, 2), "m": (1, 2)}
    return frozenset(f"{k}{n}" for k, ns in rows.items() for n in ns)


#: Scalp electrode names (10-20, 10-10), lower case: a group of only these is no shaft.
SCALP_NAMES = _scalp_names()


def shafts(
    names: Iterable[str], groups: Mapping[str, str] | None = None
) -> dict[str, tuple[str, ...]]:
    """Contacts grouped into shafts (depth electrodes, strips, grids), each in contact order.

    A channel's shaft is the group `groups` gives it (e.g. the ``group`` column of a BIDS
    ``electrodes.tsv``), otherwise the label of its name (`contact_parts`). Only groups of
    two or more numbered contacts are shafts: single contacts and names without a contact
    number (ECG, EMG, event channels) belong to none, nor do groups by name made only of
    scalp electrodes (`SCALP_NAMES`: C3 and C4 are not a shaft "C").

    Parameters
    ----------
    names : iterable of str
        Channel names.
    groups : mapping of str to str, optional
        Channel name -> group, for the channels whose group is known.

    Returns
    -------
    dict of str to tuple of str
        Shaft label -> its channel names by contact number; shafts in the order of their
        first channel in `names`. Empty when there is no shaft.

    Examples
    --------
    >>> shafts(["LA2", "LA10", "LA1", "RB'1", "RB'2", "ECG"])
    {'LA': ('LA1', 'LA2', 'LA10'), "RB'": ("RB'1", "RB'2")}
    >>> shafts(["A1", "A2", "B1"], groups={"B1": "A"})
    {'A': ('A1', 'A2', 'B1')}
    """
    found: dict[str, list[tuple[tuple, str]]] = {}
    given = set()
    for name in names:
        label, number = contact_parts(name)
        # Within a shaft: by the name's own label, then contact number (a caller's group may
        # join contacts of several labels); unnumbered contacts join only a caller's group.
        order = (label.casefold(), -1 if number is None else number, natural_key(name))
        if groups is not None and name in groups:
            label, number = str(groups[name]), number if number is not None else -1
            given.add(label)
        if number is not None:
            found.setdefault(label, []).append((order, name))
    return {
        label: tuple(n for _, n in sorted(members))
        for label, members in found.items()
        if len(members) > 1
        and (label in given or not all(n.strip().casefold() in SCALP_NAMES for _, n in members))
    }


#: The largest GMT offset a clock applies (s); MEF writes -86401 for "not entered".
MAX_GMT_OFFSET_S = 24 * 3600


def clock_text(
    uutc: float, offset_s: int | None = None, relative: bool = False, digits: int = 0
) -> str:
    """A time for people: local date and time with its UTC offset, or relative time.

    Parameters
    ----------
    uutc : float
        The time in µUTC.
    offset_s : int, optional
        Seconds east of UTC to show it in (None: UTC).
    relative : bool
        The time is MEF's de-identified offset time: shown as time since the epoch
        (``+[days d ]HH:MM:SS (de-identified)``), never as a date in 1970.
    digits : int
        Decimals of the second (0, 3 or 6).

    Returns
    -------
    str
        E.g. ``"2009-10-02 09:01:07 +11:00"`` or ``"+09:01:07 (de-identified)"``.

    Examples
    --------
    >>> clock_text(32_467_000_000, relative=True)
    '+09:01:07 (de-identified)'
    >>> clock_text(1_254_430_867_250_000, offset_s=-6 * 3600, digits=3)
    '2009-10-01 15:01:07.250 -06:00'
    """
    spec = {0: "seconds", 3: "milliseconds", 6: "microseconds"}[digits]
    if relative:
        sign, us = ("-" if uutc < 0 else "+"), abs(int(round(uutc)))
        days, rest = divmod(us, 86_400_000_000)
        t = (datetime(2000, 1, 1) + timedelta(microseconds=rest)).time().isoformat(spec)
        return f"{sign}{f'{days} d ' if days else ''}{t} (de-identified)"
    tz = timezone(timedelta(seconds=offset_s or 0))
    t = datetime.fromtimestamp(uutc / 1e6, tz=UTC).astimezone(tz)
    text = t.isoformat(sep=" ", timespec=spec)
    return text[:-6] + " " + text[-6:]


#: How `channel_order` ordered channels: by their acquisition numbers, or by name.
ORDER_ACQUISITION, ORDER_NATURAL = "acquisition", "natural"


def channel_order(
    names: Sequence[str], acquisition_numbers: Sequence[int | None]
) -> tuple[tuple[str, ...], str]:
    """The order a recording's channels are shown in, and how it was found.

    By the acquisition channel numbers MEF stores when every channel has one and no two are
    equal (the montage order of the acquisition system), otherwise in natural order
    (`natural_key`: LA1, LA2, …, LA10), never an error.

    Parameters
    ----------
    names : sequence of str
        Channel names.
    acquisition_numbers : sequence of int or None
        Each channel's acquisition channel number (None when not stored).

    Returns
    -------
    tuple
        ``(names in order, how)``, `how` being `ORDER_ACQUISITION` or `ORDER_NATURAL`.

    Raises
    ------
    ValueError
        If the two sequences differ in length.

    Examples
    --------
    >>> channel_order(["a", "b", "c"], [4, 0, 2])
    (('b', 'c', 'a'), 'acquisition')
    >>> channel_order(["LA10", "LA2", "LA1"], [1, 1, 1])
    (('LA1', 'LA2', 'LA10'), 'natural')
    """
    if len(names) != len(acquisition_numbers):
        raise ValueError(f"{len(names)} names but {len(acquisition_numbers)} acquisition numbers")
    numbers = list(acquisition_numbers)
    if None not in numbers and len(set(numbers)) == len(numbers):
        by_number = sorted(zip(numbers, names, strict=True))
        return tuple(n for _, n in by_number), ORDER_ACQUISITION
    return tuple(sorted(names, key=natural_key)), ORDER_NATURAL


@dataclass(frozen=True)
class ChannelInfo:
    """What a scientist needs to know about one channel before reading it.

    Attributes
    ----------
    name : str
        The channel's name.
    fs : float
        Sampling rate in Hz.
    start_uutc, end_uutc : int
        Time of the first sample, and just past the last one, in µs since the epoch (µUTC).
    n_samples : int
        Samples stored (gaps not counted).
    units : str
        The physical units of values, canonical (``"µV"``, ``"mV"``, ``"V"``: `canonical_units`).
    conversion_factor : float
        Physical units per stored count (of the first segment, see `SessionInfo.factor_changes`).
    acquisition_number : int or None
        The acquisition channel number the file stores (None: not known).
    units_text : str
        The units text as the file stores it (e.g. ``"b'uV'"`` or ``"microvolts"``).
    """

    name: str
    fs: float
    start_uutc: int
    end_uutc: int
    n_samples: int
    units: str
    conversion_factor: float
    acquisition_number: int | None = None
    units_text: str = ""


@dataclass(frozen=True)
class Span:
    """A contiguous run of recorded data, ``[start_uutc, end_uutc)`` in µUTC.

    Attributes
    ----------
    start_uutc : int
        Time of its first sample.
    end_uutc : int
        Time just past its last sample.
    """

    start_uutc: int
    end_uutc: int


@dataclass(frozen=True)
class Annotation:
    """One MEF record (annotation), at session level or at channel level.

    Attributes
    ----------
    time_uutc : int
        When it happened (µUTC).
    type : str
        The record type, e.g. ``"Note"`` or ``"EDFA"``.
    text : str
        Its text.
    duration_us : int or None
        How long it lasts (µs), for record types that have a duration.
    channel : str or None
        The channel it belongs to; None at session level.
    """

    time_uutc: int
    type: str
    text: str
    duration_us: int | None = None
    channel: str | None = None


@dataclass(frozen=True)
class Grid:
    """The regular sample grid of one sampling rate: sample k lies at ``start_uutc + k * 1e6 / fs``.

    Attributes
    ----------
    fs : float
        Sampling rate in Hz.
    start_uutc : int
        Time of sample 0 (µUTC): the earliest start of the channels of this rate.
    n_samples : int
        Samples up to the end of the latest channel of this rate, gaps included.
    """

    fs: float
    start_uutc: int
    n_samples: int

    @property
    def period_us(self) -> float:
        """Time between samples, in µs."""
        return 1e6 / self.fs

    @property
    def end_uutc(self) -> int:
        """Time just past the last sample of the grid."""
        return self.uutc_of(self.n_samples)

    def time_of(self, k: int | np.ndarray) -> float | np.ndarray:
        """Exact (fractional) µUTC of sample k."""
        return self.start_uutc + np.asarray(k, dtype=np.float64) * self.period_us

    def uutc_of(self, k: int) -> int:
        """µUTC of sample k, rounded to the microsecond (MEF's time resolution)."""
        return int(round(self.start_uutc + k * self.period_us))

    def index_at(self, t_uutc: float) -> int:
        """Index of the first sample at or after time t (half-open windows include their start)."""
        # The tolerance absorbs the microsecond rounding of uutc_of: index_at(uutc_of(k)) == k.
        return math.ceil((t_uutc - self.start_uutc) * self.fs / 1e6 - 1e-3)

    def indices(self, start_uutc: float, end_uutc: float) -> tuple[int, int]:
        """Half-open sample index range of the window ``[start_uutc, end_uutc)``."""
        return self.index_at(start_uutc), self.index_at(end_uutc)

    def window(
        self, start_uutc: float, end_uutc: float, what: str = "these channels"
    ) -> tuple[int, int]:
        """`indices` of a window a user asked for, checked.

        Parameters
        ----------
        start_uutc, end_uutc : float
            The window ``[start_uutc, end_uutc)`` in µUTC.
        what : str
            How the error message names the channels of this grid.

        Returns
        -------
        tuple of int
            The half-open sample index range ``(k0, k1)``.

        Raises
        ------
        TimeRangeError
            If the window is empty or inverted, or lies wholly outside the grid.
        """
        if end_uutc <= start_uutc:
            raise TimeRangeError(inverted_range(start_uutc, end_uutc))
        if end_uutc <= self.start_uutc or start_uutc >= self.end_uutc:
            raise TimeRangeError(
                f"the window [{int(start_uutc)}, {int(end_uutc)}) µUTC lies wholly outside the "
                f"recording [{self.start_uutc}, {self.end_uutc}) of {what}"
            )
        return self.indices(start_uutc, end_uutc)


@dataclass(frozen=True)
class FactorRuns:
    """A channel's conversion factor along its grid: ``factors[i]`` from sample ``starts[i]`` on.

    Why runs: MEF stores a factor per segment (a gain change mid-recording starts a new one),
    and values are each count times the factor of the segment it was stored in. Nearly every
    channel has one run; samples before ``starts[0]`` (outside the channel) take the first.
    """

    starts: tuple[int, ...]
    factors: tuple[float, ...]

    @classmethod
    def single(cls, factor: float) -> FactorRuns:
        """One factor for every sample."""
        return cls((0,), (factor,))

    def pieces(self, a: int, b: int) -> Iterator[tuple[int, int, float]]:
        """The sub-ranges ``[lo, hi)`` of ``[a, b)`` with the factor of each (none when empty)."""
        if len(self.factors) == 1:
            if b > a:
                yield a, b, self.factors[0]
            return
        i = max(bisect_right(self.starts, a) - 1, 0)
        while a < b:
            hi = min(b, self.starts[i + 1]) if i + 1 < len(self.starts) else b
            yield a, hi, self.factors[i]
            a, i = hi, i + 1

    def window(self, k0: int, k1: int) -> FactorRuns:
        """The runs of samples ``[k0, k1)``, indexed from k0 (one run if nothing changes there)."""
        parts = list(self.pieces(k0, k1)) or [
            (k0, k1, self.factors[max(bisect_right(self.starts, k0) - 1, 0)])
        ]
        return FactorRuns(tuple(lo - k0 for lo, _, _ in parts), tuple(f for _, _, f in parts))


@dataclass(frozen=True)
class RateGroup:
    """Channels that share one sampling rate, hence one grid.

    Attributes
    ----------
    fs : float
        Their sampling rate in Hz.
    channels : tuple of str
        Their names, in the recording's order.
    grid : Grid
        The sample grid every read of these channels uses.
    """

    fs: float
    channels: tuple[str, ...]
    grid: Grid


@dataclass(frozen=True)
class SessionInfo:
    """Everything known about a recording without decoding samples.

    Attributes
    ----------
    path : str
        The session folder (``.mefd``).
    channels : tuple of ChannelInfo
        The readable channels, in the recording's order.
    spans : dict of str to tuple of Span
        Each channel's contiguous runs of recorded data; the holes between them are `gaps`.
    annotations : tuple of Annotation
        Session- and channel-level records, by time.
    encrypted : bool
        Whether the session is encrypted.
    damaged : dict of str to str
        Channels left out because their files are damaged: name -> why (reading one says so).
    factor_changes : dict of str to tuple of (int, float)
        Channels whose MEF segments store different conversion factors: name -> ((µUTC of the
        first sample stored with a factor, that factor), ...), first segment first. Their
        `ChannelInfo.conversion_factor` is the first segment's; `factor_runs` places the rest.
    gmt_offset_s : int or None
        The GMT offset the session records (MEF's ``GMT_offset``, seconds east of UTC), as
        recorded; None when none is (`utc_offset_s` is the one clocks use).
    deidentified : bool
        True when the session's times are MEF's de-identified offset times (opened without
        the level-2 password, which the recording time offset needs): relative, not dates.
    """

    path: str
    channels: tuple[ChannelInfo, ...]
    spans: dict[str, tuple[Span, ...]] = field(repr=False)
    annotations: tuple[Annotation, ...] = ()
    encrypted: bool = False
    damaged: dict[str, str] = field(default_factory=dict, compare=False)
    factor_changes: dict[str, tuple[tuple[int, float], ...]] = field(
        default_factory=dict, compare=False
    )
    gmt_offset_s: int | None = None
    deidentified: bool = False

    @property
    def utc_offset_s(self) -> int | None:
        """The recorded GMT offset clocks use (s), or None: none recorded, or outside ±24 h."""
        off = self.gmt_offset_s
        return off if off is not None and abs(off) <= MAX_GMT_OFFSET_S else None

    @property
    def notes(self) -> tuple[str, ...]:
        """What a reader of this recording should know about its times (empty: nothing)."""
        out = []
        if self.gmt_offset_s is not None and self.utc_offset_s is None:
            out.append(
                f"the recorded GMT offset ({self.gmt_offset_s / 3600:+g} h) is outside ±24 h "
                "and was ignored: times are shown in UTC"
            )
        if self.deidentified:
            out.append(
                "times are de-identified (read without the level-2 password): shown relative "
                "to the epoch, not as dates"
            )
        return tuple(out)

    @property
    def order(self) -> str:
        """How `channels` are ordered: `ORDER_ACQUISITION` or `ORDER_NATURAL` (`channel_order`)."""
        return channel_order(self.names, [c.acquisition_number for c in self.channels])[1]

    def in_recording_order(self) -> SessionInfo:
        """The same description, its channels in the recording's order (`channel_order`)."""
        names, _ = channel_order(self.names, [c.acquisition_number for c in self.channels])
        return replace(self, channels=tuple(self._by_name[n] for n in names))

    def clock(self, uutc: float, utc: bool = False, digits: int = 0) -> str:
        """A time as the recording's clock shows it: local time with its offset, or relative.

        Parameters
        ----------
        uutc : float
            The time in µUTC.
        utc : bool
            Show UTC (``+00:00``) even when the session records a GMT offset.
        digits : int
            Decimals of the second (0, 3 or 6).

        Returns
        -------
        str
            ``"2009-10-02 09:01:07 +11:00"``; ``"+09:01:07 (de-identified)"`` (days first
            when there are any) for de-identified times.

        Examples
        --------
        >>> info = SessionInfo("x.mefd", (), {}, gmt_offset_s=11 * 3600)
        >>> info.clock(1_254_430_867_000_000)
        '2009-10-02 08:01:07 +11:00'
        >>> info.clock(1_254_430_867_000_000, utc=True)
        '2009-10-01 21:01:07 +00:00'
        """
        return clock_text(uutc, None if utc else self.utc_offset_s, self.deidentified, digits)

    @property
    def names(self) -> tuple[str, ...]:
        """The channel names, in the recording's order."""
        return tuple(c.name for c in self.channels)

    @property
    def start_uutc(self) -> int:
        """Time of the earliest sample of any channel (µUTC)."""
        return min(c.start_uutc for c in self.channels)

    @property
    def end_uutc(self) -> int:
        """Time just past the latest sample of any channel (µUTC)."""
        return max(c.end_uutc for c in self.channels)

    @property
    def duration_s(self) -> float:
        """From the earliest sample to the end of the latest, in seconds."""
        return (self.end_uutc - self.start_uutc) / 1e6

    @cached_property
    def _by_name(self) -> dict[str, ChannelInfo]:
        return {c.name: c for c in self.channels}

    def channel(self, name: str) -> ChannelInfo:
        """The description of channel `name`.

        Parameters
        ----------
        name : str
            A channel name.

        Returns
        -------
        ChannelInfo
            Its description.

        Raises
        ------
        UnknownChannelError
            If the recording has no such channel (the message lists some it has).
        CorruptDataError
            If the channel was left out because its files are damaged (`damaged` says why).
        """
        found = self._by_name.get(name)
        if found is not None:
            return found
        if name in self.damaged:
            raise CorruptDataError(
                f"{self.path}: channel {name!r} is damaged and cannot be read "
                f"({self.damaged[name]}); the other channels read normally"
            )
        raise UnknownChannelError(
            f"no channel {name!r} in {self.path}; it has {len(self.channels)} channels: "
            f"{_short_list(self.names)}"
        )

    def check_channels(self, names: Iterable[str] | None) -> tuple[str, ...]:
        """The requested channel names, validated, in the caller's order.

        Parameters
        ----------
        names : iterable of str, str or None
            Channel names, one name, or None for every channel.

        Returns
        -------
        tuple of str
            The names.

        Raises
        ------
        UnknownChannelError
            If a name is unknown, or none was given.
        CorruptDataError
            If a named channel is damaged.
        """
        if names is None:
            return self.names
        if isinstance(names, str):
            names = [names]
        names = tuple(names)
        if not names:
            raise UnknownChannelError("no channels were asked for")
        for n in names:
            self.channel(n)
        return names

    @cached_property  # every read asks; the description never changes
    def rate_groups(self) -> tuple[RateGroup, ...]:
        """One group per sampling rate, fastest first; each with the grid all its channels share."""
        by_fs: dict[float, list[ChannelInfo]] = {}
        for c in self.channels:
            by_fs.setdefault(c.fs, []).append(c)
        groups = []
        for fs in sorted(by_fs, reverse=True):
            chans = by_fs[fs]
            start = min(c.start_uutc for c in chans)
            end = max(c.end_uutc for c in chans)
            # Exactly the samples stored: the last one lands at the grid index nearest its
            # time (half a period decides), as every block's first sample does.
            n = math.ceil((end - start) * fs / 1e6 - 0.5)
            groups.append(RateGroup(fs, tuple(c.name for c in chans), Grid(fs, start, n)))
        return tuple(groups)

    def group_of(self, names: Sequence[str]) -> RateGroup:
        """The rate group all of `names` belong to.

        Parameters
        ----------
        names : sequence of str
            Channel names.

        Returns
        -------
        RateGroup
            Their group.

        Raises
        ------
        MixedRatesError
            If the channels have different sampling rates (the message names the groups).
        UnknownChannelError
            If a name is unknown.
        """
        rates = {self.channel(n).fs for n in names}
        if len(rates) > 1:
            parts = "; ".join(
                f"{g.fs:g} Hz: {_short_list([n for n in names if n in g.channels])}"
                for g in self.rate_groups
                if g.fs in rates
            )
            raise MixedRatesError(
                f"the channels asked for have {len(rates)} different sampling rates ({parts}); "
                "read each rate group separately (Reader.read_groups does this)"
            )
        fs = rates.pop()
        return next(g for g in self.rate_groups if g.fs == fs)

    def factor_runs(self, name: str) -> FactorRuns:
        """`name`'s conversion factors on its rate group's grid.

        A segment's first sample lands at the grid index nearest its time (half a period
        decides), as the engines place blocks.
        """
        c = self.channel(name)
        changes = self.factor_changes.get(name)
        if not changes:
            return FactorRuns.single(c.conversion_factor)
        grid = self.group_of([name]).grid
        starts = tuple(math.ceil((t - grid.start_uutc) * grid.fs / 1e6 - 0.5) for t, _ in changes)
        return FactorRuns(starts, tuple(f for _, f in changes))

    def factors_at(self, name: str, times_uutc: np.ndarray) -> np.ndarray:
        """`name`'s conversion factor at each of `times_uutc` (e.g. its blocks' starts)."""
        changes = self.factor_changes.get(name) or ((0, self.channel(name).conversion_factor),)
        at = np.searchsorted(np.array([t for t, _ in changes], np.int64), times_uutc, "right") - 1
        return np.array([f for _, f in changes], np.float64)[np.maximum(at, 0)]

    def check_one_factor(self, names: Iterable[str]) -> None:
        """Raise FactorChangeError for any of `names` that one conversion factor cannot describe."""
        for n in names:
            changes = self.factor_changes.get(n)
            if changes:
                shown = ", ".join(f"{f:g}" for _, f in changes)
                raise FactorChangeError(
                    f"{self.path}: channel {n!r} stores different conversion factors in its MEF "
                    f"segments ({shown} units per count), so its counts cannot be given with one "
                    "factor; read it as float32 or float64 (each sample scaled by its own "
                    "segment's factor)"
                )

    def gaps(self, name: str) -> tuple[Span, ...]:
        """The holes between a channel's contiguous spans (data missing there)."""
        spans = self.spans[self.channel(name).name]
        return tuple(
            Span(a.end_uutc, b.start_uutc)
            for a, b in zip(spans, spans[1:], strict=False)
            if b.start_uutc > a.end_uutc
        )


@dataclass(frozen=True)
class RawSamples:
    """Stored counts for transport: ``counts * factor`` are the values, `RAW_NAN` marks gaps.

    Attributes
    ----------
    counts : numpy.ndarray
        int32, (n_channels, n_samples).
    factors : numpy.ndarray
        float64, (n_channels,): each row's conversion factor at the window's first sample.
    changes : dict of int to FactorRuns
        The rows whose factor changes within the window (their MEF segments store different
        ones), with their runs indexed from the window's start.
    """

    counts: np.ndarray
    factors: np.ndarray
    changes: dict[int, FactorRuns] = field(default_factory=dict)

    def to_float(self, dtype: str = "float32") -> np.ndarray:
        """The physical values, computed exactly as the float read computes them.

        Parameters
        ----------
        dtype : {"float32", "float64"}
            The type of the result.

        Returns
        -------
        numpy.ndarray
            (n_channels, n_samples) values in channel units, NaN in gaps.
        """
        out = self.counts.astype(np.float64)
        for i, f in enumerate(self.factors):
            runs = self.changes.get(i, FactorRuns.single(f))
            for a, b, factor in runs.pieces(0, out.shape[1]):
                out[i, a:b] *= factor
        out[self.counts == RAW_NAN] = np.nan
        return out.astype(DTYPES[dtype], copy=False)


def run_starts(
    starts_uutc: Sequence[int], n_samples: Sequence[int], discontinuity: Sequence[bool], fs: float
) -> np.ndarray:
    """Which blocks of a table of contents start a contiguous run (bool per block).

    Those flagged discontinuous, and those starting more than a sample period after the
    previous block's end (ends rounded to the microsecond, as MEF stores times).
    """
    t = np.asarray(starts_uutc, np.int64)
    period = 1e6 / fs
    end = np.round(t + np.asarray(n_samples, np.int64) * period)
    new = np.asarray(discontinuity, bool).copy()
    if t.size:
        new[0] = True
        new[1:] |= t[1:] > end[:-1] + period
    return new


def spans_from_toc(
    starts_uutc: Sequence[int], n_samples: Sequence[int], fs: float
) -> tuple[Span, ...]:
    """Contiguous spans from a block table of contents; a span ends where its last block ends.

    A new span starts only where at least one sample is missing: a block starting half a
    period or more after the previous one ends (its first sample then lands on a later grid
    index than the next one). Discontinuity flags on blocks that lose no sample (clock
    jitter, writer flags) do not split spans, so they are not gaps.
    """
    t = np.asarray(starts_uutc, np.int64)
    if t.size == 0:
        return ()
    end = np.round(t + np.asarray(n_samples, np.int64) * (1e6 / fs)).astype(np.int64)
    new = np.ones(t.size, bool)
    new[1:] = t[1:] - end[:-1] >= 0.5e6 / fs
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, t.size - 1)
    return tuple(Span(int(a), int(b)) for a, b in zip(t[first], end[last], strict=True))


def inverted_range(t0: float, t1: float) -> str:
    """The message of a time range that ends before it starts."""
    return f"the time range ends before it starts (start {int(t0)} µUTC, end {int(t1)} µUTC)"


def _short_list(names: Sequence[str], most: int = 8) -> str:
    shown = ", ".join(map(repr, list(names)[:most]))
    return shown + (f", … ({len(names) - most} more)" if len(names) > most else "")
