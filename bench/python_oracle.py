"""Is this text valid Python of a given version? The parsers nobody here wrote, and where they differ.

For the version of the running interpreter, its own `ast.parse`. For a newer one, libcst's native parser
(PyPI `libcst`, which reads 3.0-3.15 syntax whatever version it is told) where the running CPython
rejects the text: what an older version accepts every later one accepts (3.12-3.14 only add syntax), and
libcst refuses some of it (some tab indentation, parenthesized annotation targets). Where libcst accepts
a text with a bad string escape, CPython's verdict stands (libcst does not decode escapes); where libcst
fails inside itself on a t-string (PEP 750), the same text with f prefixes is judged, the two having
one syntax.
"""

from __future__ import annotations

import ast
import re
import sys
import warnings
from typing import Callable, Optional

from grammask.grammar.versions import parse_version

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"
_T_PREFIX = re.compile(r"(?<![\w])(?:[tT][rR]?|[rR][tT])(?=['\"])")


def cpython_error(text: str) -> Optional[str]:
    """The running interpreter's verdict: None, or its message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences: only warnings
            ast.parse(text)
        return None
    except SyntaxError as exc:
        return f"{exc.msg or 'syntax error'} (line {exc.lineno})"
    except ValueError as exc:  # e.g. null bytes
        return str(exc)


def libcst_error(version: str) -> Callable[[str], Optional[str]]:
    import libcst

    config = libcst.PartialParserConfig(python_version=version)

    def error(text: str) -> Optional[str]:
        try:
            libcst.parse_module(text, config=config)
            return None
        except Exception as exc:  # ParserSyntaxError, CSTLogicError, RecursionError on deep nesting
            return f"{type(exc).__name__}: {exc}"
    return error


def python_error(version: str) -> Callable[[str], Optional[str]]:
    """The judge of `version` ("3.12"): a function of a text, None when valid, else a message."""
    if version == RUNNING:
        return cpython_error
    if parse_version(version) < sys.version_info[:2]:
        raise ValueError(f"no parser for Python {version} here (running {RUNNING})")
    by_libcst = libcst_error(version)

    def error(text: str) -> Optional[str]:
        cpython = cpython_error(text)
        if cpython is None:
            return None
        found = by_libcst(text)
        if found is not None and found.startswith("CSTLogicError"):
            found = by_libcst(_T_PREFIX.sub(lambda m: m.group(0).replace("t", "f").replace("T", "F"), text))
        if found is None and "escape" in cpython:
            return cpython
        return found
    return error
