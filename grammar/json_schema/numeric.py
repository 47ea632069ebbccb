"""Numbers: integers and fractions within bounds (minimum, maximum, exclusive either way; the range
regexes), and multipleOf (a step whose multiples are intersected with each terminal)."""

from __future__ import annotations

import math
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Optional

from ...fsm.multiples import checked_multiple_fsm, multiple_parts
from ..regex import decimal_class, digit_range
from .keywords import NoInstance, pointer, schema_error

if TYPE_CHECKING:
    from .translator import Translator

INT = r"-?(?:0|[1-9][0-9]*)"
FRAC = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)"
FRAC_NONNEG = r"(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)"
# > 0: some nonzero digit in the mantissa.
FRAC_POS = (r"(?:[1-9][0-9]*\.[0-9]+(?:[eE][+-]?[0-9]+)?|[1-9][0-9]*[eE][+-]?[0-9]+"
            r"|0\.[0-9]*[1-9][0-9]*(?:[eE][+-]?[0-9]+)?)")


def number_alts(tr: Translator, schema: dict, ptr: str, integer: bool) -> list[str]:
    """The integers within the bounds, then (unless `integer`) the numbers written with a fraction or
    exponent within them; under multipleOf, only the multiples of each."""
    step = None
    if "multipleOf" in schema:
        try:
            step = multiple_parts(schema["multipleOf"])
            checked_multiple_fsm(*step)
        except ValueError as exc:
            raise schema_error(f"'multipleOf': {exc}", pointer(ptr, "multipleOf")) from None
        if integer and step == (1, 0):
            step = None  # every integer

    def value_set(name: str) -> str:  # a terminal's values (the multiples among them, under multipleOf)
        return tr.cls(("sub", tr.terms.multiple_of(name, step, ptr) if step else name))

    lo, lo_x = schema.get("minimum"), False
    hi, hi_x = schema.get("maximum"), False
    emin, emax = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if emin is True:
        lo_x = True
    elif isinstance(emin, (int, float)) and not isinstance(emin, bool):
        if lo is None or emin >= lo:
            lo, lo_x = emin, True
    if emax is True:
        hi_x = True
    elif isinstance(emax, (int, float)) and not isinstance(emax, bool):
        if hi is None or emax <= hi:
            hi, hi_x = emax, True
    for v, k in ((lo, "minimum"), (hi, "maximum")):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise schema_error(f"'{k}' must be a finite number", pointer(ptr, k))
    # Integer values: an interval of integers.
    ilo = None if lo is None else (math.floor(lo) + 1 if lo_x and lo == math.floor(lo) else math.ceil(lo))
    ihi = None if hi is None else (math.ceil(hi) - 1 if hi_x and hi == math.ceil(hi) else math.floor(hi))
    alts = []
    if ilo is not None and ihi is not None and ilo > ihi:
        if integer:
            raise schema_error("the bounds leave no integer", ptr, NoInstance)
    elif ilo is None and ihi is None:
        alts.append(value_set(tr.terms.add("number", INT, None, ptr)) if step else tr.cls(("all", "int")))
    else:
        alts.append(value_set(tr.terms.add("number", int_range_regex(ilo, ihi), None, ptr)))
    if integer:
        return alts
    # Numbers written with a fraction or exponent (multiples: with a fraction, no exponent).
    if lo is None and hi is None:
        alts.append(value_set(tr.terms.add("number", FRAC, None, ptr)) if step else tr.cls(("all", "frac")))
    elif hi is None and lo == 0:
        alts.append(value_set(tr.terms.add("number", FRAC_POS if lo_x else FRAC_NONNEG, None, ptr)))
    else:  # no exponent under bounds (a sound narrowing); the bounds exact, as decimals
        pattern = frac_range_regex(_decimal(lo), lo_x, _decimal(hi), hi_x)
        if pattern is not None:
            alts.append(value_set(tr.terms.add("number", pattern, None, ptr)))
    return alts


def int_range_regex(lo: Optional[int], hi: Optional[int]) -> str:
    """Regex for the decimal integers (json.dumps spelling) in [lo, hi]; None is unbounded."""
    parts = []
    if lo is None or lo < 0:  # negative part: -m for m in [max(1, -hi), -lo]
        m_lo = 1 if hi is None or hi >= 0 else -hi
        m_hi = None if lo is None else -lo
        if m_hi is None or m_lo <= m_hi:
            parts.append("-" + _nonneg_range(m_lo, m_hi))
    if hi is None or hi >= 0:
        a = 0 if lo is None or lo < 0 else lo
        if hi is None or a <= hi:
            parts.append(_nonneg_range(a, hi))
    return "(?:" + "|".join(parts) + ")"


def _decimal(bound: Optional[float]) -> Optional[Decimal]:
    """A bound as the decimal it is written as (a float's shortest repr: 0.01, not 0.01000000000000000020816...)."""
    return None if bound is None else Decimal(repr(bound) if isinstance(bound, float) else bound)


