/* The token tables: every token of the vocabulary lexed from every lexer state, once, at compile time. A
 * token that stays inside the lexeme (and loses no terminal the parser could want) goes into the state's
 * unconditional mask; the others into groups by the terminal sequence they feed and the completable set
 * they leave pending, for the fill (gm_fill.c) to check against the parser. States are split between
 * threads, each building every n-th one, and the parts merged. */
#include "gm_internal.h"

#ifndef _WIN32
#include <pthread.h>
#endif

void gm_build_free(gm_build *out) {
    GM_FREE_ALL(out->wsop_begin, out->wsop_bytes, out->wsop_reset, out->masks, out->group_begin, out->group_seq,
                out->group_cset, out->group_tok_begin, out->group_toks, out->seq_begin, out->seq_terms);
    memset(out, 0, sizeof(*out));
}

#define DQ_DYNAMIC (-3) /* builder: the token has crossed a lexeme boundary whose next mode the context decides */

/* The capacities of a gm_build's group arrays while they are written. */
typedef struct { int64_t tok_begin, seq, cset, toks; } group_caps;

/* `out` for n_ts table states, no groups yet. */
static int groups_start(gm_build *out, int32_t n_ts, int32_t n_words, group_caps *caps) {
    memset(out, 0, sizeof(*out));
    memset(caps, 0, sizeof(*caps));
    out->n_table_states = n_ts;
    out->n_words = n_words;
    out->group_begin = gm_malloc((size_t)(n_ts + 1) * sizeof(int32_t));
    if (!out->group_begin || grow((void **)&out->group_tok_begin, &caps->tok_begin, 1, sizeof(int32_t)))
        return GM_NOMEM;
    out->group_tok_begin[0] = 0;
    return 0;
}

/* Room for n more groups, with n_toks tokens in all. */
static int groups_reserve(gm_build *out, group_caps *caps, int64_t n, int64_t n_toks) {
    const int64_t need = (int64_t)out->n_groups + n + 1, toks = out->group_tok_begin[out->n_groups] + n_toks;
    if (toks > INT32_MAX) return GM_NOMEM;
    if (grow((void **)&out->group_tok_begin, &caps->tok_begin, need, sizeof(int32_t)) ||
        grow((void **)&out->group_seq, &caps->seq, need, sizeof(int32_t)) ||
        grow((void **)&out->group_cset, &caps->cset, need, sizeof(int32_t)) ||
        grow((void **)&out->group_toks, &caps->toks, toks + 1, sizeof(int32_t)))
        return GM_NOMEM;
    return 0;
}

/* lex_fallback in the builder: the complete lexeme that the one in progress at some depth passed, as
 * track_fallback keeps it at run time: at `at` (-1: none) the bytes after it begin; it ended in lexer state
 * `state`, the sequence before it being `seq`. */
typedef struct { int64_t at; int32_t state, term, seq; } fallback_at;
static const fallback_at NO_FALLBACK = {-1, 0, 0, 0};

/* The fallback after byte b (at depth d, from state q after sequence seq, with fallback `fb`) led to nq. */
static inline fallback_at fallback_after(const gm_grammar *g, fallback_at fb, int32_t q, int32_t seq, uint8_t b,
                                         int64_t d, int32_t nq) {
    const int continued = !is_start(g, q) && g->lex_trans[(size_t)q * 256 + b] >= 0;
    if (fb.at >= 0) { /* void: as track_fallback */
        fb.term = fallback_term_in(g, nq, fb.term);
        if (fb.term < 0) fb = NO_FALLBACK;
    }
    if (is_start(g, nq) || g->lex_winner[nq] >= 0 || !continued) return NO_FALLBACK;
    if (winner_before(g, q, b) >= 0) return (fallback_at){d, q, winner_before(g, q, b), seq};
    return fb;
}

/* Bytes b[from..to) lexed from state q after sequence *seq, with the fallback *fb: the state after (*seq, *fb
 * updated), GM_DEAD, DQ_DYNAMIC (a fallback of their own to take, or a restart the context decides: the
 * fill lexes such tokens itself), or GM_NOMEM. */
static int32_t walk_bytes(const gm_grammar *g, seq_table *st, const uint8_t *b, int64_t from, int64_t to, int32_t q,
                          int32_t *seq, fallback_at *fb) {
    int32_t s = *seq;
    for (int64_t i = from; i < to; i++) {
        if (fb->at >= 0 && g->lex_trans[(size_t)q * 256 + b[i]] < 0 && winner_before(g, q, b[i]) < 0)
            return DQ_DYNAMIC;
        int32_t emit[3];
        int ne, consumed;
        const int32_t nq = gm_lex_byte(g, q, b[i], emit, &ne, &consumed);
        if (nq == GM_DEAD) return GM_DEAD;
        if (nq == GM_RESUME) return DQ_DYNAMIC;
        for (int e = 0; e < ne; e++)
            if ((s = seq_append(st, s, emit[e])) < 0) return GM_NOMEM;
        if (g->lex_fallback) *fb = fallback_after(g, *fb, q, s, b[i], i, nq);
        q = nq;
    }
    *seq = s;
    return q;
}

