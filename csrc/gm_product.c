/* Products of code-point automata (gm_product.h has the contract; fsm/fsm_product.py drives it). A product
 * state is a tuple of k component states (-1: that automaton is dead), interned in an open-addressing hash
 * table; each is expanded by sweeping the code points once, all components' ranges merged, so that a move
 * of the product is a maximal run of code points over which no component changes its move. */
#include "gm_internal.h"
#include "gm_product.h"

#include <string.h>

void gm_product_free(gm_product *out) {
    GM_FREE_ALL(out->edge_begin, out->lo, out->hi, out->dst, out->accept);
    memset(out, 0, sizeof(*out));
}

static int valid_dfa(const gm_char_dfa *d) {
    if (d->n_states < 1 || !d->edge_begin || !d->accept || d->edge_begin[0] != 0) return 0;
    /* All offsets first: a later one that decreases means an earlier one lies past the edges' end. */
    for (int32_t q = 0; q < d->n_states; q++)
        if (d->edge_begin[q + 1] < d->edge_begin[q]) return 0;
    for (int32_t q = 0; q < d->n_states; q++) {
        int32_t b = d->edge_begin[q], e = d->edge_begin[q + 1];
        int64_t prev_hi = -1;
        for (int32_t i = b; i < e; i++) {
            if (d->lo[i] <= prev_hi || d->lo[i] > d->hi[i] || d->hi[i] > GM_MAX_CODEPOINT) return 0;
            if (d->dst[i] < 0 || d->dst[i] >= d->n_states) return 0;
            prev_hi = d->hi[i];
        }
    }
    return 1;
}

/* The product states found: their tuples end to end, and a hash index over them. */
typedef struct {
    int32_t k;
    int32_t *tuples;   /* [n * k] */
    int64_t n, cap;
    int32_t *slots;    /* [n_slots]: a state index, -1 empty */
    int64_t n_slots;
} states_t;

static uint64_t hash_tuple(const int32_t *t, int32_t k) {
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (int32_t i = 0; i < k; i++) {
        h ^= (uint64_t)(uint32_t)t[i] + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
        h *= 0xff51afd7ed558ccdULL;
    }
    return h ^ (h >> 31);
}

static int rehash(states_t *s, int64_t n_slots) {
    int32_t *slots = gm_malloc((size_t)n_slots * sizeof(int32_t));
    if (!slots) return GM_NOMEM;
    memset(slots, 0xff, (size_t)n_slots * sizeof(int32_t));
    for (int64_t i = 0; i < s->n; i++) {
        uint64_t h = hash_tuple(s->tuples + i * s->k, s->k) & (uint64_t)(n_slots - 1);
        while (slots[h] >= 0) h = (h + 1) & (uint64_t)(n_slots - 1);
        slots[h] = (int32_t)i;
    }
    gm_free(s->slots);
    s->slots = slots;
    s->n_slots = n_slots;
    return GM_OK;
}

/* The index of tuple t, added (as state s->n) if new; -1 on no memory. */
static int64_t intern_tuple(states_t *s, const int32_t *t) {
    if (2 * (s->n + 1) > s->n_slots && rehash(s, s->n_slots * 2) != GM_OK) return -1;
    uint64_t mask = (uint64_t)(s->n_slots - 1), h = hash_tuple(t, s->k) & mask;
    while (s->slots[h] >= 0) {
        if (memcmp(s->tuples + (int64_t)s->slots[h] * s->k, t, (size_t)s->k * sizeof(int32_t)) == 0)
            return s->slots[h];
        h = (h + 1) & mask;
    }
    if (s->n == s->cap) {
        int64_t cap = s->cap * 2;
        int32_t *grown = gm_realloc(s->tuples, (size_t)cap * (size_t)s->k * sizeof(int32_t));
        if (!grown) return -1;
        s->tuples = grown;
        s->cap = cap;
    }
    memcpy(s->tuples + s->n * s->k, t, (size_t)s->k * sizeof(int32_t));
    s->slots[h] = (int32_t)s->n;
    return s->n++;
}

