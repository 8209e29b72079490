"""`BidsDataset`: the MEF 3.0 runs of an iEEG-BIDS folder, each opened with its sidecars applied.

mne-bids finds the runs and their sidecars (`mne_bids.find_matching_paths`,
`mne_bids.BIDSPath.find_matching_sidecar`, so BIDS inheritance holds); the sidecars are
read by `mef3lab.bids.sidecars`; a run opens as the usual lazy Dataset of
`mef3lab.open_recording`, in this process or through a server.
"""

from __future__ import annotations

import os
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from mne_bids import BIDSPath, find_matching_paths, get_bids_path_from_fname
from mne_bids.utils import _get_ch_type_mapping

from ..xr import open_recording
from .sidecars import read_channels, read_events, read_json, read_tsv

__all__ = ["ENTITIES", "BidsDataset", "open_bids"]

#: The entities that tell runs apart, as `BidsDataset.runs` columns.
ENTITIES = ("subject", "session", "task", "acquisition", "run")
RUN_COLUMNS = [*ENTITIES, "path", "problem"]

#: BIDS channel types as MNE names them (mne-bids's own table); others become "misc".
BIDS_TO_MNE = _get_ch_type_mapping(fro="bids", to="mne")


def _problem(path: Path) -> str:
    """Why the run at `path` cannot open, as far as can be told without reading it ("" if none)."""
    if not path.exists():
        return f"{path.name} is missing"
    if not path.is_dir():
        return f"{path.name} is not a MEF 3.0 session (a file, not a .mefd folder)"
    if not any(path.glob("*.timd")):
        return f"{path.name} is not a MEF 3.0 session (no .timd channel folders in it)"
    return ""


def _same(wanted: Any, value: str) -> bool:
    """Whether an entity asked for (a label, or a run number) names `value`."""
    if wanted is None:
        return True
    wanted = str(wanted)
    if wanted.isdigit() and value.isdigit():
        return int(wanted) == int(value)
    return wanted == value


