/* The lexer DFA's construction (fsm/lexer.py drives it; gm_lexbuild.h has the contract):
 *   gm_lex_determinize  subset construction of a byte NFA, numbered as a breadth-first walk by byte
 *   gm_lex_minimize     trim (states that reach no accepting one), then Hopcroft's partition refinement
 *   gm_lex_csets        the terminals a lexeme can still become, per state (closure over the SCCs)
 * The results are the ones a plain Python reading of the same definitions gives (tests/test_lexer_native.py
 * keeps that reading as the oracle): Hopcroft and Moore's refinement reach the same coarsest partition, and
 * the numbering (first appearance) does not depend on how it was reached. */
#include "gm_internal.h"
#include "gm_lexbuild.h"

#include <stdlib.h>

#define ALPHABET 256

/* n * size bytes, or 0 when that does not fit a size_t (then the allocation is refused). */
static size_t array_bytes(int64_t n, size_t size) {
    if (n < 0 || (uint64_t)n > SIZE_MAX / (size ? size : 1)) return 0;
    return (size_t)n * size;
}

static void *alloc_array(int64_t n, size_t size) {
    size_t bytes = array_bytes(n, size);
    return (bytes || n == 0) ? gm_malloc(bytes) : NULL;
}

static void *zalloc_array(int64_t n, size_t size) {
    return (array_bytes(n, size) || n == 0) ? gm_calloc((size_t)(n ? n : 1), size) : NULL;
}

static int in_range(const int32_t *a, int64_t n, int32_t lo, int32_t hi) {
    for (int64_t i = 0; i < n; i++)
        if (a[i] < lo || a[i] >= hi) return 0;
    return 1;
}

static uint64_t mix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_ints(const int32_t *a, int64_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
    for (int64_t i = 0; i < n; i++) h = mix64(h ^ ((uint64_t)(uint32_t)a[i] + 0x9e3779b97f4a7c15ULL));
    return h;
}

static int cmp_int32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Sort ascending and drop repeats; returns the new length. */
static int64_t sort_unique(int32_t *a, int64_t n) {
    if (n <= 24) {
        for (int64_t i = 1; i < n; i++) {
            int32_t v = a[i];
            int64_t j = i;
            for (; j > 0 && a[j - 1] > v; j--) a[j] = a[j - 1];
            a[j] = v;
        }
    } else {
        qsort(a, (size_t)n, sizeof(int32_t), cmp_int32);
    }
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (k == 0 || a[k - 1] != a[i]) a[k++] = a[i];
    return k;
}

void gm_lexbuild_free(gm_lexbuild *out) {
    GM_FREE_ALL(out->trans, out->winner, out->dead_end, out->class_of, out->rep, out->cset, out->cset_begin,
                out->cset_terms);
    memset(out, 0, sizeof(*out));
}

/* ---- subset construction ------------------------------------------------------------------------------ */

/* The DFA states found so far, each a sorted set of NFA states, and a hash index over them. */
typedef struct {
    int32_t *elems;
    int64_t n_elems, cap_elems;
    int64_t *begin;        /* [n_sets + 1] */
    int64_t cap_begin;
    uint64_t *hash;        /* [n_sets] */
    int64_t cap_hash;
    int32_t n_sets;
    int32_t *slots;        /* open addressing: a set's id, or -1 */
    int64_t n_slots;
} set_index;

static void set_index_free(set_index *s) { GM_FREE_ALL(s->elems, s->begin, s->hash, s->slots); }

static int set_index_rehash(set_index *s, int64_t n_slots) {
    int32_t *slots = alloc_array(n_slots, sizeof(int32_t));
    if (!slots) return GM_NOMEM;
    for (int64_t i = 0; i < n_slots; i++) slots[i] = -1;
    for (int32_t id = 0; id < s->n_sets; id++) {
        int64_t k = (int64_t)(s->hash[id] & (uint64_t)(n_slots - 1));
        while (slots[k] >= 0) k = (k + 1) & (n_slots - 1);
        slots[k] = id;
    }
    gm_free(s->slots);
    s->slots = slots;
    s->n_slots = n_slots;
    return GM_OK;
}

/* The id of the set a[0..n) (sorted, no repeats), added as a new one if not there (*added = 1). A new one
 * past max_sets is not added: GM_LEXB_TOO_MANY. */
