"""Free text up to a stop string, as an automaton (structural tags: text until a trigger or `</think>`).

The language "any text in which no stop string occurs, then (optionally) stop string i" has no regex in
our dialect (no lookarounds), but its automaton is the Aho-Corasick trie of the stop strings: a state is
the longest suffix of the text read that is a prefix of some stop. Since no stop may contain another, a
stop occurs for the first time exactly when the trie reaches its leaf, and nothing may follow it there.

The automaton is over characters, like every terminal's; the lexer turns it into UTF-8 bytes. UTF-8 is
self-synchronizing, so matching stops on characters is matching them on bytes: a token that holds part
of a trigger, or a trigger split over many tokens, is judged the same way.
"""

from __future__ import annotations

from interegular.fsm import FSM, Alphabet, anything_else

FREE_TEXT = "freeText"  # the constraint kind in TerminalSpec.also: (FREE_TEXT, which, *stops)


def check_stops(stops) -> None:
    """ValueError unless the stops are non-empty strings none of which contains another."""
    if not stops:
        raise ValueError("free text needs at least one stop string")
    for s in stops:
        if not isinstance(s, str) or not s:
            raise ValueError(f"a stop string must be a non-empty string, not {s!r}")
    for a in stops:
        for b in stops:
            if a is not b and a != b and b in a:
                raise ValueError(f"stop string {a!r} contains {b!r}: {a!r} could never be reached")
    if len(set(stops)) != len(stops):
        raise ValueError(f"stop strings repeat: {list(stops)!r}")


def free_text_fsm(stops: list[str], which: int) -> FSM:
    """Texts in which no stop occurs (which == -1), or that end with the first occurrence of any stop,
    that being stops[which]. The empty text is accepted by the first form (the terminal's own regex
    demands at least one character)."""
    check_stops(stops)
    if not -1 <= which < len(stops):
        raise ValueError(f"stop index {which} out of range")
    # Trie of the stops: node 0 is the root; children[node][char] -> node; leaf_of[node] -> stop index.
    children: list[dict[str, int]] = [{}]
    leaf_of: dict[int, int] = {}
    for i, stop in enumerate(stops):
        node = 0
        for ch in stop:
            nxt = children[node].get(ch)
            if nxt is None:
                nxt = len(children)
                children.append({})
                children[node][ch] = nxt
            node = nxt
        leaf_of[node] = i
    chars = sorted({ch for stop in stops for ch in stop})
    symbols = {ch: k for k, ch in enumerate(chars)}
    symbols[anything_else] = len(chars)
    # Failure links breadth first; delta is the full transition function of the automaton.
    fail = [0] * len(children)
    delta: list[dict[str, int]] = [dict() for _ in children]
    order = [0]
    for node in order:
        for ch in chars:
            child = children[node].get(ch)
            if child is not None:
                fail[child] = delta[fail[node]].get(ch, 0) if node else 0
                delta[node][ch] = child
                order.append(child)
            else:
                delta[node][ch] = delta[fail[node]].get(ch, 0) if node else 0
    trans: dict[int, dict[int, int]] = {}
    finals = set()
    for node in range(len(children)):
        if node in leaf_of:  # a stop just occurred: the text ends here, or it is not in the language
            trans[node] = {}
            if leaf_of[node] == which:
                finals.add(node)
            continue
        if which == -1:
            finals.add(node)
        edges = {symbols[ch]: delta[node][ch] for ch in chars}
        edges[symbols[anything_else]] = 0
        trans[node] = edges
    return FSM(alphabet=Alphabet(symbols), states=set(trans), initial=0, finals=finals, map=trans).reduce()
