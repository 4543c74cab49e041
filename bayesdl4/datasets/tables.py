"""GTI and meta tables of datasets: creation, stacking (union of intervals), summaries.

A GTI table is an `astropy.table.Table` with ``START`` and ``STOP`` columns in seconds after the
reference time in its meta (``MJDREFI`` + ``MJDREFF`` in the ``TIMESYS`` scale, TT by default),
as it is stored in GADF files. gammapy 2.1's `GTI` holds the same intervals as absolute times.
"""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.table import Table
from astropy.time import Time

from ..errors import DataFormatError

__all__ = [
    "empty_gti",
    "gti_reference_time",
    "gti_time_sum",
    "gti_union",
    "stack_gti",
    "gti_from_intervals",
    "hstack_columns",
]

TIME_REF_DEFAULT = "2000-01-01T00:00:00"  # gammapy's, in TT


def _reference_meta(reference: Time) -> dict:
    mjd = reference.tt.mjd
    return {
        "MJDREFI": int(np.floor(mjd)),
        "MJDREFF": float(mjd - np.floor(mjd)),
        "TIMESYS": "tt",
        "TIMEUNIT": "s",
        "TIMEREF": "local",
    }


def empty_gti(reference_time=TIME_REF_DEFAULT) -> Table:
    """Empty GTI table referenced to ``reference_time`` (a string is UTC, as gammapy's ``GTI.create``)."""
    reference = reference_time if isinstance(reference_time, Time) else Time(reference_time)
    table = Table({"START": np.zeros(0), "STOP": np.zeros(0)})
    table["START"].unit = table["STOP"].unit = "s"
    table.meta.update(_reference_meta(reference))
    return table


def gti_reference_time(gti: Table) -> Time:
    """Reference time of a GTI table (``MJDREFI`` + ``MJDREFF`` or ``MJDREF``, scale ``TIMESYS``)."""
    meta = {str(k).upper(): v for k, v in gti.meta.items()}
    scale = str(meta.get("TIMESYS", "tt")).lower()
    if "MJDREFI" in meta:
        ref_i, ref_f = float(meta["MJDREFI"]), float(meta.get("MJDREFF", 0.0))
    elif "MJDREF" in meta:
        ref_i, ref_f = float(meta["MJDREF"]), 0.0
    else:
        ref_i, ref_f = Time(TIME_REF_DEFAULT, scale="tt").mjd, 0.0
    try:
        return Time(ref_i, ref_f, format="mjd", scale=scale)
    except ValueError as exc:
        raise DataFormatError(f"GTI table: unknown TIMESYS {scale!r}") from exc


def _seconds(gti: Table, column: str) -> np.ndarray:
    col = gti[column]
    unit = col.unit or u.s
    return u.Quantity(np.asarray(col, dtype=float), unit).to_value("s")


def gti_time_sum(gti: Table | None) -> u.Quantity:
    """Total duration of the intervals [s] (NaN s without a table, as gammapy's ``ontime``)."""
    if gti is None:
        return np.nan * u.s
    return float(np.sum(_seconds(gti, "STOP") - _seconds(gti, "START"))) * u.s


def gti_union(gti: Table) -> Table:
    """Overlapping or touching intervals merged, sorted by start (gammapy's ``GTI.union``)."""
    start, stop = _seconds(gti, "START"), _seconds(gti, "STOP")
    out = Table(meta=dict(gti.meta))
    if start.size:
        order = np.argsort(start, kind="stable")
        start, stop = start[order], stop[order]
        reach = np.maximum.accumulate(stop)
        # a new interval begins where its start lies after every earlier stop
        new = np.concatenate([[True], start[1:] > reach[:-1]])
        stop = np.maximum.reduceat(stop, np.flatnonzero(new))
        start = start[new]
    out["START"] = start * u.s
    out["STOP"] = stop * u.s
    return out


def stack_gti(gti: Table | None, other: Table | None) -> Table | None:
    """Union of two GTI tables, in the reference time of the first (gammapy: ``stack`` + ``union``)."""
    if other is None:
        return None if gti is None else gti.copy()
    if gti is None:
        return other.copy()
    shift = (gti_reference_time(other) - gti_reference_time(gti)).to_value("s")
    start = np.concatenate([_seconds(gti, "START"), _seconds(other, "START") + shift])
    stop = np.concatenate([_seconds(gti, "STOP"), _seconds(other, "STOP") + shift])
    table = Table({"START": start * u.s, "STOP": stop * u.s}, meta=dict(gti.meta))
    return gti_union(table)


def gti_from_intervals(intervals, reference_time=TIME_REF_DEFAULT) -> Table | None:
    """GTI table of ``(start, stop)`` `Time` pairs, referenced to ``reference_time`` (TT)."""
    if not intervals:
        return None
    reference = Time(reference_time, scale="tt")
    start = np.array([(t0 - reference).to_value("s") for t0, _ in intervals])
    stop = np.array([(t1 - reference).to_value("s") for _, t1 in intervals])
    return Table({"START": start * u.s, "STOP": stop * u.s}, meta=_reference_meta(reference))


def hstack_columns(table: Table, other: Table) -> Table:
    """One-row table whose cells hold the values of both tables side by side (gammapy's
    ``hstack_columns``, the stacked ``meta_table``: one row, one array per column)."""
    stacked = Table()
    for column in table.colnames:
        if column not in other.colnames:
            raise DataFormatError(
                f"meta_table: column {column!r} is missing in the table stacked onto it "
                f"(columns {other.colnames}); give both datasets the same meta-table columns"
            )
        data = np.hstack([np.asarray(table[column].data[0]), np.asarray(other[column].data[0])])
        stacked[column] = data[np.newaxis, :]
    return stacked