/* Byte b[d] kills the lexeme with fallback dfb[d]: feed the lexeme it passed and lex b[fb.at .. d] again
 * from where the next one starts, as the matcher does (gm_feed.h's fall_back). The state after (dfb[d + 1]
 * and *seq_out set), or walk_bytes' GM_DEAD, DQ_DYNAMIC, GM_NOMEM. */
static int32_t fall_back_walk(const gm_grammar *g, seq_table *st, const uint8_t *b, int64_t d, fallback_at *dfb,
                              int32_t *seq_out) {
    const fallback_at fb = dfb[d];
    if (g->indenter) return DQ_DYNAMIC; /* the indentation of the bytes lexed again: the matcher's */
    const int32_t w = fb.term;
    int32_t s = fb.seq;
    if (!g->term_ignored[w] && (s = seq_append(st, s, w)) < 0) return GM_NOMEM;
    int32_t q = restart_state(g, fb.state, w);
    if (q == GM_RESUME) return DQ_DYNAMIC;
    fallback_at now = NO_FALLBACK;
    if ((q = walk_bytes(g, st, b, fb.at, d + 1, q, &s, &now)) < 0) return q;
    dfb[d + 1] = now;
    *seq_out = s;
    return q;
}

/* One state's groups while it is built: (sequence, completable set) -> local group id, and the tokens each
 * group counts. */
typedef struct {
    i64map map;
    int32_t *count, *seq, *cset;
    int32_t n, count_cap, seq_cap, cset_cap;
} state_groups;

static int32_t group_of(state_groups *gs, int32_t s, int32_t cset) {
    if (map_reserve(&gs->map)) return GM_NOMEM;
    int found;
    int32_t *slot = map_slot(&gs->map, ((int64_t)s << 32) | (uint32_t)(cset + 1), &found);
    if (found) return *slot;
    if (grow32(&gs->count, &gs->count_cap, (int64_t)gs->n + 1) || grow32(&gs->seq, &gs->seq_cap, (int64_t)gs->n + 1) ||
        grow32(&gs->cset, &gs->cset_cap, (int64_t)gs->n + 1))
        return GM_NOMEM;
    gs->count[gs->n] = 0;
    gs->seq[gs->n] = s;
    gs->cset[gs->n] = cset;
    *slot = gs->n;
    return gs->n++;
}

/* A contextual lexer's restart the parser state decides (GM_RESTART_DYNAMIC): the token's bytes b[from..len)
 * lexed from mode m's start, after sequence s and the marker of mode m (the fill takes the marker only
 * where the parser state's mode is m: gm_fill.c). The state after (*seq_out set), or walk_bytes' GM_DEAD,
 * DQ_DYNAMIC (also for a fallback pending at the end), GM_NOMEM. */
static int32_t walk_in_mode(const gm_grammar *g, seq_table *st, const uint8_t *b, int64_t from, int64_t len,
                            int32_t m, int32_t s, int32_t *seq_out) {
    if ((s = seq_append(st, s, GM_MODE_MARK(m))) < 0) return GM_NOMEM;
    fallback_at fb = NO_FALLBACK;
    const int32_t q = walk_bytes(g, st, b, from, len, g->mode_start[m], &s, &fb);
    if (q < 0) return q;
    if (fb.at >= 0) return DQ_DYNAMIC;
    *seq_out = s;
    return q;
}

/* A builder's working memory, for one table state at a time (build_state). */
struct state_builder {
    const gm_grammar *g;
    const uint8_t *tok_bytes;
    const int64_t *tok_begin;
    const int32_t *order;
    int32_t n_order, n_words, strip_leading_space;
    /* per byte of the token being walked: lexer state, sequence before it, ... */
    int32_t *dq, *dseq;
    /* ... within a t_nl lexeme: whether this token held its newline, and where its indentation starts; */
    uint8_t *dreset;
    int64_t *dfrom;
    /* lex_fallback: the complete lexeme the one in progress passed (see track_fallback) */
    fallback_at *dfb;
    /* The tokens in a group, in `order`'s order: (index into order, local group) pairs, room for every
     * token (a state's dead and unconditional tokens, most of the vocabulary, are not listed: the groups'
     * token lists are written from this list, not from a pass over the whole vocabulary). */
    int32_t *grouped;
    int64_t n_grouped;
    /* The sorted vocabulary in blocks of one first byte: a state that cannot take that byte skips the block
     * at once (most states take few first bytes; inside a multi-byte character, only continuation bytes).
     * From the vocabulary's shared index, or own_index when none was given. */
    const int32_t *block_end, *shared_prefix;
    const uint8_t *sorted_bytes;  /* the tokens' bytes in `order`'s order (see gm_vocab_index) */
    const int64_t *sorted_begin;
    gm_vocab_index own_index;
    state_groups gs;
    /* Tokens in a group per mode (see walk_in_mode): (index into order, local group) pairs. */
    int32_t *moded;
    int64_t moded_cap, n_moded;
};

void builder_free(state_builder *bd) {
    if (!bd) return;
    GM_FREE_ALL(bd->dq, bd->dseq, bd->dreset, bd->dfrom, bd->dfb, bd->grouped, bd->gs.count, bd->gs.seq, bd->gs.cset,
                bd->moded);
    gm_vocab_index_free(&bd->own_index);
    map_free(&bd->gs.map);
    gm_free(bd);
}

