/* grammask native core, inside: what its files share. gm_core.h is the interface the Cython layer sees;
 * this header is the core's own, one section per file. The files, in the order a reader meets the stages:
 *
 *   gm_alloc.c       every block the core allocates (with the test hooks that fail one), growable buffers
 *   gm_lexer.c       one step of the lexer DFA, and the mode the open f-strings restart the lexer in
 *   gm_parser.c      the virtual parse state: LR stack, indentation and semicolon rules, open f-strings
 *   gm_feed.h        text into the parser: the one byte loop, for tokens (matcher) and raw text (validator)
 *   gm_matcher.c     a matcher's life: accepting tokens with history, rollback, completeness
 *   gm_fill.c        the next-token mask from the token tables
 *   gm_fill_cache.c  masks kept per parse configuration, shared by the matchers of one table set
 *   gm_validator.c   raw text straight into the matcher, with the offset of the first error
 *   gm_check.c       tables from outside: no stack their LR tables can build breaks the parser
 *   gm_intern.c      the table builder's hash map, its interned terminal sequences and whitespace ops
 *   gm_build.c       the token tables: every token lexed from every lexer state (on several threads)
 *   gm_tables.c      a state's token tables as the fill reads them: from the arrays, or built on first fill
 *   gm_lalr.c        the LALR(1) parse tables of a grammar (Lark's construction), before any of the above
 *   gm_product.c     products of code-point automata: a JSON Schema's terminal relations (gm_product.h)
 *   gm_apply.c       a mask applied to logits on the CPU
 *
 * One header rather than one per file: the files share few things (the allocator, the virtual parse state,
 * the lexer helpers the hot paths need inline), and one map says who owns what. Everything declared here is
 * hidden from the shared object's symbol table, so calls between the files are direct calls, as they were
 * when the core was one file; what the hot loops call per byte or per terminal is static inline here. */
#ifndef GM_INTERNAL_H
#define GM_INTERNAL_H

#include "gm_core.h"

#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define GM_INTERNAL __attribute__((visibility("hidden")))
#define ATOMIC_ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define ATOMIC_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define ATOMIC_ACQUIRE(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)      /* ... what was stored before ... */
#define ATOMIC_RELEASE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)  /* ... this is seen with it */
#else
#define GM_INTERNAL
#define ATOMIC_ADD(p, v) (*(p) += (v))
#define ATOMIC_LOAD(p) (*(p))
#define ATOMIC_STORE(p, v) (*(p) = (v))
#define ATOMIC_ACQUIRE(p) (*(p))
#define ATOMIC_RELEASE(p, v) (*(p) = (v))
#endif

/* Locks (the shared fill cache's sets, the lazy tables' builder). */
#ifdef _WIN32
#include <windows.h>
typedef SRWLOCK gm_lock;
#define LOCK_INIT(l) (InitializeSRWLock(l), 0)
#define LOCK(l) AcquireSRWLockExclusive(l)
#define UNLOCK(l) ReleaseSRWLockExclusive(l)
#define LOCK_DESTROY(l) ((void)0)
#else
#include <pthread.h>
typedef pthread_mutex_t gm_lock;
#define LOCK_INIT(l) pthread_mutex_init((l), NULL)
#define LOCK(l) pthread_mutex_lock(l)
#define UNLOCK(l) pthread_mutex_unlock(l)
#define LOCK_DESTROY(l) pthread_mutex_destroy(l)
#endif

/* ---- gm_alloc.c: every block of the core goes through these (see gm_test_fail_alloc) ---------------- */

GM_INTERNAL void *gm_malloc(size_t n);
GM_INTERNAL void *gm_calloc(size_t n, size_t size);
GM_INTERNAL void *gm_realloc(void *old, size_t n);
GM_INTERNAL void gm_free(void *p);
/* Free every block of a list (a function's cleanup): GM_FREE_ALL(a, b, c). */
GM_INTERNAL void gm_free_each(void *const *blocks, size_t n);
/* CLOCK_MONOTONIC in seconds, the clock of Python's time.monotonic: the builders' deadlines. */
GM_INTERNAL double gm_seconds_now(void);
#define GM_FREE_ALL(...) \
    gm_free_each((void *const[]){__VA_ARGS__}, sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))
