"""Montages: which derivations (rows) the scroller shows, computed from the referential samples.

`resolve` turns what a person writes (None, ``"average"``, ``"double banana"``,
``"transverse"``, ``"shaft bipolar"``, ``"shaft average"`` or ``["Fp1-F3", ...]``) into
`Derivation` rows of the recording's own channel names; `apply` computes them.
docs/scroller.md says how 10-20 names are matched, docs/ieeg.md how shafts are found.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UnknownChannelError
from ..model import contact_parts, shafts

__all__ = ["CHAINS", "SHAFT_MONTAGES", "Derivation", "MontageSpec", "apply", "resolve"]

MontageSpec = None | str | Sequence[str]

#: Old (10-20) and new (10-10) names of the same electrodes.
ALIASES = {"t3": "t7", "t4": "t8", "t5": "p7", "t6": "p8"}

#: The standard bipolar chains, written in 10-20 names.
CHAINS: dict[str, tuple[str, ...]] = {
    "double banana": (
        "Fp1-F7",
        "F7-T3",
        "T3-T5",
        "T5-O1",
        "Fp2-F8",
        "F8-T4",
        "T4-T6",
        "T6-O2",
        "Fp1-F3",
        "F3-C3",
        "C3-P3",
        "P3-O1",
        "Fp2-F4",
        "F4-C4",
        "C4-P4",
        "P4-O2",
        "Fz-Cz",
        "Cz-Pz",
    ),
    "transverse": (
        "Fp1-Fp2",
        "F7-F3",
        "F3-Fz",
        "Fz-F4",
        "F4-F8",
        "T3-C3",
        "C3-Cz",
        "Cz-C4",
        "C4-T4",
        "T5-P3",
        "P3-Pz",
        "Pz-P4",
        "P4-T6",
        "O1-O2",
    ),
}


#: The montages of depth and grid electrodes, read along each shaft (never across shafts).
SHAFT_MONTAGES = ("shaft bipolar", "shaft average")


@dataclass(frozen=True)
class Derivation:
    """One row on screen: channel `plus` minus the mean of `minus` (nothing when it is empty).

    `shaft` names the shaft a shaft montage's row belongs to ("" for other montages).
    """

    name: str
    plus: str
    minus: tuple[str, ...] = ()
    shaft: str = ""

    @property
    def inputs(self) -> tuple[str, ...]:
        """The channels the row is computed from, `plus` first."""
        return (self.plus, *self.minus)


def _key(name: str) -> str:
    k = name.strip().lower()
    return ALIASES.get(k, k)


def resolve(
    spec: MontageSpec,
    names: Sequence[str],
    group_of: dict[str, float] | None = None,
    shaft_of: dict[str, str] | None = None,
) -> tuple[tuple[Derivation, ...], list[str]]:
    """The derivations `spec` means for a recording with channels `names`.

    Parameters
    ----------
    spec : None, str or sequence of str
        None (or ``"as recorded"``, ``"referential"``); ``"average"`` (or ``"car"``,
        ``"common average"``); a chain of `CHAINS`; one of `SHAFT_MONTAGES`; or pairs
        ``"A-B"``. Channel names match case-insensitively and through `ALIASES`.
    names : sequence of str
        The recording's channels, in the order rows as recorded and averages take.
    group_of : dict of str to float, optional
        Each channel's rate: an average or a pair stays within one rate group, since
        channels of different rates share no sample grid.
    shaft_of : dict of str to str, optional
        The shaft (electrode group) of channels whose shaft is known, e.g. from a BIDS
        ``electrodes.tsv``; the others are grouped by name (`mef3lab.model.shafts`).

    Returns
    -------
    derivations : tuple of Derivation
        The rows, in the montage's order.
    notes : list of str
        What a chain skipped because its channels are missing.

    Raises
    ------
    ValueError
        For a montage it does not know, a malformed pair, a pair across rates, or a shaft
        montage of a recording without shafts.
    UnknownChannelError
        For a pair naming a channel the recording lacks, or a chain with no link it has.
    """
    rate = group_of or {n: 0.0 for n in names}
    lookup = {_key(n): n for n in names}
    if spec is None or (
        isinstance(spec, str) and spec.strip().lower() in ("", "as recorded", "referential")
    ):
        return tuple(Derivation(n, n) for n in names), []
    if isinstance(spec, str):
        kind = spec.strip().lower()
        if kind in ("average", "car", "common average"):
            return tuple(
                Derivation(f"{n}-avg", n, tuple(m for m in names if rate[m] == rate[n]))
                for n in names
            ), []
        if kind in SHAFT_MONTAGES:
            return _along_shafts(kind, names, rate, shaft_of)
        if kind not in CHAINS:
            raise ValueError(
                f"unknown montage {spec!r}: use None (as recorded), 'average', "
                f"{', '.join(repr(c) for c in (*CHAINS, *SHAFT_MONTAGES))} or a list of "
                "'A-B' pairs"
            )
        found, missing = [], []
        for link in CHAINS[kind]:
            a, b = link.split("-")
            if _key(a) in lookup and _key(b) in lookup:
                found.append(_pair(lookup[_key(a)], lookup[_key(b)], rate))
            else:
                missing.append(link)
        if not found:
            raise UnknownChannelError(
                f"the {kind} montage needs 10-20 channel names (Fp1, F3, T3/T7, ...); "
                f"this recording has {_some(names)}"
            )
        notes = (
            [
                f"{kind}: {len(missing)} of {len(CHAINS[kind])} links skipped (channels missing): "
                f"{', '.join(missing)}"
            ]
            if missing
            else []
        )
        return tuple(found), notes
    pairs = [str(p) for p in spec]
    if not pairs:
        raise ValueError("a montage of pairs needs at least one 'A-B' pair")
    return tuple(_parse_pair(p, lookup, names, rate) for p in pairs), []


def _along_shafts(
    kind: str, names: Sequence[str], rate: dict[str, float], shaft_of: dict[str, str] | None
) -> tuple[tuple[Derivation, ...], list[str]]:
    """The rows of a shaft montage: neighbours along each shaft, or each shaft's average."""
    found = shafts(names, shaft_of)
    if not found:
        raise ValueError(
            f"the {kind} montage needs depth or grid contacts named by shaft and number "
            f"(LA1, LA2, …, RB'1, …) or electrode groups; no shaft of two or more contacts "
            f"was found among {_some(list(names))}"
        )
    rows, notes = [], []
    for shaft, contacts in found.items():
        if kind == "shaft average":
            rows += [
                Derivation(
                    f"{c}-avg {shaft}", c, tuple(m for m in contacts if rate[m] == rate[c]), shaft
                )
                for c in contacts
            ]
            continue
        for a, b in zip(contacts, contacts[1:], strict=False):
            if rate[a] != rate[b]:
                notes.append(f"{a}-{b} left out: {a} and {b} have different sampling rates")
                continue
            rows.append(Derivation(f"{a}-{b}", a, (b,), shaft))
            (la, na), (lb, nb) = contact_parts(a), contact_parts(b)
            if la == lb and na is not None and nb is not None and nb - na > 1:
                skipped = ", ".join(f"{la}{k}" for k in range(na + 1, nb))
                notes.append(f"{a}-{b} skips {skipped} (not in the recording)")
    return tuple(rows), notes


