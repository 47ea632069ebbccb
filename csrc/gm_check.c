/* Checking tables that come from outside (a cache file, a caller): what range checks of single arrays
 * cannot show. The stacks the LR tables can build are paths from lr_start in the graph of their shift and
 * goto entries, so the checks hold for every stack a parse can reach. */
#include "gm_internal.h"

#include <stdarg.h>
#include <stdio.h>

#define CHECK_WORK_LIMIT 200000000  /* steps: tables needing more are refused rather than checked for long */

static int check_fail(char *msg, int32_t msg_len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (msg_len > 0) vsnprintf(msg, (size_t)msg_len, fmt, ap);
    va_end(ap);
    return -1;
}

/* The reductions one reachable LR state makes: rule, its length, and the states its goto can push
 * (targets[begin..end)). */
typedef struct { int32_t rule, len; int64_t begin, end; } lr_reduce;

typedef struct {
    const gm_grammar *g;
    int32_t n, T, N;
    int32_t *depth;                 /* fewest shifts and gotos from lr_start; -1: unreachable */
    int32_t *pred_begin, *preds;    /* reachable predecessors, each once */
    lr_reduce *red; int64_t n_red, red_cap;
    int32_t *red_begin;             /* [n + 1] a state's entries in red */
    int32_t *targets; int64_t n_targets, targets_cap;
    int64_t work;
} lr_check;

static int32_t successor(const gm_grammar *g, int32_t p, int32_t k) {
    const int32_t T = g->n_terminals + 1;
    return k < T ? g->action[(size_t)p * T + k] : g->go[(size_t)p * g->n_nonterminals + (k - T)];
}

/* depth[] by breadth-first search, and the reachable predecessor lists. */
static int lr_graph(lr_check *c) {
    const int32_t n = c->n, K = c->T + c->N;
    int32_t *queue = gm_malloc((size_t)n * sizeof(int32_t)), *mark = gm_malloc((size_t)n * sizeof(int32_t));
    int rc = GM_NOMEM;
    c->depth = gm_malloc((size_t)n * sizeof(int32_t));
    c->pred_begin = gm_calloc((size_t)n + 1, sizeof(int32_t));
    if (!queue || !mark || !c->depth || !c->pred_begin) goto done;
    for (int32_t s = 0; s < n; s++) c->depth[s] = -1, mark[s] = -1;
    int32_t head = 0, tail = 0;
    c->depth[c->g->lr_start] = 0;
    queue[tail++] = c->g->lr_start;
    int64_t n_edges = 0;
    while (head < tail) {
        const int32_t p = queue[head++];
        for (int32_t k = 0; k < K; k++) {
            const int32_t s = successor(c->g, p, k);
            if (s < 0 || mark[s] == p) continue;
            mark[s] = p;
            c->pred_begin[s + 1]++;
            n_edges++;
            if (c->depth[s] < 0) {
                c->depth[s] = c->depth[p] + 1;
                queue[tail++] = s;
            }
        }
    }
    c->work += (int64_t)tail * K;
    for (int32_t s = 0; s < n; s++) c->pred_begin[s + 1] += c->pred_begin[s], mark[s] = -1;
    c->preds = gm_malloc((size_t)(n_edges ? n_edges : 1) * sizeof(int32_t));
    if (!c->preds) goto done;
    int32_t *fill = queue; /* reused: next free slot per state */
    memcpy(fill, c->pred_begin, (size_t)n * sizeof(int32_t));
    for (int32_t p = 0; p < n; p++) {
        if (c->depth[p] < 0) continue;
        for (int32_t k = 0; k < K; k++) {
            const int32_t s = successor(c->g, p, k);
            if (s < 0 || mark[s] == p) continue;
            mark[s] = p;
            c->preds[fill[s]++] = p;
        }
    }
    rc = 0;
done:
    GM_FREE_ALL(queue, mark);
    return rc;
}

/* For each reachable state and rule it reduces: the rule pops no more than the state's depth, and every
 * state that many below it (on any path) has a goto on the rule's left side; those gotos are the
 * reduction's targets. */
