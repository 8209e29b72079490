"""What a recording's run brings to the scroller it opens in, and where reviewed events go.

`mef3lab.open_bids` leaves a BIDS run's sidecars on the Dataset (bad channels, power-line
frequency, events.tsv, electrode groups); `RunStart` reads them, so a `Scroller` starts from
the run's state. `derivative_events` places a run's events under ``derivatives/`` as a BIDS
derivative dataset. docs/mne-bids.md tells the whole path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import xarray as xr

from ..version import __version__
from . import events as ev

__all__ = ["RunStart", "derivative_events"]


@dataclass(frozen=True)
class RunStart:
    """A recording's starting state for the scroller, from its attrs (empty for a plain one).

    Attributes
    ----------
    bads : tuple of str
        The run's bad channels among those offered (``attrs["bads"]``).
    shaft_of : dict of str to str
        Channel -> shaft (electrode group) of the offered channels.
    line_hz : float or None
        The power-line frequency (``attrs["power_line_frequency"]``).
    events_tsv : Path or None
        The events.tsv the run's events are read from (``attrs["events_tsv"]``).
    own_events : Path or None
        The run's own events.tsv, where reviewed events go without a path: beside a run
        this machine can read, or the run's events.tsv (not an inherited one) for a run on a
        server; None when neither is known.
    bids_root : Path or None
        The dataset's root (``attrs["bids_root"]``), for `derivative_events`.
    """

    bads: tuple[str, ...] = ()
    shaft_of: dict[str, str] = field(default_factory=dict)
    line_hz: float | None = None
    events_tsv: Path | None = None
    own_events: Path | None = None
    bids_root: Path | None = None

    @classmethod
    def of(
        cls,
        rec: xr.Dataset | xr.DataArray,
        offered: Sequence[str],
        recording_path: str,
        shafts: Mapping[str, str] | None = None,
    ) -> RunStart:
        """The starting state of `rec`, whose offered channels are `offered`.

        Parameters
        ----------
        rec : xarray.Dataset or xarray.DataArray
            The recording as opened (`mef3lab.open_bids` sets the attrs read here).
        offered : sequence of str
            The channels the scroller offers as recorded.
        recording_path : str
            The recording's path (on this machine, or a server's).
        shafts : mapping of str to str, optional
            Channel -> shaft given by the caller; default: the run's electrode groups.

        Returns
        -------
        RunStart
            The state.

        Raises
        ------
        ValueError
            When `shafts` names channels that are not offered.
        """
        attrs = rec.attrs
        if shafts is None:
            groups = rec.mef3.electrode_groups if attrs.get("electrodes_tsv") else {}
            shafts = {c: g for g, names in groups.items() for c in names}
        unknown = sorted(set(shafts) - set(offered))
        if unknown:
            raise ValueError(
                f"shafts names channels the scroller does not show: {', '.join(unknown)}"
            )
        line = attrs.get("power_line_frequency")
        events_tsv = Path(attrs["events_tsv"]) if attrs.get("events_tsv") else None
        run = attrs.get("bids_run")
        if Path(recording_path).is_dir():
            own = ev.events_path(recording_path)
        elif events_tsv is not None and events_tsv.name == f"{run}_events.tsv":
            own = events_tsv
        else:
            own = None
        root = attrs.get("bids_root")
        return cls(
            bads=tuple(c for c in attrs.get("bads", ()) if c in offered),
            shaft_of={str(c): str(g) for c, g in shafts.items()},
            line_hz=float(line) if line is not None else None,
            events_tsv=events_tsv,
            own_events=own,
            bids_root=Path(root) if root else None,
        )


def derivative_events(events_file: Path, bids_root: Path, pipeline: str) -> Path:
    """Where `events_file` goes in the derivative dataset ``derivatives/<pipeline>/``.

    The same relative path as in the raw dataset; the folders and the derivative's
    ``dataset_description.json`` are made when missing.

    Parameters
    ----------
    events_file : Path
        The run's own events.tsv in the raw dataset.
    bids_root : Path
        The raw dataset's root.
    pipeline : str
        The derivative's folder name (e.g. ``"review"``).

    Returns
    -------
    Path
        The events.tsv to write.

    Raises
    ------
    ValueError
        When `pipeline` is not a plain folder name or `events_file` is outside `bids_root`.
    """
    if not pipeline or Path(pipeline).name != pipeline or pipeline in (".", ".."):
        raise ValueError(f"a derivative's name is one folder name, not {pipeline!r}")
    try:
        relative = Path(events_file).relative_to(bids_root)
    except ValueError:
        raise ValueError(
            f"{str(events_file)!r} is not inside the dataset {str(bids_root)!r}"
        ) from None
    top = Path(bids_root) / "derivatives" / pipeline
    target = top / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    description = top / "dataset_description.json"
    if not description.exists():
        raw = Path(bids_root) / "dataset_description.json"
        version = json.loads(raw.read_text()).get("BIDSVersion") if raw.is_file() else None
        meta = {
            "Name": f"{pipeline}: events reviewed in mef3lab",
            "BIDSVersion": version or "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "mef3lab", "Version": __version__}],
        }
        description.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return target
