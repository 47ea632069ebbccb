/* LALR(1) parse tables from a grammar given as flat integer arrays (gm_lalr_build, gm_core.h): the LR(0)
 * automaton, then lookaheads by DeRemer and Pennello's relations, as Lark computes them
 * (lark/parsers/lalr_analysis.py), so that the tables are Lark's up to state numbering:
 *   - includes: for a nonterminal transition (p, A), every item of p's closure whose rule is A's, at any dot
 *     position (Lark walks its kernel items too, not only A -> . w);
 *   - a shift/reduce conflict is resolved as shift (reported); several rules reducible on one lookahead are
 *     resolved by rule priority when one rule's is the highest, and are a collision (reported) otherwise.
 * Lark's sets are shared objects where the reads relation has a cycle through several transitions, so its
 * lookaheads there depend on its traversal order: such a grammar is answered GM_LALR_FALLBACK (the caller
 * takes Lark's own tables). Every index read from the input is checked first (GM_LALR_BAD_INPUT). */
#include "gm_internal.h"

#include <stdlib.h>

/* Growable int32 arrays (the kernels, closures and relation lists, whose sizes are known only as they grow). */
typedef struct {
    int32_t *v;
    int64_t n, cap;
} vec32;

static int vec_push(vec32 *a, int32_t x) {
    if (a->n >= INT32_MAX) return GM_NOMEM;
    if (grow((void **)&a->v, &a->cap, a->n + 1, sizeof(int32_t))) return GM_NOMEM;
    a->v[a->n++] = x;
    return 0;
}

static int past(double deadline) { return deadline > 0 && gm_seconds_now() > deadline; }

/* ---- the grammar, indexed -------------------------------------------------------------------------- */

typedef struct {
    const gm_lalr_grammar *g;
    int32_t n_sym, n_items;
    int32_t *item_base;   /* [n_rules] item of (rule, dot 0); (rule, d) is item_base + d */
    int32_t *item_rule;   /* [n_items] */
    int32_t *item_next;   /* [n_items] symbol after the dot, -1 at the end */
    int32_t *nt_rules_begin, *nt_rules; /* rules of each nonterminal, in rule order */
    uint8_t *nullable;    /* [n_nonterms] */
    int32_t *null_suffix; /* [n_rules] first position from which the rest of the rule is nullable */
} lalr_grammar;

static int check_input(const gm_lalr_grammar *g) {
    if (g->n_terms < 1 || g->n_nonterms < 1 || g->n_rules < 1 || g->n_rhs < 0) return GM_LALR_BAD_INPUT;
    if ((int64_t)g->n_terms + g->n_nonterms > INT32_MAX / 2) return GM_LALR_BAD_INPUT;
    if ((int64_t)g->n_rhs + g->n_rules > INT32_MAX / 2) return GM_LALR_BAD_INPUT;
    if (g->end_term < 0 || g->end_term >= g->n_terms) return GM_LALR_BAD_INPUT;
    if (g->rule_begin[0] != 0 || g->rule_begin[g->n_rules] != g->n_rhs) return GM_LALR_BAD_INPUT;
    const int32_t n_sym = g->n_terms + g->n_nonterms;
    for (int32_t r = 0; r < g->n_rules; r++) {
        if (g->rule_begin[r + 1] < g->rule_begin[r]) return GM_LALR_BAD_INPUT;
        if (g->rule_lhs[r] < 0 || g->rule_lhs[r] >= g->n_nonterms) return GM_LALR_BAD_INPUT;
    }
    for (int32_t i = 0; i < g->n_rhs; i++)
        if (g->rhs[i] < 0 || g->rhs[i] >= n_sym || g->rhs[i] == g->end_term) return GM_LALR_BAD_INPUT;
    const int32_t root = g->root_rule;
    if (root < 0 || root >= g->n_rules || g->rule_begin[root + 1] - g->rule_begin[root] != 1) return GM_LALR_BAD_INPUT;
    if (g->rhs[g->rule_begin[root]] < g->n_terms) return GM_LALR_BAD_INPUT;
    /* The root's nonterminal has no other rule and appears in no right-hand side (its state is the start). */
    const int32_t root_nt = g->rule_lhs[root] + g->n_terms;
    for (int32_t r = 0; r < g->n_rules; r++)
        if (r != root && g->rule_lhs[r] == g->rule_lhs[root]) return GM_LALR_BAD_INPUT;
    for (int32_t i = 0; i < g->n_rhs; i++)
        if (g->rhs[i] == root_nt) return GM_LALR_BAD_INPUT;
    return 0;
}

