"""Values written in the configuration language's units ("400 Gb/s", "48 KiB", "600 ns"),
as a sweep file gives its varied values (docs/configuration.md)."""
from __future__ import annotations

import re

# unit -> (kind, value in the base unit: bytes, bytes/s, Hz or s)
UNITS: dict[str, tuple[str, float]] = {}
for _u, _f in [("B", 1), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("PB", 1e15),
               ("KiB", 2**10), ("MiB", 2**20), ("GiB", 2**30), ("TiB", 2**40)]:
    UNITS[_u] = ("size", _f)
    UNITS[_u + "/s"] = ("bandwidth", _f)
for _u, _f in [("b/s", 1 / 8), ("Kb/s", 1e3 / 8), ("Mb/s", 1e6 / 8), ("Gb/s", 1e9 / 8), ("Tb/s", 1e12 / 8),
               ("Pb/s", 1e15 / 8), ("bps", 1 / 8), ("Kbps", 1e3 / 8), ("Mbps", 1e6 / 8), ("Gbps", 1e9 / 8),
               ("Tbps", 1e12 / 8), ("Pbps", 1e15 / 8)]:
    UNITS[_u] = ("bandwidth", _f)
for _u, _f in [("Hz", 1), ("kHz", 1e3), ("MHz", 1e6), ("GHz", 1e9)]:
    UNITS[_u] = ("frequency", _f)
for _u, _f in [("ps", 1e-12), ("ns", 1e-9), ("us", 1e-6), ("ms", 1e-3), ("s", 1)]:
    UNITS[_u] = ("time", _f)

_QUANTITY = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z/]+)?\s*$")


def parse_value(text: str) -> tuple[float, str | None] | None:
    """'400 Gb/s' -> (5e10, 'Gb/s') in the base unit; '3' -> (3.0, None); other text -> None."""
    m = _QUANTITY.match(text)
    if not m:
        return None
    number, unit = float(m.group(1)), m.group(2)
    if unit is None:
        return number, None
    if unit not in UNITS:
        return None
    return number * UNITS[unit][1], unit


def parse_quantities(texts: list[str]) -> tuple[list[float] | None, str | None]:
    """Values as written -> (numbers in one unit, that unit); the unit is the one written
    most often (ties: the first written), '' for plain numbers. (None, None) when a value
    has no numeric reading, or the units are of different kinds."""
    parsed = [parse_value(t) for t in texts]
    if any(p is None for p in parsed):
        return None, None
    units = [p[1] for p in parsed if p[1]]
    if not units:
        return [p[0] for p in parsed], ""
    if len(units) < len(parsed) or len({UNITS[u][0] for u in units}) > 1:
        return None, None
    unit = max(dict.fromkeys(units), key=units.count)
    return [p[0] / UNITS[unit][1] for p in parsed], unit