/* Room for `need` elements in *buf (capacity doubles): 0, or GM_NOMEM with the buffer as it was. The check
 * inline (the fill asks once per terminal it feeds), the growing apart. */
GM_INTERNAL int grow_buffer(void **buf, int64_t *cap, int64_t need, size_t elem);
GM_INTERNAL int grow32_buffer(int32_t **buf, int32_t *cap, int64_t need);

static inline int grow(void **buf, int64_t *cap, int64_t need, size_t elem) {
    return need <= *cap ? 0 : grow_buffer(buf, cap, need, elem);
}

static inline int grow32(int32_t **buf, int32_t *cap, int64_t need) {
    return need <= *cap ? 0 : grow32_buffer(buf, cap, need);
}

/* ---- gm_lexer.c: gm_lex_byte and gm_mode_start (gm_core.h); the helpers the hot paths inline ---------- */

/* lex_void: what entering state nq leaves of a fallback kept with terminal fb_term: the terminal to fall
 * back to now (fb_term itself unless nq voids it), or -1 (none: drop it). */
static inline int32_t fallback_term_in(const gm_grammar *g, int32_t nq, int32_t fb_term) {
    if (!g->lex_void || g->lex_void[nq] == GM_NO_VOID) return fb_term;
    return g->lex_void[nq] == GM_VOID_DROP ? -1 : g->lex_void[nq];
}

/* Whether q is a state where no lexeme is in progress (a mode's start). */
static inline int is_start(const gm_grammar *g, int32_t q) {
    return g->n_modes > 1 ? g->mode_start[g->lex_mode[q]] == q : q == 0;
}

/* The terminal the lexeme in state q is if it ends before byte b (256: at the end of the text), or -1. */
static inline int32_t winner_before(const gm_grammar *g, int32_t q, int32_t b) {
    const int32_t w = g->lex_winner[q];
    if (w >= 0 || !g->lex_cond || g->lex_cond[q] < 0) return w;
    return g->cond_rows[(size_t)g->lex_cond[q] * 257 + b];
}

/* Where the lexeme after terminal `w` (which ended in state q) starts: a state, or GM_RESUME. */
static inline int32_t restart_state(const gm_grammar *g, int32_t q, int32_t w) {
    if (g->n_modes <= 1) return 0;
    const int32_t r = g->term_restart[w];
    if (r == GM_RESTART_SAME) return g->mode_start[g->lex_mode[q]];
    return r == GM_RESTART_DYNAMIC ? GM_RESUME : g->mode_start[r];
}

/* The completable set of the lexeme in progress in state q (GM_ANY: none in progress). */
static inline int32_t cset_of(const gm_grammar *g, int32_t q) {
    return is_start(g, q) ? GM_ANY : g->lex_cset[q];
}

/* Indentation columns as CPython counts them: tabs to the next multiple of 8 (and as 1 for `alt`). */
static inline void indent_byte(uint8_t b, int32_t *w, int32_t *alt) {
    if (b == ' ') {
        (*w)++;
        (*alt)++;
    } else if (b == '\t') {
        *w = (*w / 8 + 1) * 8;
        (*alt)++;
    } else if (b == '\n' || b == '\f') {
        *w = 0;
        *alt = 0;
    }
}

/* GM_LARK_INDENT: Lark's Indenter counts the text after the NL token's last '\n': each space 1, each tab
 * tab_len, anything else (a comment the NL terminal takes in) 0; `seen`: the token held a '\n' (else Lark
 * fails). Saturates at GM_LARK_MAX_WIDTH, which post_feed refuses. */
static inline void lark_indent_byte(uint8_t b, int32_t tab_len, int32_t *w, int32_t *seen) {
    if (b == '\n') {
        *w = 0;
        *seen = 1;
    } else if (b == ' ' || b == '\t') {
        const int32_t add = b == ' ' ? 1 : tab_len;
        *w = *w > GM_LARK_MAX_WIDTH - add ? GM_LARK_MAX_WIDTH : *w + add;
    }
}

