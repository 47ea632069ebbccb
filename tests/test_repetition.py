"""The content repetition penalty: content tokens already generated are penalized, the grammar's syntax and
the prompt are not, and the grammar's mask still decides what is allowed."""

from __future__ import annotations

import torch

import grammask as gm
from conftest import load_tokenizer, tokenizer_info
from grammask.decoding.repetition import ContentRepetitionPenalty, content_tokens


def token_id(tok, text: str) -> int:
    [t] = tok.encode(text, add_special_tokens=False)
    return t


def test_content_tokens_exempt_the_grammars_syntax_and_keywords():
    tok, info = load_tokenizer("smollm2"), tokenizer_info("smollm2")
    content = content_tokens(gm.Grammar.builtin("json"), info)
    for syntax in ('{', '":', '",', ' "', '\n   ', 'true', 'null', ']'):
        assert not content[token_id(tok, syntax)], syntax
    for word in ('cat', ' name', '1', 'é'):
        assert content[token_id(tok, word)], word
    assert not content[list(info.stop_token_ids)].any()
    # Python's keywords are its own: `return` is syntax there, a word in JSON.
    python = content_tokens(gm.Grammar.builtin("python"), info)
    assert not python[token_id(tok, "return")] and content[token_id(tok, "return")]
    assert content_tokens(None, info)[token_id(tok, "true")]  # no grammar: every word is content


def test_penalty_touches_generated_content_only():
    tok, info = load_tokenizer("smollm2"), tokenizer_info("smollm2")
    content = content_tokens(gm.Grammar.builtin("json"), info)
    cat, dog, brace, prompt_word = (token_id(tok, s) for s in ("cat", "dog", "{", "fish"))
    proc = ContentRepetitionPenalty(content, prompt_length=2, penalty=2.0)
    ids = torch.tensor([[prompt_word, prompt_word, brace, cat, dog]])
    scores = torch.zeros(1, info.vocab_size)
    scores[0, [cat, dog, brace, prompt_word]] = torch.tensor([4.0, -4.0, 4.0, 4.0])
    out = proc(ids, scores.clone())
    assert out[0, cat] == 2.0 and out[0, dog] == -8.0  # positive scores divided, negative multiplied
    assert out[0, brace] == 4.0 and out[0, prompt_word] == 4.0  # syntax and the prompt untouched
    assert torch.equal(out[0, 1000:1100], scores[0, 1000:1100])
    assert torch.equal(ContentRepetitionPenalty(content, 5, 2.0)(ids, scores.clone()), scores)  # nothing generated