static int set_index_get(set_index *s, const int32_t *a, int64_t n, int32_t max_sets, int32_t *id, int *added) {
    uint64_t h = hash_ints(a, n);
    *added = 0;
    int64_t k = (int64_t)(h & (uint64_t)(s->n_slots - 1));
    for (; s->slots[k] >= 0; k = (k + 1) & (s->n_slots - 1)) {
        int32_t j = s->slots[k];
        if (s->hash[j] == h && s->begin[j + 1] - s->begin[j] == n &&
            memcmp(s->elems + s->begin[j], a, (size_t)n * sizeof(int32_t)) == 0) {
            *id = j;
            return GM_OK;
        }
    }
    if (s->n_sets >= max_sets) return GM_LEXB_TOO_MANY;
    if (grow((void **)&s->elems, &s->cap_elems, s->n_elems + n, sizeof(int32_t)) ||
        grow((void **)&s->begin, &s->cap_begin, (int64_t)s->n_sets + 2, sizeof(int64_t)) ||
        grow((void **)&s->hash, &s->cap_hash, (int64_t)s->n_sets + 1, sizeof(uint64_t)))
        return GM_NOMEM;
    if (s->n_sets == 0) s->begin[0] = 0;
    memcpy(s->elems + s->n_elems, a, (size_t)n * sizeof(int32_t));
    s->n_elems += n;
    *id = s->n_sets;
    s->hash[*id] = h;
    s->slots[k] = *id;
    s->n_sets++;
    s->begin[s->n_sets] = s->n_elems;
    *added = 1;
    if ((int64_t)s->n_sets * 2 > s->n_slots) return set_index_rehash(s, s->n_slots * 2);
    return GM_OK;
}

static int check_nfa(int32_t n_nfa, const int32_t *edge_begin, int64_t n_edges, const int32_t *edge_lo,
                     const int32_t *edge_hi, const int32_t *edge_dst, const int32_t *accept, int32_t n_starts,
                     const int32_t *starts, int32_t n_terms) {
    if (n_nfa < 1 || n_starts < 1 || n_terms < 1 || edge_begin[0] != 0 || edge_begin[n_nfa] != n_edges) return 0;
    for (int32_t s = 0; s < n_nfa; s++)
        if (edge_begin[s + 1] < edge_begin[s]) return 0;
    for (int64_t e = 0; e < n_edges; e++)
        if (edge_lo[e] < 0 || edge_lo[e] > edge_hi[e] || edge_hi[e] >= ALPHABET) return 0;
    return in_range(edge_dst, n_edges, 0, n_nfa) && in_range(accept, n_nfa, -1, n_terms) &&
           in_range(starts, n_starts, 0, n_nfa);
}

/* Scratch space of one DFA state's walk: its members' edges (lo, hi, dst), and the targets on one byte. */
typedef struct {
    int32_t *edges;
    int64_t cap_edges;
    int32_t *targets;
    int64_t cap_targets;
} edge_scratch;

static int gather_edges(edge_scratch *w, const set_index *s, int32_t state, const int32_t *edge_begin,
                        const int32_t *edge_lo, const int32_t *edge_hi, const int32_t *edge_dst, int64_t *n_out) {
    int64_t n = 0;
    for (int64_t i = s->begin[state]; i < s->begin[state + 1]; i++) {
        int32_t m = s->elems[i];
        n += edge_begin[m + 1] - edge_begin[m];
    }
    if (grow((void **)&w->edges, &w->cap_edges, 3 * n, sizeof(int32_t)) ||
        grow((void **)&w->targets, &w->cap_targets, n, sizeof(int32_t)))
        return GM_NOMEM;
    int32_t *e = w->edges;
    for (int64_t i = s->begin[state]; i < s->begin[state + 1]; i++) {
        int32_t m = s->elems[i];
        for (int32_t j = edge_begin[m]; j < edge_begin[m + 1]; j++, e += 3)
            e[0] = edge_lo[j], e[1] = edge_hi[j], e[2] = edge_dst[j];
    }
    *n_out = n;
    return GM_OK;
}

/* One DFA state's row: per interval between the edges' bounds, the set of targets (a state found now if
 * new, in byte order: the numbering the Python construction gives). */
static int fill_row(set_index *s, edge_scratch *w, int64_t n_edges, int32_t max_states, int32_t *row,
                    int32_t *n_found) {
    uint8_t bound[ALPHABET + 1];
    memset(bound, 0, sizeof(bound));
    const int32_t *edges = w->edges;
    for (int64_t e = 0; e < n_edges; e++) bound[edges[3 * e]] = bound[edges[3 * e + 1] + 1] = 1;
    int32_t cur = GM_DEAD;
    for (int32_t a = 0; a < ALPHABET; a++) {
        if (bound[a]) {
            int64_t n = 0;
            for (const int32_t *e = edges; e < edges + 3 * n_edges; e += 3)
                if (e[0] <= a && a <= e[1]) w->targets[n++] = e[2];
            cur = GM_DEAD;
            if (n) {
                int added, rc;
                n = sort_unique(w->targets, n);
                if ((rc = set_index_get(s, w->targets, n, max_states, &cur, &added))) {
                    *n_found = s->n_sets + (rc == GM_LEXB_TOO_MANY);
                    return rc;
                }
            }
        }
        row[a] = cur;
    }
    *n_found = s->n_sets;
    return GM_OK;
}