/* GM_LARK_INDENT: whether byte b after lexer state q begins a new lexeme that may be an NL one (else it
 * goes on with q's), and whether emission e of gm_lex_byte(q, b) is the lexeme before b (else it is one
 * that ended with b, in a final state). The feed and the token tables both ask, to count the same bytes. */
static inline int nl_begins(const gm_grammar *g, int32_t q, uint8_t b) {
    return !g->lex_nl[q] || (!is_start(g, q) && g->lex_trans[(size_t)q * 256 + b] < 0);
}
static inline int emitted_before(const gm_grammar *g, int32_t q, uint8_t b, int e) {
    return e == 0 && !is_start(g, q) && g->lex_trans[(size_t)q * 256 + b] < 0 && winner_before(g, q, b) >= 0
           && !g->term_ignored[winner_before(g, q, b)];
}

/* An indentation level on the indentation stack, (width, tabs-as-1 width); GM_LARK_INDENT: Lark's width. */
#define PACK_INDENT(w, alt) (((w) << 16) | ((alt) & 0xFFFF))
#define INDENT_WIDTH(level) ((level) >> 16)
#define INDENT_ALT(level) ((level) & 0xFFFF)

/* Event codes beyond terminals: a t_nl lexeme that ended, with its indentation given explicitly. */
#define EV_NL_WIDTH(w, alt) (-2 - PACK_INDENT(w, alt))
#define EV_IS_NL_WIDTH(ev) ((ev) <= -2)

/* The open f-strings in gm_ictx.fstr (see grammar/fstrings.py): quote kind and rawness, where in the
 * f-string the text is, and the bracket depth before the open field's `{`. */
#define FPOS_LIT 0     /* literal text */
#define FPOS_FIELD 1   /* a replacement field */
#define FPOS_SPEC 2    /* its format spec */
#define FPOS_SFIELD 3  /* a field inside the spec */
#define FPOS_SSPEC 4   /* that field's spec: text only */
#define FSTR(kr, pos, depth) ((kr) | (pos) << 3 | (depth) << 8)
#define FSTR_KR(f) ((f) & 7)
#define FSTR_POS(f) (((f) >> 3) & 7)
#define FSTR_DEPTH(f) ((f) >> 8)
#define GM_EV_SQ 1     /* event bits (term_farg of event terminals): a quote ' or ", a newline, a backslash */
#define GM_EV_DQ 2
#define GM_EV_NL 4
#define GM_EV_BS 8

/* ---- gm_parser.c: the virtual parse state ----------------------------------------------------------
 * The real stacks below `base`, plus overlays of pushed entries; and a copy of the indentation context.
 * Checks never write to the matcher, so they cost no copy of its stacks. */

typedef struct {
    const int32_t *real;
    int32_t base;
    gm_stack *ov;
    int32_t *low;   /* the lowest base reached (what of the real stack a fill depends on) */
} vstack;

typedef struct {
    vstack lr, ind;
    gm_ictx ctx;
} vstate;

/* The state on top of a virtual stack (never empty: the LR stack holds the start state). */
static inline int32_t vstack_top(const vstack *v) {
    return v->ov->len ? v->ov->data[v->ov->len - 1] : v->real[v->base - 1];
}

/* The matcher's state as a virtual one, in the first pair of overlays (emptied). */
static inline void vstate_init(gm_matcher *m, vstate *vs) {
    m->scratch[0].len = m->scratch[1].len = 0;
    vs->lr = (vstack){m->lr.data, m->lr.len, &m->scratch[0], &m->lr_low};
    vs->ind = (vstack){m->ind.data, m->ind.len, &m->scratch[1], &m->ind_low};
    vs->ctx = m->ctx;
}

/* A copy of `src` in overlay pair `pair` of the matcher's scratch stacks (0: vstate_init's, 1: can_take's,
 * 2: the fallback's trials); `src` may be in that pair already. */
