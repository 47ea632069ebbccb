"""String formats: the ones enforced, as exact regexes in raw syntax (strings.py turns them into JSON
spellings like a pattern), and the names the drafts define (one of those not enforced is refused; any
other name asserts nothing)."""

from __future__ import annotations

_YEAR = r"[0-9]{4}"
_LEAP = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_DATE = (rf"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
         rf"|02-(?:0[1-9]|1[0-9]|2[0-8]))|{_LEAP}-02-29)")
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_UNRESERVED_SUB = r"[A-Za-z0-9._~!$&'()*+,;=-]"  # RFC 3986 unreserved and sub-delims
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:{_UNRESERVED_SUB}|{_PCT}|[:@])"
_H16 = "[0-9a-fA-F]{1,4}"


def _ipv6() -> str:
    """RFC 4291 text forms: eight groups, or k groups, "::", m groups with k + m <= 7; the last two groups
    may be a dotted IPv4 address (then k + m <= 5)."""
    def groups(n: int) -> str:  # n groups joined by ':'
        return "" if n == 0 else _H16 + (f"(?::{_H16}){{{n - 1}}}" if n > 1 else "")

    def upto(n: int) -> str:  # 0..n groups joined by ':'
        return "" if n == 0 else f"(?:{_H16}(?::{_H16}){{0,{n - 1}}})?"

    alts = [groups(8), f"(?:{_H16}:){{6}}{_IPV4}"]
    alts += [groups(k) + "::" + upto(7 - k) for k in range(8)]
    alts += [groups(k) + "::" + f"(?:{_H16}:){{0,{5 - k}}}" + _IPV4 for k in range(6)]
    return "(?:" + "|".join(alts) + ")"




def _hostname() -> str:
    """RFC 1123 host names, a subset: NR-LDH labels only (RFC 5890: no "--" in the 3rd and 4th places, so
    no A-labels, whose Punycode validity no automaton checks), of at most 3 labels of up to 63 characters,
    4 of up to 62 or 8 of up to 30, so that the whole stays within RFC 1034's 253 without counting every
    character."""
    def label(most: int) -> str:  # 1..most characters; no hyphen first or last, nor third and fourth
        a, h = "[A-Za-z0-9]", "[A-Za-z0-9-]"
        return rf"{a}(?:{a}|{h}{a}|{h}(?:{a}|-){a}|{h}(?:{a}{h}|-{a}){h}{{0,{most - 5}}}{a})?"

    return "(?:" + "|".join(rf"{label(most)}(?:\.{label(most)}){{0,{count - 1}}}"
                            for count, most in ((3, 63), (4, 62), (8, 30))) + ")"


def _uri() -> str:
    """RFC 3986 URIs (absolute, with an optional fragment): scheme ":" then "//" authority and a path of
    "/" segments, or a path without authority (absolute, rootless or empty). A subset: the host is a
    reg-name (which an IPv4 address also is), never an IP literal in brackets: the IPv6 automaton would
    make every schema with a uri ten times slower to build (its intersections with other strings)."""
    userinfo = rf"(?:{_UNRESERVED_SUB}|{_PCT}|:)*"
    host = rf"(?:{_UNRESERVED_SUB}|{_PCT})*"
    authority = rf"(?:{userinfo}@)?{host}(?::[0-9]*)?"
    segment_nz = f"{_PCHAR}+"
    hier = rf"(?://{authority}(?:/{_PCHAR}*)*|/(?:{segment_nz}(?:/{_PCHAR}*)*)?|{segment_nz}(?:/{_PCHAR}*)*)?"
    return rf"[A-Za-z][A-Za-z0-9+.-]*:{hier}(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"


FORMATS = {
    "date": _DATE,
    "time": _TIME,
    "date-time": rf"{_DATE}[Tt]{_TIME}",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "ipv4": _IPV4,
    "ipv6": _ipv6(),
    "hostname": _hostname(),
    # A subset of RFC 5321 addresses: dot-atom local part, domain of two or more labels.
    "email": rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})+",
    "uri": _uri(),
}


# Formats the drafts define (2020-12, and the draft 3/4 names): one of these we cannot enforce is refused.
# Any other format name is unknown to the specification, which makes it pass every instance.
SPECIFIED_FORMATS = {"date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname",
                     "ipv4", "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template",
                     "json-pointer", "relative-json-pointer", "regex", "host-name", "ip-address", "color",
                     "style", "phone", "utc-millisec"}