static int32_t best_winner(const set_index *s, int32_t state, const int32_t *accept, const int32_t *term_rank) {
    int32_t best = -1;
    for (int64_t i = s->begin[state]; i < s->begin[state + 1]; i++) {
        int32_t t = accept[s->elems[i]];
        if (t >= 0 && (best < 0 || term_rank[t] < term_rank[best])) best = t;
    }
    return best;
}

int gm_lex_determinize(int32_t n_nfa, const int32_t *edge_begin, int64_t n_edges, const int32_t *edge_lo,
                       const int32_t *edge_hi, const int32_t *edge_dst, const int32_t *accept, int32_t n_starts,
                       const int32_t *starts, int32_t n_terms, const int32_t *term_rank, int32_t max_states,
                       double time_left, gm_lexbuild *out) {
    memset(out, 0, sizeof(*out));
    if (!check_nfa(n_nfa, edge_begin, n_edges, edge_lo, edge_hi, edge_dst, accept, n_starts, starts, n_terms))
        return GM_LEXB_BAD_INPUT;
    double deadline = time_left >= 0 ? gm_seconds_now() + time_left : -1;
    set_index s = {0};
    edge_scratch w = {0};
    int64_t cap_rows = 0, cap_win = 0;
    int32_t *start = alloc_array(n_starts, sizeof(int32_t));
    int rc = start ? set_index_rehash(&s, 64) : GM_NOMEM;
    if (rc == GM_OK) {
        memcpy(start, starts, (size_t)n_starts * sizeof(int32_t));
        int32_t id;
        int added;
        rc = set_index_get(&s, start, sort_unique(start, n_starts), max_states > 0 ? max_states : 0, &id, &added);
        out->n_states = 1;
    }
    for (int32_t i = 0; rc == GM_OK && i < s.n_sets; i++) {
        /* the limits, where the Python construction looks at them */
        if (deadline >= 0 && i % 64 == 0 && gm_seconds_now() > deadline) {
            out->n_states = s.n_sets;
            rc = GM_LEXB_TIMEOUT;
            break;
        }
        int64_t n_row_edges;
        if ((rc = grow((void **)&out->trans, &cap_rows, ((int64_t)i + 1) * ALPHABET, sizeof(int32_t))) ||
            (rc = grow((void **)&out->winner, &cap_win, (int64_t)i + 1, sizeof(int32_t))) ||
            (rc = gather_edges(&w, &s, i, edge_begin, edge_lo, edge_hi, edge_dst, &n_row_edges)))
            break;
        out->winner[i] = best_winner(&s, i, accept, term_rank);
        rc = fill_row(&s, &w, n_row_edges, max_states, out->trans + (int64_t)i * ALPHABET, &out->n_states);
    }
    if (rc == GM_OK) out->n_states = s.n_sets;
    set_index_free(&s);
    GM_FREE_ALL(w.edges, w.targets, start);
    if (rc != GM_OK) {
        int32_t n_so_far = out->n_states;
        gm_lexbuild_free(out);
        out->n_states = n_so_far;
    }
    return rc;
}

/* ---- byte classes and trimming ------------------------------------------------------------------------ */

/* The bytes as classes that every state treats alike: the runs of bytes between two where some row changes
 * (a run of equal columns; runs with equal columns apart stay apart, which costs only time), numbered in
 * byte order. The rest of the construction works on rows of classes, not of 256 bytes. */
static int32_t byte_classes(int32_t n, const int32_t *trans, int32_t *class_of_byte, int32_t *rep_byte) {
    uint8_t changes[ALPHABET] = {0};
    for (int32_t q = 0; q < n; q++) {
        const int32_t *row = trans + (int64_t)q * ALPHABET;
        for (int32_t b = 1; b < ALPHABET; b++) changes[b] |= row[b] != row[b - 1];
    }
    int32_t k = 0;
    for (int32_t b = 0; b < ALPHABET; b++) {
        if (b == 0 || changes[b]) rep_byte[k++] = b;
        class_of_byte[b] = k - 1;
    }
    return k;
}

