# Included by ring.pyx: the segments' header layout (magics, header sizes), the error a
# header that cannot be right raises at attach, and the ring's capacity rounding.
# (The byte map is in ring.pyx's docstring; engine._ref.ring mirrors these numbers.)

# the contract with engine/ipc.py, which checks it at import: bump it whenever the
# cores' methods or attributes change (2: on_corrupt, native put/get with get(None))
ABI = 2

RING_MAGIC = 0x31474E4952504F43       # "COPRING1"
BOARD_MAGIC = 0x314452414F42504F      # "OPBOARD1"
cdef enum:
    C_RING_HEADER = 256
    C_BOARD_HEADER = 64
    C_SLOT_HEADER = 16

RING_HEADER_BYTES = C_RING_HEADER
BOARD_HEADER_BYTES = C_BOARD_HEADER
SLOT_HEADER_BYTES = C_SLOT_HEADER


class CorruptSegment(ValueError):
    """A segment whose header cannot be right (a size that does not fit the mapping)."""


def round_capacity(size_t capacity):
    """The ring's data size: a power of two, at least 4 KiB."""
    cdef size_t c = 4096
    while c < capacity:
        c <<= 1
    return c