int gm_vocab_index_init(gm_vocab_index *ix, const uint8_t *tok_bytes, const int64_t *tok_begin,
                        const int32_t *order, int32_t n_order) {
    int64_t total = 0;
    *ix = (gm_vocab_index){0};
    for (int32_t k = 0; k < n_order; k++) {
        int64_t len = tok_begin[order[k] + 1] - tok_begin[order[k]];
        if (len > ix->max_len) ix->max_len = len;
        total += len;
    }
    ix->sorted_bytes = gm_malloc((size_t)(total ? total : 1));
    ix->sorted_begin = gm_malloc((size_t)(n_order + 1) * sizeof(int64_t));
    ix->block_end = gm_malloc((size_t)(n_order ? n_order : 1) * sizeof(int32_t));
    ix->shared_prefix = gm_malloc((size_t)(n_order ? n_order : 1) * sizeof(int32_t));
    if (!ix->sorted_bytes || !ix->sorted_begin || !ix->block_end || !ix->shared_prefix) {
        gm_vocab_index_free(ix);
        return GM_NOMEM;
    }
    ix->sorted_begin[0] = 0;
    for (int32_t k = 0; k < n_order; k++) {
        const int64_t at = tok_begin[order[k]], len = tok_begin[order[k] + 1] - at;
        if (len) memcpy(ix->sorted_bytes + ix->sorted_begin[k], tok_bytes + at, (size_t)len);
        ix->sorted_begin[k + 1] = ix->sorted_begin[k] + len;
    }
    for (int32_t k = n_order - 1; k >= 0; k--) {
        const int64_t at = ix->sorted_begin[k], len = ix->sorted_begin[k + 1] - at;
        const int same = k + 1 < n_order && len > 0 && ix->sorted_begin[k + 2] > ix->sorted_begin[k + 1] &&
                         ix->sorted_bytes[ix->sorted_begin[k + 1]] == ix->sorted_bytes[at];
        ix->block_end[k] = same ? ix->block_end[k + 1] : k + 1;
    }
    for (int32_t k = 0; k < n_order; k++) {
        int64_t d = 0;
        if (k > 0) {
            const int64_t *at = ix->sorted_begin + k - 1; /* token k - 1 at at[0], token k at at[1] */
            const uint8_t *a = ix->sorted_bytes + at[0], *b = ix->sorted_bytes + at[1];
            const int64_t la = at[1] - at[0], lb = at[2] - at[1], lim = la < lb ? la : lb;
            while (d < lim && a[d] == b[d]) d++;
        }
        ix->shared_prefix[k] = (int32_t)(d < INT32_MAX ? d : INT32_MAX);
    }
    return 0;
}

void gm_vocab_index_free(gm_vocab_index *ix) {
    GM_FREE_ALL(ix->sorted_bytes, ix->sorted_begin, ix->block_end, ix->shared_prefix);
    *ix = (gm_vocab_index){0};
}

state_builder *builder_new(const gm_grammar *g, const uint8_t *tok_bytes, const int64_t *tok_begin,
                           const int32_t *order, int32_t n_order, const gm_vocab_index *ix, int32_t n_words,
                           int32_t strip_leading_space) {
    state_builder *bd = gm_calloc(1, sizeof(state_builder));
    if (!bd) return NULL;
    *bd = (state_builder){g, tok_bytes, tok_begin, order, n_order, n_words, strip_leading_space};
    if (!ix) {
        if (gm_vocab_index_init(&bd->own_index, tok_bytes, tok_begin, order, n_order)) {
            builder_free(bd);
            return NULL;
        }
        ix = &bd->own_index;
    }
    bd->block_end = ix->block_end;
    bd->shared_prefix = ix->shared_prefix;
    bd->sorted_bytes = ix->sorted_bytes;
    bd->sorted_begin = ix->sorted_begin;
    const int64_t max_len = ix->max_len;
    bd->dq = gm_malloc((size_t)(max_len + 1) * sizeof(int32_t));
    bd->dseq = gm_malloc((size_t)(max_len + 1) * sizeof(int32_t));
    bd->dreset = gm_malloc((size_t)(max_len + 1));
    bd->dfrom = gm_malloc((size_t)(max_len + 1) * sizeof(int64_t));
    bd->dfb = gm_malloc((size_t)(max_len + 1) * sizeof(fallback_at));
    bd->grouped = gm_malloc((size_t)(n_order ? n_order : 1) * 2 * sizeof(int32_t));
    if (map_init(&bd->gs.map, 256) || !bd->dq || !bd->dseq || !bd->dreset || !bd->dfrom || !bd->dfb || !bd->grouped) {
        builder_free(bd);
        return NULL;
    }
    return bd;
}

