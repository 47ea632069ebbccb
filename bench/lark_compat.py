"""Lark as the oracle: does grammask accept exactly what Lark's LALR parser accepts?

For each grammar of tests/data/lark_compat/ (and Lark's own lark.lark), texts come from three places:
hand-written valid texts, texts hypothesis generates from the grammar (`hypothesis.extra.lark.from_lark`,
derandomized), and seeded mutations of the texts Lark accepts (delete / insert / replace a character, swap
two, duplicate a slice). Lark judges each text with `Lark(grammar, parser="lalr", start=...)` (its default
contextual lexer); grammask with `Grammar.from_lark(grammar, start=...).validate(text).ok`. A grammar
grammask refuses to compile disagrees on every text Lark accepts.

    python -m bench.lark_compat [NAME ...] [--show N]

prints, per grammar, the texts, the agreement, and each disagreement with the text and both verdicts.
tests/test_lark_compat.py asserts on the same numbers.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR_DIR = ROOT / "tests" / "data" / "lark_compat"


def lark_package_dir() -> Path:
    import lark

    return Path(lark.__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    """One grammar of the suite: where its text comes from and the texts it is tried on."""

    name: str
    start: str = "start"
    valid: tuple[str, ...] = ()          # hand-written texts (Lark is still asked about each)
    generated: int = 40                  # hypothesis examples drawn from the grammar
    mutations: int = 300                 # seeded mutations of the texts Lark accepts
    grammar_path: Optional[Callable[[], Path]] = None   # default: GRAMMAR_DIR / f"{name}.lark"
    files: Optional[Callable[[], list[Path]]] = None     # texts read from files (lark.lark's inputs)

    def grammar_file(self) -> Path:
        return self.grammar_path() if self.grammar_path else GRAMMAR_DIR / f"{self.name}.lark"

    def grammar_text(self) -> str:
        return self.grammar_file().read_text(encoding="utf-8")


def _lark_files() -> list[Path]:
    """The .lark files Lark ships and the ones in this repository (built-ins, test grammars, this suite's)."""
    paths = sorted((lark_package_dir() / "grammars").glob("*.lark"))
    paths += sorted((ROOT / "grammar").glob("*.lark"))
    paths += sorted((ROOT / "tests" / "data").rglob("*.lark"))
    return paths


CASES: dict[str, Case] = {c.name: c for c in [
    Case("glued_keywords", valid=(
        "intA(){}",
        "int main(void x) { return 0; }",
        "charc;intx=1;",
        "const unsigned long*p[4];",
        "voidf(int a, char*b){ intx = a+1; if(x<2){returnx;} else {return f(x, b);} while(x){x = x-1;} }",
        "int f() { intx; return intx; }",
        "unsignedchar c; /* comment */ int g(){ // line\n returnc; }",
        "int ifx(){ if(ifx){} whilex; }",
    )),
    Case("soft_keywords", valid=(
        "let x: Int = 1;",
        "invariant = 3; decreases = invariant + 1;",
        "loop invariant i < n decreases n - i { i = i + 1; }",
        "let invariant: Nat = 0; loop invariant invariant <= 10 { assert invariant; }",
        "let Big: Big = Big; # a name and a type with the same spelling\n",
        "loop invariant (a + b) == c { loop invariant x { } }",
        "let decreases: T2 = 2.5;",
    )),
    Case("json_escaped", valid=(
        '{"a": [1, -2.5e3, true, false, null], "b": {}}',
        '"a \\"quoted\\" word"',
        '["\\\\", "\\\\\\\\", "tab\\there", "é ü 中文"]',
        '  {"nested": {"deep": [[], [{}], "x"]}}  ',
        '-0.5E+10',
        '"ends with an escaped backslash \\\\"',
    )),
    Case("unicode_names", valid=(
        "π = 3;",
        "café = 'crème' + naïve;",
        "éa1 = ٣.١٤;",
        "Ωmega_2\u00a0=\u2003x;",
        "_ = ůa + 日本語;",
        "x = 1 + 2 + y;",
    )),
    Case("word_boundaries", valid=(
        "select * from café;",
        "SELECT naïve, größe FROM Straße WHERE größe ≥ 3 AND x = @bob;",
        "select a from b where c≠'x';",
        "select fromage from from_table;",
        "select x from t where y = @ann ;select selecté from wheres;",
        "Select\u00a0x\u2003FROM\tt\nwhere ω<2.5;",
    )),
    Case("common_all", valid=(
        "digit:7;hexdigit:f;int:42;signed_int:-3;decimal:1.5;decimal:.5;decimal:2.;",
        "float:1e10;float:1.5E-3;signed_float:+2.e3;number:7;number:7.25;signed_number:-1e-9;",
        'string:"a \\" b";lcase:q;ucase:Q;letter:z;word:Hello;cname:_x9;',
        "ws_inline: \t ;ws: \t\f\r\n ;cr:\r;lf:\n;newline:\r\n\n;c_comment:/* a\n b */;",
        "sh:# shell comment\ncpp:// c++ comment\nsql:-- sql comment\n",
        "int:0;float:0e0;",
    )),
    Case("csv", valid=(
        "# AA \n0\n",
        "# name, age\nalice,42\nbob 7\n",
        "#id\tvalue\n1\t-2.5\n3\t.5e3\n",
        "#a b c\nx.y;z 1.0 -1.0\n/usr/lib 3 4\n",
        "# x\r\n1\r\n\n2\n",
    )),
    Case("calc", valid=(
        "1 + 2 * 3\n",
        "x = 4\ny = x ^ 2 ^ 3\n-(x - y) / 2\n",
        "f(1, 2, g(x)) + pi * e\n",
        "|x - 10| * -3.5",
        "pie = 1\npie\n",
        "a_1 = max(1)\nemax\n",
    ), generated=20),  # its recursive rules make most of hypothesis' draws overrun: fewer, to stay fast
    Case("flags", valid=(
        "name = \"grammask\"\nVerbose = YES\ncount = -12.5\n",
        "Body = <<<first line\nsecond line>>>\n",
        "INCLUDE /etc/settings.conf\n; a comment\n",
        "\n\ntimeout = 30 ; seconds\nincludes = True\n",
        "include other.ini\nKEY = no\n",
    )),
    Case("lark_lark", valid=(
        "start: a\n",
        "start: \"x\"i /y+/s NAME?\nNAME.2: /[a-z]+/\n%ignore \" \"\n",
        "?a{x}: x | \"(\" a{x} \")\"  -> paren\n%import common.WS\n%declare TOKEN\n",
    ), generated=25, mutations=400,
        grammar_path=lambda: lark_package_dir() / "grammars" / "lark.lark", files=_lark_files),
]}


@dataclass
class Verdict:
    text: str
    source: str                  # "hand", "generated", "file:<name>", "mutation"
    lark_ok: bool
    ours_ok: Optional[bool]      # None: grammask refused the grammar
    lark_error: str = ""
    our_message: str = ""
    basic_ok: Optional[bool] = None  # Lark with lexer="basic" (one lexer for all states), asked on disagreements

    @property
    def lexer_is_the_cause(self) -> bool:
        """Lark's basic lexer judges as grammask does: the difference is the contextual lexer's."""
        return self.basic_ok is not None and self.basic_ok == bool(self.ours_ok)

    @property
    def agrees(self) -> bool:
        return self.lark_ok == bool(self.ours_ok)


@dataclass
class Report:
    case: Case
    refused: Optional[str]                       # grammask's GrammarError when it refuses the grammar
    texts: list[Verdict] = field(default_factory=list)       # hand-written, generated, files
    mutations: list[Verdict] = field(default_factory=list)

    @property
    def accepted_by_lark(self) -> list[Verdict]:
        return [v for v in self.texts if v.lark_ok]

    @property
    def false_rejections(self) -> list[Verdict]:
        return [v for v in self.texts + self.mutations if v.lark_ok and not v.ours_ok]

    @property
    def false_acceptances(self) -> list[Verdict]:
        return [v for v in self.texts + self.mutations if not v.lark_ok and v.ours_ok]

    def text_agreement(self) -> float:
        ok = self.accepted_by_lark
        return sum(v.agrees for v in ok) / len(ok) if ok else 1.0

    def mutation_agreement(self) -> float:
        return sum(v.agrees for v in self.mutations) / len(self.mutations) if self.mutations else 1.0

    def disagreements(self) -> list[Verdict]:
        return [v for v in self.texts + self.mutations if not v.agrees]


@lru_cache(maxsize=None)
def lark_parser(name: str, lexer: str = "contextual"):
    from lark import Lark

    case = CASES[name]
    return Lark(case.grammar_text(), parser="lalr", start=case.start, lexer=lexer)


def lark_verdict(name: str, text: str, lexer: str = "contextual") -> tuple[bool, str]:
    from lark.exceptions import LarkError

    try:
        lark_parser(name, lexer).parse(text)
        return True, ""
    except LarkError as exc:
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


_ours: dict = {}


def our_grammar(name: str):
    """grammask's Grammar for the case, or the GrammarError text when it refuses it."""
    if name not in _ours:
        import grammask as gm

        case = CASES[name]
        try:
            _ours[name] = gm.Grammar.from_lark(case.grammar_text(), start=case.start)
        except gm.GrammarError as exc:
            _ours[name] = str(exc)
    return _ours[name]


def generated_texts(name: str, count: int) -> list[str]:
    """`count` texts hypothesis draws from the grammar (derandomized: the same on every run)."""
    if count <= 0:
        return []
    import warnings

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import NonInteractiveExampleWarning
    from hypothesis.extra.lark import from_lark

    case = CASES[name]
    out: list[str] = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(from_lark(lark_parser(name), start=case.start))
    def collect(text):
        out.append(text)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        collect()
    return [t for t in dict.fromkeys(out) if _encodable(t)]


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


# Characters mutations insert: the texts' own, plus blanks, brackets and a few non-ASCII letters and digits.
EXTRA_CHARS = " \t\n\r\"'\\;:,.()[]{}#/*+-=<>|_0aZé٣\u00a0"


def mutate(text: str, rng: random.Random, alphabet: str) -> str:
    """One edit of `text`: delete, insert or replace a character, swap two, or duplicate a slice."""
    n = len(text)
    kind = rng.randrange(5) if n else 1
    i = rng.randrange(n) if n else 0
    if kind == 0:
        return text[:i] + text[i + 1:]
    if kind == 1:
        j = rng.randrange(n + 1)
        return text[:j] + rng.choice(alphabet) + text[j:]
    if kind == 2:
        return text[:i] + rng.choice(alphabet) + text[i + 1:]
    if kind == 3:
        j = min(n - 1, i + rng.choice((1, 1, 2, rng.randrange(n))))
        a, b = sorted((i, j))
        return text[:a] + text[b] + text[a + 1:b] + text[a] + text[b + 1:]
    j = min(n, i + rng.randrange(1, 8))
    return text[:j] + text[i:j] + text[j:]


def _verdict(name: str, text: str, source: str) -> Verdict:
    lark_ok, lark_error = lark_verdict(name, text)
    ours = our_grammar(name)
    if isinstance(ours, str):
        return Verdict(text, source, lark_ok, None, lark_error, f"grammar refused: {ours}")
    r = ours.validate(text)
    v = Verdict(text, source, lark_ok, r.ok, lark_error, r.message)
    if not v.agrees:
        v.basic_ok = lark_verdict(name, text, "basic")[0]
    return v


def run_case(name: str) -> Report:
    case = CASES[name]
    ours = our_grammar(name)
    report = Report(case, ours if isinstance(ours, str) else None)
    sources = [(t, "hand") for t in case.valid]
    sources += [(p.read_text(encoding="utf-8"), f"file:{p.name}") for p in (case.files() if case.files else [])]
    sources += [(t, "generated") for t in generated_texts(name, case.generated)]
    seen = set()
    for text, source in sources:
        if text not in seen:
            seen.add(text)
            report.texts.append(_verdict(name, text, source))
    valid = [v.text for v in report.texts if v.lark_ok]
    alphabet = "".join(sorted(set("".join(valid)) | set(EXTRA_CHARS)))
    rng = random.Random(f"lark_compat:{name}")
    for _ in range(case.mutations if valid else 0):
        text = mutate(rng.choice(valid), rng, alphabet)
        report.mutations.append(_verdict(name, text, "mutation"))
    return report


def _short(text: str, limit: int = 100) -> str:
    r = repr(text)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def format_report(report: Report, show: int = 20) -> str:
    case = report.case
    lines = [f"== {case.name} ({case.grammar_file().name}, start={case.start!r})"]
    if report.refused:
        lines.append(f"   grammask refuses the grammar: {report.refused}")
    by_source: dict[str, int] = {}
    for v in report.texts:
        key = v.source.split(":")[0]
        by_source[key] = by_source.get(key, 0) + 1
    accepted = report.accepted_by_lark
    lines.append(f"   texts: {len(report.texts)} ({', '.join(f'{k} {n}' for k, n in by_source.items())}); "
                 f"Lark accepts {len(accepted)}, grammask accepts "
                 f"{sum(bool(v.ours_ok) for v in accepted)} of them ({100 * report.text_agreement():.1f}%)")
    lark_rejects = [v for v in report.texts if not v.lark_ok]
    if lark_rejects:
        lines.append(f"   texts Lark rejects: {len(lark_rejects)}, grammask agrees on "
                     f"{sum(v.agrees for v in lark_rejects)}")
    m = report.mutations
    lines.append(f"   mutations: {len(m)} (Lark accepts {sum(v.lark_ok for v in m)}); agreement "
                 f"{sum(v.agrees for v in m)}/{len(m)} ({100 * report.mutation_agreement():.1f}%)")
    counts = f"   false rejections {len(report.false_rejections)}, false acceptances {len(report.false_acceptances)}"
    if not report.refused:
        counts += (f"; of the {len(report.disagreements())} disagreements, "
                   f"{sum(v.lexer_is_the_cause for v in report.disagreements())} are judged by Lark's basic lexer "
                   "as grammask judges them (the contextual lexer makes the difference)")
    lines.append(counts)
    for v in report.disagreements()[:show]:
        lark = "accepts" if v.lark_ok else f"rejects ({v.lark_error})"
        ours = "refused grammar" if v.ours_ok is None else ("accepts" if v.ours_ok else f"rejects ({v.our_message})")
        basic = "" if v.basic_ok is None else f" (Lark's basic lexer {'accepts' if v.basic_ok else 'rejects'})"
        lines.append(f"   - [{v.source}] {_short(v.text)}\n       Lark {_short(lark, 160)}\n"
                     f"       grammask {_short(ours, 160)}{basic}")
    more = len(report.disagreements()) - show
    if more > 0:
        lines.append(f"   ... {more} more disagreements")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.lark_compat", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"grammars (default all: {', '.join(CASES)})")
    ap.add_argument("--show", type=int, default=20, help="disagreements listed per grammar (default 20)")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in CASES]
    if unknown:
        ap.error(f"unknown grammar(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    for name in args.names or CASES:
        print(format_report(run_case(name), args.show), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
