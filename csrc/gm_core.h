/* grammask native core: lexer DFA + LR(1) tables -> per-token masks, and the per-step matcher. The interface
 * the Cython layer (_core.pyx) sees; gm_internal.h maps the files that implement it, one per stage. */
#ifndef GM_CORE_H
#define GM_CORE_H

#include <stddef.h>
#include <stdint.h>

#define GM_DEAD (-1)   /* lexer: no transition */
#define GM_ANY (-1)    /* completable set: no parser check needed */
#define GM_ERROR (-1)  /* parser action: syntax error */

/* A grammar compiled for the engine. All arrays are owned by the caller. */
typedef struct {
    int32_t n_lex_states;        /* state 0 is the lexer's start state */
    int32_t n_terminals;         /* terminal id n_terminals is $END */
    const int32_t *lex_trans;    /* [n_lex_states * 256] next state or GM_DEAD */
    const int32_t *lex_winner;   /* [n_lex_states] terminal produced if the lexeme ends here, or -1 */
    const int32_t *lex_cset;     /* [n_lex_states] completable-set id or GM_ANY */
    const uint8_t *lex_final;    /* [n_lex_states] 1 when no byte can extend the lexeme */
    const uint8_t *term_ignored; /* [n_terminals] %ignore terminals never reach the parser */
    const int32_t *cset_begin;   /* [n_csets + 1] */
    const int32_t *cset_terms;
    int32_t n_lr_states, n_nonterminals, lr_start, lr_end;
    const int32_t *action;       /* [n_lr_states * (n_terminals+1)]: >=0 shift, GM_ERROR, <=-2 reduce rule -a-2 */
    const int32_t *go;           /* [n_lr_states * n_nonterminals] */
    const int32_t *rule_lhs, *rule_len;
    /* Python-style indentation (indenter != 0): the lexer terminal t_nl (newlines plus the next line's
     * indentation) becomes NEWLINE / INDENT / DEDENT for the parser, as CPython's tokenizer does, and is
     * plain whitespace inside brackets. The matcher starts inside a t_nl lexeme (lex_init), so the first
     * line's indentation is checked too. */
    int32_t indenter;
    int32_t lex_init;            /* lexer state at the start of the text (0 unless indenter) */
    int32_t t_nl, t_newline, t_indent, t_dedent;
    int32_t t_cont;              /* optional (-1): backslash continuation; the text may not end right after it */
    const int8_t *term_bracket;  /* [n_terminals] +1 opening, -1 closing bracket, 0 otherwise */
    /* Lark's Indenter (indenter == GM_LARK_INDENT, lark/indenter.py; grammar/postlex.py): t_nl itself goes
     * to the parser, followed by t_indent or t_dedents; its indentation is the text after its last '\n',
     * spaces 1 and tabs tab_len; outside brackets only (term_bracket: OPEN/CLOSE_PAREN_types). */
    int32_t tab_len;
    /* Go-style semicolons (indenter == GM_SEMICOLONS): after a terminal flagged GM_TERM_SEMI_AFTER, a
     * terminal flagged GM_TERM_NEWLINE (or the end of the text) feeds t_semicolon to the parser; other
     * newline terminals are dropped. */
    const uint8_t *term_flags;   /* [n_terminals] */
    int32_t t_semicolon;
    const uint8_t *lex_nl;       /* [n_lex_states] 1 inside a t_nl lexeme */
    /* Lexer modes (n_modes > 1: Python f-strings, see grammar/fstrings.py). Each mode has its own start
     * state; after a lexeme the lexer restarts in the lexeme's mode, in a mode the terminal names, or in
     * the mode the matcher context says (GM_RESTART_DYNAMIC: the stack of open f-strings decides). */
    int32_t n_modes;
    const int32_t *mode_start;   /* [n_modes] */
    const int32_t *lex_mode;     /* [n_lex_states] */
    const int8_t *term_fop;      /* [n_terminals] GM_FOP_*, or 0 */
    const int32_t *term_farg;    /* [n_terminals] GM_FOP_FSTART: quote kind * 2 + raw; events: GM_EV_* bits */
    const int32_t *term_restart; /* [n_terminals] GM_RESTART_SAME, GM_RESTART_DYNAMIC or a mode */
    const int32_t *mode_event;   /* [n_modes * 256] event terminal a byte reports in a mode, or -1 */
    /* Lark's contextual lexer (fsm/contextual.py), or NULL: the mode a lexeme begins in is the one of the LR
     * state on top of the stack (GM_RESTART_DYNAMIC then means "the parser state decides"). */
    const int32_t *state_mode;   /* [n_lr_states] */
    int32_t t_rbrace, t_colon, t_walrus, t_fclose, t_spec_open, t_spec_text;
    /* Lark's scanner (lex_fallback != 0): when the lexeme in progress dies after it passed a complete one,
     * the text falls back to that one and the bytes after it are lexed again, as re.match backtracks (FLOAT
     * `1E` then a newline is INT `1`, then `E`; a \w name then a character whose first byte could continue
     * it). Without it, the lexeme must end in an accepting state (grammask's own rule). */
    int32_t lex_fallback;
    /* Lark terminals that look past their lexeme (`[?](?![a-z])`, `\S+$` with flag m), or NULL: in a state
     * with lex_cond >= 0 the lexeme may end only before some bytes; cond_rows[lex_cond * 257 + b] is the
     * terminal it then is (-1: none; b = 256: the text ends there). Such a state's lex_winner is -1. */
    const int32_t *lex_cond;     /* [n_lex_states] */
    const int32_t *cond_rows;    /* [n_cond * 257] */
    /* Lark terminals whose look past the lexeme the character after it decides but its first byte does not
     * (`\b` with Unicode `\w`), or NULL: the lexeme may end before that byte tentatively (its row names the
     * terminal: the fallback keeps it); entering a state with lex_void != GM_NO_VOID after the character
     * failed the look, the fallback kept is void: it becomes terminal lex_void (the row's next choice), or
     * none (GM_VOID_DROP). */
    const int32_t *lex_void;     /* [n_lex_states] */
    int32_t n_rules;             /* entries of rule_lhs and rule_len (for gm_check_lr) */
} gm_grammar;