/* keep[q]: some state with winner >= 0 or cond >= 0 can be reached from q (d: rows of k byte classes). */
static int trim_alive(int32_t n, int32_t k, const int32_t *d, const int32_t *winner, const int32_t *cond,
                      uint8_t *keep) {
    int32_t *pred_begin = zalloc_array((int64_t)n + 1, sizeof(int32_t));
    int32_t *stack = alloc_array(n, sizeof(int32_t));
    int64_t n_preds = 0;
    for (int64_t i = 0; i < (int64_t)n * k; i++) n_preds += d[i] >= 0;
    int32_t *preds = n_preds <= INT32_MAX ? alloc_array(n_preds, sizeof(int32_t)) : NULL;
    if (!pred_begin || !stack || !preds) {
        GM_FREE_ALL(pred_begin, stack, preds);
        return GM_NOMEM;
    }
    for (int64_t i = 0; i < (int64_t)n * k; i++)
        if (d[i] >= 0) pred_begin[d[i] + 1]++;
    for (int32_t q = 0; q < n; q++) pred_begin[q + 1] += pred_begin[q];
    for (int32_t q = 0; q < n; q++)
        for (int32_t c = 0; c < k; c++) {
            int32_t t = d[(int64_t)q * k + c];
            if (t >= 0) preds[pred_begin[t]++] = q;
        }
    for (int32_t q = n; q > 0; q--) pred_begin[q] = pred_begin[q - 1];
    pred_begin[0] = 0;
    int32_t top = 0;
    for (int32_t q = 0; q < n; q++) {
        keep[q] = winner[q] >= 0 || cond[q] >= 0;
        if (keep[q]) stack[top++] = q;
    }
    while (top) {
        int32_t t = stack[--top];
        for (int32_t i = pred_begin[t]; i < pred_begin[t + 1]; i++)
            if (!keep[preds[i]]) keep[preds[i]] = 1, stack[top++] = preds[i];
    }
    GM_FREE_ALL(pred_begin, stack, preds);
    return GM_OK;
}

/* ---- Hopcroft's partition refinement ---------------------------------------------------------------- */

typedef struct {
    int32_t *elems, *pos, *block;         /* states in block order; where each is; its block */
    int32_t *first, *end, *marked;        /* per block: its range in elems, how many are marked */
    uint8_t *waiting;                     /* per block: in the worklist */
    int32_t *work, n_work;                /* the worklist (a stack of blocks) */
    int32_t *touched, n_touched;          /* blocks with marked states */
    int32_t n_blocks;
} partition;

static void mark_state(partition *p, int32_t s) {
    int32_t b = p->block[s], i = p->first[b] + p->marked[b], at = p->pos[s], other = p->elems[i];
    p->elems[i] = s, p->pos[s] = i;
    p->elems[at] = other, p->pos[other] = at;
    if (p->marked[b]++ == 0) p->touched[p->n_touched++] = b;
}

/* Each touched block whose states were not all marked: the marked ones become a new block. */
static void split_touched(partition *p) {
    while (p->n_touched) {
        int32_t b = p->touched[--p->n_touched], k = p->marked[b];
        p->marked[b] = 0;
        if (k == p->end[b] - p->first[b]) continue;
        int32_t nb = p->n_blocks++;
        p->first[nb] = p->first[b], p->end[nb] = p->first[b] + k, p->marked[nb] = 0;
        p->first[b] += k;
        for (int32_t i = p->first[nb]; i < p->end[nb]; i++) p->block[p->elems[i]] = nb;
        /* a waiting block's halves both wait; otherwise the smaller one is enough (Hopcroft) */
        int32_t add = p->waiting[b] || k <= p->end[b] - p->first[b] ? nb : b;
        p->waiting[nb] = 0;
        p->waiting[add] = 1;
        p->work[p->n_work++] = add;
    }
}

typedef struct {
    int32_t winner, mode, cond, state;
} initial_key;

static int cmp_key(const void *a, const void *b) {
    const initial_key *x = a, *y = b;
    if (x->winner != y->winner) return (x->winner > y->winner) - (x->winner < y->winner);
    if (x->mode != y->mode) return (x->mode > y->mode) - (x->mode < y->mode);
    if (x->cond != y->cond) return (x->cond > y->cond) - (x->cond < y->cond);
    return (x->state > y->state) - (x->state < y->state);
}

/* The first partition: states apart unless winner, mode and cond agree; every block waits. */
static int initial_blocks(partition *p, int32_t m, const int32_t *winner, const int32_t *mode, const int32_t *cond,
                          const int32_t *kept) {
    initial_key *keys = alloc_array(m, sizeof(initial_key));
    if (!keys) return GM_NOMEM;
    for (int32_t q = 0; q < m; q++) {
        int32_t o = kept[q];
        keys[q] = (initial_key){winner[o], mode[o], cond[o], q};
    }
    qsort(keys, (size_t)m, sizeof(initial_key), cmp_key);
    p->n_blocks = 0;
    for (int32_t i = 0; i < m; i++) {
        if (i == 0 || cmp_key(&(initial_key){keys[i].winner, keys[i].mode, keys[i].cond, 0},
                              &(initial_key){keys[i - 1].winner, keys[i - 1].mode, keys[i - 1].cond, 0})) {
            int32_t b = p->n_blocks++;
            p->first[b] = i;
            p->marked[b] = 0;
            p->waiting[b] = 1;
            p->work[p->n_work++] = b;
        }
        p->end[p->n_blocks - 1] = i + 1;
        p->elems[i] = keys[i].state;
        p->pos[keys[i].state] = i;
        p->block[keys[i].state] = p->n_blocks - 1;
    }
    gm_free(keys);
    return GM_OK;
}

