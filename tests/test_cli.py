"""The command line as scripts use it: its JSON contracts, exit statuses and forward mode against a real server."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from lift_lsp.spec.ir import IR
from lift_lsp.spec.reverse import extract_file
from tests.fault_server import FaultServer, ok

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def lift(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lift_lsp.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_ir_json_contract() -> None:
    done = lift("ir", "--json", str(EXAMPLES / "stubs.py"))
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["function"], r["line"]) for r in rows] == [
        ("running_max", 4),
        ("clamp", 21),
        ("count_vowels", 36),
        ("parse_port", 40),
    ]
    for row in rows:
        assert set(row) == {"function", "line", "ir"}
        ir = IR.model_validate(row["ir"])
        assert ir.signature.name == row["function"]
    clamp = IR.model_validate(rows[1]["ir"])
    assert [c.expr for c in clamp.postconditions] == ["lo <= result <= hi"]
    assert clamp.examples[0].args == {"x": "5", "lo": "0", "hi": "3"} and clamp.examples[0].result == "3"


def test_ir_text_and_unknown_function() -> None:
    done = lift("ir", str(EXAMPLES / "stubs.py"), "--function", "clamp")
    assert done.returncode == 0
    assert "clamp (line 21)" in done.stdout and "pre: lo <= hi" in done.stdout and "running_max" not in done.stdout
    missing = lift("ir", str(EXAMPLES / "stubs.py"), "--function", "nope")
    assert missing.returncode == 1 and "no function named 'nope'" in missing.stderr


def test_generate_without_backend_says_how_to_configure() -> None:
    done = lift("generate", str(EXAMPLES / "stubs.py"), "--function", "clamp")
    assert done.returncode == 2 and "--url URL --model M" in done.stderr


def test_serve_model_and_bench_are_subcommands_whose_flags_their_help_shows() -> None:
    serve_model = lift("serve-model", "--help")
    assert serve_model.returncode == 0 and serve_model.stdout.startswith("usage: lift-lsp serve-model")
    for flag in ("--model", "--host", "--port", "--device", "--dtype", "--threads", "--engine", "--request-timeout"):
        assert flag in serve_model.stdout
    bench = lift("bench", "--help")
    assert bench.returncode == 0 and bench.stdout.startswith("usage: lift-lsp bench")
    for flag in ("--url", "--model", "--limit", "--ir-source", "--jobs", "--out"):
        assert flag in bench.stdout
    missing = lift("serve-model", "--port", "0")
    assert missing.returncode == 2 and "lift-lsp serve-model: error: the following arguments are required: --model" in (
        missing.stderr
    )
    assert "--url" in lift("bench").stderr  # required by the subcommand's own parser


def test_generate_diff_against_serve_model(model_url: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "one.py"
    text = 'def combine(a: int, b: int) -> int:\n    """Combine two numbers into one number."""\n    ...\n'
    source.write_text(text)
    args = ["--url", model_url, "--model", str(tiny_model_dir), "--constraint-format", "ebnf", "--seed", "3"]
    args += ["--temperature", "1", "--no-cache", "--max-tokens-ir", "8000", "--body-syntax", "subset"]
    done = lift("generate", str(source), "--function", "combine", *args, "--write")
    assert done.returncode == 0, done.stderr
    new = source.read_text()
    ast.parse(new)
    assert new.startswith('def combine(a: int, b: int) -> int:\n    """Combine two numbers into one number."""\n')
    assert "    ...\n" not in new


HALVE = 'def halve(x):\n    """Half of x, rounded down.\n\n    >>> halve(9)\n    4\n    """\n'


def test_generate_resolve_holes_accepts_the_suggested_types(tmp_path: Path) -> None:
    source = tmp_path / "halve.py"
    source.write_text(HALVE)
    refused = lift("generate", str(source), "--function", "halve", "--url", "http://127.0.0.1:9/v1", "--model", "m")
    assert refused.returncode == 1 and "unresolved holes" in refused.stderr and "--resolve-holes" in refused.stderr
    ir = extract_file(HALVE, function="halve", types=False)[0].ir.model_copy(update={"holes": []})
    with FaultServer() as model:
        model.script(ok(ir.model_dump_json()), ok(json.dumps({"body": "return x // 2"})))
        args = ["--url", model.url, "--model", "m", "--no-cache", "--timeout", "300", "--candidates", "1"]
        done = lift("generate", str(source), "--function", "halve", "--resolve-holes", *args, "--write")
        assert done.returncode == 0, done.stderr
        assert all(r.json["model"] == "m" for r in model.requests) and len(model.requests) == 2
    assert "resolved hole: the type of parameter `x` = int" in done.stderr
    assert source.read_text() == HALVE.replace("def halve(x):", "def halve(x: int) -> int:") + "    return x // 2\n"
