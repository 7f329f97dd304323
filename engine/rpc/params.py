"""Typed access to a call's JSON parameters: each getter checks one value at the boundary."""
from __future__ import annotations

from datetime import datetime

from engine.rpc import bad_request

_MISSING = object()
MAX_OFFSET = 1 << 40   # 1 TiB: beyond any log or file served here; larger offsets fail in seek (EINVAL)
MAX_TIME = 253402300799.0   # 9999-12-31 23:59:59 UTC: what datetime and the stores can hold
MAX_ID = (1 << 63) - 1      # tenant, database ids: SQLite integers


def get_str(params: dict, key: str, default=_MISSING, *, max_len: int = 4096) -> str:
    value = params.get(key, default)
    if value is _MISSING:
        raise bad_request(f"parameter {key!r} is required")
    if not isinstance(value, str):
        raise bad_request(f"parameter {key!r} must be a string")
    if len(value) > max_len:
        raise bad_request(f"parameter {key!r} is longer than {max_len} characters")
    if "\x00" in value:
        raise bad_request(f"parameter {key!r} contains a NUL byte", "nul_byte")
    return value


def get_int(params: dict, key: str, default=_MISSING, *, lo: int | None = None, hi: int | None = None) -> int:
    value = params.get(key, default)
    if value is _MISSING:
        raise bad_request(f"parameter {key!r} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"parameter {key!r} must be an integer")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise bad_request(f"parameter {key!r} must be within [{lo}, {hi}]")
    return value


def get_float(params: dict, key: str, default=_MISSING, *, lo: float | None = None,
              hi: float | None = None) -> float | None:
    value = params.get(key, default)
    if value is _MISSING:
        raise bad_request(f"parameter {key!r} is required")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"parameter {key!r} must be a number")
    if lo is not None and not value >= lo or hi is not None and not value <= hi:
        raise bad_request(f"parameter {key!r} must be within [{lo}, {hi}]")
    return float(value)


def get_bool(params: dict, key: str, default: bool = False) -> bool:
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise bad_request(f"parameter {key!r} must be true or false")
    return value


def get_list(params: dict, key: str, default=_MISSING, *, max_items: int = 1000) -> list:
    value = params.get(key, default)
    if value is _MISSING:
        raise bad_request(f"parameter {key!r} is required")
    if not isinstance(value, list) or len(value) > max_items:
        raise bad_request(f"parameter {key!r} must be a list of at most {max_items} items")
    return value


def get_time(params: dict, key: str) -> float | None:
    """Epoch seconds, or local time text ``YYYY-MM-DD HH:MM:SS[.ffffff]`` as in the OBServer logs."""
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 0 <= value <= MAX_TIME:
            raise bad_request(f"{key}: epoch seconds within [0, {MAX_TIME:.0f}] (year 9999)")
        return float(value)
    if isinstance(value, str):
        for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
            try:
                return datetime.strptime(value, fmt).timestamp()
            except (ValueError, OverflowError, OSError):
                continue
    raise bad_request(f"{key}: epoch seconds or 'YYYY-MM-DD HH:MM:SS'")


def only(params: dict, *known: str) -> None:
    """Refuse parameters a call does not know (a typo must not silently do the default)."""
    if not params:
        return
    extra = sorted(set(params) - set(known))
    if extra:
        raise bad_request(f"unknown parameter(s): {', '.join(extra)}")