static void grammar_free(lalr_grammar *lg) {
    GM_FREE_ALL(lg->item_base, lg->item_rule, lg->item_next, lg->nt_rules_begin, lg->nt_rules, lg->nullable,
                lg->null_suffix);
}

/* Nullable nonterminals: a rule whose symbols all are nullable makes its left side nullable (worklist over
 * the occurrences of each nonterminal). */
static int compute_nullable(lalr_grammar *lg) {
    const gm_lalr_grammar *g = lg->g;
    const int32_t T = g->n_terms, NT = g->n_nonterms;
    int32_t *left = gm_malloc((size_t)g->n_rules * sizeof(int32_t));
    int32_t *occ_begin = gm_calloc((size_t)NT + 1, sizeof(int32_t));
    int32_t *occ = gm_malloc((size_t)g->n_rhs * sizeof(int32_t) + 1);
    int32_t *work = gm_malloc((size_t)NT * sizeof(int32_t));
    int rc = GM_NOMEM;
    if (!left || !occ_begin || !occ || !work) goto done;
    for (int32_t i = 0; i < g->n_rhs; i++)
        if (g->rhs[i] >= T) occ_begin[g->rhs[i] - T + 1]++;
    for (int32_t a = 0; a < NT; a++) occ_begin[a + 1] += occ_begin[a];
    int32_t n_work = 0;
    for (int32_t r = 0; r < g->n_rules; r++) {
        left[r] = 0;
        for (int32_t i = g->rule_begin[r]; i < g->rule_begin[r + 1]; i++) {
            const int32_t s = g->rhs[i];
            if (s < T) {
                left[r] = -1; /* a terminal: never nullable */
                break;
            }
            left[r]++;
        }
    }
    {
        int32_t *fill = work; /* borrowed as the fill cursors, before the worklist needs it */
        for (int32_t a = 0; a < NT; a++) fill[a] = occ_begin[a];
        for (int32_t r = 0; r < g->n_rules; r++)
            for (int32_t i = g->rule_begin[r]; i < g->rule_begin[r + 1]; i++)
                if (g->rhs[i] >= T) occ[fill[g->rhs[i] - T]++] = r;
    }
    for (int32_t r = 0; r < g->n_rules; r++)
        if (left[r] == 0 && !lg->nullable[g->rule_lhs[r]]) {
            lg->nullable[g->rule_lhs[r]] = 1;
            work[n_work++] = g->rule_lhs[r];
        }
    while (n_work > 0) {
        const int32_t a = work[--n_work];
        for (int32_t k = occ_begin[a]; k < occ_begin[a + 1]; k++) {
            const int32_t r = occ[k];
            if (left[r] > 0 && --left[r] == 0 && !lg->nullable[g->rule_lhs[r]]) {
                lg->nullable[g->rule_lhs[r]] = 1;
                work[n_work++] = g->rule_lhs[r];
            }
        }
    }
    for (int32_t r = 0; r < g->n_rules; r++) {
        int32_t k = g->rule_begin[r + 1];
        while (k > g->rule_begin[r] && g->rhs[k - 1] >= T && lg->nullable[g->rhs[k - 1] - T]) k--;
        lg->null_suffix[r] = k - g->rule_begin[r];
    }
    rc = 0;
done:
    GM_FREE_ALL(left, occ_begin, occ, work);
    return rc;
}

static int grammar_index(lalr_grammar *lg, const gm_lalr_grammar *g) {
    memset(lg, 0, sizeof(*lg));
    lg->g = g;
    lg->n_sym = g->n_terms + g->n_nonterms;
    lg->n_items = g->n_rhs + g->n_rules;
    const int32_t NT = g->n_nonterms;
    lg->item_base = gm_malloc((size_t)g->n_rules * sizeof(int32_t));
    lg->item_rule = gm_malloc((size_t)lg->n_items * sizeof(int32_t));
    lg->item_next = gm_malloc((size_t)lg->n_items * sizeof(int32_t));
    lg->nt_rules_begin = gm_calloc((size_t)NT + 1, sizeof(int32_t));
    lg->nt_rules = gm_malloc((size_t)g->n_rules * sizeof(int32_t));
    lg->nullable = gm_calloc((size_t)NT, 1);
    lg->null_suffix = gm_malloc((size_t)g->n_rules * sizeof(int32_t));
    if (!lg->item_base || !lg->item_rule || !lg->item_next || !lg->nt_rules_begin || !lg->nt_rules ||
        !lg->nullable || !lg->null_suffix)
        return GM_NOMEM;
    for (int32_t r = 0; r < g->n_rules; r++) {
        const int32_t base = g->rule_begin[r] + r, len = g->rule_begin[r + 1] - g->rule_begin[r];
        lg->item_base[r] = base;
        for (int32_t d = 0; d <= len; d++) {
            lg->item_rule[base + d] = r;
            lg->item_next[base + d] = d < len ? g->rhs[g->rule_begin[r] + d] : -1;
        }
        lg->nt_rules_begin[g->rule_lhs[r] + 1]++;
    }
    for (int32_t a = 0; a < NT; a++) lg->nt_rules_begin[a + 1] += lg->nt_rules_begin[a];
    {
        int32_t *fill = gm_malloc((size_t)NT * sizeof(int32_t));
        if (!fill) return GM_NOMEM;
        memcpy(fill, lg->nt_rules_begin, (size_t)NT * sizeof(int32_t));
        for (int32_t r = 0; r < g->n_rules; r++) lg->nt_rules[fill[g->rule_lhs[r]]++] = r;
        gm_free(fill);
    }
    return compute_nullable(lg);
}

