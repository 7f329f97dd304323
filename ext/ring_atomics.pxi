# Included by ring.pyx: the memory-ordering primitives the ring and board use.
# Every load and store of a word the other process writes goes through one of
# these, so the ordering (acquire/release, sequentially consistent for the
# futex handshake) is stated in one place.

cdef extern from *:
    """
    #include <stdint.h>

    static inline uint64_t eng_load_acq(uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline uint64_t eng_load_rlx(uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline void eng_store_rel(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline uint32_t eng_load32(uint32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
    static inline void eng_store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
    static inline void eng_add32(uint32_t *p) { __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST); }
    static inline uint32_t eng_xchg32(uint32_t *p, uint32_t v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
    static inline void eng_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
    static inline void eng_fence_acq(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
    static inline void eng_relax(void) {
    #if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
    #else
        __asm__ volatile("" ::: "memory");
    #endif
    }
    """
    uint64_t eng_load_acq(uint64_t *p) nogil
    uint64_t eng_load_rlx(uint64_t *p) nogil
    void eng_store_rel(uint64_t *p, uint64_t v) nogil
    uint32_t eng_load32(uint32_t *p) nogil
    void eng_store32(uint32_t *p, uint32_t v) nogil
    void eng_add32(uint32_t *p) nogil
    uint32_t eng_xchg32(uint32_t *p, uint32_t v) nogil
    void eng_fence() nogil
    void eng_fence_acq() nogil
    void eng_relax() nogil
