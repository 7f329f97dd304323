"""timex: the kernel clock discipline (NTP/PTP sync state, offset, error, PPS), from adjtimex(2).

Read-only (``modes`` = 0) through ctypes. Offsets are microseconds, or
nanoseconds when the kernel sets STA_NANO; frequencies are ppm with 16-bit
fractions, as node_exporter converts them.
"""
from __future__ import annotations

import ctypes
import ctypes.util

from engine.collectors import NoData, collector
from engine.textformat import Counter, Gauge

STA_NANO = 0x2000
TIME_ERROR = 5
PPM16FRAC = 1_000_000.0 * 65536.0


class Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
                ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("_reserved", ctypes.c_int * 11)]


_libc = None


def read_timex() -> tuple[int, Timex]:
    """(adjtimex's clock state, the struct)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    tx = Timex()
    state = _libc.adjtimex(ctypes.byref(tx))
    if state < 0:
        raise NoData(f"adjtimex failed: errno {ctypes.get_errno()}")
    return state, tx


def families(state: int, tx: Timex) -> list:
    div = 1e9 if tx.status & STA_NANO else 1e6
    g = [("sync_status", "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
          0.0 if state == TIME_ERROR else 1.0),
         ("offset_seconds", "Time offset in between local system and reference clock.", tx.offset / div),
         ("frequency_adjustment_ratio", "Local clock frequency adjustment.", 1 + tx.freq / PPM16FRAC),
         ("maxerror_seconds", "Maximum error in seconds.", tx.maxerror / 1e6),
         ("estimated_error_seconds", "Estimated error in seconds.", tx.esterror / 1e6),
         ("status", "Value of the status array bits.", tx.status),
         ("loop_time_constant", "Phase-locked loop time constant.", tx.constant),
         ("tick_seconds", "Seconds between clock ticks.", tx.tick / 1e6),
         ("pps_frequency_hertz", "Pulse per second frequency.", tx.ppsfreq / PPM16FRAC),
         ("pps_jitter_seconds", "Pulse per second jitter.", tx.jitter / div),
         ("pps_shift_seconds", "Pulse per second interval duration.", tx.shift),
         ("pps_stability_hertz", "Pulse per second stability, average of recent frequency changes.",
          tx.stabil / PPM16FRAC),
         ("tai_offset_seconds", "International Atomic Time (TAI) offset.", tx.tai)]
    c = [("pps_jitter_total", "Pulse per second count of jitter limit exceeded events.", tx.jitcnt),
         ("pps_calibration_total", "Pulse per second count of calibration intervals.", tx.calcnt),
         ("pps_error_total", "Pulse per second count of calibration errors.", tx.errcnt),
         ("pps_stability_exceeded_total", "Pulse per second count of stability limit exceeded events.", tx.stbcnt)]
    return ([Gauge(f"node_timex_{n}", doc, value=v) for n, doc, v in g] +
            [Counter(f"node_timex_{n}", doc, value=v) for n, doc, v in c])


@collector("timex")
def collect(env):
    return families(*read_timex())