/* ---- LR(0) automaton ------------------------------------------------------------------------------- */

typedef struct {
    int32_t n_states, cap_states;
    vec32 kernel, closure;            /* items, state after state */
    int64_t *kernel_at, *closure_at;  /* [n_states + 1] offsets */
    int32_t *trans;                   /* [cap_states * n_sym] target state, -1 */
    int32_t *table;                   /* hash of kernels: state + 1, 0 empty */
    int64_t table_cap;
} lr0;

static void lr0_free(lr0 *a) {
    GM_FREE_ALL(a->kernel.v, a->closure.v, a->kernel_at, a->closure_at, a->trans, a->table);
}

static uint64_t kernel_hash(const int32_t *items, int64_t n) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)n;
    for (int64_t i = 0; i < n; i++) h = (h ^ (uint32_t)items[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static int kernel_equal(const lr0 *a, int32_t s, const int32_t *items, int64_t n) {
    const int64_t b = a->kernel_at[s], len = a->kernel_at[s + 1] - b;
    return len == n && memcmp(a->kernel.v + b, items, (size_t)n * sizeof(int32_t)) == 0;
}

static int table_rehash(lr0 *a) {
    const int64_t cap = a->table_cap ? a->table_cap * 2 : 1024;
    int32_t *t = gm_calloc((size_t)cap, sizeof(int32_t));
    if (!t) return GM_NOMEM;
    for (int32_t s = 0; s < a->n_states; s++) {
        const int64_t b = a->kernel_at[s];
        uint64_t h = kernel_hash(a->kernel.v + b, a->kernel_at[s + 1] - b) & (uint64_t)(cap - 1);
        while (t[h]) h = (h + 1) & (uint64_t)(cap - 1);
        t[h] = s + 1;
    }
    gm_free(a->table);
    a->table = t;
    a->table_cap = cap;
    return 0;
}

/* The state of kernel `items` (sorted), added if new: its id, or <0 on error. */
static int32_t state_of(lr0 *a, int32_t n_sym, const int32_t *items, int64_t n) {
    const uint64_t mask = (uint64_t)(a->table_cap - 1);
    uint64_t h = kernel_hash(items, n) & mask;
    for (; a->table[h]; h = (h + 1) & mask)
        if (kernel_equal(a, a->table[h] - 1, items, n)) return a->table[h] - 1;
    if (a->n_states >= INT32_MAX - 1) return GM_NOMEM;
    if (a->n_states + 1 >= a->cap_states) {
        const int64_t cap = (int64_t)a->cap_states * 2 + 16;
        if (cap * n_sym > (int64_t)(SIZE_MAX / sizeof(int32_t)) / 2) return GM_NOMEM;
        int32_t *t = gm_realloc(a->trans, (size_t)(cap * n_sym) * sizeof(int32_t));
        if (!t) return GM_NOMEM;
        a->trans = t;
        int64_t *k = gm_realloc(a->kernel_at, (size_t)(cap + 1) * sizeof(int64_t));
        if (!k) return GM_NOMEM;
        a->kernel_at = k;
        int64_t *c = gm_realloc(a->closure_at, (size_t)(cap + 1) * sizeof(int64_t));
        if (!c) return GM_NOMEM;
        a->closure_at = c;
        a->cap_states = (int32_t)cap;
    }
    const int32_t s = a->n_states;
    for (int64_t i = 0; i < n; i++)
        if (vec_push(&a->kernel, items[i])) return GM_NOMEM;
    a->kernel_at[s + 1] = a->kernel.n;
    for (int64_t i = 0; i < n_sym; i++) a->trans[(int64_t)s * n_sym + i] = -1;
    a->n_states++;
    a->table[h] = s + 1;
    if (2 * (int64_t)a->n_states > a->table_cap && table_rehash(a)) return GM_NOMEM;
    return s;
}

static int cmp_int32(const void *x, const void *y) {
    const int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

/* State s's closure (after its kernel): the rules, at dot 0, of every nonterminal after a dot, transitively
 * (`seen` marks the nonterminals added, by stamp s + 1). */
static int close_state(const lalr_grammar *lg, lr0 *a, int32_t s, int32_t *seen, int32_t *work) {
    const int32_t T = lg->g->n_terms;
    const int64_t kb = a->kernel_at[s], ke = a->kernel_at[s + 1];
    a->closure_at[s] = a->closure.n;
    int32_t n_work = 0;
    for (int64_t i = kb; i < ke; i++) {
        const int32_t item = a->kernel.v[i];
        if (vec_push(&a->closure, item)) return GM_NOMEM;
        const int32_t x = lg->item_next[item];
        if (x >= T && seen[x - T] != s + 1) {
            seen[x - T] = s + 1;
            work[n_work++] = x - T;
        }
    }
    for (int32_t w = 0; w < n_work; w++) {
        const int32_t nt = work[w];
        for (int32_t k = lg->nt_rules_begin[nt]; k < lg->nt_rules_begin[nt + 1]; k++) {
            const int32_t item = lg->item_base[lg->nt_rules[k]];
            if (vec_push(&a->closure, item)) return GM_NOMEM;
            const int32_t x = lg->item_next[item];
            if (x >= T && seen[x - T] != s + 1) {
                seen[x - T] = s + 1;
                work[n_work++] = x - T;
            }
        }
    }
    a->closure_at[s + 1] = a->closure.n;
    return 0;
}

/* The LR(0) states from the root rule's, breadth first; every transition in a->trans. */
static int build_lr0(const lalr_grammar *lg, lr0 *a, double deadline) {
    const gm_lalr_grammar *g = lg->g;
    const int32_t n_sym = lg->n_sym;
    int rc = GM_NOMEM;
    int32_t *seen = gm_calloc((size_t)g->n_nonterms, sizeof(int32_t));
    int32_t *work = gm_malloc((size_t)g->n_nonterms * sizeof(int32_t));
    int32_t *count = gm_calloc((size_t)n_sym, sizeof(int32_t));    /* items per symbol after the dot */
    int32_t *at = gm_malloc((size_t)n_sym * sizeof(int32_t));
    int32_t *touched = gm_malloc((size_t)n_sym * sizeof(int32_t));
    vec32 bucket = {0};
    if (!seen || !work || !count || !at || !touched) goto done;
    a->kernel_at = gm_malloc(sizeof(int64_t));
    a->closure_at = gm_malloc(sizeof(int64_t));
    if (!a->kernel_at || !a->closure_at || table_rehash(a)) goto done;
    a->kernel_at[0] = a->closure_at[0] = 0;
    const int32_t root_item = lg->item_base[g->root_rule];
    if (state_of(a, n_sym, &root_item, 1) < 0) goto done;
    for (int32_t s = 0; s < a->n_states; s++) {
        if ((s & 63) == 63 && past(deadline)) {
            rc = GM_LALR_TIMEOUT;
            goto done;
        }
        if (close_state(lg, a, s, seen, work)) goto done;
        /* Group the items by the symbol after their dot: each group, advanced, is a successor's kernel. */
        int32_t n_touched = 0;
        const int64_t cb = a->closure_at[s], ce = a->closure_at[s + 1];
        for (int64_t i = cb; i < ce; i++) {
            const int32_t x = lg->item_next[a->closure.v[i]];
            if (x < 0) continue;
            if (count[x]++ == 0) touched[n_touched++] = x;
        }
        int32_t total = 0;
        for (int32_t k = 0; k < n_touched; k++) {
            at[touched[k]] = total;
            total += count[touched[k]];
        }
        bucket.n = 0;
        if (grow((void **)&bucket.v, &bucket.cap, total, sizeof(int32_t))) goto done;
        for (int64_t i = cb; i < ce; i++) {
            const int32_t item = a->closure.v[i], x = lg->item_next[item];
            if (x >= 0) bucket.v[at[x]++] = item + 1;
        }
        for (int32_t k = 0, begin = 0; k < n_touched; k++) {
            const int32_t x = touched[k], n = count[x];
            qsort(bucket.v + begin, (size_t)n, sizeof(int32_t), cmp_int32);
            const int32_t t = state_of(a, n_sym, bucket.v + begin, n);
            if (t < 0) goto done;
            a->trans[(int64_t)s * n_sym + x] = t;
            count[x] = 0;
            begin += n;
        }
    }
    rc = 0;
done:
    GM_FREE_ALL(seen, work, count, at, touched, bucket.v);
    return rc;
}

/* ---- lookaheads (DeRemer and Pennello) ------------------------------------------------------------- */

/* A relation over the nonterminal transitions, as lists: succ[begin[x] .. begin[x + 1]). */
typedef struct {
    int32_t *begin, *succ;
} relation;

/* The relation from its pairs (from[k], to[k]), k < n, over n_nodes nodes. */
static int relation_of(relation *rel, const vec32 *from, const vec32 *to, int32_t n_nodes) {
    rel->begin = gm_calloc((size_t)n_nodes + 1, sizeof(int32_t));
    rel->succ = gm_malloc((size_t)from->n * sizeof(int32_t) + 1);
    int32_t *fill = gm_malloc((size_t)n_nodes * sizeof(int32_t) + 1);
    if (!rel->begin || !rel->succ || !fill) {
        gm_free(fill);
        return GM_NOMEM;
    }
    for (int64_t k = 0; k < from->n; k++) rel->begin[from->v[k] + 1]++;
    for (int32_t x = 0; x < n_nodes; x++) rel->begin[x + 1] += rel->begin[x];
    memcpy(fill, rel->begin, (size_t)n_nodes * sizeof(int32_t));
    for (int64_t k = 0; k < from->n; k++) rel->succ[fill[from->v[k]]++] = to->v[k];
    gm_free(fill);
    return 0;
}

/* F(x) = G(x) | the union of F(y) over y reachable from x (DeRemer and Pennello's digraph, without
 * recursion): `sets` holds G on entry ([n * words]), F on return. *cyclic is set when some strongly
 * connected component has more than one node. */
static int digraph(const relation *rel, int32_t n, uint64_t *sets, int32_t words, int *cyclic) {
    int32_t *depth = gm_calloc((size_t)n + 1, sizeof(int32_t)); /* 0 unvisited, -1 done, else the weight */
    int32_t *stack = gm_malloc((size_t)n * sizeof(int32_t) + 1);
    int32_t *frame = gm_malloc((size_t)n * sizeof(int32_t) + 1);  /* DFS: node */
    int32_t *edge = gm_malloc((size_t)n * sizeof(int32_t) + 1);   /* DFS: its next successor */
    int32_t *entry = gm_malloc((size_t)n * sizeof(int32_t) + 1);  /* DFS: the stack height it was pushed at */
    if (!depth || !stack || !frame || !edge || !entry) {
        GM_FREE_ALL(depth, stack, frame, edge, entry);
        return GM_NOMEM;
    }
    int32_t n_stack = 0;
    for (int32_t root = 0; root < n; root++) {
        if (depth[root] != 0) continue;
        int32_t top = 0;
        stack[n_stack++] = root;
        depth[root] = entry[0] = n_stack;
        frame[0] = root;
        edge[0] = rel->begin[root];
        while (top >= 0) {
            const int32_t x = frame[top];
            if (edge[top] < rel->begin[x + 1]) {
                const int32_t y = rel->succ[edge[top]++];
                if (depth[y] == 0) {
                    stack[n_stack++] = y;
                    top++;
                    depth[y] = entry[top] = n_stack;
                    frame[top] = y;
                    edge[top] = rel->begin[y];
                    continue;
                }
                if (depth[y] > 0 && depth[y] < depth[x]) depth[x] = depth[y];
                if (y != x)
                    for (int32_t w = 0; w < words; w++) sets[(int64_t)x * words + w] |= sets[(int64_t)y * words + w];
                continue;
            }
            /* x is done: the root of its component pops it, each member taking the root's set */
            if (depth[x] == entry[top]) {
                for (;;) {
                    const int32_t z = stack[--n_stack];
                    depth[z] = -1;
                    if (z == x) break;
                    *cyclic = 1;
                    memcpy(sets + (int64_t)z * words, sets + (int64_t)x * words, (size_t)words * sizeof(uint64_t));
                }
            }
            top--;
            if (top >= 0) {
                const int32_t p = frame[top];
                if (depth[x] > 0 && depth[x] < depth[p]) depth[p] = depth[x];
                for (int32_t w = 0; w < words; w++) sets[(int64_t)p * words + w] |= sets[(int64_t)x * words + w];
            }
        }
    }
    GM_FREE_ALL(depth, stack, frame, edge, entry);
    return 0;
}

typedef struct {
    int32_t n_nt;                     /* nonterminal transitions */
    int32_t *nt_id;                   /* [n_states * n_nonterms] transition id, -1 */
    int32_t *nt_state;                /* [n_nt] */
    int32_t *nt_target;               /* [n_nt] */
    int32_t *state_nt_begin;          /* [n_states + 1]: a state's transitions are numbered together */
    vec32 lb_nt, lb_state, lb_rule;   /* lookback: transition, final state, rule */
    uint64_t *follow;                 /* [n_nt * words] */
} lookaheads;

static void lookaheads_free(lookaheads *la) {
    GM_FREE_ALL(la->nt_id, la->nt_state, la->nt_target, la->state_nt_begin, la->lb_nt.v, la->lb_state.v,
                la->lb_rule.v, la->follow);
}

static int number_transitions(const lalr_grammar *lg, const lr0 *a, lookaheads *la) {
    const int32_t T = lg->g->n_terms, NT = lg->g->n_nonterms, S = a->n_states;
    la->nt_id = gm_malloc((size_t)S * (size_t)NT * sizeof(int32_t));
    la->state_nt_begin = gm_malloc(((size_t)S + 1) * sizeof(int32_t));
    if (!la->nt_id || !la->state_nt_begin) return GM_NOMEM;
    int64_t n = 0;
    for (int32_t s = 0; s < S; s++) {
        la->state_nt_begin[s] = (int32_t)n;
        for (int32_t x = 0; x < NT; x++)
            la->nt_id[(int64_t)s * NT + x] = a->trans[(int64_t)s * lg->n_sym + T + x] >= 0 ? (int32_t)n++ : -1;
        if (n >= INT32_MAX / 2) return GM_NOMEM;
    }
    la->state_nt_begin[S] = (int32_t)n;
    la->n_nt = (int32_t)n;
    la->nt_state = gm_malloc((size_t)n * sizeof(int32_t) + 1);
    la->nt_target = gm_malloc((size_t)n * sizeof(int32_t) + 1);
    if (!la->nt_state || !la->nt_target) return GM_NOMEM;
    for (int32_t s = 0; s < S; s++)
        for (int32_t x = 0; x < NT; x++) {
            const int32_t m = la->nt_id[(int64_t)s * NT + x];
            if (m < 0) continue;
            la->nt_state[m] = s;
            la->nt_target[m] = a->trans[(int64_t)s * lg->n_sym + T + x];
        }
    return 0;
}

/* Read sets: DR(p, A) = the terminals shifted in the state A leads to (and $END after the root's start),
 * closed under reads: (p, A) reads (q, C) where q is A's target and C a nullable nonterminal q shifts. */
static int read_sets(const lalr_grammar *lg, const lr0 *a, lookaheads *la, int32_t words, int *cyclic) {
    const gm_lalr_grammar *g = lg->g;
    const int32_t T = g->n_terms, NT = g->n_nonterms;
    la->follow = gm_calloc((size_t)la->n_nt * (size_t)words + 1, sizeof(uint64_t));
    if (!la->follow) return GM_NOMEM;
    vec32 from = {0}, to = {0};
    relation reads = {0};
    int rc = GM_NOMEM;
    for (int32_t m = 0; m < la->n_nt; m++) {
        const int32_t q = la->nt_target[m];
        uint64_t *set = la->follow + (int64_t)m * words;
        for (int32_t t = 0; t < T; t++)
            if (a->trans[(int64_t)q * lg->n_sym + t] >= 0) set[t >> 6] |= 1ull << (t & 63);
        for (int32_t x = 0; x < NT; x++) {
            const int32_t n = la->nt_id[(int64_t)q * NT + x];
            if (n >= 0 && lg->nullable[x] && (vec_push(&from, m) || vec_push(&to, n))) goto done;
        }
    }
    /* The root's start transition reads $END. */
    const int32_t start_nt = g->rhs[g->rule_begin[g->root_rule]] - T;
    const int32_t root_m = la->nt_id[start_nt];
    if (root_m >= 0) la->follow[(int64_t)root_m * words + (g->end_term >> 6)] |= 1ull << (g->end_term & 63);
    if (relation_of(&reads, &from, &to, la->n_nt)) goto done;
    rc = digraph(&reads, la->n_nt, la->follow, words, cyclic);
done:
    GM_FREE_ALL(from.v, to.v, reads.begin, reads.succ);
    return rc;
}

/* includes and lookback, as Lark relates them: for each transition (p, A) and each item of p's closure
 * whose rule is A's, at dot d: walking the rest of the rule from p, each nonterminal transition (q, X) met
 * with only nullable symbols after X includes (p, A); and when d = 0, the state reached looks back to
 * (p, A) for the rule. Then Follow = the read sets closed under includes. */
static int follow_sets(const lalr_grammar *lg, const lr0 *a, lookaheads *la, int32_t words, double deadline) {
    const gm_lalr_grammar *g = lg->g;
    const int32_t T = g->n_terms, NT = g->n_nonterms;
    vec32 from = {0}, to = {0};
    relation includes = {0};
    int rc = GM_NOMEM;
    for (int32_t p = 0; p < a->n_states; p++) {
        if ((p & 255) == 255 && past(deadline)) {
            rc = GM_LALR_TIMEOUT;
            goto done;
        }
        for (int64_t i = a->closure_at[p]; i < a->closure_at[p + 1]; i++) {
            const int32_t item = a->closure.v[i], r = lg->item_rule[item];
            const int32_t m = la->nt_id[(int64_t)p * NT + g->rule_lhs[r]];
            if (m < 0) continue;
            const int32_t d0 = item - lg->item_base[r], len = g->rule_begin[r + 1] - g->rule_begin[r];
            int32_t q = p;
            for (int32_t d = d0; d < len; d++) {
                const int32_t x = g->rhs[g->rule_begin[r] + d];
                if (x >= T && d + 1 >= lg->null_suffix[r]) {
                    const int32_t n = la->nt_id[(int64_t)q * NT + x - T];
                    if (n >= 0 && (vec_push(&from, n) || vec_push(&to, m))) goto done;
                }
                q = a->trans[(int64_t)q * lg->n_sym + x];
                if (q < 0) { /* cannot be: the items of a state go on in its successors */
                    rc = GM_LALR_BAD_INPUT;
                    goto done;
                }
            }
            if (d0 == 0 && (vec_push(&la->lb_nt, m) || vec_push(&la->lb_state, q) || vec_push(&la->lb_rule, r)))
                goto done;
        }
    }
    if (relation_of(&includes, &from, &to, la->n_nt)) goto done;
    int cyclic = 0;
    rc = digraph(&includes, la->n_nt, la->follow, words, &cyclic);
done:
    GM_FREE_ALL(from.v, to.v, includes.begin, includes.succ);
    return rc;
}

/* ---- actions --------------------------------------------------------------------------------------- */

static int cmp_lookback(const void *x, const void *y) {
    const int32_t *a = x, *b = y;
    return a[0] != b[0] ? (a[0] > b[0]) - (a[0] < b[0]) : (a[1] > b[1]) - (a[1] < b[1]);
}

/* The reduce actions: each state's rules with their lookaheads; on a terminal several rules share, the one
 * of highest priority if it alone has it (else a collision); where the state shifts the terminal, the
 * shift stays (a conflict). */
static int resolve_actions(const lalr_grammar *lg, const lr0 *a, const lookaheads *la, int32_t words,
                           gm_lalr_tables *out) {
    const gm_lalr_grammar *g = lg->g;
    const int32_t T = g->n_terms;
    const int64_t n_lb = la->lb_nt.n;
    int rc = GM_NOMEM;
    int32_t *order = gm_malloc((size_t)n_lb * 3 * sizeof(int32_t) + 1); /* (state, rule, transition) */
    uint64_t *sets = NULL;
    int32_t *rules = NULL;
    vec32 conflicts = {0}, collisions = {0}, collision_rules = {0};
    if (!order) goto done;
    for (int64_t k = 0; k < n_lb; k++) {
        order[3 * k] = la->lb_state.v[k];
        order[3 * k + 1] = la->lb_rule.v[k];
        order[3 * k + 2] = la->lb_nt.v[k];
    }
    qsort(order, (size_t)n_lb, 3 * sizeof(int32_t), cmp_lookback);
    out->reduce = gm_malloc((size_t)a->n_states * (size_t)T * sizeof(int32_t));
    if (!out->reduce) goto done;
    for (int64_t i = 0; i < (int64_t)a->n_states * T; i++) out->reduce[i] = -1;
    int64_t k = 0;
    int64_t cap_sets = 0;
    while (k < n_lb) {
        const int32_t s = order[3 * k];
        /* the state's distinct rules, each with the union of its lookbacks' follow sets */
        int32_t n_rules = 0;
        int64_t e = k;
        while (e < n_lb && order[3 * e] == s) e++;
        if (grow((void **)&sets, &cap_sets, (e - k) * words, sizeof(uint64_t))) goto done;
        gm_free(rules);
        rules = gm_malloc((size_t)(e - k) * sizeof(int32_t));
        if (!rules) goto done;
        for (int64_t j = k; j < e; j++) {
            const int32_t r = order[3 * j + 1];
            if (n_rules == 0 || rules[n_rules - 1] != r) {
                rules[n_rules] = r;
                memset(sets + (int64_t)n_rules * words, 0, (size_t)words * sizeof(uint64_t));
                n_rules++;
            }
            const uint64_t *f = la->follow + (int64_t)order[3 * j + 2] * words;
            uint64_t *dst = sets + (int64_t)(n_rules - 1) * words;
            for (int32_t w = 0; w < words; w++) dst[w] |= f[w];
        }
        for (int32_t t = 0; t < T; t++) {
            int32_t best = -1, n_best = 0, n_with = 0;
            for (int32_t j = 0; j < n_rules; j++) {
                if (!(sets[(int64_t)j * words + (t >> 6)] >> (t & 63) & 1)) continue;
                const int32_t r = rules[j];
                n_with++;
                if (best < 0 || g->rule_prio[r] > g->rule_prio[best]) {
                    best = r;
                    n_best = 1;
                } else if (g->rule_prio[r] == g->rule_prio[best]) {
                    n_best++;
                }
            }
            if (n_with == 0) continue;
            if (n_with > 1 && n_best > 1) {
                if (vec_push(&collisions, s) || vec_push(&collisions, t) ||
                    vec_push(&collisions, (int32_t)collision_rules.n))
                    goto done;
                for (int32_t j = 0; j < n_rules; j++)
                    if ((sets[(int64_t)j * words + (t >> 6)] >> (t & 63) & 1) && vec_push(&collision_rules, rules[j]))
                        goto done;
                continue;
            }
            if (a->trans[(int64_t)s * lg->n_sym + t] >= 0) {
                if (vec_push(&conflicts, s) || vec_push(&conflicts, t) || vec_push(&conflicts, best)) goto done;
            } else {
                out->reduce[(int64_t)s * T + t] = best;
            }
        }
        k = e;
    }
    if (vec_push(&collisions, -1) || vec_push(&collisions, -1) || vec_push(&collisions, (int32_t)collision_rules.n))
        goto done; /* the end of the last collision's rules */
    out->n_conflicts = (int32_t)(conflicts.n / 3);
    out->conflicts = conflicts.v;
    conflicts.v = NULL;
    out->n_collisions = (int32_t)(collisions.n / 3) - 1;
    out->collisions = collisions.v;
    collisions.v = NULL;
    out->collision_rules = collision_rules.v;
    collision_rules.v = NULL;
    rc = 0;
done:
    GM_FREE_ALL(order, sets, rules, conflicts.v, collisions.v, collision_rules.v);
    return rc;
}

/* ---- the build --------------------------------------------------------------------------------------- */

void gm_lalr_free(gm_lalr_tables *t) {
    GM_FREE_ALL(t->trans, t->reduce, t->conflicts, t->collisions, t->collision_rules);
    memset(t, 0, sizeof(*t));
}

int gm_lalr_build(const gm_lalr_grammar *g, gm_lalr_tables *out) {
    memset(out, 0, sizeof(*out));
    int rc = check_input(g);
    if (rc) return rc;
    lalr_grammar lg;
    lr0 a = {0};
    lookaheads la = {0};
    rc = grammar_index(&lg, g);
    if (!rc) rc = build_lr0(&lg, &a, g->deadline);
    const int32_t words = (g->n_terms + 63) / 64;
    int cyclic = 0;
    if (!rc) rc = number_transitions(&lg, &a, &la);
    if (!rc && (int64_t)la.n_nt * words > (int64_t)(SIZE_MAX / sizeof(uint64_t)) / 2) rc = GM_NOMEM;
    if (!rc) rc = read_sets(&lg, &a, &la, words, &cyclic);
    if (!rc && cyclic) rc = GM_LALR_FALLBACK;
    if (!rc && past(g->deadline)) rc = GM_LALR_TIMEOUT;
    if (!rc) rc = follow_sets(&lg, &a, &la, words, g->deadline);
    if (!rc) rc = resolve_actions(&lg, &a, &la, words, out);
    if (!rc) {
        out->n_states = a.n_states;
        out->n_symbols = lg.n_sym;
        const int32_t start_sym = g->rhs[g->rule_begin[g->root_rule]];
        out->end_state = a.trans[start_sym]; /* state 0 is the start */
        out->trans = a.trans;
        a.trans = NULL;
    } else {
        gm_lalr_free(out);
    }
    lookaheads_free(&la);
    lr0_free(&a);
    grammar_free(&lg);
    return rc;
}
