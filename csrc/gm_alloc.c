/* Allocation. Every block of the core goes through these, so a test can make the n-th allocation from now
 * fail (gm_test_fail_alloc) and count the blocks still held (gm_test_live_blocks): the failure paths are
 * exercised, and shown to leave the matcher as it was and to leak nothing. And growable buffers, and the
 * clock the builders' deadlines are read on. */
#define _POSIX_C_SOURCE 200809L
#include "gm_internal.h"

#include <stdlib.h>
#include <time.h>

static int64_t alloc_countdown = 0; /* > 0: the allocation that brings it to 0 fails */
static int64_t live_blocks = 0;

static inline int alloc_fails(void) {
    return ATOMIC_LOAD(&alloc_countdown) > 0 && ATOMIC_ADD(&alloc_countdown, -1) == 0;
}

void *gm_malloc(size_t n) {
    void *p = alloc_fails() ? NULL : malloc(n ? n : 1);
    if (p) ATOMIC_ADD(&live_blocks, 1);
    return p;
}

void *gm_calloc(size_t n, size_t size) {
    void *p = alloc_fails() ? NULL : calloc(n ? n : 1, size ? size : 1);
    if (p) ATOMIC_ADD(&live_blocks, 1);
    return p;
}

void *gm_realloc(void *old, size_t n) {
    void *p = alloc_fails() ? NULL : realloc(old, n ? n : 1);
    if (p && !old) ATOMIC_ADD(&live_blocks, 1);
    return p;
}

void gm_free(void *p) {
    if (p) ATOMIC_ADD(&live_blocks, -1);
    free(p);
}

void gm_free_each(void *const *blocks, size_t n) {
    for (size_t i = 0; i < n; i++) gm_free(blocks[i]);
}

void gm_test_fail_alloc(int64_t n) { ATOMIC_STORE(&alloc_countdown, n); }
int64_t gm_test_live_blocks(void) { return ATOMIC_LOAD(&live_blocks); }

int grow_buffer(void **buf, int64_t *cap, int64_t need, size_t elem) {
    int64_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *p = gm_realloc(*buf, (size_t)c * elem);
    if (!p) return GM_NOMEM;
    *buf = p;
    *cap = c;
    return 0;
}

int grow32_buffer(int32_t **buf, int32_t *cap, int64_t need) {
    int64_t c = *cap;
    int r = grow_buffer((void **)buf, &c, need, sizeof(int32_t));
    if (c > INT32_MAX) return GM_NOMEM;
    *cap = (int32_t)c;
    return r;
}

double gm_seconds_now(void) {
#ifdef _WIN32
    return (double)GetTickCount64() * 1e-3;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
#endif
}
