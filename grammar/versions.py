"""One grammar source for several versions of a language: lines marked with the versions they belong to.

A line of a built-in grammar may end in a version condition, `//@ >=3.12`, `//@ <3.14`, `//@ ==3.12` or
several of them (`//@ >=3.12 <3.14`). For a given version the line is kept (without its mark) when every
condition holds, and removed otherwise; unmarked lines belong to every version. Two marked definitions of
one rule, with conditions that exclude each other, give a rule its form per version.
"""

from __future__ import annotations

import operator
import re

_MARK = re.compile(r"[ \t]*//@((?:[ \t]+(?:>=|<=|==|<|>)\d+(?:\.\d+)*)+)[ \t]*$")
_CONDITION = re.compile(r"(>=|<=|==|<|>)(\d+(?:\.\d+)*)")
_COMPARE = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "<": operator.lt, ">": operator.gt}


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def select_version(text: str, version: str) -> str:
    """The lines of `text` that belong to `version` ("3.12"), their marks removed."""
    wanted = parse_version(version)
    kept = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        mark = _MARK.search(body)
        if mark is None:
            kept.append(line)
            continue
        conditions = _CONDITION.findall(mark.group(1))
        if all(_COMPARE[op](wanted, parse_version(v)) for op, v in conditions):
            kept.append(body[: mark.start()] + line[len(body):])
    return "".join(kept)