GM_INTERNAL int vstate_copy_into(gm_matcher *m, const vstate *src, vstate *dst, int pair);
/* Feed one event to the parser through the indentation, semicolon and f-string rules: 1 taken, 0 refused,
 * <0 an error. Events: a terminal id, $END (n_terminals), a t_nl lexeme with a whitespace op from the token
 * tables (> n_terminals), or with explicit widths (EV_NL_WIDTH; GM_LARK_INDENT: t_nl, its indentation in
 * vs->ctx.width and altwidth). */
GM_INTERNAL int post_feed(gm_matcher *m, vstate *vs, int32_t ev);
/* Can the parser, in the state `vs`, take `term` next? `vs` is left unchanged. */
GM_INTERNAL int can_take(gm_matcher *m, const vstate *vs, int32_t term);
/* Can the pending lexeme (completable set `cset`) still become a terminal the parser in `vs` takes? */
GM_INTERNAL int pending_ok(gm_matcher *m, const vstate *vs, int32_t cset);
/* From the matcher's state: does the parser take `seq`, and can the pending lexeme (completable set `cset`)
 * then still become a terminal it takes? `vs` holds the state after `seq`. */
GM_INTERNAL int check_seq(gm_matcher *m, const int32_t *seq, int32_t n, int32_t cset, vstate *vs);

/* ---- gm_matcher.c ---------------------------------------------------------------------------------- */

/* The event that ends the pending lexeme, if it is a complete terminal: 1 and *ev, or 0 for "none needed"
 * (*ev = -1), or -1 if the lexeme is incomplete. */
GM_INTERNAL int pending_event(const gm_matcher *m, int32_t *ev);
/* The same for a lexeme in progress in lexer state q. */
GM_INTERNAL int lexeme_event(const gm_grammar *g, int32_t q, int32_t *ev);
/* The matcher's parse state (stacks, context, lexer state, at_start) kept aside while text is tried on the
 * matcher itself, and put back (or dropped). */
typedef struct {
    int32_t *stacks;
    int32_t lr_len, ind_len, lex_state, at_start;
    gm_ictx ctx;
} gm_kept_state;
GM_INTERNAL int keep_state(const gm_matcher *m, gm_kept_state *k);  /* 0 or GM_NOMEM */
GM_INTERNAL void put_back_state(gm_matcher *m, gm_kept_state *k);   /* and drop it */
GM_INTERNAL void drop_kept_state(gm_kept_state *k);
/* A token's bytes as the matcher lexes them (the tokenizer's dropped leading space at the start). */
GM_INTERNAL const uint8_t *token_text(const gm_matcher *m, int32_t token, int64_t *n);
/* A token's bytes from the matcher's state: 1 if the parser takes every terminal and the pending lexeme can
 * still become one it takes; `vs` holds the state after, *q_end the lexer state. */
GM_INTERNAL int feed_token_bytes(gm_matcher *m, const uint8_t *b, int64_t n, vstate *vs, int32_t *q_end);

/* ---- gm_fill_cache.c: struct gm_fill_cache, and its key ------------------------------------------------
 * A key's first part, compared whole: the table state and the context; its second part, what the fill read
 * of the stacks (see fill_cache_store). */
#define KEY_FIRST (1 + (int32_t)(sizeof(gm_ictx) / sizeof(int32_t)))

/* The key's first part for table state ts into k[KEY_FIRST]; returns its hash. */
GM_INTERNAL uint64_t fill_key_first(const gm_matcher *m, int32_t ts, int32_t *k);
/* Copy the mask cached for the matcher's configuration to out: 1 if there is one. */
GM_INTERNAL int fill_cache_lookup(const gm_matcher *m, gm_fill_cache *c, uint64_t hash, const int32_t *first,
                                  uint32_t *out);
/* Keep `mask` for the configuration the fill just read (m->lr_low, m->ind_low, m->ind_len_read). */
GM_INTERNAL int fill_cache_store(const gm_matcher *m, gm_fill_cache *c, uint64_t hash, const int32_t *first,
                                 const uint32_t *mask);

/* ---- gm_intern.c: the builder's tables ---------------------------------------------------------------- */

