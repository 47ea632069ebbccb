"""The README's main job with the real default model: `grammask generate PROMPT` prints one JSON object,
valid, about the prompt -- for the README's own prompt (as a process, exactly as a newcomer runs it) and
three more (in this process, with the command line's defaults)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import grammask as gm
from grammask import cli

README = Path(__file__).resolve().parents[1] / "README.md"

# prompt -> words of which the reply must name at least one (what "about the prompt" means here)
OTHER_PROMPTS = {
    "Give me a recipe for pancakes as JSON": ("pancake", "flour", "egg", "milk"),
    "List three planets with their diameters as JSON": ("earth", "mars", "jupiter", "venus", "saturn", "mercury"),
    "Describe a dog as JSON": ("dog", "breed", "bark", "puppy"),
}


def readme_main_command() -> list[str]:
    """The quick start's first command, after the set-up: `.venv/bin/grammask generate ... "PROMPT"`."""
    text = README.read_text(encoding="utf-8")
    m = re.search(r'^bash scripts/setup && \.venv/bin/grammask (generate[^\n]*)$', text, re.M)
    assert m, "the README's quick start has no main command"
    import shlex

    return shlex.split(m.group(1))


def one_json_object(stdout: str) -> dict:
    """stdout holds exactly one JSON object (and its line end)."""
    value = json.loads(stdout)  # raises on anything but one JSON value (whitespace around is allowed)
    assert isinstance(value, dict) and value, stdout
    return value


def mentions(value: dict, words) -> bool:
    text = json.dumps(value, ensure_ascii=False).lower()
    return any(w in text for w in words)


def test_readme_main_command_prints_one_json_object_about_the_prompt():
    args = readme_main_command()
    prompt = args[-1]
    assert args[0] == "generate" and "cat" in prompt.lower()
    res = subprocess.run([sys.executable, "-m", "grammask", *args], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    value = one_json_object(res.stdout)
    assert mentions(value, ("cat", "kitten", "feline", "meow", "whisker", "fur")), res.stdout
    assert "Traceback" not in res.stderr


@pytest.fixture(scope="module")
def model_and_tokenizer():
    return gm.load_model()


@pytest.mark.parametrize("prompt", sorted(OTHER_PROMPTS))
def test_cli_defaults_give_a_json_object_about_the_prompt(model_and_tokenizer, prompt):
    model, tok = model_and_tokenizer
    defaults = cli.build_parser().parse_args(["generate", prompt])
    text = gm.generate(model, tok, prompt, cli.load_grammar(defaults.grammar), max_new_tokens=defaults.max_new_tokens,
                       closing=defaults.close, repetition_penalty=defaults.repetition_penalty)
    value = one_json_object(text)
    assert mentions(value, OTHER_PROMPTS[prompt]), text


def test_generate_defaults_are_json_mode_closed_and_penalized():
    args = cli.build_parser().parse_args(["generate", "x"])
    assert args.grammar == "json_object" and args.close and args.repetition_penalty > 1
    assert not cli.build_parser().parse_args(["generate", "--no-close", "x"]).close
