"""GrammaskLogitsProcessor driven the way vLLM's model runners drive it, without an engine.

V1 (vllm/v1/worker/gpu_input_batch.py, refresh_metadata + the sampler): update_state(BatchUpdate) with
removed / added / moved rows before each step, then apply(logits) on the persistent batch's rows; the
AddedRequest's output list is the runner's live list, appended to after each step.
V2 (vllm/v1/worker/gpu/sample/sampler.py): add_request(slot, params), then apply(logits, ctx) with
ctx.idx_mapping_np mapping batch rows to slots; tokens are read from the runner's all_token_ids
buffer between prompt_len and the sequence length.

Every masked row is checked against an independent matcher fed that request's tokens; rows of requests
without a grammar must come out bit-identical.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

vllm = pytest.importorskip("vllm", reason="vLLM is not installed in this environment (tests/test_vllm_engine.py "
                                          "runs this file in .venv/engines where scripts/setup installs it)")

import grammask as gm  # noqa: E402
from grammask.integrations import vllm as gm_vllm  # noqa: E402
from grammask.integrations.request_grammar import GrammarCache, parse_spec  # noqa: E402
from tests.conftest import BYTE_LEVEL, load_tokenizer, tokenizer_info  # noqa: E402
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality  # noqa: E402

SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"],
          "additionalProperties": False}
# Per request: its grammar (None: unconstrained) and the text it "generates", one token per step.
REQUESTS = {
    "json": ({"grammar": "json"}, '{"a": [1, 2.5, "x"], "b": null}'),
    "regex": ({"regex": "[0-9]{3}-[0-9]{4}"}, "555-0199"),
    "free": (None, "anything at all, no grammar here"),
    "python": ({"grammar": "python"}, "def f(x):\n    return x + 1\n"),
    "schema": ({"json_schema": json.dumps(SCHEMA)}, '{"id": 42}'),
    "lark": ({"grammar": 'start: "The answer is " NUMBER "."\nNUMBER: /[0-9]+/\n'}, "The answer is 12."),
}


class _Request:
    def __init__(self, name, tokenizer, info):
        spec, text = REQUESTS[name]
        self.name = name
        self.params = vllm.SamplingParams(max_tokens=64, extra_args={"grammask": spec} if spec else None)
        self.script = tokenizer.encode(text, add_special_tokens=False)
        self.outputs: list = []  # the engine's live list
        self.compiled = (gm.compile(gm_vllm._GRAMMARS.get(parse_spec(spec)), info) if spec else None)

    def step(self):
        if len(self.outputs) < len(self.script):
            self.outputs.append(self.script[len(self.outputs)])

    def expected_row(self, original_row):
        if self.compiled is None:
            return original_row
        m = self.compiled.matcher()
        for t in self.outputs:
            assert m.accept_token(t)
        allowed = torch.zeros(original_row.shape[0], dtype=torch.bool)
        allowed[torch.as_tensor(m.allowed_token_ids(), dtype=torch.long)] = True
        return torch.where(allowed, original_row, torch.tensor(float("-inf")))


@pytest.fixture(scope="module")
def setup():
    tokenizer = load_tokenizer(BYTE_LEVEL)
    info = tokenizer_info(BYTE_LEVEL)
    return tokenizer, info


def _processor(info, v2_state=None):
    config = SimpleNamespace(speculative_config=None)
    proc = (gm_vllm.GrammaskLogitsProcessor(config, v2_state) if v2_state is not None
            else gm_vllm.GrammaskLogitsProcessor(config, torch.device("cpu"), False))
    # The engine tables normally come from the engine's model config; here from the test tokenizer.
    proc._tables = gm_vllm._EngineTables.from_tokenizer_info(info)
    return proc


def _check_rows(proc, batch, info, apply):
    """batch: row -> _Request. Applies the processor to random logits and checks every row."""
    rng = torch.Generator().manual_seed(len(batch))
    logits = torch.randn(len(batch), info.vocab_size, generator=rng)
    original = logits.clone()
    out = apply(logits)
    assert out is logits or torch.equal(out, logits)
    for row, req in batch.items():
        want = req.expected_row(original[row])
        assert torch.equal(out[row], want), f"row {row} ({req.name}, {len(req.outputs)} tokens in) wrong mask"
        if req.compiled is None:
            assert torch.equal(out[row], original[row])


def _run_v1(proc, batch, info, update):
    proc.update_state(update)
    _check_rows(proc, batch, info, proc.apply)
    for req in batch.values():
        req.step()


def test_v1_batch_changes_keep_each_matcher_on_its_request(setup):
    tokenizer, info = setup
    reqs = {name: _Request(name, tokenizer, info) for name in REQUESTS}
    proc = _processor(info)
    assert proc.is_argmax_invariant() is False
    add = lambda i, r: (i, r.params, [1, 2, 3], r.outputs)  # noqa: E731

    batch = {0: reqs["json"], 1: reqs["regex"], 2: reqs["free"], 3: reqs["python"]}
    _run_v1(proc, batch, info, BatchUpdate(4, removed=[], added=[add(i, r) for i, r in batch.items()], moved=[]))
    for _ in range(3):
        _run_v1(proc, batch, info, None)  # no batch change: tokens keep arriving
    # Swap rows 0 and 3.
    batch = {0: reqs["python"], 1: reqs["regex"], 2: reqs["free"], 3: reqs["json"]}
    _run_v1(proc, batch, info, BatchUpdate(4, removed=[], added=[], moved=[(0, 3, MoveDirectionality.SWAP)]))
    # Row 1 finishes and a new request is added into the freed row (vLLM fills freed rows first,
    # so the row is listed under added only).
    batch = {0: reqs["python"], 1: reqs["schema"], 2: reqs["free"], 3: reqs["json"]}
    _run_v1(proc, batch, info, BatchUpdate(4, removed=[], added=[add(1, reqs["schema"])], moved=[]))
    # Row 1 is aborted and nothing replaces it: the last row moves down into it (condense).
    batch = {0: reqs["python"], 1: reqs["json"], 2: reqs["free"]}
    _run_v1(proc, batch, info, BatchUpdate(3, removed=[1], added=[],
                                           moved=[(3, 1, MoveDirectionality.UNIDIRECTIONAL)]))
    # Python (row 0) is preempted; the unconstrained request moves into its row.
    batch = {0: reqs["free"], 1: reqs["json"]}
    _run_v1(proc, batch, info, BatchUpdate(2, removed=[0], added=[],
                                           moved=[(2, 0, MoveDirectionality.UNIDIRECTIONAL)]))
    assert sorted(proc._rows) == [1]
    _run_v1(proc, batch, info, None)
    # Python resumes with the outputs it had (a fresh matcher replays them); lark joins.
    batch = {0: reqs["free"], 1: reqs["json"], 2: reqs["python"], 3: reqs["lark"]}
    _run_v1(proc, batch, info, BatchUpdate(4, removed=[], added=[add(2, reqs["python"]), add(3, reqs["lark"])],
                                           moved=[]))
    for _ in range(40):
        _run_v1(proc, batch, info, None)
    for name in ("json", "python", "lark"):
        assert len(reqs[name].outputs) == len(reqs[name].script)  # every script ran to its end, masked


def test_v2_slots_and_rows(setup):
    tokenizer, info = setup
    reqs = {name: _Request(name, tokenizer, info) for name in REQUESTS}
    max_reqs, max_len = 8, 256
    prompt = [5, 6, 7]
    tokens = torch.zeros(max_reqs, max_len, dtype=torch.int32)
    state = SimpleNamespace(prompt_len=SimpleNamespace(np=np.zeros(max_reqs, dtype=np.int32)),
                            all_token_ids=SimpleNamespace(gpu=tokens))
    proc = _processor(info, v2_state=state)
    slots = {}  # slot -> request

    def admit(slot, req):
        slots[slot] = req
        state.prompt_len.np[slot] = len(prompt)
        tokens[slot, :len(prompt)] = torch.tensor(prompt)
        tokens[slot, len(prompt):len(prompt) + len(req.outputs)] = torch.tensor(req.outputs, dtype=torch.int32)
        return proc.add_request(slot, req.params)

    def step(order):
        # Batch rows in `order` (slots); rows are reordered every step, as V2 does.
        ctx = SimpleNamespace(idx_mapping_np=np.array(order, dtype=np.int32),
                              seq_lens_upper_bound_np=np.array([len(prompt) + len(slots[s].outputs) for s in order]))
        _check_rows(proc, {row: slots[s] for row, s in enumerate(order)}, info, lambda lg: proc.apply(lg, ctx))
        for s in order:
            req = slots[s]
            req.step()
            tokens[s, len(prompt) + len(req.outputs) - 1] = req.outputs[-1] if req.outputs else 0

    assert admit(0, reqs["json"]) and admit(3, reqs["regex"]) and admit(5, reqs["python"])
    assert admit(6, reqs["free"]) is False
    step([0, 3, 5, 6])
    step([6, 5, 3, 0])
    step([3, 0, 6, 5])
    # Slot 3 is recycled for an unconstrained request: its old matcher must not mask the new one.
    reqs["free2"] = _Request("free", tokenizer, info)
    assert admit(3, reqs["free2"]) is False
    step([5, 3, 0, 6])
    # python is preempted and resumed in another slot with its partial output.
    del slots[5]
    assert admit(2, reqs["python"])
    for i in range(30):
        step([2, 0, 3, 6] if i % 2 else [6, 3, 0, 2])
    assert len(reqs["python"].outputs) == len(reqs["python"].script)


def test_a_token_outside_the_grammar_ends_the_request(setup):
    tokenizer, info = setup
    req = _Request("regex", tokenizer, info)
    proc = _processor(info)
    proc.update_state(BatchUpdate(1, removed=[], added=[(0, req.params, [1], req.outputs)], moved=[]))
    req.outputs.extend(tokenizer.encode("abc", add_special_tokens=False))  # forced past the mask
    logits = torch.zeros(1, info.vocab_size)
    proc.apply(logits)
    allowed = torch.nonzero(logits[0] == 0).flatten().tolist()
    assert allowed == sorted(info.stop_token_ids)


def test_validate_params_rejects_a_broken_request_with_the_grammar_error():
    from vllm.exceptions import VLLMValidationError

    def check(extra):
        gm_vllm.GrammaskLogitsProcessor.validate_params(vllm.SamplingParams(extra_args=extra))

    check(None)
    check({"other": 1})
    check({"grammask": {"regex": "[a-z]+"}})
    check({"grammask": json.dumps({"grammar": "json"})})  # the JSON-text form that vllm_xargs carries
    with pytest.raises(VLLMValidationError, match=r"<grammar>:1:9: .*Unclosed parenthesis"):
        check({"grammask": {"grammar": "start: ("}})
    with pytest.raises(VLLMValidationError, match="exactly one of"):
        check({"grammask": {"regex": "a", "grammar": "json"}})
    with pytest.raises(VLLMValidationError, match="unknown key"):
        check({"grammask": {"lark": "start: \"a\""}})
    with pytest.raises(VLLMValidationError, match="json_schema is not valid JSON"):
        check({"grammask": {"json_schema": "{not json"}})
    with pytest.raises(VLLMValidationError, match="unknown built-in|grammar"):
        check({"grammask": {"grammar": "pyhton"}})
    if not hasattr(gm.Grammar, "from_structural_tag"):
        with pytest.raises(VLLMValidationError, match="structural tags are not available"):
            check({"grammask": {"structural_tag": json.dumps({"structures": [], "triggers": []})}})


def test_tables_compiled_once_per_grammar_and_shared(setup):
    _, info = setup
    tables = gm_vllm._EngineTables.from_tokenizer_info(info, grammars=GrammarCache())
    a = parse_spec({"json_schema": json.dumps(SCHEMA)})
    b = parse_spec({"json_schema": json.loads(json.dumps(SCHEMA, indent=4))})
    assert a == b  # text or dict, spacing: one spec
    c1, c2 = tables.constraint(a), tables.constraint(b)
    assert tables.compiled.compiles == 1
    assert c1.matcher.compiled is c2.matcher.compiled
    # Shared tables, separate state: advancing one request leaves the other where it was.
    first = c1.matcher.allowed_token_ids()
    c1.feed(load_tokenizer(BYTE_LEVEL).encode('{"id"', add_special_tokens=False))
    assert np.array_equal(c2.matcher.allowed_token_ids(), first)
    assert not np.array_equal(c1.matcher.allowed_token_ids(), first)