class BidsDataset:
    """The MEF 3.0 runs of an iEEG-BIDS dataset, opened with their sidecars applied.

    Made by `open_bids`. `runs` lists every run; `open` gives one run's lazy Dataset.

    Parameters
    ----------
    root : str or os.PathLike
        The dataset's folder (with ``dataset_description.json``).
    address : str, optional
        A mef3lab server to read the runs through (its served roots must hold them);
        None: as `mef3lab.open_recording` decides (in this process unless a default
        server is set).

    Raises
    ------
    FileNotFoundError
        When `root` is not a folder, or has no ``dataset_description.json``.
    """

    def __init__(self, root: str | os.PathLike, address: str | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"no BIDS dataset at {self.root}: not a folder")
        if not (self.root / "dataset_description.json").is_file():
            raise FileNotFoundError(
                f"{self.root} is not a BIDS dataset: it has no dataset_description.json"
            )
        self.address = address

    def __repr__(self) -> str:
        broken = int((self.runs["problem"] != "").sum())
        return (
            f"<BidsDataset {self.root}: {len(self.runs)} MEF 3.0 runs"
            + (f", {broken} that cannot open" if broken else "")
            + ">"
        )

    @cached_property
    def runs(self) -> pd.DataFrame:
        """Every MEF 3.0 (``_ieeg.mefd``) run, one row each, sorted.

        Columns ``subject``, ``session``, ``task``, ``acquisition``, ``run`` (labels as
        written; ``""`` when absent), ``path`` (the ``.mefd``) and ``problem``: ``""``, or
        why the run cannot open (a ``channels.tsv`` whose ``.mefd`` is missing, a
        ``.mefd`` that is no MEF session).
        """
        # find_matching_paths keeps files (and .ds folders) only, so the .mefd folders are
        # globbed; their names are parsed by mne-bids
        found = {
            p: get_bids_path_from_fname(p, check=False)
            for p in self.root.glob("sub-*/**/ieeg/*_ieeg.mefd")
        }
        # runs described by a channels.tsv whose recording is missing
        for bp in find_matching_paths(
            self.root, datatypes="ieeg", suffixes="channels", extensions=".tsv"
        ):
            data = bp.copy().update(suffix="ieeg", extension=".mefd", check=False)
            stem = data.basename[: -len(".mefd")]
            beside = [p for p in Path(str(data.directory)).glob(stem + ".*") if p.suffix != ".json"]
            if not beside:
                found.setdefault(Path(str(data.fpath)), data)
        rows = []
        for path, bp in found.items():
            row = {e: str(getattr(bp, e) or "") for e in ENTITIES}
            row.update(path=str(path), problem=_problem(path))
            rows.append(row)
        table = pd.DataFrame(rows, columns=RUN_COLUMNS)
        return table.sort_values(["subject", "session", "task", "acquisition", "run"]).reset_index(
            drop=True
        )

    def run(
        self,
        subject: str | None = None,
        session: str | None = None,
        task: str | None = None,
        run: str | int | None = None,
        acquisition: str | None = None,
    ) -> pd.Series:
        """The one row of `runs` these entities name.

        Raises
        ------
        LookupError
            When they name no run, or several (the message lists them).
        """
        asked = dict(subject=subject, session=session, task=task, run=run, acquisition=acquisition)
        table = self.runs
        keep = np.ones(len(table), bool)
        for entity, wanted in asked.items():
            keep &= np.array([_same(wanted, v) for v in table[entity]], bool)
        hits = table[keep]
        shown = {k: v for k, v in asked.items() if v is not None}
        if len(hits) == 0:
            raise LookupError(f"no MEF 3.0 run with {shown} in {self.root}")
        if len(hits) > 1:
            names = ", ".join(Path(p).name for p in hits["path"])
            raise LookupError(
                f"{len(hits)} runs match {shown} in {self.root} ({names}); name one with "
                "subject=, session=, task=, acquisition=, run="
            )
        return hits.iloc[0]

    def open(
        self,
        subject: str | None = None,
        session: str | None = None,
        task: str | None = None,
        run: str | int | None = None,
        acquisition: str | None = None,
        *,
        password: str | None = None,
        **kwargs: Any,
    ) -> xr.Dataset:
        """One run as `mef3lab.open_recording`'s lazy Dataset, its sidecars applied.

        Adds a ``channel_type`` coordinate (MNE's names, from ``channels.tsv``; ``seeg``
        for channels it does not list), ``attrs["bads"]`` (``status`` bad) and
        ``attrs["bad_reasons"]``, ``attrs["power_line_frequency"]`` and
        ``attrs["reference"]`` (``_ieeg.json``), and the ``events_tsv`` and
        ``electrodes_tsv`` attrs that ``rec.mef3.events`` and ``rec.mef3.electrodes`` read.
        Sidecars resolve by BIDS inheritance. Channels that ``channels.tsv`` and the
        recording do not agree on are reported in ``attrs["channel_mismatch"]`` and as a
        warning.

        Parameters
        ----------
        subject, session, task, run, acquisition : str or int, optional
            The run's entities (enough of them to name one run).
        password : str, optional
            The recording's password, if it is encrypted.
        **kwargs
            More of `mef3lab.open_recording`'s keywords (``channels``, ``dtype``, ...).

        Returns
        -------
        xarray.Dataset
            The run's recording, lazy; close it when done.

        Raises
        ------
        LookupError
            When the entities name no run or several.
        mef3lab.errors.RecordingNotFoundError
            When the run's ``.mefd`` is missing (`runs` says so too).
        mef3lab.bids.sidecars.SidecarError
            When a sidecar is malformed (the message names the file and line).

        Examples
        --------
        >>> ds = mef3lab.open_bids("/data/ds004100")  # doctest: +SKIP
        >>> rec = ds.open(subject="01", session="01", task="rest", run=1)  # doctest: +SKIP
        >>> rec.attrs["bads"], rec.mef3.events.head()  # doctest: +SKIP
        """
        row = self.run(subject, session, task, run, acquisition)
        bp = BIDSPath(
            root=self.root,
            datatype="ieeg",
            suffix="ieeg",
            extension=".mefd",
            check=False,
            **{e: row[e] or None for e in ENTITIES},
        )
        rec = open_recording(row["path"], password=password, address=self.address, **kwargs)
        try:
            attrs = _apply(rec, bp)
        except BaseException:
            rec.close()
            raise
        attrs.update(bids_root=str(self.root), bids_run=bp.basename[: -len("_ieeg.mefd")])
        # on the Dataset and on each signal, so that selections of either keep them
        for target in (rec, *rec.data_vars.values()):
            target.attrs.update(attrs)
        return rec