/* Open-addressing map from non-negative int64 keys to int32 values (key -1 marks an empty slot). */
typedef struct {
    int64_t *keys;
    int32_t *vals;
    int64_t cap, n;
} i64map;

GM_INTERNAL int map_init(i64map *mp, int64_t cap);
GM_INTERNAL void map_free(i64map *mp);
GM_INTERNAL void map_clear(i64map *mp);
/* Room for one more key (the map doubles past half full). */
GM_INTERNAL int map_reserve(i64map *mp);

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

/* The value slot of `key`, inserted if new (*found says which; map_reserve first). */
static inline int32_t *map_slot(i64map *mp, int64_t key, int *found) {
    uint64_t i = mix((uint64_t)key) & (uint64_t)(mp->cap - 1);
    while (mp->keys[i] != -1 && mp->keys[i] != key) i = (i + 1) & (uint64_t)(mp->cap - 1);
    *found = mp->keys[i] == key;
    if (!*found) {
        mp->keys[i] = key;
        mp->n++;
    }
    return &mp->vals[i];
}

/* Interned terminal sequences: each one its parent (all but the last element) and its last element. */
typedef struct {
    i64map map;
    int32_t *parent, *term;
    int32_t n, parent_cap, term_cap;
} seq_table;

/* Interned whitespace ops (see gm_vocab.wsop_*), keyed by a hash of (reset, bytes), checked on hit. */
typedef struct {
    i64map map;
    int32_t *begin; int32_t begin_cap;
    uint8_t *bytes; int64_t bytes_cap;
    uint8_t *reset; int64_t reset_cap;
    int32_t n;
} wsop_table;

/* Empty tables (the sequence table holds the empty sequence, 0). On failure, free them all the same. */
GM_INTERNAL int intern_init(seq_table *st, wsop_table *ops);
GM_INTERNAL void intern_free(seq_table *st, wsop_table *ops);
/* The sequence `seq` followed by `term`: its id, or GM_NOMEM. */
GM_INTERNAL int32_t seq_append(seq_table *st, int32_t seq, int32_t term);
/* The whitespace op (reset, b[0..n)): its id, or GM_NOMEM, GM_HASH_COLLISION. */
GM_INTERNAL int32_t wsop_intern(wsop_table *t, uint8_t reset, const uint8_t *b, int64_t n);
/* The tables as out's seq_* and wsop_* arrays: the whitespace ops move to `out` (taken from `ops`). */
GM_INTERNAL int intern_output(const seq_table *st, wsop_table *ops, gm_build *out);

/* Elements sequences a and b share at their start (see gm_vocab.group_lcp). */
static inline int32_t seq_lcp(const int32_t *seq_begin, const int32_t *seq_terms, int32_t a, int32_t b) {
    const int32_t *sa = seq_terms + seq_begin[a], *sb = seq_terms + seq_begin[b];
    const int32_t na = seq_begin[a + 1] - seq_begin[a], nb = seq_begin[b + 1] - seq_begin[b];
    int32_t k = 0;
    while (k < na && k < nb && sa[k] == sb[k]) k++;
    return k;
}

/* ---- gm_build.c: one table state's tables at a time, for gm_tables.c ------------------------------------ */

typedef struct state_builder state_builder;
/* A builder over the vocabulary's sorted order (see gm_build_vocab), or NULL: out of memory. ix: the
 * vocabulary's index (see gm_vocab_index), or NULL: the builder derives its own. */
GM_INTERNAL state_builder *builder_new(const gm_grammar *g, const uint8_t *tok_bytes, const int64_t *tok_begin,
                                       const int32_t *order, int32_t n_order, const gm_vocab_index *ix,
                                       int32_t n_words, int32_t strip_leading_space);
GM_INTERNAL void builder_free(state_builder *bd);
/* Table state ts's tables, sequences interned in st and whitespace ops in ops, as one block: see
 * built_state. 0, or GM_NOMEM. */
typedef struct {
    gm_state_tables tab;  /* its arrays follow in the same block */
    int64_t bytes;
} built_state;
GM_INTERNAL int build_state_tables(state_builder *bd, int32_t ts, built_state **out);

#endif
