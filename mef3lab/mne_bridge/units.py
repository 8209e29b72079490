"""Volts per unit of a channel, from its canonical units symbol: how MNE wants samples scaled."""

from __future__ import annotations

from ..model import canonical_units

__all__ = ["VOLTS_PER_UNIT", "volts_per_unit"]

#: The canonical symbols `mef3lab.model.canonical_units` gives, in volts.
VOLTS_PER_UNIT = {"µV": 1e-6, "mV": 1e-3, "V": 1.0}


def volts_per_unit(units: str) -> float | None:
    """Volts per unit of `units` (the file's text, any spelling), or None when not a voltage.

    Parameters
    ----------
    units : str
        A channel's units as the file stores them, e.g. ``"uV"`` or ``"microvolts"``.

    Returns
    -------
    float or None
        ``1e-6`` for microvolts, ``1e-3`` for millivolts, ``1.0`` for volts; None otherwise.
    """
    return VOLTS_PER_UNIT.get(canonical_units(units))