def _parse_pair(
    text: str, lookup: dict[str, str], names: Sequence[str], rate: dict[str, float]
) -> Derivation:
    """The pair "A-B", split at the dash that leaves two channel names (names may hold dashes)."""
    for i, ch in enumerate(text):
        if ch == "-" and _key(text[:i]) in lookup and _key(text[i + 1 :]) in lookup:
            return _pair(lookup[_key(text[:i])], lookup[_key(text[i + 1 :])], rate)
    if "-" not in text:
        raise ValueError(f"montage pair {text!r} is not of the form 'A-B' (e.g. 'Fp1-F3')")
    unknown = [p for p in text.split("-") if _key(p) not in lookup]
    raise UnknownChannelError(
        f"montage pair {text!r} names {', '.join(repr(u) for u in unknown) or 'channels'} "
        f"which this recording does not have; it has {_some(names)}"
    )


def _pair(a: str, b: str, rate: dict[str, float]) -> Derivation:
    if rate[a] != rate[b]:
        raise ValueError(
            f"{a}-{b}: {a} is sampled at {rate[a]:g} Hz and {b} at {rate[b]:g} Hz; "
            "a bipolar pair needs two channels of one rate"
        )
    return Derivation(f"{a}-{b}", a, (b,))


def _some(names: Sequence[str], k: int = 8) -> str:
    shown = ", ".join(names[:k])
    return f"{shown}, ... ({len(names)} channels)" if len(names) > k else shown


def apply(derivations: Sequence[Derivation], names: Sequence[str], data: np.ndarray) -> np.ndarray:
    """The rows of `derivations` from `data`: NaN where an input is NaN.

    The average of a common-average row ignores channels that are NaN at a sample (one
    channel's gap must not blank every row) and is NaN only where all are.

    Parameters
    ----------
    derivations : sequence of Derivation
        The rows to compute; their inputs are among `names`.
    names : sequence of str
        The channel of each row of `data`.
    data : numpy.ndarray
        (len(names), samples) of one rate group.

    Returns
    -------
    numpy.ndarray
        (len(derivations), samples) float32.
    """
    row = {n: i for i, n in enumerate(names)}
    out = np.empty((len(derivations), data.shape[1]), np.float32)
    means: dict[tuple[str, ...], np.ndarray] = {}
    for i, d in enumerate(derivations):
        x = data[row[d.plus]]
        if not d.minus:
            out[i] = x
            continue
        if len(d.minus) == 1:
            out[i] = x - data[row[d.minus[0]]]
            continue
        if d.minus not in means:
            rows = data[[row[m] for m in d.minus]].astype(np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore", RuntimeWarning
                )  # all-NaN columns (a gap in every channel)
                means[d.minus] = np.nanmean(rows, axis=0)
        out[i] = x - means[d.minus]
    return out
