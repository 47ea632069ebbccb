/* grammask native core: the lexer DFA's construction (fsm/lexer.py drives it): a byte NFA's subset
 * construction, trimming and minimization, and the completable sets. Every array out is allocated here and
 * freed by gm_lexbuild_free; every index in is checked, so no input makes these read or write out of range. */
#ifndef GM_LEXBUILD_H
#define GM_LEXBUILD_H

#include <stdint.h>

#define GM_LEXB_TOO_MANY 1    /* more DFA states than max_states */
#define GM_LEXB_TIMEOUT 2     /* past the time allowed */
#define GM_LEXB_NOTHING 3     /* minimize: no accepting state can be reached from state 0 */
#define GM_LEXB_BAD_INPUT (-101)  /* an index out of range, or offsets that decrease */

typedef struct {
    int32_t n_states;      /* determinize, minimize: DFA states out; determinize's limits: states so far */
    int32_t *trans;        /* [n_states * 256] next state or -1 */
    int32_t *winner;       /* [n_states] terminal or -1 */
    uint8_t *dead_end;     /* minimize: [n_states] 1 where no byte leads anywhere */
    int32_t *class_of;     /* minimize: [n_in] each input state's new state, -1 where trimmed */
    int32_t *rep;          /* minimize: [n_states] the first input state of each new state */
    int32_t *cset;         /* csets: [n_states] completable-set id or -1 (any terminal) */
    int32_t n_csets;
    int32_t *cset_begin;   /* csets: [n_csets + 1] */
    int32_t *cset_terms;   /* csets: [cset_begin[n_csets]] terminals, ascending within a set */
} gm_lexbuild;

/* The DFA of a byte NFA (per state s: its edges edge_begin[s]..edge_begin[s+1] of n_edges, each a byte range
 * edge_lo..edge_hi to edge_dst; the terminal it accepts or -1), from the set of `starts`: states numbered in
 * order of discovery, breadth first and by byte within a state; each state's winner is its accepted terminal
 * of least term_rank ([n_terms]). time_left < 0: no time limit (else seconds). GM_OK, GM_LEXB_TOO_MANY /
 * GM_LEXB_TIMEOUT (out->n_states: the states so far), GM_NOMEM or GM_LEXB_BAD_INPUT. */
int gm_lex_determinize(int32_t n_nfa, const int32_t *edge_begin, int64_t n_edges, const int32_t *edge_lo,
                       const int32_t *edge_hi, const int32_t *edge_dst, const int32_t *accept, int32_t n_starts,
                       const int32_t *starts, int32_t n_terms, const int32_t *term_rank, int32_t max_states,
                       double time_left, gm_lexbuild *out);

/* Drop the states from which no state with winner >= 0 or cond >= 0 can be reached (the `starts` stay), then
 * merge equivalent states (same winner, mode and cond, equivalent successors): the new states numbered in
 * order of their first input state, so state 0 stays first. GM_OK, GM_LEXB_NOTHING, GM_NOMEM or
 * GM_LEXB_BAD_INPUT. */
int gm_lex_minimize(int32_t n, const int32_t *trans, const int32_t *winner, const int32_t *mode, const int32_t *cond,
                    int32_t n_starts, const int32_t *starts, gm_lexbuild *out);

/* Per state, the terminals some continuation of the lexeme can produce (its own winner, and in a conditional
 * state each terminal of its cond_rows row of 257), interned as sets in order of first appearance; -1 for
 * the `starts` and where an ignored terminal can follow. GM_OK, GM_NOMEM or GM_LEXB_BAD_INPUT. */
int gm_lex_csets(int32_t n, const int32_t *trans, const int32_t *winner, const int32_t *cond, int32_t n_rows,
                 const int32_t *cond_rows, int32_t n_terms, const uint8_t *ignored, int32_t n_starts,
                 const int32_t *starts, gm_lexbuild *out);

void gm_lexbuild_free(gm_lexbuild *out);

#endif
