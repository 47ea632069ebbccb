/* The fill cache (see gm_fill_cache in gm_core.h): masks the fill computed, kept per parse configuration.
 * A configuration is the lexer state and context, and the tops of the stacks as deep as the fill's parses
 * read them; a set-associative table, each set behind its own lock when matchers share it. */
#include "gm_internal.h"


/* A fill cache key. First part, compared whole: table state and context; the indentation width only
 * where it is read (at a line start, or inside a newline lexeme). Second part, what the fill read of
 * the stacks: the indentation stack's length if read (else -1), then the top of each stack as deep
 * as the fill's parses popped it (vs_pop keeps the lowest base; vs_top reads one state under it, and
 * vs_below_top one more). */
uint64_t fill_key_first(const gm_matcher *m, int32_t ts, int32_t *k) {
    k[0] = ts;
    gm_ictx c = m->ctx;
    if (!c.line_start && !(m->g->lex_nl && ts < m->g->n_lex_states && m->g->lex_nl[ts])) c.width = c.altwidth = 0;
    memcpy(k + 1, &c, sizeof(gm_ictx));
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int32_t j = 0; j < KEY_FIRST; j++) h = (h ^ (uint32_t)k[j]) * 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 29);
}

static inline int stack_top_equal(const gm_stack *st, const int32_t *saved) {
    const int32_t n = saved[0];
    return n <= st->len && !memcmp(saved + 1, st->data + st->len - n, (size_t)n * sizeof(int32_t));
}

struct gm_fill_cache {
    int32_t n_words, n_sets, ways;
    int32_t shared;          /* used by several matchers, maybe on several threads: each set locked */
    gm_fill_entry *entries;  /* [n_sets * ways]: a configuration goes to the set its hash names */
    int32_t *next;           /* [n_sets] the way to replace next in each set (round robin) */
    gm_lock *locks;          /* [n_sets] when shared */
    int64_t hits, misses, n_masks;
};

gm_fill_cache *gm_fill_cache_new(int32_t n_words, int32_t n_sets, int32_t ways, int shared) {
    gm_fill_cache *c = gm_calloc(1, sizeof(gm_fill_cache));
    if (!c) return NULL;
    c->n_words = n_words;
    c->n_sets = n_sets;
    c->ways = ways;
    c->shared = shared;
    c->entries = gm_calloc((size_t)n_sets * ways, sizeof(gm_fill_entry));
    c->next = gm_calloc((size_t)n_sets, sizeof(int32_t));
    c->locks = shared ? gm_calloc((size_t)n_sets, sizeof(gm_lock)) : NULL;
    int32_t locked = 0;
    if (c->entries && c->next && (!shared || c->locks))
        while (locked < (shared ? n_sets : 0) && !LOCK_INIT(&c->locks[locked])) locked++;
    if (!c->entries || !c->next || (shared && (!c->locks || locked < n_sets))) {
        while (locked--) LOCK_DESTROY(&c->locks[locked]);
        GM_FREE_ALL(c->entries, c->next, c->locks, c);
        return NULL;
    }
    return c;
}

void gm_fill_cache_free(gm_fill_cache *c) {
    if (!c) return;
    for (int32_t i = 0; i < c->n_sets * c->ways; i++) {
        gm_free(c->entries[i].key);
        gm_free(c->entries[i].mask);
    }
    for (int32_t i = 0; c->shared && i < c->n_sets; i++) LOCK_DESTROY(&c->locks[i]);
    GM_FREE_ALL(c->entries, c->next, c->locks, c);
}

int64_t gm_fill_cache_memory(const gm_fill_cache *c) {
    if (!c) return 0;
    const int64_t n = (int64_t)c->n_sets * c->ways;
    int64_t b = (int64_t)sizeof(*c) + c->n_sets * (4 + (c->shared ? (int64_t)sizeof(gm_lock) : 0))
              + n * (int64_t)sizeof(gm_fill_entry) + ATOMIC_LOAD(&c->n_masks) * 4 * (int64_t)c->n_words;
    for (int64_t i = 0; i < n; i++) b += 4 * (int64_t)c->entries[i].key_cap; /* (racy read: a figure) */
    return b;
}

void gm_fill_cache_stats(const gm_fill_cache *c, int64_t *hits, int64_t *misses) {
    *hits = c ? ATOMIC_LOAD(&c->hits) : 0;
    *misses = c ? ATOMIC_LOAD(&c->misses) : 0;
}

static inline int32_t fill_set(const gm_fill_cache *c, uint64_t hash) {
    return (int32_t)((hash >> 32) % (uint64_t)c->n_sets);
}

int fill_cache_lookup(const gm_matcher *m, gm_fill_cache *c, uint64_t hash, const int32_t *first, uint32_t *out) {
    int found = 0;
    const int32_t set = fill_set(c, hash);
    if (c->shared) LOCK(&c->locks[set]);
    for (int32_t i = set * c->ways; i < (set + 1) * c->ways && !found; i++) {
        const gm_fill_entry *e = &c->entries[i];
        if (!e->valid || e->hash != hash || memcmp(e->key, first, KEY_FIRST * sizeof(int32_t))) continue;
        const int32_t *k = e->key + KEY_FIRST;
        if (k[0] >= 0 && k[0] != m->ind.len) continue;
        if (!stack_top_equal(&m->lr, k + 1)) continue;
        if (!stack_top_equal(&m->ind, k + 2 + k[1])) continue;
        memcpy(out, e->mask, (size_t)c->n_words * sizeof(uint32_t));
        found = 1;
    }
    if (c->shared) UNLOCK(&c->locks[set]);
    ATOMIC_ADD(found ? &c->hits : &c->misses, 1);
    return found;
}

int fill_cache_store(const gm_matcher *m, gm_fill_cache *c, uint64_t hash, const int32_t *first,
                     const uint32_t *mask) {
    const int32_t lr_low = m->lr_low >= 2 ? m->lr_low - 2 : 0, ind_low = m->ind_low >= 1 ? m->ind_low - 1 : 0;
    const int32_t lr_n = m->lr.len - lr_low, ind_n = m->ind.len - ind_low;
    const int32_t set = fill_set(c, hash);
    int rc = 0;
    if (c->shared) LOCK(&c->locks[set]);
    gm_fill_entry *e = &c->entries[set * c->ways + c->next[set]];
    if (!e->mask && (e->mask = gm_malloc((size_t)c->n_words * sizeof(uint32_t)))) ATOMIC_ADD(&c->n_masks, 1);
    if (!e->mask || grow32(&e->key, &e->key_cap, KEY_FIRST + 3 + lr_n + ind_n)) {
        rc = GM_NOMEM; /* the entry is as it was (or empty, if it had no mask yet) */
    } else {
        int32_t *k = e->key;
        memcpy(k, first, KEY_FIRST * sizeof(int32_t));
        k += KEY_FIRST;
        *k++ = m->ind_len_read ? m->ind.len : -1;
        *k++ = lr_n;
        memcpy(k, m->lr.data + lr_low, (size_t)lr_n * sizeof(int32_t));
        k += lr_n;
        *k++ = ind_n;
        memcpy(k, m->ind.data + ind_low, (size_t)ind_n * sizeof(int32_t));
        e->hash = hash;
        e->valid = 1;
        memcpy(e->mask, mask, (size_t)c->n_words * sizeof(uint32_t));
        c->next[set] = (c->next[set] + 1) % c->ways;
    }
    if (c->shared) UNLOCK(&c->locks[set]);
    return rc;
}