/* Refine until every block is stable: per splitter, the states that enter it by each byte class split off. */
static int refine(partition *p, int32_t m, int32_t k, const int32_t *d) {
    int32_t *pred_begin = zalloc_array((int64_t)m + 1, sizeof(int32_t));
    int32_t *cls_count = zalloc_array((int64_t)k + 1, sizeof(int32_t));
    int64_t n_preds = 0;
    for (int64_t i = 0; i < (int64_t)m * k; i++) n_preds += d[i] >= 0;
    int32_t *pred_src = n_preds < INT32_MAX ? alloc_array(n_preds, sizeof(int32_t)) : NULL;
    int32_t *pred_cls = pred_src ? alloc_array(n_preds, sizeof(int32_t)) : NULL;
    int32_t *buf_src = pred_cls ? alloc_array(n_preds, sizeof(int32_t)) : NULL;
    int32_t *buf_cls = buf_src ? alloc_array(n_preds, sizeof(int32_t)) : NULL;
    int32_t *members = alloc_array(m, sizeof(int32_t));
    if (!pred_begin || !cls_count || !buf_cls || !members) {
        GM_FREE_ALL(pred_begin, cls_count, pred_src, pred_cls, buf_src, buf_cls, members);
        return GM_NOMEM;
    }
    for (int64_t i = 0; i < (int64_t)m * k; i++)
        if (d[i] >= 0) pred_begin[d[i] + 1]++;
    for (int32_t q = 0; q < m; q++) pred_begin[q + 1] += pred_begin[q];
    for (int32_t q = 0; q < m; q++)
        for (int32_t c = 0; c < k; c++) {
            int32_t t = d[(int64_t)q * k + c];
            if (t >= 0) pred_src[pred_begin[t]] = q, pred_cls[pred_begin[t]++] = c;
        }
    for (int32_t q = m; q > 0; q--) pred_begin[q] = pred_begin[q - 1];
    pred_begin[0] = 0;
    while (p->n_work) {
        int32_t sp = p->work[--p->n_work];
        p->waiting[sp] = 0;
        int32_t n_members = p->end[sp] - p->first[sp];
        memcpy(members, p->elems + p->first[sp], (size_t)n_members * sizeof(int32_t));
        /* the splitter's predecessors, bucketed by byte class */
        memset(cls_count, 0, (size_t)(k + 1) * sizeof(int32_t));
        for (int32_t i = 0; i < n_members; i++)
            for (int32_t j = pred_begin[members[i]]; j < pred_begin[members[i] + 1]; j++) cls_count[pred_cls[j] + 1]++;
        for (int32_t c = 0; c < k; c++) cls_count[c + 1] += cls_count[c];
        for (int32_t i = 0; i < n_members; i++)
            for (int32_t j = pred_begin[members[i]]; j < pred_begin[members[i] + 1]; j++)
                buf_src[cls_count[pred_cls[j]]++] = pred_src[j];
        for (int32_t c = 0, from = 0; c < k; c++) {  /* cls_count[c]: now the end of class c's bucket */
            for (int32_t j = from; j < cls_count[c]; j++) mark_state(p, buf_src[j]);
            split_touched(p);
            from = cls_count[c];
        }
    }
    GM_FREE_ALL(pred_begin, cls_count, pred_src, pred_cls, buf_src, buf_cls, members);
    return GM_OK;
}

static void partition_free(partition *p) {
    GM_FREE_ALL(p->elems, p->pos, p->block, p->first, p->end, p->marked, p->waiting, p->work, p->touched);
    memset(p, 0, sizeof(*p));
}

static int partition_alloc(partition *p, int32_t m) {
    memset(p, 0, sizeof(*p));
    p->elems = alloc_array(m, sizeof(int32_t)), p->pos = alloc_array(m, sizeof(int32_t));
    p->block = alloc_array(m, sizeof(int32_t)), p->first = alloc_array(m, sizeof(int32_t));
    p->end = alloc_array(m, sizeof(int32_t)), p->marked = alloc_array(m, sizeof(int32_t));
    p->waiting = alloc_array(m, sizeof(uint8_t));
    p->work = alloc_array(m, sizeof(int32_t)), p->touched = alloc_array(m, sizeof(int32_t));
    if (p->elems && p->pos && p->block && p->first && p->end && p->marked && p->waiting && p->work && p->touched)
        return GM_OK;
    partition_free(p);
    return GM_NOMEM;
}