int build_state(state_builder *bd, seq_table *st, wsop_table *ops, int32_t ts, uint32_t *mask) {
    const gm_grammar *g = bd->g;
    const uint8_t *sorted_bytes = bd->sorted_bytes;
    const int64_t *sorted_begin = bd->sorted_begin;
    const int32_t *order = bd->order;
    const int32_t n_order = bd->n_order;
    int32_t *dq = bd->dq, *dseq = bd->dseq, *grouped = bd->grouped;
    const int32_t *block_end = bd->block_end, *shared_prefix = bd->shared_prefix;
    uint8_t *dreset = bd->dreset;
    int64_t *dfrom = bd->dfrom;
    fallback_at *dfb = bd->dfb;
    state_groups *gs = &bd->gs;
    const int by_mode = g->state_mode && !g->indenter; /* (the indentation rules feed more than the parser) */
    const int strip_state = ts == g->n_lex_states;
    const int32_t q0 = strip_state ? g->lex_init : ts;
    const int32_t state_cset = cset_of(g, q0);
    gs->n = 0;
    bd->n_moded = 0;
    bd->n_grouped = 0;
    map_clear(&gs->map);
    dq[0] = q0;
    dseq[0] = 0;
    dreset[0] = 0;
    dfrom[0] = 0;
    dfb[0] = NO_FALLBACK;
    int chained = 0;             /* dq, dseq, ... and stop_at hold token k - 1's walk (not after a skipped block) */
    int64_t stop_at = INT64_MAX; /* where the walked path died or turned dynamic */
    int64_t resume_at = -1;      /* ... at a restart the parser state decides: the byte the next lexeme
                                    begins with, and the sequence before it */
    int32_t resume_seq = 0;
    int prev_first = -1;         /* the first byte whose block was last looked at */
    for (int32_t k = 0; k < n_order; k++) {
        const int32_t t = order[k];
        const uint8_t *b = sorted_bytes + sorted_begin[k];  /* token t's bytes */
        const int64_t len = sorted_begin[k + 1] - sorted_begin[k];
        if (len > 0 && !strip_state && b[0] != prev_first) {
            int32_t emit[3];
            int ne, consumed;
            prev_first = b[0];
            if (gm_lex_byte(g, q0, b[0], emit, &ne, &consumed) == GM_DEAD) {
                k = block_end[k] - 1;
                chained = 0;
                continue;
            }
        }
        int64_t d = chained ? shared_prefix[k] : 0;
        /* Walk the bytes not shared with the previous (sorted) token, unless the shared part already
         * died or crossed a dynamic restart: then this token did too. */
        if (stop_at <= d) d = len;
        else stop_at = INT64_MAX, resume_at = -1;
        for (; d < len; d++) {
            if (dq[d] == GM_RESUME) {
                /* past a lexeme whose successor's mode the context decides */
                dq[d + 1] = DQ_DYNAMIC;
                stop_at = d + 1;
                resume_at = d;
                resume_seq = dseq[d];
                break;
            }
            if (strip_state && d == 0 && b[0] == ' ') {
                dq[1] = q0;
                dseq[1] = 0;
                dreset[1] = 0;
                dfrom[1] = 1;
                dfb[1] = NO_FALLBACK;
                continue;
            }
            if (g->lex_fallback && dfb[d].at >= 0 && g->lex_trans[(size_t)dq[d] * 256 + b[d]] < 0
                && winner_before(g, dq[d], b[d]) < 0) {
                /* b[d] kills the lexeme: the one it passed ends, the bytes after it are lexed again */
                int32_t nq = fall_back_walk(g, st, b, d, dfb, &dseq[d + 1]);
                if (nq == GM_NOMEM) return GM_NOMEM;
                dq[d + 1] = nq;
                if (nq == GM_DEAD || nq == DQ_DYNAMIC) {
                    stop_at = d + 1;
                    break;
                }
                continue;
            }
            int32_t emit[3];
            int ne, consumed;
            int32_t nq = gm_lex_byte(g, dq[d], b[d], emit, &ne, &consumed);
            if (nq == GM_RESUME && !consumed) nq = DQ_DYNAMIC;
            int32_t s = dseq[d];
            for (int e = 0; e < ne && nq != GM_DEAD; e++) {
                int32_t ev = emit[e];
                if (g->indenter == GM_INDENT && ev == g->t_nl) {
                    int32_t op = wsop_intern(ops, dreset[d], b + dfrom[d], d - dfrom[d]);
                    if (op < 0) return GM_NOMEM;
                    ev = g->n_terminals + 1 + op;
                } else if (g->indenter == GM_LARK_INDENT && ev == g->t_nl) {
                    /* Lark reads the NL token whole: up to b[d], or with it if it ended there (as
                     * feed_byte counts it) */
                    const int with_b = !emitted_before(g, dq[d], b[d], e);
                    const int fresh = with_b && nl_begins(g, dq[d], b[d]);
                    const int64_t from = fresh ? d : dfrom[d];
                    int32_t op = wsop_intern(ops, fresh ? 1 : dreset[d], b + from, d + with_b - from);
                    if (op < 0) return GM_NOMEM;
                    ev = g->n_terminals + 1 + op;
                }
                s = seq_append(st, s, ev);
                if (s < 0) return GM_NOMEM;
            }
            dq[d + 1] = nq;
            dseq[d + 1] = s;
            if (nq == GM_DEAD || nq == DQ_DYNAMIC) {
                stop_at = d + 1;
                if (nq == DQ_DYNAMIC) {
                    resume_at = d; /* b[d] ended the lexeme; it begins the next one */
                    resume_seq = s;
                }
                break;
            }
            if (g->lex_fallback && nq >= 0) dfb[d + 1] = fallback_after(g, dfb[d], dq[d], dseq[d], b[d], d, nq);
            if (g->indenter == GM_LARK_INDENT && nq >= 0 && g->lex_nl[nq]) {
                /* Lark's count restarts at the lexeme's start and at each '\n', which it includes */
                if (nl_begins(g, dq[d], b[d]) || b[d] == '\n') {
                    dreset[d + 1] = 1;
                    dfrom[d + 1] = d;
                } else {
                    dreset[d + 1] = dreset[d];
                    dfrom[d + 1] = dfrom[d];
                }
            } else if (g->indenter && nq >= 0 && g->lex_nl[nq]) { /* (not GM_RESUME: a lexeme ended) */
                const int starts = !g->lex_nl[dq[d]] || g->lex_trans[(size_t)dq[d] * 256 + b[d]] < 0;
                if (starts || b[d] == '\n') {
                    dreset[d + 1] = 1;
                    dfrom[d + 1] = d + 1;
                } else {
                    dreset[d + 1] = dreset[d];
                    dfrom[d + 1] = dfrom[d];
                }
            }
        }
        chained = 1;
        const int32_t q_end = stop_at <= len ? dq[stop_at] : dq[len];
        if (q_end == GM_DEAD) {
            /* the tokens after it that share the bytes it died within die there too (most of a state's
             * vocabulary: a space, then a letter no terminal takes there) */
            while (k + 1 < n_order && shared_prefix[k + 1] >= stop_at) k++;
            continue;
        }
        /* Ending at a lexeme boundary, nothing is pending; past one the fill lexes the token itself, and
         * so it does a token that ends with a fallback pending (its bytes are the matcher's then). */
        const int pending_fallback = g->lex_fallback && q_end >= 0 && stop_at > len && dfb[len].at >= 0;
        const int32_t cset = q_end == GM_RESUME ? GM_ANY
                             : (q_end == DQ_DYNAMIC || pending_fallback) ? GM_DYNAMIC_GROUP : cset_of(g, q_end);
        const int32_t s = (q_end == DQ_DYNAMIC || pending_fallback) ? 0 : dseq[len];
        if (s == 0 && cset != GM_DYNAMIC_GROUP && (cset == GM_ANY || cset == state_cset)) {
            /* Stays inside the lexeme and loses no terminal the parser could have wanted. */
            mask[t >> 5] |= 1u << (t & 31);
            continue;
        }
        if (q_end == DQ_DYNAMIC && by_mode && resume_at >= 0) {
            /* a group per mode the parser state may pick, unless a mode needs the token lexed whole */
            int32_t ends[GM_MAX_MODES_BY_GROUP], seqs[GM_MAX_MODES_BY_GROUP];
            int whole = g->n_modes > GM_MAX_MODES_BY_GROUP;
            for (int32_t m = 0; m < g->n_modes && !whole; m++) {
                ends[m] = walk_in_mode(g, st, b, resume_at, len, m, resume_seq, &seqs[m]);
                if (ends[m] == GM_NOMEM) return GM_NOMEM;
                whole = ends[m] == DQ_DYNAMIC;
            }
            if (!whole) {
                for (int32_t m = 0; m < g->n_modes; m++) {
                    if (ends[m] == GM_DEAD) continue;
                    const int32_t gid = group_of(gs, seqs[m], cset_of(g, ends[m]));
                    if (gid < 0 || grow((void **)&bd->moded, &bd->moded_cap, 2 * (bd->n_moded + 1), sizeof(int32_t)))
                        return GM_NOMEM;
                    bd->moded[2 * bd->n_moded] = k;
                    bd->moded[2 * bd->n_moded + 1] = gid;
                    bd->n_moded++;
                    gs->count[gid]++;
                }
                continue;
            }
        }
        const int32_t gid = group_of(gs, s, cset);
        if (gid < 0) return GM_NOMEM;
        grouped[2 * bd->n_grouped] = k;
        grouped[2 * bd->n_grouped + 1] = gid;
        bd->n_grouped++;
        gs->count[gid]++;
    }
    return 0;
}