def frac_range_regex(lo: Optional[Decimal], lo_x: bool, hi: Optional[Decimal], hi_x: bool) -> Optional[str]:
    """Regex for the numbers written with a fraction and no exponent (-?I.F) in the interval from lo to hi
    (None unbounded; *_x exclusive); None if there is none."""
    parts = []
    if hi is None or hi > 0 or (hi == 0 and not hi_x):  # values >= 0
        at_lo = lo is not None and lo >= 0
        parts.append(_frac_magnitude(lo if at_lo else Decimal(0), lo_x and at_lo, hi, hi_x))
    if lo is None or lo < 0 or (lo == 0 and not lo_x):  # values <= 0, as -magnitude
        at_hi = hi is not None and hi <= 0
        m = _frac_magnitude(-hi if at_hi else Decimal(0), hi_x and at_hi, None if lo is None else -lo, lo_x)
        parts.append(None if m is None else "-" + m)
    parts = [p for p in parts if p is not None]
    return "(?:" + "|".join(parts) + ")" if parts else None


def _frac_magnitude(a: Decimal, a_x: bool, b: Optional[Decimal], b_x: bool) -> Optional[str]:
    """I.F with a <= I.F <= b (bounds >= 0, *_x exclusive): integer parts strictly between the bounds' take
    any fraction; at a bound's integer part, the fraction digits are compared with the bound's."""
    if b is not None and (a > b or a == b and (a_x or b_x)):
        return None
    (a_int, a_frac), (b_int, b_frac) = _split(a), _split(b) if b is not None else (None, None)
    parts = []
    if b_int is None or a_int + 1 <= b_int - 1:
        parts.append(_nonneg_range(a_int + 1, None if b_int is None else b_int - 1) + r"\.[0-9]+")
    same = b_int == a_int
    at_a = _frac_between(a_frac, a_x, b_frac if same else None, b_x and same, False)
    if at_a is not None:
        parts.append(f"{a_int}\\.{at_a}")
    if b_int is not None and not same:
        at_b = _frac_between(None, False, b_frac, b_x, False)
        if at_b is not None:
            parts.append(f"{b_int}\\.{at_b}")
    return "(?:" + "|".join(parts) + ")" if parts else None


def _split(value: Decimal) -> tuple[int, str]:
    """A non-negative decimal's integer part and fraction digits, without trailing zeros."""
    text = format(value, "f")
    whole, _, frac = text.partition(".")
    return int(whole), frac.rstrip("0")


@lru_cache(maxsize=4096)
def _frac_between(lo: Optional[str], lo_x: bool, hi: Optional[str], hi_x: bool, may_be_empty: bool) -> Optional[str]:
    """Regex for the digit strings F (nonempty unless may_be_empty) with lo <= 0.F <= hi, the bounds given by
    their digits without trailing zeros ("" is 0; None unbounded; *_x exclusive); None if there are none.
    By the first digit: one below the bound's first digit leaves that bound behind, the same digit keeps
    comparing with the bound's rest, one above it is out; each bound's digits are used up in turn."""
    if lo == "" and not lo_x:
        lo = None  # F >= 0 always
    if hi == "" and hi_x or lo is not None and hi is not None and (lo > hi or lo == hi and (lo_x or hi_x)):
        return None  # F < 0, or an empty interval (digit strings without trailing zeros compare as values)
    if lo is None and hi is None:
        return "[0-9]*" if may_be_empty else "[0-9]+"
    if lo == "" and hi is None:  # F > 0: some nonzero digit
        return "[0-9]*[1-9][0-9]*"
    if hi == "":  # F <= 0: zeros only (lo is None here)
        return "0*" if may_be_empty else "0+"
    empty_ok = may_be_empty and lo is None  # F = "" is 0, which lies below any lo left (lo != "" non-strict)
    by_rest: dict[Optional[str], list[int]] = {}
    for d in range(10):
        if lo is not None and lo != "" and d < int(lo[0]) or hi is not None and d > int(hi[0]):
            continue
        if lo == "":  # F > 0: met by a nonzero digit, else still to meet
            lo_rest = "" if d == 0 else None
        else:
            lo_rest = lo[1:] if lo is not None and d == int(lo[0]) else None
        hi_rest = hi[1:] if hi is not None and d == int(hi[0]) else None
        rest = _frac_between(lo_rest, lo_x, hi_rest, hi_x, True)
        if rest is not None:
            by_rest.setdefault(rest, []).append(d)
    alts = [_digit_class(ds) + rest for rest, ds in by_rest.items()]
    if not alts:
        return "" if empty_ok else None
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    return f"(?:{body})?" if empty_ok else body


def _digit_class(digits: list[int]) -> str:
    if len(digits) == 1:
        return str(digits[0])
    runs, start = [], digits[0]
    for prev, d in zip(digits, digits[1:] + [None]):
        if d is None or d != prev + 1:
            runs.append(f"{start}-{prev}" if prev - start > 1 else "".join(map(str, range(start, prev + 1))))
            start = d
    return "[" + "".join(runs) + "]"


def _nonneg_range(lo: int, hi: Optional[int]) -> str:
    parts = []
    if lo == 0:
        parts.append("0")
        lo = 1
        if hi == 0:
            return "0"
    n_lo = len(str(lo))
    n_hi = len(str(hi)) if hi is not None else n_lo
    for n in range(n_lo, n_hi + 1):
        a = max(lo, 10 ** (n - 1))
        b = (10 ** n - 1) if hi is None else min(hi, 10 ** n - 1)
        if a <= b:
            parts.append(digit_range(a, b, n, 10, decimal_class))
    if hi is None:
        parts.append(f"[1-9][0-9]{{{n_lo},}}")
    return "(?:" + "|".join(parts) + ")"