/* The classes numbered by their first state, with the representatives' rows in the new numbering. */
static int write_classes(const partition *p, int32_t m, int32_t k, const int32_t *d, const int32_t *class_of_byte,
                         const int32_t *kept, const int32_t *winner, int32_t n, gm_lexbuild *out) {
    int32_t *number = alloc_array(p->n_blocks, sizeof(int32_t));
    out->class_of = alloc_array(n, sizeof(int32_t));
    out->rep = alloc_array(p->n_blocks, sizeof(int32_t));
    out->trans = alloc_array((int64_t)p->n_blocks * ALPHABET, sizeof(int32_t));
    out->winner = alloc_array(p->n_blocks, sizeof(int32_t));
    out->dead_end = alloc_array(p->n_blocks, sizeof(uint8_t));
    if (!number || !out->class_of || !out->rep || !out->trans || !out->winner || !out->dead_end) {
        gm_free(number);
        return GM_NOMEM;
    }
    for (int32_t b = 0; b < p->n_blocks; b++) number[b] = -1;
    int32_t n_classes = 0;
    for (int32_t q = 0; q < m; q++) {
        int32_t b = p->block[q];
        if (number[b] < 0) number[b] = n_classes, out->rep[n_classes++] = q;
    }
    for (int32_t o = 0; o < n; o++) out->class_of[o] = -1;
    for (int32_t q = 0; q < m; q++) out->class_of[kept[q]] = number[p->block[q]];
    for (int32_t c = 0; c < n_classes; c++) {
        int32_t q = out->rep[c], *row = out->trans + (int64_t)c * ALPHABET, by_class[ALPHABET];
        uint8_t dead = 1;
        for (int32_t x = 0; x < k; x++) {
            int32_t to = d[(int64_t)q * k + x];
            by_class[x] = to >= 0 ? number[p->block[to]] : GM_DEAD;
            dead &= to < 0;
        }
        for (int32_t b = 0; b < ALPHABET; b++) row[b] = by_class[class_of_byte[b]];
        out->dead_end[c] = dead;
        out->rep[c] = kept[q];
        out->winner[c] = winner[kept[q]];
    }
    out->n_states = n_classes;
    gm_free(number);
    return GM_OK;
}

/* The rows by byte class of all n states. */
static int32_t *class_rows(int32_t n, const int32_t *trans, int32_t k, const int32_t *rep_byte) {
    int32_t *d = alloc_array((int64_t)n * k, sizeof(int32_t));
    if (d)
        for (int32_t q = 0; q < n; q++)
            for (int32_t c = 0; c < k; c++) d[(int64_t)q * k + c] = trans[(int64_t)q * ALPHABET + rep_byte[c]];
    return d;
}

/* The kept states' class rows, in place: targets renumbered, the dropped ones DEAD. Returns their number. */
static int32_t keep_rows(int32_t n, int32_t k, int32_t *d, const uint8_t *keep, int32_t *kept, int32_t *new_index) {
    int32_t m = 0;
    for (int32_t o = 0; o < n; o++) new_index[o] = keep[o] ? (kept[m] = o, m++) : -1;
    for (int32_t q = 0; q < m; q++)
        for (int32_t c = 0; c < k; c++) {
            int32_t to = d[(int64_t)kept[q] * k + c];
            d[(int64_t)q * k + c] = to >= 0 ? new_index[to] : GM_DEAD;  /* (q <= kept[q]: read before written) */
        }
    return m;
}

int gm_lex_minimize(int32_t n, const int32_t *trans, const int32_t *winner, const int32_t *mode, const int32_t *cond,
                    int32_t n_starts, const int32_t *starts, gm_lexbuild *out) {
    memset(out, 0, sizeof(*out));
    if (n < 1 || !in_range(trans, (int64_t)n * ALPHABET, -1, n) || !in_range(starts, n_starts, 0, n))
        return GM_LEXB_BAD_INPUT;
    int32_t class_of_byte[ALPHABET], rep_byte[ALPHABET];
    int32_t k = byte_classes(n, trans, class_of_byte, rep_byte), m = 0;
    uint8_t *keep = alloc_array(n, sizeof(uint8_t));
    int32_t *kept = alloc_array(n, sizeof(int32_t)), *new_index = alloc_array(n, sizeof(int32_t));
    int32_t *d = class_rows(n, trans, k, rep_byte);
    partition p = {0};
    int rc = keep && kept && new_index && d ? trim_alive(n, k, d, winner, cond, keep) : GM_NOMEM;
    if (rc == GM_OK && !keep[0]) rc = GM_LEXB_NOTHING;
    if (rc == GM_OK) {
        for (int32_t i = 0; i < n_starts; i++) keep[starts[i]] = 1;
        m = keep_rows(n, k, d, keep, kept, new_index);
        rc = partition_alloc(&p, m);
    }
    if (rc == GM_OK && (rc = initial_blocks(&p, m, winner, mode, cond, kept)) == GM_OK &&
        (rc = refine(&p, m, k, d)) == GM_OK)
        rc = write_classes(&p, m, k, d, class_of_byte, kept, winner, n, out);
    partition_free(&p);
    GM_FREE_ALL(keep, kept, new_index, d);
    if (rc != GM_OK) gm_lexbuild_free(out);
    return rc;
}