/* Append the state just built (build_state) to `out`: its groups, token lists in group order (a counting
 * sort). */
static int append_groups(state_builder *bd, gm_build *out, group_caps *caps) {
    state_groups *gs = &bd->gs;
    const int32_t g0 = out->n_groups;
    int64_t total = 0;
    for (int32_t i = 0; i < gs->n; i++) total += gs->count[i];
    if (groups_reserve(out, caps, gs->n, total)) return GM_NOMEM;
    int64_t acc = out->group_tok_begin[g0];
    for (int32_t i = 0; i < gs->n; i++) {
        out->group_seq[g0 + i] = gs->seq[i];
        out->group_cset[g0 + i] = gs->cset[i];
        out->group_tok_begin[g0 + i] = (int32_t)acc;
        acc += gs->count[i];
        gs->count[i] = out->group_tok_begin[g0 + i];
    }
    out->group_tok_begin[g0 + gs->n] = (int32_t)acc;
    for (int64_t i = 0; i < bd->n_grouped; i++)
        out->group_toks[gs->count[bd->grouped[2 * i + 1]]++] = bd->order[bd->grouped[2 * i]];
    for (int64_t i = 0; i < bd->n_moded; i++)
        out->group_toks[gs->count[bd->moded[2 * i + 1]]++] = bd->order[bd->moded[2 * i]];
    out->n_groups += gs->n;
    out->n_group_toks = acc;
    return 0;
}

