# Included by ring.pyx: the consumer's sleep and the producer's wake.
#
# The handshake lives in the ring header: ``futex`` (u32 at 192) is a counter
# the producer bumps before a FUTEX_WAKE, ``waiters`` (u32 at 196) a flag the
# consumer raises before it sleeps. The consumer raises the flag, reads the
# counter, fences and looks at head/tail again before it sleeps on that counter
# value, so a record committed in between is never slept through. The producer
# takes the flag down itself (xchg) when it wakes: one FUTEX_WAKE per sleep, not
# one per record while the woken consumer waits for a CPU.

cdef extern from *:
    """
    #include <errno.h>
    #include <time.h>
    #include <unistd.h>
    #include <sys/syscall.h>
    #include <linux/futex.h>

    /* Shared (not private) futex ops: the word lives in a MAP_SHARED segment. */
    static int eng_futex_wait(uint32_t *addr, uint32_t val, double seconds) {
        struct timespec ts, *tp = NULL;
        if (seconds >= 0) {
            ts.tv_sec = (time_t)seconds;
            ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
            tp = &ts;
        }
        long r = syscall(SYS_futex, addr, FUTEX_WAIT, val, tp, NULL, 0);
        return r == 0 ? 0 : errno;
    }
    static void eng_futex_wake(uint32_t *addr) {
        syscall(SYS_futex, addr, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
    static double eng_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    }
    """
    int eng_futex_wait(uint32_t *addr, uint32_t val, double seconds) nogil
    void eng_futex_wake(uint32_t *addr) nogil
    double eng_now() nogil
    int usleep(unsigned int usec) nogil

cdef enum:
    C_EINTR = 4
    SPIN = 2000         # tens of microseconds of pause instructions before sleeping


cdef inline void ring_wake(uint32_t *futex, uint32_t *waiters) noexcept nogil:
    """Producer, after a commit and a full fence: wake a consumer whose flag is up."""
    # the producer takes the flag down itself: one wake per sleep, not one per
    # record while the woken consumer waits for a CPU (it raises it again to sleep)
    if eng_load32(waiters) and eng_xchg32(waiters, 0):
        eng_add32(futex)
        eng_futex_wake(futex)


cdef bint ring_wait(uint64_t *head, uint64_t *tail, uint32_t *futex, uint32_t *waiters,
                    double deadline):
    """Consumer: sleep until the head moves or the deadline (<0: none) passes; False on timeout.

    A signal ends the wait (EINTR) so Python handlers run; their exception propagates.
    """
    cdef uint32_t seen
    cdef double left = -1.0
    cdef int err, i
    # a short bounded spin first: a busy producer is usually microseconds away,
    # and a futex sleep/wake round trip costs more than that
    with nogil:
        for i in range(SPIN):
            if eng_load_acq(head) != eng_load_rlx(tail):
                return True
            eng_relax()
    while True:
        # the futex word is read BEFORE the flag goes up: the producer takes the flag
        # down (xchg) then bumps the word, so a bump that took this flag down comes
        # after ``seen`` and the sleep below returns at once. Read after the flag,
        # ``seen`` could already hold that bump (its wake spent before we sleep) while
        # the flag is down: no later commit would wake us (until the 0.5 s poll)
        seen = eng_load32(futex)
        eng_store32(waiters, 1)
        eng_fence()
        if eng_load_acq(head) != eng_load_rlx(tail):
            eng_store32(waiters, 0)
            return True
        if deadline >= 0:
            left = deadline - eng_now()
            if left <= 0:
                eng_store32(waiters, 0)
                return False
            if left > 0.5:
                left = 0.5   # wake now and then so a producer lost mid-wake cannot strand us
        else:
            left = 0.5
        with nogil:
            err = eng_futex_wait(futex, seen, left)
        if err == C_EINTR:
            eng_store32(waiters, 0)
            PyErr_CheckSignals()
            return eng_load_acq(head) != eng_load_rlx(tail)