/* Growable arrays of the product's moves. */
typedef struct {
    int32_t *lo, *hi, *dst;
    int64_t n, cap;
} moves_t;

/* A move of the state whose moves begin at index `first`: it continues the state's previous move where that
 * one ends just before it with the same target (never a move of the state before: it stays that state's). */
static int add_move(moves_t *m, int64_t first, int32_t lo, int32_t hi, int32_t dst) {
    if (m->n > first && m->dst[m->n - 1] == dst && m->hi[m->n - 1] + 1 == lo) {  /* the same move continues */
        m->hi[m->n - 1] = hi;
        return GM_OK;
    }
    if (m->n == m->cap) {
        int64_t cap = m->cap ? m->cap * 2 : 1024;
        int32_t *lo2 = gm_realloc(m->lo, (size_t)cap * sizeof(int32_t));
        if (lo2) m->lo = lo2;
        int32_t *hi2 = lo2 ? gm_realloc(m->hi, (size_t)cap * sizeof(int32_t)) : NULL;
        if (hi2) m->hi = hi2;
        int32_t *dst2 = hi2 ? gm_realloc(m->dst, (size_t)cap * sizeof(int32_t)) : NULL;
        if (!dst2) return GM_NOMEM;
        m->dst = dst2;
        m->cap = cap;
    }
    m->lo[m->n] = lo;
    m->hi[m->n] = hi;
    m->dst[m->n] = dst;
    m->n++;
    return GM_OK;
}

static int is_final(const gm_char_dfa *dfas, const int32_t *t, int32_t k, int rule) {
    if (t[0] < 0 || !dfas[0].accept[t[0]]) return 0;
    for (int32_t c = 1; c < k; c++) {
        int acc = t[c] >= 0 && dfas[c].accept[t[c]];
        if (rule == GM_PROD_ALL ? !acc : acc) return 0;
    }
    return 1;
}