static int lr_reductions(lr_check *c, char *msg, int32_t msg_len) {
    const gm_grammar *g = c->g;
    const int32_t n = c->n, T = c->T, N = c->N;
    int rc = GM_NOMEM;
    int32_t *rule_mark = gm_malloc((size_t)(g->n_rules ? g->n_rules : 1) * sizeof(int32_t));
    int32_t *seen = gm_calloc((size_t)n, sizeof(int32_t)), *tmark = gm_calloc((size_t)n, sizeof(int32_t));
    int32_t *layers = NULL, *layer_begin = NULL;
    int64_t layers_cap = 0, lb_cap = 0;
    int32_t stamp = 0;
    c->red_begin = gm_malloc(((size_t)n + 1) * sizeof(int32_t));
    if (!rule_mark || !seen || !tmark || !c->red_begin) goto done;
    for (int32_t r = 0; r < g->n_rules; r++) rule_mark[r] = -1;
    for (int32_t s = 0; s < n; s++) {
        c->red_begin[s] = (int32_t)c->n_red;
        if (c->depth[s] < 0) continue;
        int32_t lmax = -1;
        for (int32_t t = 0; t < T; t++) {
            const int32_t a = g->action[(size_t)s * T + t];
            if (a > -2 || rule_mark[-a - 2] == s) continue;
            const int32_t r = -a - 2, len = g->rule_len[r];
            rule_mark[r] = s;
            if (len > c->depth[s]) {
                rc = check_fail(msg, msg_len, "LR state %d reduces rule %d of length %d, but a stack can hold "
                                "only %d states under it", s, r, len, c->depth[s]);
                goto done;
            }
            if (c->n_red > INT32_MAX - 1 ||
                grow((void **)&c->red, &c->red_cap, c->n_red + 1, sizeof(lr_reduce)))
                goto done;
            c->red[c->n_red++] = (lr_reduce){r, len, 0, 0};
            if (len > lmax) lmax = len;
        }
        if (lmax < 0) continue;
        /* layers[layer_begin[k] .. layer_begin[k+1]): the states k below s on some path */
        if (grow((void **)&layer_begin, &lb_cap, (int64_t)lmax + 2, sizeof(int32_t)) ||
            grow((void **)&layers, &layers_cap, 1, sizeof(int32_t)))
            goto done;
        layer_begin[0] = 0;
        layers[0] = s;
        layer_begin[1] = 1;
        for (int32_t k = 1; k <= lmax; k++) {
            stamp++;
            int64_t end = layer_begin[k];
            for (int32_t i = layer_begin[k - 1]; i < layer_begin[k]; i++) {
                const int32_t q = layers[i];
                c->work += c->pred_begin[q + 1] - c->pred_begin[q] + 1;
                for (int32_t j = c->pred_begin[q]; j < c->pred_begin[q + 1]; j++) {
                    const int32_t p = c->preds[j];
                    if (seen[p] == stamp) continue;
                    seen[p] = stamp;
                    if (grow((void **)&layers, &layers_cap, end + 1, sizeof(int32_t))) goto done;
                    layers[end++] = p;
                }
            }
            layer_begin[k + 1] = (int32_t)end;
        }
        if (c->work > CHECK_WORK_LIMIT) {
            rc = check_fail(msg, msg_len, "LR tables too large to check");
            goto done;
        }
        for (int64_t i = c->red_begin[s]; i < c->n_red; i++) {
            lr_reduce *e = &c->red[i];
            const int32_t lhs = g->rule_lhs[e->rule];
            e->begin = c->n_targets;
            stamp++;
            for (int32_t j = layer_begin[e->len]; j < layer_begin[e->len + 1]; j++) {
                const int32_t p = layers[j], to = g->go[(size_t)p * N + lhs];
                if (to < 0) {
                    rc = check_fail(msg, msg_len, "LR state %d reduces rule %d to nonterminal %d, but state %d "
                                    "under it has no goto on that nonterminal", s, e->rule, lhs, p);
                    goto done;
                }
                if (tmark[to] == stamp) continue;
                tmark[to] = stamp;
                if (grow((void **)&c->targets, &c->targets_cap, c->n_targets + 1, sizeof(int32_t))) goto done;
                c->targets[c->n_targets++] = to;
            }
            e->end = c->n_targets;
            c->work += layer_begin[e->len + 1] - layer_begin[e->len];
        }
    }
    c->red_begin[n] = (int32_t)c->n_red;
    rc = 0;
done:
    GM_FREE_ALL(rule_mark, seen, tmark, layers, layer_begin);
    return rc;
}

/* The reductions state s makes on lookahead t: its entry in c->red, or NULL (a shift, an error, or the end
 * of the parse: on $END the parser stops as soon as a reduction reaches lr_end). */
static const lr_reduce *reduce_on(const lr_check *c, int32_t s, int32_t t) {
    if (c->depth[s] < 0 || (t == c->T - 1 && s == c->g->lr_end)) return NULL;
    const int32_t a = c->g->action[(size_t)s * c->T + t];
    if (a > -2) return NULL;
    for (int32_t i = c->red_begin[s]; i < c->red_begin[s + 1]; i++)
        if (c->red[i].rule == -a - 2) return &c->red[i];
    return NULL;
}

/* On lookahead t the parser reduces without end only along a cycle of reductions that does not shrink
 * the stack: each pops len states and pushes one, so a cycle whose lengths sum to no more than its
 * number of reductions. Strongly connected components (Tarjan), then Bellman-Ford in each one that has
 * a cycle, with cost (n + 1) * (len - 1) - 1 per edge: negative exactly on the cycles that do not
 * shrink. */
