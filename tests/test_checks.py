"""The on-save checks: each kind of finding, containment of bad examples, caching, the CLI and the LSP round trip."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from lift_lsp.check.checks import CheckCache, check_text
from lift_lsp.check.findings import Code, Finding
from lift_lsp.check.signature import contradicts
from tests.lsp_util import SERVER, open_doc, start

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _codes(source: str, **kwargs: object) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for finding in check_text(textwrap.dedent(source), "t.py", **kwargs):  # type: ignore[arg-type]
        found.setdefault(finding.code, []).append(finding)
    return found


def test_wrong_result_names_call_expected_and_actual_at_the_example_line() -> None:
    found = _codes(
        '''
        def add(a: int, b: int) -> int:
            """Sum.

            >>> add(1, 2)
            4
            """
            return a + b
        '''
    )
    (finding,) = found[Code.EXAMPLE_WRONG_RESULT]
    assert finding.severity == "error" and finding.line == 5
    assert finding.message == "`add(1, 2)`: expected 4, got 3"
    assert finding.data == {"expected_range": [5, 4, 5, 5], "actual": "3"}


def test_doctests_compare_text_as_doctest_does_and_prose_examples_compare_by_value() -> None:
    found = _codes(
        '''
        def half(x: int) -> float:
            """Half of x: half(4) == 2, and half(3) == 1.5 too.

            >>> half(2)
            1
            >>> half(5) # doctest: +ELLIPSIS
            2.5...
            """
            return x / 2
        '''
    )
    # doctest compares the text: 1.0 is not 1; the prose `half(4) == 2` holds by value; ELLIPSIS as directed
    (finding,) = [f for codes in found.values() for f in codes]
    assert finding.code == Code.EXAMPLE_WRONG_RESULT and finding.line == 5
    assert finding.message == "`half(2)`: expected 1, got 1.0"


def test_raises_documented_and_undocumented() -> None:
    found = _codes(
        '''
        def parse(text: str) -> int:
            """Parse.

            >>> parse("x")
            Traceback (most recent call last):
            KeyError: 'x'
            >>> parse("")
            0
            """
            return int(text)
        '''
    )
    assert "raised ValueError" in found[Code.EXAMPLE_MISSING_RAISE][0].message
    assert '`parse("")` raised ValueError' in found[Code.EXAMPLE_UNEXPECTED_RAISE][0].message


def test_contracts_on_examples() -> None:
    found = _codes(
        '''
        def dec(n: int) -> int:
            """One less.

            pre: n > 0
            post: __return__ >= 0

            >>> dec(0)
            -1
            """
            return n - 1
        '''
    )
    assert "precondition `n > 0` is false" in found[Code.PRECONDITION_FALSE][0].message
    assert "postcondition `result >= 0` is false for `dec(0)`" in found[Code.POSTCONDITION_FALSE][0].message


def test_parameters_types_and_impossible_raises() -> None:
    found = _codes(
        '''
        def scale(values: list[float], factor: str) -> list[float]:
            """Scale values.

            Args:
                values (list[float]): the numbers.
                factor (int): the factor.
                offset: added after scaling.

            Raises:
                ZeroDivisionError: never, really.
            """
            return [v * 2 for v in values]
        '''
    )
    assert "`offset` is documented but is not a parameter" in found[Code.PARAM_DOCUMENTED_ABSENT][0].message
    assert "`factor` is documented as `int` but annotated `str`" in found[Code.TYPE_CONTRADICTION][0].message
    assert "can never raise it" in found[Code.RAISE_IMPOSSIBLE][0].message
    assert contradicts("int", "float") is False and contradicts("List[int]", "list[int] | None") is False


def test_numpy_parameters_written_name_colon_type_are_documented_and_their_types_checked() -> None:
    found = _codes(
        '''
        def degree(G, nodes=None, weight: str = "weight"):
            """Degrees of the nodes.

            Parameters
            ----------
            G: NetworkX graph
                The graph.
            nodes: list or iterable (optional)
                The nodes to count.
            weight: int
                The edge attribute.
            """
            return G.degree(nodes, weight)
        '''
    )
    assert Code.PARAM_DOCUMENTED_ABSENT not in found and Code.PARAM_UNDOCUMENTED not in found, found
    (contradiction,) = found[Code.TYPE_CONTRADICTION]
    assert contradiction.message == "`weight` is documented as `int` but annotated `str`"


def test_unresolved_hole_in_code() -> None:
    found = _codes(
        '''
        def todo(x: int) -> int:
            """Not done."""
            y = x + 1
            ...
            return y
        '''
    )
    assert found[Code.HOLE_UNRESOLVED][0].line == 5


def test_looping_memory_and_recursion_are_contained_and_the_rest_is_checked() -> None:
    source = '''
        def spin(n: int) -> int:
            """Loops.

            >>> spin(1)
            1
            """
            while True:
                pass

        def hog(n: int) -> int:
            """Eats memory.

            >>> hog(1)
            1
            """
            return len(bytearray(10**10))

        def down(n: int) -> int:
            """Recurses.

            >>> down(1)
            1
            """
            return down(n + 1)

        def ask(n: int) -> str:
            """Reads stdin.

            >>> ask(1)
            'x'
            """
            return input()

        def fine(n: int) -> int:
            """Wrong on purpose.

            >>> fine(1)
            3
            """
            return n + 1
        '''
    began = time.monotonic()
    found = check_text(textwrap.dedent(source), "t.py")
    elapsed = time.monotonic() - began
    by_function = {f.function: f for f in found}
    assert "timed out after 2 s" in by_function["spin"].message
    assert "exceeded 512 MiB" in by_function["hog"].message
    assert "RecursionError" in by_function["down"].message
    assert "EOFError" in by_function["ask"].message
    assert by_function["fine"].message == "`fine(1)`: expected 3, got 2"
    assert elapsed < 20


def test_unchanged_functions_are_not_run_again() -> None:
    source = (EXAMPLES / "checked.py").read_text()
    cache = CheckCache()
    first = check_text(source, "checked.py", cache=cache)
    runs = cache.runs
    assert runs >= 4
    again = check_text(source, "checked.py", cache=cache)
    assert again == first and cache.runs == runs
    edited = source.replace("    return x\n\n\ndef slugify", "    return abs(x)\n\n\ndef slugify")
    assert edited != source
    check_text(edited, "checked.py", cache=cache)
    assert cache.runs == runs + 1  # only the edited function ran


def test_contract_counterexample_and_proof() -> None:
    found = _codes((EXAMPLES / "checked.py").read_text())
    (counter,) = found[Code.CONTRACT_REFUTED]
    assert counter.function == "wrong_abs" and counter.severity == "error"
    assert "wrong_abs(x=" in counter.message and "replayed" in counter.message
    assert counter.data is not None and counter.data["condition"] == "__return__ >= 0"
    assert any(f.function == "absolute" for f in found[Code.CONTRACT_PROVED])


def test_cli_check_json_and_exit_status(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lift_lsp.cli", "check", "--json", str(EXAMPLES / "checked.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    rows = json.loads(done.stdout)
    assert {"file", "function", "line", "code", "severity", "message"} == set(rows[0])
    assert any(r["code"] == Code.EXAMPLE_WRONG_RESULT and r["function"] == "slugify" for r in rows)
    clean = tmp_path / "clean.py"
    clean.write_text('def one() -> int:\n    """One.\n\n    >>> one()\n    1\n    """\n    return 1\n')
    done = subprocess.run([sys.executable, "-m", "lift_lsp.cli", "check", str(clean)], capture_output=True, timeout=120)
    assert done.returncode == 0


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await start(lsp_client, options={"diagnostics": {"onOpen": False}, "sandbox": {"trustAll": True}})
    yield
    await lsp_client.shutdown_session()


async def test_save_shows_then_clears_the_diagnostic(client: LanguageClient, tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    wrong = 'def sq(x: int) -> int:\n    """Square.\n\n    >>> sq(3)\n    6\n    """\n    return x * x\n'
    path.write_text(wrong)
    uri = open_doc(client, path)
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    (diagnostic,) = client.diagnostics[uri]
    assert diagnostic.source == "lift" and diagnostic.code == Code.EXAMPLE_WRONG_RESULT
    assert diagnostic.range.start.line == 3 and "expected 6" in diagnostic.message
    fixed_line = types.Range(start=types.Position(line=4, character=4), end=types.Position(line=4, character=5))
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangePartial(range=fixed_line, text="9")],
        )
    )
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert list(client.diagnostics[uri]) == []


def test_a_cached_wrong_example_moves_with_its_function_quick_fix_range_too() -> None:
    source = textwrap.dedent(
        '''
        def first(x):
            return x


        def sq(x):
            """Square.

            >>> sq(3)
            6
            """
            return x * x
        '''
    )
    cache = CheckCache()
    (before,) = check_text(source, "m.py", cache=cache)
    runs = cache.runs
    (after,) = check_text(source.replace("    return x\n", "    x = x\n    return x\n", 1), "m.py", cache=cache)
    assert cache.runs == runs + 1  # only `first` ran again
    assert after.line == before.line + 1 and before.data is not None and after.data is not None
    assert after.data["expected_range"] == [
        before.data["expected_range"][0] + 1,
        4,
        before.data["expected_range"][2] + 1,
        5,
    ]