/* ---- completable sets --------------------------------------------------------------------------------- */

/* Each state's distinct successors (CSR). */
static int successor_lists(int32_t n, const int32_t *trans, int32_t **begin_out, int32_t **succ_out) {
    int32_t *begin = alloc_array((int64_t)n + 1, sizeof(int32_t));
    int32_t *seen = alloc_array(n, sizeof(int32_t));
    int32_t *succ = NULL;
    int64_t cap = 0, k = 0;
    int rc = begin && seen ? GM_OK : GM_NOMEM;
    if (rc == GM_OK)
        for (int32_t q = 0; q < n; q++) seen[q] = -1;
    for (int32_t q = 0; rc == GM_OK && q < n; q++) {
        begin[q] = (int32_t)k;
        for (int32_t b = 0; b < ALPHABET; b++) {
            int32_t t = trans[(int64_t)q * ALPHABET + b];
            if (t < 0 || seen[t] == q) continue;
            seen[t] = q;
            if (k >= INT32_MAX) rc = GM_NOMEM;
            else if ((rc = grow((void **)&succ, &cap, k + 1, sizeof(int32_t))) == GM_OK) succ[k++] = t;
            if (rc) break;
        }
    }
    if (rc == GM_OK) begin[n] = (int32_t)k;
    gm_free(seen);
    if (rc != GM_OK) {
        GM_FREE_ALL(begin, succ);
        return rc;
    }
    *begin_out = begin, *succ_out = succ;
    return GM_OK;
}

/* reach[q] |= reach of every state reachable from q: Tarjan's SCCs, each closed once its successors are. */
static int close_reach(int32_t n, const int32_t *begin, const int32_t *succ, uint64_t *reach, int32_t words) {
    int32_t *index = alloc_array(n, sizeof(int32_t)), *low = alloc_array(n, sizeof(int32_t));
    int32_t *comp = alloc_array(n, sizeof(int32_t)), *stack = alloc_array(n, sizeof(int32_t));
    int32_t *call = alloc_array(n, sizeof(int32_t)), *next = alloc_array(n, sizeof(int32_t));
    uint64_t *acc = alloc_array(words, sizeof(uint64_t));
    if (!index || !low || !comp || !stack || !call || !next || !acc) {
        GM_FREE_ALL(index, low, comp, stack, call, next, acc);
        return GM_NOMEM;
    }
    for (int32_t q = 0; q < n; q++) index[q] = -1, comp[q] = -1;
    int32_t counter = 0, top = 0, n_comp = 0;
    for (int32_t root = 0; root < n; root++) {
        if (index[root] >= 0) continue;
        int32_t depth = 0;
        call[depth++] = root, next[root] = begin[root];
        index[root] = low[root] = counter++, stack[top++] = root;
        while (depth) {
            int32_t v = call[depth - 1];
            if (next[v] < begin[v + 1]) {
                int32_t w = succ[next[v]++];
                if (index[w] < 0) {
                    index[w] = low[w] = counter++, stack[top++] = w;
                    call[depth++] = w, next[w] = begin[w];
                } else if (comp[w] < 0 && index[w] < low[v]) {
                    low[v] = index[w];
                }
                continue;
            }
            depth--;
            if (depth && low[v] < low[call[depth - 1]]) low[call[depth - 1]] = low[v];
            if (low[v] != index[v]) continue;
            /* v roots an SCC: the stack from v up; its successors outside it are closed already */
            int32_t bottom = top;
            do bottom--; while (stack[bottom] != v);
            for (int32_t i = bottom; i < top; i++) comp[stack[i]] = n_comp;
            memset(acc, 0, (size_t)words * sizeof(uint64_t));
            for (int32_t i = bottom; i < top; i++) {
                int32_t u = stack[i];
                for (int32_t x = 0; x < words; x++) acc[x] |= reach[(int64_t)u * words + x];
                for (int32_t j = begin[u]; j < begin[u + 1]; j++)
                    if (comp[succ[j]] != n_comp)
                        for (int32_t x = 0; x < words; x++) acc[x] |= reach[(int64_t)succ[j] * words + x];
            }
            for (int32_t i = bottom; i < top; i++)
                memcpy(reach + (int64_t)stack[i] * words, acc, (size_t)words * sizeof(uint64_t));
            top = bottom;
            n_comp++;
        }
    }
    GM_FREE_ALL(index, low, comp, stack, call, next, acc);
    return GM_OK;
}

/* Number the distinct sets in order of first appearance (the starts and those an ignored terminal can end
 * take -1) and list their terminals. */