/* The builder over table states first, first + step, ...: the others get no groups and a zero mask. */
static int build_part(const gm_grammar *g, const uint8_t *tok_bytes, const int64_t *tok_begin,
                      const int32_t *order, int32_t n_order, int32_t n_words, int32_t strip_leading_space,
                      int32_t first, int32_t step, gm_build *out) {
    int rc = GM_NOMEM;
    const int32_t n_ts = g->n_lex_states + (strip_leading_space ? 1 : 0);
    group_caps caps;
    seq_table st = {0};
    wsop_table ops = {0};
    state_builder *bd = builder_new(g, tok_bytes, tok_begin, order, n_order, NULL, n_words, strip_leading_space);
    if (groups_start(out, n_ts, n_words, &caps) || intern_init(&st, &ops)) goto done;
    out->masks = gm_calloc((size_t)n_ts * n_words, sizeof(uint32_t));
    if (!bd || !out->masks) goto done;
    for (int32_t ts = 0; ts < n_ts; ts++) {
        out->group_begin[ts] = out->n_groups;
        if (ts % step != first) continue;
        if ((rc = build_state(bd, &st, &ops, ts, out->masks + (size_t)ts * n_words)) ||
            (rc = append_groups(bd, out, &caps)))
            goto done;
        rc = GM_NOMEM;
    }
    out->group_begin[n_ts] = out->n_groups;
    rc = intern_output(&st, &ops, out);
done:
    builder_free(bd);
    intern_free(&st, &ops);
    if (rc) gm_build_free(out);
    return rc;
}

typedef struct {
    const gm_grammar *g;
    const uint8_t *tok_bytes;
    const int64_t *tok_begin;
    const int32_t *order;
    int32_t n_order, n_words, strip_leading_space, first, step;
    gm_build part;
    int rc;
} build_job;

static void *build_job_run(void *arg) {
    build_job *j = arg;
    j->rc = build_part(j->g, j->tok_bytes, j->tok_begin, j->order, j->n_order, j->n_words, j->strip_leading_space,
                       j->first, j->step, &j->part);
    return NULL;
}

/* One table set from parts that each built every n-th state: masks ORed, whitespace ops and sequences
 * interned anew (each part numbered its own), groups taken state by state from the part that built it. */
static int merge_parts(const gm_grammar *g, build_job *jobs, int n, gm_build *out) {
    int rc = GM_NOMEM;
    const int32_t n_ts = jobs[0].part.n_table_states, n_words = jobs[0].part.n_words;
    group_caps caps;
    wsop_table ops = {0};
    seq_table st = {0};
    int32_t *seq_map[GM_MAX_BUILD_THREADS] = {0}, *op_map[GM_MAX_BUILD_THREADS] = {0};
    const int started = groups_start(out, n_ts, n_words, &caps) == 0;
    out->masks = jobs[0].part.masks; /* (out's now, even if the start failed: freed with it) */
    jobs[0].part.masks = NULL;
    if (!started || intern_init(&st, &ops)) goto done;
    for (int p = 1; p < n; p++)
        for (int64_t w = 0; w < (int64_t)n_ts * n_words; w++) out->masks[w] |= jobs[p].part.masks[w];
    for (int p = 0; p < n; p++) {
        const gm_build *b = &jobs[p].part;
        op_map[p] = gm_malloc((size_t)(b->n_wsops ? b->n_wsops : 1) * sizeof(int32_t));
        seq_map[p] = gm_malloc((size_t)(b->n_seqs ? b->n_seqs : 1) * sizeof(int32_t));
        if (!op_map[p] || !seq_map[p]) goto done;
        for (int32_t k = 0; k < b->n_wsops; k++) {
            int32_t op = wsop_intern(&ops, b->wsop_reset[k], b->wsop_bytes + b->wsop_begin[k],
                                     b->wsop_begin[k + 1] - b->wsop_begin[k]);
            if (op < 0) {
                rc = op;
                goto done;
            }
            op_map[p][k] = op;
        }
        for (int32_t q = 0; q < b->n_seqs; q++) {
            int32_t x = 0;
            for (int32_t i = b->seq_begin[q]; i < b->seq_begin[q + 1]; i++) {
                int32_t ev = b->seq_terms[i];
                if (ev > g->n_terminals) ev = g->n_terminals + 1 + op_map[p][ev - g->n_terminals - 1];
                if ((x = seq_append(&st, x, ev)) < 0) goto done;
            }
            seq_map[p][q] = x;
        }
    }
    for (int32_t ts = 0; ts < n_ts; ts++) {
        const int p = ts % n;
        const gm_build *b = &jobs[p].part;
        const int32_t b0 = b->group_begin[ts], b1 = b->group_begin[ts + 1];
        const int32_t t0 = b->group_tok_begin[b0], t1 = b->group_tok_begin[b1];
        const int32_t g0 = out->n_groups;
        out->group_begin[ts] = g0;
        if (groups_reserve(out, &caps, b1 - b0, t1 - t0)) goto done;
        const int64_t base = out->group_tok_begin[g0];
        for (int32_t i = b0; i < b1; i++) {
            out->group_seq[g0 + i - b0] = seq_map[p][b->group_seq[i]];
            out->group_cset[g0 + i - b0] = b->group_cset[i];
            out->group_tok_begin[g0 + i - b0 + 1] = (int32_t)(base + b->group_tok_begin[i + 1] - t0);
        }
        if (t1 > t0) memcpy(out->group_toks + base, b->group_toks + t0, (size_t)(t1 - t0) * sizeof(int32_t));
        out->n_groups += b1 - b0;
        out->n_group_toks = base + (t1 - t0);
    }
    out->group_begin[n_ts] = out->n_groups;
    rc = intern_output(&st, &ops, out);
done:
    for (int p = 0; p < n; p++) GM_FREE_ALL(op_map[p], seq_map[p]);
    intern_free(&st, &ops);
    if (rc) gm_build_free(out);
    return rc;
}