#define GM_NO_VOID (-1)
#define GM_VOID_DROP (-2)

#define GM_RESTART_SAME (-1)
#define GM_RESTART_DYNAMIC (-2)
#define GM_RESUME (-2)            /* gm_lex_byte: a lexeme ended; the next one's mode comes from the context */
#define GM_FOP_FSTART 1           /* term_fop codes */
#define GM_FOP_FOPEN 2
#define GM_FOP_RBRACE 3
#define GM_FOP_COLON 4
#define GM_FOP_WALRUS 5
#define GM_FOP_CONV_CLOSE 6
#define GM_FOP_CONV_SPEC 7
#define GM_FOP_SPEC_CLOSE 8
#define GM_FOP_FEND 9
#define GM_FOP_EVENT_OWN 10       /* a byte of the innermost f-string's own text: its enclosing ones check it */
#define GM_FOP_EVENT_ALL 11       /* a byte inside a field: every open f-string checks it */
#define GM_FOP_TRIPLE_STRING 12   /* a string in three quotes inside a field: term_farg = 2 * the string
                                     terminal it is + (0: three ', 1: three ") */
#define GM_MAX_FSTRINGS 16        /* open f-strings: 3.11's four quote kinds allow 4, PEP 701 any (CPython: 150) */
#define GM_FARG_FREE_NESTING 8    /* term_farg of an FSTART: PEP 701, the quote kinds need not differ */
#define GM_MAX_FIELD_DEPTH 199    /* brackets in a field: CPython compiles it inside one more pair */
#define GM_FB_INLINE 8            /* bytes of a pending fallback the context holds; the rest are in the
                                     matcher's fb_arena (a fallback goes back any distance, as re does) */
#define GM_FB_SEARCH 12           /* fallback_viable tries bytes that go on with the lexeme up to this far
                                     back (gm_feed.h) */
#define GM_MODE_MARK(m) (-1 - (m))  /* seq_terms: the parser state's lexer mode must be m (a contextual
                                       lexer's restart the parser state decides: see gm_build.c) */
#define GM_MAX_MODES_BY_GROUP 64    /* more modes than this: such tokens are lexed whole by the fill */
#define GM_DYNAMIC_GROUP (-2)     /* group_cset of a state's tokens that cross a dynamic restart: the fill
                                     lexes each of them with the matcher's context */

#define GM_MAX_INDENT_LEVELS 100   /* CPython: "too many levels of indentation" */
#define GM_MAX_BRACKET_DEPTH 200   /* CPython: "too many nested parentheses" */
#define GM_INDENT 1                /* indenter modes */
#define GM_SEMICOLONS 2
#define GM_LARK_INDENT 3           /* Lark's Indenter postlexer */
#define GM_LARK_MAX_WIDTH 0x3FFFFFFF  /* Lark mode: wider indentation (or deeper brackets) is refused */
#define GM_TERM_NEWLINE 1          /* term_flags bits */
#define GM_TERM_SEMI_AFTER 2

/* A cache of computed masks, keyed by parse configuration (see gm_fill_entry): one per token table set,
 * shared by its matchers (each set of entries behind its own lock: fills may run on several threads at
 * once). Its size is fixed, whatever the number of matchers: GM_FILL_SETS * GM_FILL_WAYS masks at most
 * (each vocab_size / 8 bytes, allocated as first used): 33 MB at a 129k vocabulary. With 1,000 matchers
 * in one batch it hits about as often as a cache of 16 masks per matcher did (bench/bench_matchers.py). */
typedef struct gm_fill_cache gm_fill_cache;
#define GM_FILL_SETS 256
#define GM_FILL_WAYS 8
#define GM_FILL_PRIVATE 16            /* CoreMatcher(fill_cache="private"): one set of 16, per matcher, as
                                         before the cache was shared (benchmarks compare the two) */
#define GM_FILL_CACHE_MIN_GROUPS 128  /* fills of states with fewer token groups are cheap: not cached */
/* n_sets sets of `ways` entries (a configuration goes to the set its hash names); NULL: out of memory. */
gm_fill_cache *gm_fill_cache_new(int32_t n_words, int32_t n_sets, int32_t ways, int shared);
void gm_fill_cache_free(gm_fill_cache *c);
int64_t gm_fill_cache_memory(const gm_fill_cache *c);
void gm_fill_cache_stats(const gm_fill_cache *c, int64_t *hits, int64_t *misses);

/* Whitespace ops (indentation grammars): the bytes of a newline lexeme inside one token (see gm_vocab). */
typedef struct {
    const int32_t *begin;          /* [n_wsops + 1] */
    const uint8_t *bytes, *reset;
} gm_wsops;

/* One table state's token tables, as the fill reads them (gm_state_tables_of): from the arrays of
 * gm_vocab, or built on the state's first fill (gm_tables.c). */
typedef struct {
    const uint32_t *uncond;        /* [n_words] the unconditional mask */
    int32_t n_groups;
    const int32_t *seq, *cset, *lcp, *dense;  /* [n_groups]: see gm_vocab's group_* */
    const int32_t *tok_begin;      /* [n_groups + 1] into toks */
    const int32_t *toks;
    const uint32_t *masks;         /* what dense indexes, n_words each */
    const int32_t *seq_begin, *seq_terms;
    gm_wsops ws;
} gm_state_tables;

/* Token tables built a state at a time, on the state's first fill (gm_tables.c): a schema's first mask
 * needs the tables of one state, not of all. Safe with fills on many threads (one builder at a time). */
typedef struct gm_lazy_tables gm_lazy_tables;

/* Token tables for one grammar and one vocabulary. "Table states" are the lexer states plus, when the
 * tokenizer's decoder drops the first leading space, one extra state used at the start of the output.
 * With `lazy` set, the group and mask arrays are unused: each state's tables come from it. */
typedef struct {
    int32_t vocab_size, n_words, n_tokens;
    const uint8_t *tok_bytes;
    const int64_t *tok_begin;      /* [n_tokens + 1] */
    const uint8_t *is_stop;        /* [vocab_size] */
    const int32_t *stop_ids;       /* [n_stop] the tokens with is_stop set */
    int32_t n_stop;
    int32_t strip_leading_space;
    const int32_t *uncond_mask;    /* [n_table_states] index into masks */
    const uint32_t *masks;         /* [n_masks * n_words] */
    const int32_t *group_begin;    /* [n_table_states + 1] */
    const int32_t *group_seq, *group_cset;
    const int32_t *group_tok_begin; /* [n_groups + 1] */
    const int32_t *group_toks;
    const int32_t *group_dense;    /* [n_groups] index into masks for large groups (their tokens as one
                                      mask: fewer bytes and one word-wise OR), or -1: see group_toks */
    const int32_t *group_lcp;      /* [n_groups] elements the group's sequence shares with the previous
                                      group's in the same state (0 for a state's first group): derived, see
                                      gm_group_lcp */
    const int32_t *seq_begin;      /* [n_seqs + 1] */
    const int32_t *seq_terms;      /* terminal ids, or n_terminals+1+k: a t_nl lexeme ended, whitespace op k */
    const int32_t *wsop_begin;     /* [n_wsops + 1] whitespace of a t_nl lexeme inside one token: */
    const uint8_t *wsop_bytes;     /*   the bytes after its last newline ... */
    const uint8_t *wsop_reset;     /*   ... and whether it had a newline (else: continues the running width) */
    gm_fill_cache *fill_cache;     /* shared by the matchers of these tables, or NULL */
    gm_lazy_tables *lazy;          /* or NULL: every state's tables are in the arrays above */
} gm_vocab;

/* Table state ts's tables (built now if lazy and not built yet): 0, or GM_NOMEM. */
int gm_state_tables_of(const gm_vocab *v, int32_t ts, gm_state_tables *out);

/* What the table builder derives from the vocabulary alone (its sorted order): the tokens' bytes laid out
 * in that order (the builder walks them front to back instead of jumping through the vocabulary), per
 * position of `order` the end of its block of tokens with the same first byte and the length of the prefix
 * it shares with the token before it, and the longest token's length. Made once per vocabulary and shared,
 * read-only, by every table set over it (a JSON Schema per request need not walk the whole vocabulary again
 * before its first fill). */
typedef struct {
    uint8_t *sorted_bytes;   /* the bytes of order[0], order[1], ... end to end */
    int64_t *sorted_begin;   /* [n_order + 1] where each starts in sorted_bytes */
    int32_t *block_end;      /* [n_order] */
    int32_t *shared_prefix;  /* [n_order] bytes order[k] has in common with order[k - 1] at the start (k = 0: 0):
                                the tokens after one whose walk died within its first n bytes die too
                                while this stays >= n */
    int64_t max_len;
} gm_vocab_index;

/* 0, or GM_NOMEM (ix left empty). */
int gm_vocab_index_init(gm_vocab_index *ix, const uint8_t *tok_bytes, const int64_t *tok_begin,
                        const int32_t *order, int32_t n_order);
void gm_vocab_index_free(gm_vocab_index *ix);

/* Lazy tables over the vocabulary's sorted order (order[n_order]: the tokens with text, sorted by bytes;
 * the arrays must outlive them). ix: the vocabulary's index (gm_vocab_index_init over the same arrays; it
 * must outlive them too), or NULL to derive one of their own. NULL: out of memory. */
gm_lazy_tables *gm_lazy_new(const gm_grammar *g, const uint8_t *tok_bytes, const int64_t *tok_begin,
                            const int32_t *order, int32_t n_order, const gm_vocab_index *ix, int32_t n_words,
                            int32_t strip_leading_space);
void gm_lazy_free(gm_lazy_tables *lz);
/* States built so far, and the bytes their tables hold. */
void gm_lazy_stats(gm_lazy_tables *lz, int32_t *n_built, int64_t *bytes);
/* Whether table state ts's tables are built. */
int gm_lazy_built(gm_lazy_tables *lz, int32_t ts);

/* Indentation context (indenter grammars): bracket depth, logical-line state, running indentation. */
typedef struct {
    int32_t depth;        /* open brackets */
    int32_t line_start;   /* waiting for the first token of a logical line (INDENT/DEDENT due) */
    int32_t has_content;  /* the current logical line has tokens (a NEWLINE is due at its end) */
    int32_t width, altwidth;  /* indentation: tabs to multiples of 8, and tabs as 1 (CPython's check);
                                 GM_LARK_INDENT: Lark's width in the NL lexeme, and 1 once it held a '\n' */
    int32_t cont;         /* the last lexeme was a line continuation */
    int32_t semi;         /* semicolon mode: a newline here inserts a semicolon */
    int32_t fn;           /* open f-strings, innermost last: kind*2+raw | position << 3 | field depth << 8 */
    int32_t fstr[GM_MAX_FSTRINGS];
    /* lex_fallback: the lexeme in progress passed a complete one, terminal fb_term, which ended in state fb_state,
     * fb_n bytes ago (0: none); fb_bytes the first GM_FB_INLINE of those bytes, zero past fb_n (the context is a
     * fill cache key), and the others the matcher's fb_arena[fb_ext ...] (fb_ext 0 unless fb_n > GM_FB_INLINE).
     * The context keeps its size: it is copied in every fill snapshot. */
    int32_t fb_state, fb_term, fb_n, fb_ext;
    uint8_t fb_bytes[GM_FB_INLINE];
} gm_ictx;

typedef struct { int32_t *data; int32_t len, cap; } gm_stack;

typedef struct {
    int32_t lex_state, flags;
    gm_ictx ctx;
    int32_t lr_len, lr_base, ind_len, ind_base;
    int64_t saved_begin;
} gm_history;

/* The virtual parse state after a prefix of a terminal sequence (mask fill: sequences share prefixes). */
typedef struct {
    int32_t lr_base, lr_n, ind_base, ind_n;  /* real-stack bases, overlay lengths */
    int64_t at;                              /* overlay contents in gm_matcher.snap_data */
    gm_ictx ctx;
} gm_snapshot;

/* A mask the fill computed, kept for the same parse configuration (lexer state, context, and the tops
 * of the stacks as deep as the fill read them): statement starts and the same positions in expressions
 * repeat configurations, and those are the costliest fills. */
typedef struct {
    uint64_t hash;                 /* of the key's first part */
    int32_t *key; int32_t key_cap; /* the configuration: see fill_key_first in gm_fill_cache.c */
    int32_t valid;
    uint32_t *mask;                /* [n_words] */
} gm_fill_entry;

/* A cached chain of unit reductions (see unit_chain in gm_parser.c). */
typedef struct { int32_t below, top, term, result; } gm_unit_memo;
#define GM_UNIT_MEMO 2048  /* entries, a power of two */

typedef struct {
    const gm_grammar *g;
    const gm_vocab *v;             /* NULL for a byte-level (validator) matcher */
    gm_stack lr;                   /* LR states */
    gm_stack ind;                  /* indentation levels, (width << 16) | altwidth */
    gm_ictx ctx;
    int32_t lex_state;
    int32_t at_start, terminated;
    gm_history *hist; int32_t n_hist, hist_cap;
    int32_t max_hist;              /* 0: unbounded; else the oldest entries are dropped past it */
    int32_t *saved; int64_t n_saved, saved_cap;
    gm_stack scratch[6];           /* virtual-stack overlays: LR and indentation, three times (the third:
                                      the fallback's trials, see fallback_viable) */
    gm_snapshot *snaps; int64_t snaps_cap;
    int32_t *snap_data; int64_t snap_data_cap;
    uint32_t *take_stamp; uint8_t *take_ok; uint32_t stamp;  /* fill: can_take answers for one parse state */
    gm_unit_memo *unit_memo;       /* [GM_UNIT_MEMO] */
    /* The bytes of pending fallbacks past GM_FB_INLINE (gm_ictx.fb_ext), appended as lexemes grow; never
     * written below fb_arena_len. Real contexts (the matcher's, its history's, kept ones) reference bytes
     * below fb_keep; what virtual states appended past it is dropped before the next one starts (fb_trim). */
    uint8_t *fb_arena; int64_t fb_arena_len, fb_arena_cap, fb_keep;
    gm_fill_cache *fill_cache;     /* the tables' shared one, or own_fill_cache, or NULL: every fill from
                                      the tables (tests compare the two) */
    gm_fill_cache *own_fill_cache; /* see gm_matcher_private_fill_cache */
    gm_wsops ws;                   /* the whitespace ops of the state being filled (gm_parser.c reads them) */
    int32_t lr_low, ind_low;       /* lowest stack bases the fill's parses reached (see vstack) */
    int32_t ind_len_read;          /* the fill read the indentation stack's length */
} gm_matcher;

/* Status codes */
#define GM_OK 0
#define GM_NOMEM (-100)
#define GM_HASH_COLLISION (-101)

/* LALR(1) tables (gm_lalr.c), Lark's up to state numbering. Symbols: terminals 0..n_terms-1 (end_term is
 * $END, in no right-hand side), then nonterminals n_terms..n_terms+n_nonterms-1; rule_lhs holds nonterminal
 * indices (0..n_nonterms-1). The root rule (`$root: start`) is its nonterminal's only rule, in no right-hand
 * side; its state is state 0. rule_prio orders rules for reduce/reduce resolution (higher wins). */
typedef struct {
    int32_t n_terms, n_nonterms, n_rules, n_rhs;
    const int32_t *rule_lhs;     /* [n_rules] */
    const int32_t *rule_begin;   /* [n_rules + 1] offsets into rhs, from 0 to n_rhs */
    const int32_t *rhs;          /* [n_rhs] */
    const int32_t *rule_prio;    /* [n_rules] */
    int32_t root_rule, end_term;
    double deadline;             /* CLOCK_MONOTONIC seconds (Python's time.monotonic), 0: none */
} gm_lalr_grammar;

typedef struct {
    int32_t n_states, n_symbols, end_state;  /* the start state is 0 */
    int32_t *trans;              /* [n_states * n_symbols] shift / goto target, -1 */
    int32_t *reduce;             /* [n_states * n_terms] rule reduced on the terminal, -1 */
    int32_t n_conflicts;
    int32_t *conflicts;          /* [3 * n_conflicts] (state, terminal, rule): shift/reduce, resolved as shift */
    int32_t n_collisions;
    int32_t *collisions;         /* [3 * (n_collisions + 1)] (state, terminal, first of its rules); the last
                                  * entry ends the last collision's rules */
    int32_t *collision_rules;    /* the rules of each reduce/reduce collision */
} gm_lalr_tables;

#define GM_LALR_TIMEOUT (-110)    /* past g->deadline */
#define GM_LALR_FALLBACK (-111)   /* the reads relation has a cycle through several transitions (gm_lalr.c) */
#define GM_LALR_BAD_INPUT (-112)  /* an index out of range, or the root rule not as described */

/* Build the tables into *out (freed with gm_lalr_free; nothing held on failure): GM_OK or a code above. */
int gm_lalr_build(const gm_lalr_grammar *g, gm_lalr_tables *out);
void gm_lalr_free(gm_lalr_tables *t);

/* Tests: make the n-th allocation of the core from now fail (0: none), and count the blocks it holds. */
void gm_test_fail_alloc(int64_t n);
int64_t gm_test_live_blocks(void);

/* Check what no range check of single arrays can (the caller checked every index range first): every
 * lexer mode starts in a state of that mode; in the LR tables, from any stack the tables can build, no
 * reduction pops the bottom state or reads an undefined goto, and no lookahead makes the parser reduce
 * forever. 0, or -1 with a message in msg; GM_NOMEM. */
int gm_check_grammar(const gm_grammar *g, char *msg, int32_t msg_len);

/* Fill v->group_lcp's target `out` [n_groups] from the other group arrays (n_table_states states). */
void gm_group_lcp(const gm_vocab *v, int32_t n_table_states, int32_t *out);

/* Init: the matcher uses the tables' shared fill cache (v->fill_cache). On failure nothing is held. */
int gm_matcher_init(gm_matcher *m, const gm_grammar *g, const gm_vocab *v);
/* The matcher's own fill cache instead of the shared one (n_entries 0: none, every fill from the tables). */
int gm_matcher_private_fill_cache(gm_matcher *m, int32_t n_entries);
void gm_matcher_free(gm_matcher *m);
void gm_matcher_reset(gm_matcher *m);
int gm_fill_bitmask(gm_matcher *m, uint32_t *out);
int64_t gm_matcher_memory(const gm_matcher *m);          /* bytes the matcher holds (not the tables) */
int gm_accept_token(gm_matcher *m, int32_t token);      /* 1 accepted, 0 rejected, <0 error */
/* All n tokens, or none (0: one was rejected; <0: an error): the matcher is as it was unless 1. */
int gm_accept_tokens(gm_matcher *m, const int32_t *tokens, int32_t n);
int gm_rollback(gm_matcher *m, int32_t n);               /* 0, or -1 if fewer than n tokens */
int gm_is_complete(gm_matcher *m);                       /* text so far is a complete string */
int gm_acceptable_terminals(gm_matcher *m, uint8_t *out); /* out[n_terminals+1]; ignored terms are 1 */

/* Byte-level feeding (validator). Returns GM_OK or an error kind; *err_pos is the byte offset, *err_term
 * the terminal involved (or -1), *lexeme_begin the offset where the current lexeme began. */
#define GM_ERR_LEX 1        /* no lexeme can continue with this byte */
#define GM_ERR_PARSE 2      /* a complete terminal the parser cannot take */
#define GM_ERR_PENDING 3    /* the lexeme in progress can only become terminals the parser cannot take */
int gm_feed_bytes(gm_matcher *m, const uint8_t *bytes, int64_t n, int64_t offset,
                  int64_t *err_pos, int32_t *err_term, int64_t *lexeme_begin);

/* Feed raw text (e.g. a prompt's code to continue): 1 if it keeps the text a valid prefix, else 0 and the
 * state is unchanged. Clears the token history. */
int gm_accept_bytes(gm_matcher *m, const uint8_t *bytes, int64_t n);

/* 1 if something other than %ignore'd text may still follow (a growing lexeme or a parser terminal). */
int gm_can_continue(gm_matcher *m);

/* End the pending lexeme as a terminal (validator): 1 done, 0 if it is not a complete terminal or the
 * parser cannot take it. */
int gm_flush_lexeme(gm_matcher *m);

/* One lexer step; emits up to two terminals. Shared by table building, matching and validation. */
int32_t gm_lex_byte(const gm_grammar *g, int32_t q, uint8_t b, int32_t *emit, int *n_emit, int *consumed);
/* GM_RESUME from gm_lex_byte: the terminals are emitted, *consumed says whether the byte was taken; the
 * caller feeds them and lexes on from gm_mode_start(g, ctx, lr_top): the open f-strings or, for a contextual
 * lexer, the LR state on top of the stack (lr_top) decide. */
int32_t gm_mode_start(const gm_grammar *g, const gm_ictx *ctx, int32_t lr_top);

/* Mask application on the CPU: in a rows x vocab array of 4-byte (float32) or 2-byte (float16, bfloat16)
 * logits, strides in elements, store `neg_inf` (the dtype's bit pattern) at every id whose mask bit is clear,
 * ids at or past 32 * n_words included (a head padded past the vocabulary). */
void gm_apply_bitmask(void *logits, int32_t elem_size, int64_t rows, int64_t vocab, int64_t row_stride,
                      int64_t col_stride, uint32_t neg_inf, const uint32_t *mask, int64_t n_words,
                      int64_t mask_row_stride);

/* Table building. Output arrays are malloc'ed; free with gm_build_free. */
typedef struct {
    int32_t n_table_states, n_words;
    uint32_t *masks;              /* [n_table_states * n_words], one unconditional mask per state */
    int32_t *group_begin;         /* [n_table_states + 1] */
    int32_t *group_seq, *group_cset, *group_tok_begin; int32_t n_groups;
    int32_t *group_toks; int64_t n_group_toks;
    int32_t *seq_begin, *seq_terms; int32_t n_seqs; int64_t n_seq_terms;
    int32_t *wsop_begin; uint8_t *wsop_bytes, *wsop_reset; int32_t n_wsops;
} gm_build;

/* n_threads builders take every n-th lexer state each (at most GM_MAX_BUILD_THREADS). */
#define GM_MAX_BUILD_THREADS 16
int gm_build_vocab(const gm_grammar *g, const uint8_t *tok_bytes, const int64_t *tok_begin,
                   const int32_t *order, int32_t n_order, int32_t n_words, int32_t strip_leading_space,
                   int32_t n_threads, gm_build *out);
void gm_build_free(gm_build *out);

#endif
