"""`grammask validate` as a whole process: what a pre-commit hook or an editor waits for.

For each built-in grammar, the wall time of `python -m grammask validate -g NAME FILE` on a small file:
once with an empty table cache (cold: the grammar's tables are built and stored), then --reps times with
the cache warm (best and median). Beside them, reference processes on the same interpreter: an empty
`python -c pass`, `python -c "import ast; ast.parse(...)"` (Python's own syntax check), and `import
numpy` (what the validator cannot do without: the C core and the cached tables are numpy arrays), also
with OPENBLAS_NUM_THREADS=1 as the validate command starts numpy. One call with many files (the
interpreter's own standard library, --files of them) gives the per-file cost. CPU time (user + system,
of the child) is printed too: unlike wall time it hardly moves when other processes share the machine.

Then where the time goes, measured inside the child: interpreter start-up and exit (wall minus what the
child measured), numpy import, the rest of `import grammask.cli`, reading the tables from the cache, and
validating. The children run with bytecode caching on, as an installed package does (a
PYTHONDONTWRITEBYTECODE in the environment is dropped for them); untimed runs warm it first.

    python -m bench.bench_validate                # about half a minute
    python -m bench.bench_validate --reps 9 --files 200
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILTINS = ("json", "python", "go")
TARGET_MS = 250

SMALL = {  # one small file per built-in: what a hook sees most
    "json": '{"name": "grammask", "version": [0, 1, 0], "tags": ["grammar", "llm"], "ok": true}\n',
    "python": "x = 1\n",
    "go": 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hello")\n}\n',
}
SUFFIX = {"json": ".json", "python": ".py", "go": ".go"}

# Run inside the child: the same work as the CLI, with the stages timed.
STAGES = """
import sys, time
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
import grammask.cli
t2 = time.perf_counter()
grammar = grammask.cli.load_grammar(sys.argv[1])
grammar.tables
t3 = time.perf_counter()
for name in sys.argv[2:]:
    with open(name, "rb") as f:
        grammar.validate(f.read())
t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""


def child_env(cache_dir: str) -> dict:
    env = dict(os.environ, GRAMMASK_CACHE_DIR=cache_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run(argv: list[str], env: dict) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, child CPU seconds, result)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), res


def repeated(argv: list[str], env: dict, reps: int, ok=(0,)) -> tuple[list[float], list[float], subprocess.CompletedProcess]:
    walls, cpus = [], []
    for _ in range(reps):
        wall, cpu, res = run(argv, env)
        if res.returncode not in ok:
            raise SystemExit(f"{' '.join(argv)}: exit {res.returncode}\n{res.stderr}")
        walls.append(wall)
        cpus.append(cpu)
    return walls, cpus, res


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f}"


def row(label: str, walls: list[float], cpus: list[float], cold: str = "") -> str:
    return (f"| {label} | {ms(min(walls))} | {ms(statistics.median(walls))} | {ms(statistics.median(cpus))} "
            f"| {cold} |")


def stdlib_files(n: int) -> list[str]:
    """The first n modules (by name) of the running interpreter's standard library: real code every
    machine with this Python has."""
    return [str(p) for p in sorted(Path(os.__file__).parent.glob("*.py"))[:n]]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="warm runs per row (default 5)")
    ap.add_argument("--files", type=int, default=100, help="standard-library files in the many-files call")
    args = ap.parse_args(argv)
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="grammask-bench-validate-") as tmp:
        tmp = Path(tmp)
        small = {}
        for name, text in SMALL.items():
            small[name] = tmp / f"small{SUFFIX[name]}"
            small[name].write_text(text)
        warm_env = child_env(str(tmp / "cache"))
        # Untimed: bytecode caches written, the page cache warm.
        for name in BUILTINS:
            run([py, "-m", "grammask", "validate", "-q", "-g", name, str(small[name])], child_env(""))
        lines = [f"`grammask validate` as a whole process, {sys.platform}, Python {sys.version.split()[0]}, "
                 f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; wall ms best / median of "
                 f"{args.reps}, CPU ms median (target: warm under {TARGET_MS} ms)", "",
                 "| process | best ms | median ms | CPU ms | cold (empty cache) ms |", "|---|---:|---:|---:|---:|"]
        refs = [("`python -c pass`", [py, "-c", "pass"]),
                ("`python -c \"import ast; ast.parse(...)\"`", [py, "-c", "import ast; ast.parse('x = 1')"]),
                ("`python -c \"import numpy\"`", [py, "-c", "import numpy"]),
                ("`OPENBLAS_NUM_THREADS=1 python -c \"import numpy\"` (the validate command's floor)",
                 [py, "-c", "import numpy"])]
        for label, cmd in refs:
            env = dict(warm_env, OPENBLAS_NUM_THREADS="1") if "OPENBLAS" in label else warm_env
            walls, cpus, _ = repeated(cmd, env, args.reps)
            lines.append(row(label, walls, cpus))
        for name in BUILTINS:
            cmd = [py, "-m", "grammask", "validate", "-q", "-g", name, str(small[name])]
            cold_wall, _, res = run(cmd, child_env(str(tmp / f"cold-{name}")))
            if res.returncode != 0:
                raise SystemExit(f"validate -g {name}: exit {res.returncode}\n{res.stderr}")
            walls, cpus, _ = repeated(cmd, warm_env, args.reps)
            lines.append(row(f"`grammask validate -g {name}` ({len(SMALL[name])} B)", walls, cpus, ms(cold_wall)))
        files = stdlib_files(args.files)
        size = sum(os.path.getsize(f) for f in files)
        walls, cpus, res = repeated([py, "-m", "grammask", "validate", "-q", "-g", "python", *files], warm_env,
                                    args.reps, ok=(0, 1))
        refused = len(res.stderr.splitlines())
        lines.append(row(f"`grammask validate -g python` on {len(files)} stdlib files ({size / 1e6:.1f} MB; "
                         f"{refused} refused)", walls, cpus))
        _, single_cpus, _ = repeated([py, "-m", "grammask", "validate", "-q", "-g", "python", str(small["python"])],
                                     warm_env, args.reps)
        per_file = (statistics.median(cpus) - statistics.median(single_cpus)) / len(files)
        lines += ["", f"Per file in one call: {per_file * 1e3:.1f} ms CPU ({size / len(files) / 1e3:.0f} kB "
                  f"average; the many-files call minus a one-file call, over {len(files)})", ""]

        lines += [f"Where the time goes, warm (ms, median of {args.reps}; start-up = the process's wall time "
                  "minus what it measured of itself)", "",
                  "| grammar | start-up | import numpy | rest of `import grammask.cli` | tables from the cache "
                  "| validate | whole process |", "|---|---:|---:|---:|---:|---:|---:|"]
        stages_env = dict(warm_env, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"))  # as the CLI
        for name in BUILTINS:
            samples = []
            for _ in range(args.reps):
                wall, _, res = run([py, "-c", STAGES, name, str(small[name])], stages_env)
                stages = [float(x) for x in res.stdout.split()]
                samples.append([wall - sum(stages), *stages, wall])
            med = [statistics.median(col) for col in zip(*samples)]
            lines.append(f"| {name} | " + " | ".join(f"{x * 1e3:.1f}" for x in med) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
