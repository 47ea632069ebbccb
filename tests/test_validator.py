"""Validator and CLI: JSONTestSuite conformance, error positions, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import grammask as gm
from conftest import json_parses, shared_corpus

# Implementation-defined cases, decided by the grammar (RFC 8259 as bytes): numbers of any size and
# escaped lone surrogates are grammatical; raw bytes must be well-formed UTF-8 and a BOM is not JSON.
IMPLEMENTATION_DEFINED = {
    "i_number_double_huge_neg_exp.json": True, "i_number_huge_exp.json": True,
    "i_number_neg_int_huge_exp.json": True, "i_number_pos_double_huge_exp.json": True,
    "i_number_real_neg_overflow.json": True, "i_number_real_pos_overflow.json": True,
    "i_number_real_underflow.json": True, "i_number_too_big_neg_int.json": True,
    "i_number_too_big_pos_int.json": True, "i_number_very_big_negative_int.json": True,
    "i_object_key_lone_2nd_surrogate.json": True, "i_string_1st_surrogate_but_2nd_missing.json": True,
    "i_string_1st_valid_surrogate_2nd_invalid.json": True, "i_string_UTF-16LE_with_BOM.json": False,
    "i_string_UTF-8_invalid_sequence.json": False, "i_string_UTF8_surrogate_U+D800.json": False,
    "i_string_incomplete_surrogate_and_escape_valid.json": True,
    "i_string_incomplete_surrogate_pair.json": True, "i_string_incomplete_surrogates_escape_valid.json": True,
    "i_string_invalid_lonely_surrogate.json": True, "i_string_invalid_surrogate.json": True,
    "i_string_invalid_utf-8.json": False, "i_string_inverted_surrogates_U+1D11E.json": True,
    "i_string_iso_latin_1.json": False, "i_string_lone_second_surrogate.json": True,
    "i_string_lone_utf8_continuation_byte.json": False, "i_string_not_in_unicode_range.json": False,
    "i_string_overlong_sequence_2_bytes.json": False, "i_string_overlong_sequence_6_bytes.json": False,
    "i_string_overlong_sequence_6_bytes_null.json": False, "i_string_truncated-utf-8.json": False,
    "i_string_utf16BE_no_BOM.json": False, "i_string_utf16LE_no_BOM.json": False,
    "i_structure_500_nested_arrays.json": True, "i_structure_UTF-8_BOM_empty_object.json": False,
}


@pytest.fixture(scope="module")
def json_grammar():
    return gm.Grammar.builtin("json")


def test_json_test_suite(json_grammar):
    files = sorted(shared_corpus("json", "JSONTestSuite", "test_parsing").iterdir())
    accepted = [f.name for f in files if f.name.startswith("y_")]
    rejected = [f.name for f in files if f.name.startswith("n_")]
    assert len(accepted) >= 90 and len(rejected) >= 180
    wrong = []
    for f in files:
        result = json_grammar.validate(f.read_bytes())
        if f.name.startswith("y_") and not result.ok:
            wrong.append((f.name, result.message))
        elif f.name.startswith("n_") and result.ok:
            wrong.append((f.name, "accepted"))
        elif f.name.startswith("i_") and result.ok != IMPLEMENTATION_DEFINED[f.name]:
            wrong.append((f.name, f"documented {IMPLEMENTATION_DEFINED[f.name]}, got {result.ok}"))
    assert not wrong


def test_agrees_with_json_loads_on_prefixes(json_grammar):
    docs = [{"a": [1, -2.5e+3, True, None, "x\\\"\u00e9\U0001F600"], "b": {}}, [0, 10, 1e-7], "s", 42]
    for doc in docs:
        for text in (json.dumps(doc, ensure_ascii=False), json.dumps(doc, indent=1)):
            for i in range(len(text) + 1):
                r = json_grammar.validate(text[:i])
                assert r.prefix_ok, (text[:i], r.message)
                assert r.ok == json_parses(text[:i]), text[:i]


@pytest.mark.parametrize("text,line,column,prefix_ok,fragment", [
    ('{"a" 1}', 1, 6, False, "expected ':'"),
    ('[1,\n  2,\n  ]', 3, 3, False, "unexpected ']'"),
    ('"abc', 1, 5, True, "inside STRING"),
    ('{"k": "\u00e9\u00e9", x}', 1, 13, False, "unexpected character 'x'"),
    ('[tru]', 1, 5, False, "in 'true'"),
    ('01', 1, 2, False, "expected end of input"),
    ('"a\x01"', 1, 3, False, "unexpected character"),
])
def test_error_positions(json_grammar, text, line, column, prefix_ok, fragment):
    r = json_grammar.validate(text)
    assert not r.ok and r.prefix_ok == prefix_ok
    assert (r.line, r.column) == (line, column), r.message
    assert fragment in r.message


def test_expected_terminals(json_grammar):
    r = json_grammar.validate('{"a": 1')
    assert r.prefix_ok and not r.ok
    assert set(r.expected) == {"','", "'}'"}


def test_bytes_and_invalid_utf8(json_grammar):
    assert json_grammar.validate('["\u00e9"]'.encode()).ok
    r = json_grammar.validate(b'["\xc3"]')
    assert not r.ok and not r.prefix_ok
    assert json_grammar.validate(b'["\xc3').prefix_ok  # a character cut in two can still be completed


def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "grammask", *args], capture_output=True, text=True,
                          input=stdin, timeout=120)


def test_cli_validate(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"a": [1, 2]}')
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": [1, 2}\n')
    ok = run_cli("validate", "-g", "json", str(good))
    assert ok.returncode == 0
    res = run_cli("validate", "-g", "json", str(good), str(bad))
    assert res.returncode == 1
    assert f"{bad}:1:12: error: unexpected '}}'" in res.stderr
    assert res.stdout == ""
    missing = run_cli("validate", "-g", "json", str(tmp_path / "nope.json"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
    unknown = run_cli("validate", "-g", "yaml", str(good))
    assert unknown.returncode == 2 and "unknown grammar 'yaml'" in unknown.stderr
    assert run_cli("validate", "-g", "json", "-", stdin="[1, 2]").returncode == 0


def test_cli_validate_lark_file(tmp_path):
    grammar = tmp_path / "pairs.lark"
    grammar.write_text('start: pair+\npair: WORD "=" INT ";"\n%import common.WORD\n%import common.INT\n'
                       '%import common.WS\n%ignore WS\n')
    data = tmp_path / "x.txt"
    data.write_text("a = 1; b = 22;\nc=3;")
    assert run_cli("validate", "-g", str(grammar), str(data)).returncode == 0
    data.write_text("a = 1; b 22;")
    res = run_cli("validate", "-g", str(grammar), str(data))
    assert res.returncode == 1 and ":1:10:" in res.stderr


def test_cli_help():
    res = run_cli("validate", "--help")
    assert res.returncode == 0 and "FILE:LINE:COLUMN" in res.stdout