int gm_build_vocab(const gm_grammar *g, const uint8_t *tok_bytes, const int64_t *tok_begin,
                   const int32_t *order, int32_t n_order, int32_t n_words, int32_t strip_leading_space,
                   int32_t n_threads, gm_build *out) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > GM_MAX_BUILD_THREADS) n_threads = GM_MAX_BUILD_THREADS;
#ifdef _WIN32
    n_threads = 1;  /* no pthreads */
#endif
    if (n_threads == 1)
        return build_part(g, tok_bytes, tok_begin, order, n_order, n_words, strip_leading_space, 0, 1, out);
#ifndef _WIN32
    build_job jobs[GM_MAX_BUILD_THREADS];
    pthread_t threads[GM_MAX_BUILD_THREADS];
    int started[GM_MAX_BUILD_THREADS] = {0};
    for (int p = 0; p < n_threads; p++) {
        jobs[p] = (build_job){g, tok_bytes, tok_begin, order, n_order, n_words, strip_leading_space, p, n_threads,
                              {0}, GM_NOMEM};
        started[p] = p > 0 && pthread_create(&threads[p], NULL, build_job_run, &jobs[p]) == 0;
    }
    build_job_run(&jobs[0]);
    for (int p = 1; p < n_threads; p++) {
        if (started[p]) pthread_join(threads[p], NULL);
        else build_job_run(&jobs[p]);  /* no thread to be had: build it here */
    }
    int rc = 0;
    for (int p = 0; p < n_threads && !rc; p++) rc = jobs[p].rc;
    if (!rc) rc = merge_parts(g, jobs, n_threads, out);
    for (int p = 0; p < n_threads; p++) gm_build_free(&jobs[p].part);
    return rc;
#endif
}

/* Whether local group i of the state just built goes before group j: by terminal sequence (element by
 * element, a prefix first), then by completable set, the order decoding/compiler.py sorts eager tables in. */
static int group_before(const state_groups *gs, const gm_build *seqs, int32_t i, int32_t j) {
    const int32_t a = gs->seq[i], b = gs->seq[j];
    const int32_t *sa = seqs->seq_terms + seqs->seq_begin[a], *sb = seqs->seq_terms + seqs->seq_begin[b];
    const int32_t na = seqs->seq_begin[a + 1] - seqs->seq_begin[a], nb = seqs->seq_begin[b + 1] - seqs->seq_begin[b];
    for (int32_t k = 0; k < na && k < nb; k++)
        if (sa[k] != sb[k]) return sa[k] < sb[k];
    if (na != nb) return na < nb;
    return gs->cset[i] < gs->cset[j];
}

/* idx[0..n) sorted with group_before (a stable bottom-up merge sort, through tmp[n]). */
static void sort_groups(const state_groups *gs, const gm_build *seqs, int32_t *idx, int32_t *tmp, int32_t n) {
    for (int32_t width = 1; width < n; width *= 2) {
        for (int32_t lo = 0; lo < n; lo += 2 * width) {
            const int32_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            int32_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) tmp[o++] = group_before(gs, seqs, idx[j], idx[i]) ? idx[j++] : idx[i++];
            while (i < mid) tmp[o++] = idx[i++];
            while (j < hi) tmp[o++] = idx[j++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof(int32_t));
    }
}

/* Bytes of n elements of `size`, rounded up to 8 (the arrays of a built_state share one block). */
static inline int64_t padded(int64_t n, size_t size) { return (n * (int64_t)size + 7) & ~(int64_t)7; }

