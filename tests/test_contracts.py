"""Contracts: every postcondition checked by z3, Hypothesis and CrossHair in the sandbox, counterexamples replayed.

The corpus (tests/contracts_corpus/, also run by bench/contracts.py) holds 51 functions over int, float, str,
list, dict and in-place mutation; `BUGS` in each file names the buggy ones with a witness input. The labels are
first checked by an independent judge run in a subprocess (the witness breaks the contract; the correct functions
hold on a grid of edge inputs); then lift-lsp must flag exactly the buggy ones, each with a counterexample that the
judge confirms.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from lift_lsp.check.checks import check_document, check_text
from lift_lsp.check.contracts import hypothesis_engine
from lift_lsp.check.contracts.crosshair_engine import normal_form, parse_call
from lift_lsp.check.contracts.hypothesis_engine import code_constants, precondition_bounds
from lift_lsp.check.contracts.replay import Contract, build_contract, literal
from lift_lsp.check.contracts.runner import engine_path, mutable_arguments
from lift_lsp.check.findings import Code, Finding
from lift_lsp.check.sandbox import Call, SandboxLimits, run_calls
from lift_lsp.options import ContractOptions
from lift_lsp.spec.render import to_markdown
from lift_lsp.spec.reverse import function_ir, read_spec
from lift_lsp.spec.sites import find_sites
from tests.lsp_util import SERVER, hover, hover_text, open_doc, start

CORPUS = Path(__file__).resolve().parent / "contracts_corpus"
CATEGORIES = ("ints", "floats", "strs", "lists", "dicts", "mutation")
OPTIONS = ContractOptions(condition_timeout_s=2.0, file_timeout_s=1800)
"""The engines' CPU budgets as in the product; the file limit is only a ceiling against a hang."""

JUDGE = r"""
import copy, importlib.util, itertools, json, math, sys, types, typing

path, todo = sys.argv[1], json.loads(sys.argv[2])
spec = importlib.util.spec_from_file_location("corpus", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
EDGES = {
    int: [0, 1, -1, 2, -7, 10, 104729, 2**31, -(2**31), 10**20],
    float: [0.0, -0.0, 0.5, -1.5, 1.0, 0.1, 1e16, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan],
    str: ["", "a", "ab", "aa", "ba", "0", "ß", "hunter2", "abcdefghij"],
    list[int]: [[], [0], [0, 0], [1, 2, 3], [3, 1, 2, 1], [-5, 5], [2, 2, 1]],
    list[str]: [[], [""], ["a", "b", "a"]],
    dict[str, int]: [{}, {"a": 1}, {"a": 0, "b": 0}, {"a": -1, "b": 2}, {"admin": 3}],
}

def violated(fn, contract, args):
    # None when the call keeps the contract (or the inputs break a precondition), else what broke
    scope = {**vars(module), **args}
    if not all(eval(p, scope) for p in contract["pre"]):
        return None
    old = copy.deepcopy(args)
    try:
        value = fn(**args)
    except Exception as exc:
        return f"raised {type(exc).__name__}"
    scope = {**vars(module), **args, "result": value, "__old__": types.SimpleNamespace(**old)}
    for post in contract["post"]:
        try:
            if not eval(post, scope):
                return f"{post} is false"
        except Exception as exc:
            return f"{post} raised {type(exc).__name__}"
    if contract["mutable"] is not None:
        changed = [n for n in args if n not in contract["mutable"] and args[n] != old[n]]
        if changed:
            return f"changed {changed}"
    return None

verdicts = {}
for name, contract in todo.items():
    fn = getattr(module, name)
    if contract["inputs"] is not None:  # one call, its inputs as Python source (each argument its own object)
        args = {k: eval(v, vars(module)) for k, v in contract["inputs"].items()}
        verdicts[name] = violated(fn, contract, args)
        continue
    hints = typing.get_type_hints(fn)
    names = [n for n in hints if n != "return"]
    grid = itertools.product(*(EDGES[hints[n]] for n in names))
    verdicts[name] = next(
        (f"{dict(zip(names, values))}: {broken}" for values in grid
         if (broken := violated(fn, contract, {n: copy.deepcopy(v) for n, v in zip(names, values)}))), None)
print(json.dumps(verdicts))
"""


