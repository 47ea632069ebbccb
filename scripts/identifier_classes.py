"""Print the identifier terminals of the built-in grammars as exact Unicode character classes.

    python scripts/identifier_classes.py python   # NAME for grammar/python.lark (this interpreter's Unicode)
    python scripts/identifier_classes.py go       # IDENT for grammar/go.lark (the installed Go's Unicode)

Python (PEP 3131): the tokenizer takes a run of ASCII letters, digits, '_' and any non-ASCII characters
and requires it to be an identifier as written (XID_Start XID_Continue*, what str.isidentifier() checks;
NFKC normalization comes after): a first character c qualifies when c.isidentifier(), a later one when
("a" + c).isidentifier(). Go: letter = Unicode category L or '_', digit = Nd, as
unicode.IsLetter / unicode.IsDigit of the Go that runs gofmt answer (asked through `go run`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from grammask.fsm.utf8 import codepoints_to_ranges

_GO_PROGRAM = """package main
import ("fmt"; "unicode")
func main() {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r == '_' || unicode.IsLetter(r) { fmt.Println("L", r) } else if unicode.IsDigit(r) { fmt.Println("D", r) }
	}
}
"""


def char_class(codepoints) -> str:
    def esc(cp: int) -> str:
        if chr(cp).isascii() and chr(cp).isalnum() or cp == 0x5F:
            return chr(cp)
        return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"
    return "[" + "".join(esc(lo) if lo == hi else f"{esc(lo)}-{esc(hi)}" for lo, hi in codepoints_to_ranges(codepoints)) + "]"


def python_name() -> str:
    cps = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    start = [cp for cp in cps if chr(cp).isidentifier()]
    cont = [cp for cp in cps if ("a" + chr(cp)).isidentifier()]
    return f"{char_class(start)}{char_class(cont)}*"


def go_ident() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "classes.go")
        with open(path, "w") as f:
            f.write(_GO_PROGRAM)
        out = subprocess.run(["go", "run", path], capture_output=True, text=True, check=True).stdout
    letters = [int(x[2:]) for x in out.splitlines() if x.startswith("L")]
    digits = [int(x[2:]) for x in out.splitlines() if x.startswith("D")]
    return f"{char_class(letters)}{char_class(letters + digits)}*"


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which == "python":
        print(f"NAME: /{python_name()}/")
    elif which == "go":
        print(f"IDENT: /{go_ident()}/")
    else:
        sys.exit(__doc__)