int build_state_tables(state_builder *bd, int32_t ts, built_state **out) {
    const int32_t W = bd->n_words;
    const state_groups *gs = &bd->gs;
    seq_table st = {0};
    wsop_table ops = {0};
    gm_build seqs = {0};
    int32_t *sorted = NULL, *tmp = NULL, *slot = NULL;
    uint32_t *uncond = gm_calloc((size_t)W, sizeof(uint32_t));
    int rc = GM_NOMEM;
    if (!uncond || intern_init(&st, &ops) || (rc = build_state(bd, &st, &ops, ts, uncond)) ||
        (rc = intern_output(&st, &ops, &seqs)))
        goto done;
    rc = GM_NOMEM;
    const int32_t n_groups = gs->n;
    sorted = gm_malloc((size_t)(n_groups ? n_groups : 1) * sizeof(int32_t));
    tmp = gm_malloc((size_t)(n_groups ? n_groups : 1) * sizeof(int32_t));
    slot = gm_malloc((size_t)(n_groups ? n_groups : 1) * sizeof(int32_t)); /* per local group: next token's */
    if (!sorted || !tmp || !slot) goto done;
    for (int32_t i = 0; i < n_groups; i++) sorted[i] = i;
    sort_groups(gs, &seqs, sorted, tmp, n_groups);
    /* Large groups as masks, as the eager tables store them (see _dense_groups in decoding/compiler.py) */
    int32_t n_dense = 0;
    int64_t n_toks = 0;
    for (int32_t i = 0; i < n_groups; i++) {
        if (gs->count[i] > W / 4 && gs->cset[i] != GM_DYNAMIC_GROUP) n_dense++;
        else n_toks += gs->count[i];
    }
    const int32_t n_seq_terms = seqs.seq_begin[seqs.n_seqs], n_ws_bytes = seqs.wsop_begin[seqs.n_wsops];
    const int64_t bytes = padded(1, sizeof(built_state)) + padded((int64_t)(1 + n_dense) * W, sizeof(uint32_t)) +
                          4 * padded(n_groups, sizeof(int32_t)) + padded(n_groups + 1, sizeof(int32_t)) +
                          padded(n_toks, sizeof(int32_t)) + padded(seqs.n_seqs + 1, sizeof(int32_t)) +
                          padded(n_seq_terms, sizeof(int32_t)) + padded(seqs.n_wsops + 1, sizeof(int32_t)) +
                          padded(n_ws_bytes, 1) + padded(seqs.n_wsops, 1);
    built_state *bs = gm_calloc(1, (size_t)bytes);
    if (!bs) goto done;
    char *at = (char *)bs + padded(1, sizeof(built_state));
#define TAKE(type, n) ((type *)((at += padded((n), sizeof(type))) - padded((n), sizeof(type))))
    uint32_t *masks = TAKE(uint32_t, (int64_t)(1 + n_dense) * W);
    int32_t *seq = TAKE(int32_t, n_groups), *cset = TAKE(int32_t, n_groups), *lcp = TAKE(int32_t, n_groups);
    int32_t *dense = TAKE(int32_t, n_groups), *tok_begin = TAKE(int32_t, n_groups + 1), *toks = TAKE(int32_t, n_toks);
    int32_t *seq_begin = TAKE(int32_t, seqs.n_seqs + 1), *seq_terms = TAKE(int32_t, n_seq_terms);
    int32_t *ws_begin = TAKE(int32_t, seqs.n_wsops + 1);
    uint8_t *ws_bytes = TAKE(uint8_t, n_ws_bytes), *ws_reset = TAKE(uint8_t, seqs.n_wsops);
#undef TAKE
    memcpy(masks, uncond, (size_t)W * sizeof(uint32_t));
    memcpy(seq_begin, seqs.seq_begin, (size_t)(seqs.n_seqs + 1) * sizeof(int32_t));
    if (n_seq_terms) memcpy(seq_terms, seqs.seq_terms, (size_t)n_seq_terms * sizeof(int32_t));
    memcpy(ws_begin, seqs.wsop_begin, (size_t)(seqs.n_wsops + 1) * sizeof(int32_t));
    if (n_ws_bytes) memcpy(ws_bytes, seqs.wsop_bytes, (size_t)n_ws_bytes);
    if (seqs.n_wsops) memcpy(ws_reset, seqs.wsop_reset, (size_t)seqs.n_wsops);
    int32_t next_dense = 1, acc = 0;
    for (int32_t p = 0; p < n_groups; p++) {
        const int32_t i = sorted[p];
        seq[p] = gs->seq[i];
        cset[p] = gs->cset[i];
        dense[p] = gs->count[i] > W / 4 && cset[p] != GM_DYNAMIC_GROUP ? next_dense++ : -1;
        tok_begin[p] = acc;
        slot[i] = dense[p] >= 0 ? -dense[p] - 1 : acc; /* a dense group's tokens go to its mask */
        if (dense[p] < 0) acc += gs->count[i];
        lcp[p] = p == 0 ? 0 : seq_lcp(seq_begin, seq_terms, seq[p - 1], seq[p]);
    }
    tok_begin[n_groups] = acc;
    /* the tokens in build order, as append_groups places them: by order, then the per-mode pairs */
    for (int64_t k = 0; k < bd->n_grouped + bd->n_moded; k++) {
        const int32_t *pair = k < bd->n_grouped ? bd->grouped + 2 * k : bd->moded + 2 * (k - bd->n_grouped);
        const int32_t i = pair[1], t = bd->order[pair[0]];
        if (slot[i] < 0) masks[(size_t)(-slot[i] - 1) * W + (t >> 5)] |= 1u << (t & 31);
        else toks[slot[i]++] = t;
    }
    bs->tab = (gm_state_tables){masks, n_groups, seq, cset, lcp, dense, tok_begin, toks, masks, seq_begin, seq_terms,
                                {ws_begin, ws_bytes, ws_reset}};
    bs->bytes = bytes;
    *out = bs;
    rc = 0;
done:
    /* a lazy builder holds its fixed buffers only: what the state's groups grew goes now */
    GM_FREE_ALL(uncond, sorted, tmp, slot, bd->gs.count, bd->gs.seq, bd->gs.cset, bd->moded);
    bd->gs.count = bd->gs.seq = bd->gs.cset = bd->moded = NULL;
    bd->gs.count_cap = bd->gs.seq_cap = bd->gs.cset_cap = 0;
    bd->moded_cap = 0;
    gm_build_free(&seqs);
    intern_free(&st, &ops);
    return rc;
}