static int intern_sets(int32_t n, const uint64_t *reach, int32_t words, int32_t n_terms, const uint64_t *ignored,
                       const uint8_t *is_start, gm_lexbuild *out) {
    int64_t n_slots = 64;
    while (n_slots < 2 * (int64_t)n) n_slots *= 2;
    int32_t *slots = alloc_array(n_slots, sizeof(int32_t)), *first = alloc_array(n, sizeof(int32_t));
    out->cset = alloc_array(n, sizeof(int32_t));
    out->cset_begin = alloc_array((int64_t)n + 1, sizeof(int32_t));
    int64_t cap_terms = 0, n_out = 0;
    int rc = slots && first && out->cset && out->cset_begin ? GM_OK : GM_NOMEM;
    for (int64_t i = 0; rc == GM_OK && i < n_slots; i++) slots[i] = -1;
    if (rc == GM_OK) out->cset_begin[0] = 0;
    for (int32_t q = 0; rc == GM_OK && q < n; q++) {
        const uint64_t *r = reach + (int64_t)q * words;
        int any = is_start[q];
        for (int32_t x = 0; x < words && !any; x++) any = (r[x] & ignored[x]) != 0;
        if (any) {
            out->cset[q] = GM_ANY;
            continue;
        }
        uint64_t h = 0x9e3779b97f4a7c15ULL;
        for (int32_t x = 0; x < words; x++) h = mix64(h ^ r[x]);
        int64_t s = (int64_t)(h & (uint64_t)(n_slots - 1));
        for (; slots[s] >= 0; s = (s + 1) & (n_slots - 1))
            if (memcmp(reach + (int64_t)first[slots[s]] * words, r, (size_t)words * sizeof(uint64_t)) == 0) break;
        if (slots[s] < 0) {
            int32_t id = slots[s] = out->n_csets++;
            first[id] = q;
            for (int32_t i = 0; i < n_terms && rc == GM_OK; i++) {
                if (!(r[i >> 6] >> (i & 63) & 1)) continue;
                if (n_out >= INT32_MAX) rc = GM_NOMEM;
                else if ((rc = grow((void **)&out->cset_terms, &cap_terms, n_out + 1, sizeof(int32_t))) == GM_OK)
                    out->cset_terms[n_out++] = i;
            }
            out->cset_begin[id + 1] = (int32_t)n_out;
        }
        out->cset[q] = slots[s];
    }
    GM_FREE_ALL(slots, first);
    return rc;
}

int gm_lex_csets(int32_t n, const int32_t *trans, const int32_t *winner, const int32_t *cond, int32_t n_rows,
                 const int32_t *cond_rows, int32_t n_terms, const uint8_t *ignored, int32_t n_starts,
                 const int32_t *starts, gm_lexbuild *out) {
    memset(out, 0, sizeof(*out));
    if (n < 1 || n_terms < 1 || n_rows < 0 || !in_range(trans, (int64_t)n * ALPHABET, -1, n) ||
        !in_range(winner, n, -1, n_terms) || !in_range(cond, n, -1, n_rows) ||
        !in_range(cond_rows, (int64_t)n_rows * (ALPHABET + 1), -1, n_terms) || !in_range(starts, n_starts, 0, n))
        return GM_LEXB_BAD_INPUT;
    int32_t words = (n_terms + 63) / 64;
    uint64_t *reach = zalloc_array((int64_t)n * words, sizeof(uint64_t));
    uint64_t *ignored_bits = zalloc_array(words, sizeof(uint64_t));
    uint8_t *is_start = zalloc_array(n, sizeof(uint8_t));
    int32_t *begin = NULL, *succ = NULL;
    int rc = reach && ignored_bits && is_start ? successor_lists(n, trans, &begin, &succ) : GM_NOMEM;
    if (rc == GM_OK) {
        for (int32_t i = 0; i < n_terms; i++)
            if (ignored[i]) ignored_bits[i >> 6] |= 1ULL << (i & 63);
        for (int32_t i = 0; i < n_starts; i++) is_start[starts[i]] = 1;
        for (int32_t q = 0; q < n; q++) {
            uint64_t *r = reach + (int64_t)q * words;
            if (winner[q] >= 0) r[winner[q] >> 6] |= 1ULL << (winner[q] & 63);
            if (cond[q] >= 0)
                for (int32_t c = 0; c <= ALPHABET; c++) {
                    int32_t term = cond_rows[(int64_t)cond[q] * (ALPHABET + 1) + c];
                    if (term >= 0) r[term >> 6] |= 1ULL << (term & 63);
                }
        }
        rc = close_reach(n, begin, succ, reach, words);
    }
    if (rc == GM_OK) rc = intern_sets(n, reach, words, n_terms, ignored_bits, is_start, out);
    GM_FREE_ALL(reach, ignored_bits, is_start, begin, succ);
    if (rc != GM_OK) gm_lexbuild_free(out);
    else out->n_states = n;
    return rc;
}