def _contracts(path: Path) -> dict[str, dict[str, Any]]:
    """Each function's contract as lift-lsp reads it: preconditions, postconditions, `post[...]`."""
    out: dict[str, dict[str, Any]] = {}
    for site in find_sites(path.read_text(encoding="utf-8")):
        doc = read_spec(site)
        out[site.name] = {
            "pre": [c.expr for c in doc.preconditions],
            "post": [c.expr for c in doc.postconditions],
            "mutable": mutable_arguments(site.spec_text or ""),
        }
    return out


def _bugs(path: Path) -> dict[str, dict[str, Any]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "BUGS")
    bugs: dict[str, dict[str, Any]] = ast.literal_eval(node.value)
    return bugs


def _judge(path: Path, todo: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    done = subprocess.run(
        [sys.executable, "-c", JUDGE, str(path), json.dumps(todo)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    verdicts: dict[str, str | None] = json.loads(done.stdout)
    return verdicts


def test_the_corpus_has_forty_functions_or_more_across_the_categories() -> None:
    counts = {category: len(_contracts(CORPUS / f"{category}.py")) for category in CATEGORIES}
    assert sum(counts.values()) >= 40 and all(n >= 6 for n in counts.values()), counts
    buggy = {category: len(_bugs(CORPUS / f"{category}.py")) for category in CATEGORIES}
    assert all(n >= 4 for n in buggy.values()), buggy


@pytest.mark.parametrize("category", CATEGORIES)
def test_the_labels_are_witnessed(category: str) -> None:
    """Each buggy function breaks its contract on its witness; each correct one holds on every edge input."""
    path = CORPUS / f"{category}.py"
    contracts, bugs = _contracts(path), _bugs(path)
    todo = {
        name: {**contract, "inputs": {k: repr(v) for k, v in bugs[name].items()} if name in bugs else None}
        for name, contract in contracts.items()
    }
    verdicts = _judge(path, todo)
    assert {name for name, broken in verdicts.items() if broken} == set(bugs), verdicts


@pytest.mark.slow
@pytest.mark.parametrize("category", CATEGORIES)
def test_every_buggy_function_is_flagged_with_a_replayed_counterexample(category: str) -> None:
    path = CORPUS / f"{category}.py"
    findings = check_text(path.read_text(encoding="utf-8"), str(path), contracts=OPTIONS)
    refuted = [f for f in findings if f.code == Code.CONTRACT_REFUTED]
    assert {f.function for f in refuted} == set(_bugs(path)), [f.message for f in findings]
    assert not [f for f in findings if f.code == Code.CONTRACT_UNCHECKED], [f.message for f in findings]
    contracts = _contracts(path)
    todo: dict[str, dict[str, Any]] = {}
    for finding in refuted:
        assert finding.severity == "error" and "replayed" in finding.message
        data = finding.data
        assert data is not None and set(data) == {"inputs", "call", "result", "raised", "condition"}
        assert (
            isinstance(data["inputs"], dict)
            and data["call"] == f"{finding.function}(" + ", ".join(f"{k}={v}" for k, v in data["inputs"].items()) + ")"
        )
        assert (data["result"] is None) != (data["raised"] is None) or data["raised"] is None
        todo[finding.function] = {**contracts[finding.function], "inputs": data["inputs"]}
    assert all(_judge(path, todo).values())  # the judge sees each counterexample break the contract too


def _check(source: str, **options: Any) -> list[Finding]:
    return check_text(textwrap.dedent(source), "t.py", contracts=ContractOptions(**options))


def test_ieee_rounding_bug_refuted_by_hypothesis_with_the_finding_data() -> None:
    (found,) = _check(
        '''
        import math


        def mean(a: float, b: float) -> float:
            """pre: math.isfinite(a) and math.isfinite(b)
            post: min(a, b) <= __return__ <= max(a, b)
            """
            return (a + b) / 2
        '''
    )
    assert found.code == Code.CONTRACT_REFUTED and found.line == 7  # the line of the postcondition
    assert "found by Hypothesis, replayed" in found.message and "which returns inf" in found.message
    assert found.data is not None and found.data["condition"] == "min(a, b) <= __return__ <= max(a, b)"
    assert found.data["result"] == "inf" and found.data["raised"] is None


def test_a_declared_exception_is_allowed_and_an_undeclared_one_is_an_error() -> None:
    findings = _check(
        '''
        def declared(x: int) -> int:
            """post: _ <= 10
            raises: ZeroDivisionError
            """
            return 10 // x


        def undeclared(x: int) -> int:
            """post: _ <= 10"""
            return 10 // x
        '''
    )
    refuted = [f for f in findings if f.code == Code.CONTRACT_REFUTED]
    assert [f.function for f in refuted] == ["undeclared"]
    assert refuted[0].data is not None and refuted[0].data["raised"] == "ZeroDivisionError"
    assert refuted[0].data["call"] == "undeclared(x=0)" and refuted[0].data["result"] is None


def test_not_checked_says_why_and_the_hover_shows_each_status() -> None:
    source = textwrap.dedent(
        '''
        def untyped(x):
            """post: _ is x"""
            return x


        def proved(x: int) -> int:
            """post: _ >= x"""
            return x + 1


        def tested(xs: list[int]) -> list[int]:
            """post: len(_) == len(xs)"""
            return sorted(xs)


        class Box:
            def get(self, x: int) -> int:
                """post: _ == x"""
                return x
        '''
    )
    report = check_document(source, "t.py", contracts=ContractOptions(condition_timeout_s=1.0))
    by_function = {f.function: f for f in report.findings}
    assert by_function["proved"].code == Code.CONTRACT_PROVED
    assert by_function["Box.get"].code == Code.CONTRACT_UNCHECKED
    assert "not checked" in by_function["Box.get"].message and "methods" in by_function["Box.get"].message
    assert "tested" not in by_function  # tested on N inputs is said on hover, not as a diagnostic
    sites = find_sites(source)
    statuses = {site.name: report.contracts.get(site.qualname) for site in sites}
    untyped = statuses["untyped"]
    assert untyped is not None and untyped.conditions[0].status == "confirmed"
    assert "Hypothesis did not run: parameter `x` has no type annotation" in untyped.conditions[0].detail
    tested = statuses["tested"]
    assert tested is not None and tested.conditions[0].status == "tested"
    assert "tested on" in tested.conditions[0].detail and "inputs by Hypothesis" in tested.conditions[0].detail
    site = next(s for s in sites if s.name == "tested")
    notes = {c.expr: c.detail for c in tested.conditions}
    hover = to_markdown(function_ir(site).ir, notes)
    assert f"- `len(_) == len(xs)` — _{tested.conditions[0].detail}_" in hover  # the condition as written


def test_a_project_python_other_than_lift_lsps_is_not_checked_with_the_reason() -> None:
    payload = {"action": "search", "function": "f", "pre": [], "post": ["result == 1"], "python": [2, 7],
               "engine_path": engine_path()}  # fmt: skip
    (outcome,) = run_calls(
        "def f(x: int) -> int:\n    return 1\n", [Call("f", "", command="contracts", payload=payload)], SandboxLimits()
    )
    assert outcome.status == "ok" and "is not lift-lsp's 2.7" in outcome.data["not_checked"]


def test_replay_judges_a_call_in_plain_python_in_the_sandbox() -> None:
    source = "def half(x: int) -> int:\n    if x == 3:\n        raise ValueError(x)\n    return x // 2\n"
    base = {"action": "replay", "function": "half", "posonly": [], "pre": ["x >= 0"], "post": ["result * 2 == x"],
            "mutable": None, "raises": ["ValueError"], "post_index": 0}  # fmt: skip
    cases = {"violated": "5", "held": "4", "allowed": "3", "rejected": "-1"}
    calls = [Call(want, "", command="contracts", payload={**base, "inputs": {"x": x}}) for want, x in cases.items()]
    outcomes = run_calls(source, calls, SandboxLimits())
    assert [o.data["status"] for o in outcomes] == list(cases)
    assert (
        outcomes[0].data["result"] == "2" and "postcondition `result * 2 == x` is false" in outcomes[0].data["detail"]
    )
    assert outcomes[2].data["raised"] == "ValueError"


def test_crosshair_messages_parse_back_into_inputs() -> None:
    message = "false when calling f(12345, y='a)b') (which returns 12345)"
    assert parse_call(message, "f", ["x", "y"]) == {"x": "12345", "y": "'a)b'"}
    assert parse_call('"x > 0" yields false when calling f([1, 2])', "f", ["xs"]) == {"xs": "[1, 2]"}
    assert parse_call("Not confirmed.", "f", ["x"]) is None
    assert normal_form("__return__ >= _") == normal_form("result>=result") == "result >= result"


def test_inputs_become_python_literals_that_read_back() -> None:
    assert literal(float("nan")) == "float('nan')" and literal(-float("inf")) == "-float('inf')"
    assert literal([1.5, float("inf")]) == "[1.5, float('inf')]" and literal((1,)) == "(1,)"
    assert literal({"a": {2, 3}}) == "{'a': {2, 3}}" and literal(set()) == "set()"
    assert literal(object()) is None


def test_preconditions_bound_the_drawn_numbers() -> None:
    bounds = precondition_bounds(["0.0 <= t <= 1.0 and abs(a) <= 1e300", "n > 2**31", "lo <= hi"], {"t", "a", "n"})
    assert bounds == {"t": (0.0, 1.0), "a": (-1e300, 1e300), "n": (2.0**31, float("inf"))}


def _contract(source: str, pre: list[str], post: list[str]) -> Contract:
    """The contract of `f` in `source`, as the sandbox worker builds it."""
    module = ModuleType("probe")
    exec(textwrap.dedent(source), module.__dict__)
    return build_contract(module, {"function": "f", "pre": pre, "post": post})


def test_the_constants_of_the_code_and_the_contract_are_collected_an_int_also_one_off() -> None:
    source = '''
        def f(x: int, s: str) -> int:
            """A docstring, which is no constant of the code."""
            if x == 104729 or s == "hunter2":
                return 7
            return sum(3 for c in s if c in "aeiou")
        '''
    found = code_constants(_contract(source, ["x != 2.5"], ["_ >= -(2**31)"]))
    assert {104728, 104729, 104730, 6, 7, 8, 2, 3, 4, -(2**31) - 1, -(2**31), -(2**31) + 1} == set(found.ints)
    assert set(found.strings) == {"hunter2", "aeiou"} and found.floats == (2.5,)


@pytest.mark.parametrize(
    ("source", "pre", "post"),
    [
        ("def f(x: int) -> int:\n    return -x if x == 104729 else abs(x)\n", [], "_ >= 0"),  # a constant of the code
        ("def f(n: int) -> int:\n    return int(n ** 0.5)\n", ["n >= 0"], "_ * _ <= n"),  # 2**64 - 1, a machine edge
        ("def f(s: str, p: str) -> str:\n    return s.lstrip(p)\n", [], "not s.startswith(p) or _ == s[len(p):]"),
    ],
    ids=["code-constant", "integer-edge", "one-letter-strings"],
)
def test_hypothesis_draws_the_inputs_that_reach_rare_branches_within_200_examples(
    source: str, pre: list[str], post: str
) -> None:
    """Hypothesis's own inputs alone take about 600 examples for the second and 700 for the third, and do not find
    the first in 3,000."""
    contract = _contract(source, pre, [post])
    verdict = hypothesis_engine.check(contract, hypothesis_engine.strategies(contract), 0, 200, cpu_s=60.0)
    assert verdict["status"] == "refuted", verdict


UNICODE_TEXT = r"""
from types import ModuleType
from hypothesis.internal import charmap
from lift_lsp.check.contracts import hypothesis_engine
from lift_lsp.check.contracts.replay import build_contract

def refuse(codec):
    raise AssertionError(f"built the table of {codec}")

charmap.intervals_from_codec = refuse
module = ModuleType("probe")
exec("def f(s: str) -> str:\n    return s.upper()\n", module.__dict__)
contract = build_contract(module, {"function": "f", "pre": [], "post": ["len(_) == len(s)"]})
print(hypothesis_engine.check(contract, hypothesis_engine.strategies(contract), 0, 200, cpu_s=60.0))
"""


def test_strings_are_drawn_without_building_hypothesis_s_table_of_the_utf_8_codec() -> None:
    """That table takes over a second to build in each sandbox worker, where Hypothesis keeps no cache of it (a fresh
    process: Hypothesis keeps the strategies it built, the default alphabet of `st.text()` among them)."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", UNICODE_TEXT], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "'status': 'refuted'" in done.stdout, done.stdout  # 'ß'.upper() == 'SS': non-ASCII text is drawn


def test_post_brackets_name_the_arguments_that_may_change() -> None:
    assert mutable_arguments("Sort.\n\n    post[xs, d.keys]: xs == sorted(__old__.xs)\n") == ["xs", "d"]
    assert mutable_arguments("post[]: _ == 1") == []
    assert mutable_arguments("post: _ == 1") is None


def test_readme_publishes_the_corpus_outcome_this_file_asserts() -> None:
    """README's contracts table: lift-lsp finds every planted bug of the corpus, with no false alarm."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    buggy = sum(len(_bugs(CORPUS / f"{category}.py")) for category in CATEGORIES)
    functions = sum(len(_contracts(CORPUS / f"{category}.py")) for category in CATEGORIES)
    assert f"| all ({buggy} / {functions}) | {buggy}, 0, " in readme
    assert f"the {functions} functions of `tests/contracts_corpus/`, {buggy} of them with a planted" in readme


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await start(
        lsp_client,
        options={
            "diagnostics": {"onOpen": False},
            "contracts": {"conditionTimeoutS": 1.0},
            "sandbox": {"trustAll": True},
        },
    )
    yield
    await lsp_client.shutdown_session()


async def test_the_server_reports_the_counterexample_and_the_hover_each_status(
    client: LanguageClient, tmp_path: Path
) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        'def dec(x: int) -> int:\n    """One less.\n\n    post: _ < x\n    post: _ >= 0\n    """\n    return x - 1\n'
    )
    uri = open_doc(client, path)
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    by_code = {d.code: d for d in client.diagnostics[uri]}
    refuted = by_code[Code.CONTRACT_REFUTED]
    assert refuted.range.start.line == 4 and "`_ >= 0` is false for `dec(x=" in refuted.message
    assert isinstance(refuted.data, dict) and refuted.data["condition"] == "_ >= 0"
    assert by_code[Code.CONTRACT_PROVED].range.start.line == 3
    value = hover_text(await hover(client, uri, 0, 5))
    assert "- `_ < x` — _proved for all inputs by z3_" in value  # each condition as written, with its status
    assert f"- `_ >= 0` — _refuted by `{refuted.data['call']}`" in value
    assert value.endswith("*2 postconditions: 1 proved, 1 refuted*")  # and the function's status in one line