static int lr_cycles(lr_check *c, char *msg, int32_t msg_len) {
    const int32_t n = c->n;
    int rc = GM_NOMEM;
    int32_t *index = gm_malloc((size_t)n * sizeof(int32_t)), *low = gm_malloc((size_t)n * sizeof(int32_t));
    int32_t *comp = gm_malloc((size_t)n * sizeof(int32_t)), *stk = gm_malloc((size_t)n * sizeof(int32_t));
    int32_t *cs_node = gm_malloc((size_t)n * sizeof(int32_t)), *members = gm_malloc((size_t)n * sizeof(int32_t));
    int64_t *cs_edge = gm_malloc((size_t)n * sizeof(int64_t)), *dist = gm_malloc((size_t)n * sizeof(int64_t));
    uint8_t *on_stack = gm_calloc((size_t)n, 1);
    if (!index || !low || !comp || !stk || !cs_node || !members || !cs_edge || !dist || !on_stack) goto done;
    for (int32_t t = 0; t < c->T; t++) {
        for (int32_t v = 0; v < n; v++) index[v] = -1, comp[v] = -1;
        int32_t next_index = 0, sp = 0, n_comp = 0;
        for (int32_t v0 = 0; v0 < n; v0++) {
            if (index[v0] >= 0 || !reduce_on(c, v0, t)) continue;
            int32_t depth;
            index[v0] = low[v0] = next_index++;
            stk[sp++] = v0;
            on_stack[v0] = 1;
            cs_node[0] = v0;
            cs_edge[0] = reduce_on(c, v0, t)->begin;
            depth = 1;
            while (depth) {
                const int32_t v = cs_node[depth - 1];
                const lr_reduce *e = reduce_on(c, v, t);
                if (e && cs_edge[depth - 1] < e->end) {
                    const int32_t w = c->targets[cs_edge[depth - 1]++];
                    c->work++;
                    if (index[w] < 0) {
                        index[w] = low[w] = next_index++;
                        stk[sp++] = w;
                        on_stack[w] = 1;
                        const lr_reduce *ew = reduce_on(c, w, t);
                        cs_node[depth] = w;
                        cs_edge[depth] = ew ? ew->begin : 0;
                        depth++;
                    } else if (on_stack[w] && index[w] < low[v]) {
                        low[v] = index[w];
                    }
                    continue;
                }
                depth--;
                if (depth && low[v] < low[cs_node[depth - 1]]) low[cs_node[depth - 1]] = low[v];
                if (low[v] != index[v]) continue;
                int32_t size = 0, x;
                do {
                    x = stk[--sp];
                    on_stack[x] = 0;
                    comp[x] = n_comp;
                    members[size++] = x;
                } while (x != v);
                /* Bellman-Ford inside the component (a lone state: its own loop, if any, is the cycle) */
                for (int32_t i = 0; i < size; i++) dist[members[i]] = 0;
                int changed = 1;
                for (int32_t round = 0; round <= size && changed; round++) {
                    changed = 0;
                    for (int32_t i = 0; i < size; i++) {
                        const int32_t u = members[i];
                        const lr_reduce *eu = reduce_on(c, u, t);
                        if (!eu) continue;
                        const int64_t cost = (int64_t)(n + 1) * (eu->len - 1) - 1;
                        c->work += eu->end - eu->begin;
                        for (int64_t j = eu->begin; j < eu->end; j++) {
                            const int32_t w = c->targets[j];
                            if (comp[w] != n_comp || dist[u] + cost >= dist[w]) continue;
                            dist[w] = dist[u] + cost;
                            changed = 1;
                        }
                    }
                    if (c->work > CHECK_WORK_LIMIT) {
                        rc = check_fail(msg, msg_len, "LR tables too large to check");
                        goto done;
                    }
                }
                if (changed) {
                    rc = check_fail(msg, msg_len, "on terminal %d the LR tables reduce in a cycle that never ends "
                                    "(through state %d)", t, v);
                    goto done;
                }
                n_comp++;
            }
        }
    }
    rc = 0;
done:
    GM_FREE_ALL(index, low, comp, stk, cs_node, members, cs_edge, dist, on_stack);
    return rc;
}

int gm_check_grammar(const gm_grammar *g, char *msg, int32_t msg_len) {
    if (msg_len > 0) msg[0] = 0;
    for (int32_t k = 0; g->n_modes > 1 && k < g->n_modes; k++)
        if (g->lex_mode[g->mode_start[k]] != k)
            return check_fail(msg, msg_len, "lexer mode %d starts in state %d of mode %d", k, g->mode_start[k],
                              g->lex_mode[g->mode_start[k]]);
    lr_check c = {.g = g, .n = g->n_lr_states, .T = g->n_terminals + 1, .N = g->n_nonterminals};
    int rc = lr_graph(&c);
    if (!rc) rc = lr_reductions(&c, msg, msg_len);
    if (!rc) rc = lr_cycles(&c, msg, msg_len);
    GM_FREE_ALL(c.depth, c.pred_begin, c.preds, c.red, c.red_begin, c.targets);
    return rc;
}