def _sidecar(bp: BIDSPath, suffix: str, extension: str) -> Path | None:
    found = bp.find_matching_sidecar(suffix=suffix, extension=extension, on_error="ignore")
    return Path(found) if found else None


def _apply(rec: xr.Dataset, bp: BIDSPath) -> dict[str, Any]:
    """Put the run's channel types on `rec`; the attrs its other sidecars give."""
    channels = _sidecar(bp, "channels", ".tsv")
    table = read_channels(channels) if channels is not None else None
    attrs = _apply_channels(rec, table, channels)
    ieeg = _sidecar(bp, "ieeg", ".json")
    if ieeg is not None:
        meta = read_json(ieeg)
        line = meta.get("PowerLineFrequency")
        if isinstance(line, int | float) and not isinstance(line, bool):
            attrs["power_line_frequency"] = float(line)
        if meta.get("iEEGReference"):
            attrs["reference"] = str(meta["iEEGReference"])
    events = _sidecar(bp, "events", ".tsv")
    if events is not None:
        read_events(events)  # checked now: rec.mef3.events reads it again
        attrs["events_tsv"] = str(events)
    electrodes = _sidecar(bp, "electrodes", ".tsv")
    if electrodes is not None:
        read_tsv(electrodes, ("name",))
        attrs["electrodes_tsv"] = str(electrodes)
    return attrs


def _apply_channels(
    rec: xr.Dataset, table: pd.DataFrame | None, path: Path | None
) -> dict[str, Any]:
    """Put ``channel_type`` coordinates on `rec`; the bads, and what `table` and `rec` differ on."""
    known = table["name"].tolist() if table is not None else []
    types = dict(zip(known, table["type"], strict=True)) if table is not None else {}
    present: list[str] = []
    for cname in [str(d) for d in rec.dims if str(d) == "channel" or str(d).startswith("channel_")]:
        names = [str(n) for n in rec[cname].values]
        present += names
        mne_types = [BIDS_TO_MNE.get(str(types.get(n) or "SEEG").upper(), "misc") for n in names]
        suffix = cname[len("channel") :]
        rec.coords["channel_type" + suffix] = (cname, np.array(mne_types, dtype=object))
    if table is None:
        return {"bads": []}
    status = table["status"] if "status" in table else pd.Series([None] * len(table))
    bad = table[(status == "bad").to_numpy()]
    attrs: dict[str, Any] = {"bads": [n for n in bad["name"] if n in present]}
    if "status_description" in bad:
        why = zip(bad["name"], bad["status_description"], strict=True)
        attrs["bad_reasons"] = "; ".join(f"{n}: {d}" for n, d in why if pd.notna(d))
    lacking = [n for n in known if n not in present]
    unlisted = [n for n in present if n not in known]
    if lacking or unlisted:
        parts = []
        if lacking:
            parts.append(
                f"{path.name} names {len(lacking)} channel(s) the recording lacks: "
                + ", ".join(lacking)
            )
        if unlisted:
            parts.append(
                f"{len(unlisted)} recording channel(s) are not in {path.name}: "
                + ", ".join(unlisted)
            )
        message = "; ".join(parts)
        attrs["channel_mismatch"] = message
        warnings.warn(message, UserWarning, stacklevel=4)
    return attrs


def open_bids(root: str | os.PathLike, address: str | None = None) -> BidsDataset:
    """An iEEG-BIDS dataset's MEF 3.0 runs: ``.runs`` lists them, ``.open(...)`` opens one.

    Parameters
    ----------
    root : str or os.PathLike
        The dataset's folder.
    address : str, optional
        A mef3lab server to read the runs through ("host:port"); its served roots must
        hold them. None: as `mef3lab.open_recording` decides.

    Returns
    -------
    BidsDataset
        The dataset.

    Raises
    ------
    FileNotFoundError
        When `root` is not a BIDS dataset.

    Examples
    --------
    >>> import mef3lab
    >>> ds = mef3lab.open_bids("/data/ds004100")  # doctest: +SKIP
    >>> ds.runs  # doctest: +SKIP
    >>> rec = ds.open(subject="01", task="rest", run=1)  # doctest: +SKIP
    >>> raw = rec.mef3.to_mne()  # doctest: +SKIP
    """
    return BidsDataset(root, address)
