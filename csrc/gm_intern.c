/* The table builder's own tables: a hash map, and what it interns through it: the terminal sequences a
 * token feeds (each one its parent and one more element) and the whitespace ops of t_nl lexemes. */
#include "gm_internal.h"

int map_init(i64map *mp, int64_t cap) {
    mp->cap = cap;
    mp->n = 0;
    mp->keys = gm_malloc((size_t)cap * sizeof(int64_t));
    mp->vals = gm_malloc((size_t)cap * sizeof(int32_t));
    if (!mp->keys || !mp->vals) return GM_NOMEM;
    memset(mp->keys, 0xff, (size_t)cap * sizeof(int64_t)); /* key -1 = empty */
    return 0;
}

void map_free(i64map *mp) {
    gm_free(mp->keys);
    gm_free(mp->vals);
}

void map_clear(i64map *mp) {
    memset(mp->keys, 0xff, (size_t)mp->cap * sizeof(int64_t));
    mp->n = 0;
}

int map_reserve(i64map *mp) {
    if (mp->n * 2 < mp->cap) return 0;
    i64map bigger;
    if (map_init(&bigger, mp->cap * 2)) {
        map_free(&bigger);
        return GM_NOMEM;
    }
    for (int64_t i = 0; i < mp->cap; i++) {
        if (mp->keys[i] == -1) continue;
        int f;
        *map_slot(&bigger, mp->keys[i], &f) = mp->vals[i];
    }
    map_free(mp);
    *mp = bigger;
    return 0;
}

int32_t seq_append(seq_table *st, int32_t seq, int32_t term) {
    if (map_reserve(&st->map)) return GM_NOMEM;
    int found;
    int32_t *slot = map_slot(&st->map, ((int64_t)seq << 32) | (uint32_t)term, &found);
    if (found) return *slot;
    if (grow32(&st->parent, &st->parent_cap, (int64_t)st->n + 1)) return GM_NOMEM;
    if (grow32(&st->term, &st->term_cap, (int64_t)st->n + 1)) return GM_NOMEM;
    st->parent[st->n] = seq;
    st->term[st->n] = term;
    *slot = st->n;
    return st->n++;
}

int32_t wsop_intern(wsop_table *t, uint8_t reset, const uint8_t *b, int64_t n) {
    uint64_t h = 1469598103934665603ULL ^ reset;
    for (int64_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    int64_t key = (int64_t)(h & INT64_MAX); /* non-negative (-1 marks empty slots), every low bit kept: the
                                             * two empty ops differ only in reset, the last bit */
    if (map_reserve(&t->map)) return GM_NOMEM;
    int found;
    int32_t *slot = map_slot(&t->map, key, &found);
    if (found) {
        int32_t k = *slot;
        if (t->reset[k] != reset || t->begin[k + 1] - t->begin[k] != n || memcmp(t->bytes + t->begin[k], b, (size_t)n))
            return GM_HASH_COLLISION;
        return k;
    }
    int64_t at = t->begin[t->n];
    if (grow((void **)&t->bytes, &t->bytes_cap, at + n + 1, 1) || grow((void **)&t->reset, &t->reset_cap, t->n + 1, 1) ||
        grow32(&t->begin, &t->begin_cap, (int64_t)t->n + 2))
        return GM_NOMEM;
    memcpy(t->bytes + at, b, (size_t)n);
    t->reset[t->n] = reset;
    t->begin[t->n + 1] = (int32_t)(at + n);
    *slot = t->n;
    return t->n++;
}

/* The interned sequences as seq_begin / seq_terms (parents always precede children). */
static int materialize_seqs(const seq_table *st, gm_build *out) {
    out->n_seqs = st->n;
    out->seq_begin = gm_malloc((size_t)(st->n + 1) * sizeof(int32_t));
    int32_t *lens = gm_malloc((size_t)st->n * sizeof(int32_t));
    if (!out->seq_begin || !lens) {
        gm_free(lens);
        return GM_NOMEM;
    }
    int64_t total = 0;
    for (int32_t s = 0; s < st->n; s++) {
        lens[s] = s == 0 ? 0 : lens[st->parent[s]] + 1;
        out->seq_begin[s] = (int32_t)total;
        total += lens[s];
    }
    out->seq_begin[st->n] = (int32_t)total;
    out->n_seq_terms = total;
    out->seq_terms = gm_malloc((size_t)(total ? total : 1) * sizeof(int32_t));
    if (!out->seq_terms) {
        gm_free(lens);
        return GM_NOMEM;
    }
    for (int32_t s = 1; s < st->n; s++) {
        int32_t x = s;
        for (int32_t i = lens[s] - 1; i >= 0; i--) {
            out->seq_terms[out->seq_begin[s] + i] = st->term[x];
            x = st->parent[x];
        }
    }
    gm_free(lens);
    return 0;
}

int intern_init(seq_table *st, wsop_table *ops) {
    memset(st, 0, sizeof(*st));
    memset(ops, 0, sizeof(*ops));
    if (map_init(&st->map, 1024) || map_init(&ops->map, 64) || grow32(&st->parent, &st->parent_cap, 1) ||
        grow32(&st->term, &st->term_cap, 1) || grow32(&ops->begin, &ops->begin_cap, 1))
        return GM_NOMEM;
    /* seq 0: the empty sequence (not in the map: its key would collide with the empty-slot marker) */
    st->parent[0] = st->term[0] = -1;
    st->n = 1;
    ops->begin[0] = 0;
    return 0;
}

void intern_free(seq_table *st, wsop_table *ops) {
    GM_FREE_ALL(st->parent, st->term, ops->begin, ops->bytes, ops->reset);
    map_free(&st->map);
    map_free(&ops->map);
}

int intern_output(const seq_table *st, wsop_table *ops, gm_build *out) {
    if (materialize_seqs(st, out)) return GM_NOMEM;
    out->wsop_begin = ops->begin;
    out->wsop_bytes = ops->bytes;
    out->wsop_reset = ops->reset;
    out->n_wsops = ops->n;
    ops->begin = NULL;
    ops->bytes = ops->reset = NULL;
    return 0;
}
