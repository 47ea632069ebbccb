"""Numbers: integers and fractions within bounds (minimum, maximum, exclusive either way; the range
regexes), and multipleOf (a step whose multiples are intersected with each terminal)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional

from ...fsm.multiples import checked_multiple_fsm, multiple_parts
from ..regex import decimal_class, digit_range
from .keywords import pointer, schema_error

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
            raise schema_error("the bounds leave no integer", ptr)
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
    else:
        # Non-integer bounds are rounded inward (a sound narrowing); no exponent under bounds.
        flo, fhi = (None if lo is None else math.ceil(lo)), (None if hi is None else math.floor(hi))
        pattern = frac_range_regex(flo, lo_x and flo == lo, fhi, hi_x and fhi == hi)
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


def frac_range_regex(lo: Optional[int], lo_x: bool, hi: Optional[int], hi_x: bool) -> Optional[str]:
    """Regex for the numbers written with a fraction and no exponent (-?I.F) in the interval from lo to hi
    (integers; None unbounded; *_x exclusive); None if there is none."""
    parts = []
    if hi is None or hi > 0 or (hi == 0 and not hi_x):  # values >= 0
        at_lo = lo is not None and lo >= 0
        parts.append(_frac_magnitude(lo if at_lo else 0, lo_x and at_lo, hi, hi_x))
    if lo is None or lo < 0 or (lo == 0 and not lo_x):  # values <= 0, as -magnitude
        at_hi = hi is not None and hi <= 0
        m = _frac_magnitude(-hi if at_hi else 0, hi_x and at_hi, None if lo is None else -lo, lo_x)
        parts.append(None if m is None else "-" + m)
    parts = [p for p in parts if p is not None]
    return "(?:" + "|".join(parts) + ")" if parts else None


def _frac_magnitude(a: int, a_x: bool, b: Optional[int], b_x: bool) -> Optional[str]:
    """I.F with a <= I.F <= b (bounds >= 0, *_x exclusive): a nonzero fraction needs a <= I < b; an all-zero
    fraction is the integer I itself."""
    parts = []
    if b is None or a <= b - 1:
        parts.append(_nonneg_range(a, None if b is None else b - 1) + r"\.[0-9]*[1-9][0-9]*")
    z_lo, z_hi = a + a_x, None if b is None else b - b_x
    if z_hi is None or z_lo <= z_hi:
        parts.append(_nonneg_range(z_lo, z_hi) + r"\.0+")
    return "(?:" + "|".join(parts) + ")" if parts else None


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