int gm_char_product(int32_t k, const gm_char_dfa *dfas, int rule, int stop_at_final, int64_t max_states,
                    double time_left, gm_product *out) {
    memset(out, 0, sizeof(*out));
    if (k < 1 || k > 4096 || !dfas || (rule != GM_PROD_ALL && rule != GM_PROD_FIRST_ONLY) || max_states < 1)
        return GM_PROD_BAD_INPUT;
    for (int32_t c = 0; c < k; c++)
        if (!valid_dfa(&dfas[c])) return GM_PROD_BAD_INPUT;
    if (max_states > INT32_MAX) max_states = INT32_MAX;
    int32_t n_alive = rule == GM_PROD_ALL ? k : 1;  /* the first n_alive automata must live */
    double deadline = time_left >= 0 ? gm_seconds_now() + time_left : -1;

    states_t s = {k, NULL, 0, 64, NULL, 0};
    moves_t m = {NULL, NULL, NULL, 0, 0};
    int64_t cap_begin = 1024, n_begin = 1;
    int32_t *begin = gm_malloc((size_t)cap_begin * sizeof(int32_t));
    uint8_t *accept = NULL;
    int64_t cap_accept = 0;
    int32_t *cur = gm_malloc((size_t)k * 2 * sizeof(int32_t));  /* per component: its state, its edge */
    int32_t *next = gm_malloc((size_t)k * sizeof(int32_t));
    s.tuples = gm_malloc((size_t)s.cap * (size_t)k * sizeof(int32_t));
    int rc = GM_OK;
    if (!begin || !cur || !next || !s.tuples || rehash(&s, 128) != GM_OK) {
        rc = GM_NOMEM;
        goto done;
    }
    begin[0] = 0;
    memset(next, 0, (size_t)k * sizeof(int32_t));
    if (intern_tuple(&s, next) < 0) {
        rc = GM_NOMEM;
        goto done;
    }
    for (int64_t i = 0; i < s.n; i++) {
        if (deadline >= 0 && (i & 255) == 0 && gm_seconds_now() > deadline) {
            rc = GM_PROD_TIMEOUT;
            goto done;
        }
        const int32_t *t = s.tuples + i * k;
        int final = is_final(dfas, t, k, rule);
        if (!stop_at_final) {
            if (i >= cap_accept) {
                int64_t cap = cap_accept ? cap_accept * 2 : 1024;
                uint8_t *grown = gm_realloc(accept, (size_t)cap);
                if (!grown) {
                    rc = GM_NOMEM;
                    goto done;
                }
                accept = grown;
                cap_accept = cap;
            }
            accept[i] = (uint8_t)final;
        }
        if (final) {
            out->found = 1;
            if (stop_at_final) {
                out->n_states = (int32_t)s.n;
                goto done;
            }
        }
        int32_t *state = cur, *edge = cur + k;
        for (int32_t c = 0; c < k; c++) {
            state[c] = t[c];
            edge[c] = t[c] >= 0 ? dfas[c].edge_begin[t[c]] : 0;
        }
        /* The sweep: at code point cp, each live component is inside its edge edge[c] or in the gap before it. */
        int64_t cp = 0, first_move = m.n;
        while (cp <= GM_MAX_CODEPOINT) {
            int64_t end = (int64_t)GM_MAX_CODEPOINT + 1;
            int alive = 1;
            for (int32_t c = 0; c < k; c++) {
                int32_t target = -1;
                if (state[c] >= 0) {
                    const gm_char_dfa *d = &dfas[c];
                    int32_t e_end = d->edge_begin[state[c] + 1];
                    while (edge[c] < e_end && d->hi[edge[c]] < cp) edge[c]++;
                    if (edge[c] < e_end) {
                        if (d->lo[edge[c]] <= cp) {
                            target = d->dst[edge[c]];
                            if ((int64_t)d->hi[edge[c]] + 1 < end) end = (int64_t)d->hi[edge[c]] + 1;
                        } else if (d->lo[edge[c]] < end) {
                            end = d->lo[edge[c]];
                        }
                    }
                }
                next[c] = target;
                if (target < 0 && c < n_alive) alive = 0;
            }
            if (alive) {
                int64_t j = intern_tuple(&s, next);
                if (j < 0) {
                    rc = GM_NOMEM;
                    goto done;
                }
                if (s.n > max_states) {
                    rc = GM_PROD_TOO_MANY;
                    goto done;
                }
                if (!stop_at_final && add_move(&m, first_move, (int32_t)cp, (int32_t)(end - 1), (int32_t)j) != GM_OK) {
                    rc = GM_NOMEM;
                    goto done;
                }
            }
            cp = end;
        }
        if (!stop_at_final) {
            if (n_begin == cap_begin) {
                int32_t *grown = gm_realloc(begin, (size_t)cap_begin * 2 * sizeof(int32_t));
                if (!grown) {
                    rc = GM_NOMEM;
                    goto done;
                }
                begin = grown;
                cap_begin *= 2;
            }
            if (m.n > INT32_MAX) {
                rc = GM_PROD_TOO_MANY;
                goto done;
            }
            begin[n_begin++] = (int32_t)m.n;
        }
    }
    out->n_states = (int32_t)s.n;
    if (!stop_at_final) {
        out->edge_begin = begin;
        out->accept = accept;
        out->lo = m.lo;
        out->hi = m.hi;
        out->dst = m.dst;
        begin = NULL;
        accept = NULL;
        m.lo = m.hi = m.dst = NULL;
    }
done:
    GM_FREE_ALL(begin, accept, cur, next, s.tuples, s.slots, m.lo, m.hi, m.dst);
    if (rc != GM_OK) {
        int32_t so_far = (int32_t)(s.n < INT32_MAX ? s.n : INT32_MAX);
        gm_product_free(out);
        out->n_states = so_far;
    }
    return rc;
}
