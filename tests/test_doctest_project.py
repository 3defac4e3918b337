"""Doctests on a real project layout, run as doctest runs them: in the project's own virtual environment (holding a
package lift-lsp's environment lacks), the module imported under its dotted name from a `src/` layout (relative
imports work), with the project's pytest `doctest_optionflags`. The verdicts are compared with the standard
library's doctest itself, run by the project's interpreter."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from lift_lsp.check.checks import check_document
from lift_lsp.check.example_runs import check_function_examples
from lift_lsp.check.findings import Code
from lift_lsp.check.project import find_interpreter, module_target
from lift_lsp.check.workspace import check_paths
from lift_lsp.lsp.server import CHECK_WORKSPACE_COMMAND
from lift_lsp.options import SandboxOptions
from lift_lsp.spec.reverse import read_spec
from lift_lsp.spec.sites import find_sites
from tests.lsp_util import SERVER, hover, open_doc, start

FILES = {
    "pyproject.toml": """
        [project]
        name = "pkg"

        [tool.pytest.ini_options]
        doctest_optionflags = "NORMALIZE_WHITESPACE ELLIPSIS"
        """,
    "src/pkg/__init__.py": '''
        """The package.

        >>> from pkg import double
        >>> double(4)
        8
        """

        from .core import double
        ''',
    "src/pkg/util.py": """
        def helper(x):
            return x + 1
        """,
    "src/pkg/core.py": '''
        """Core: relative imports and a dependency only the project's environment has."""

        import tinydep

        from .util import helper

        FACTOR = 2


        def double(x):
            """Twice x.

            >>> double(2)
            4
            >>> double(3)
            7
            """
            return FACTOR * x


        def bumped(x):
            """Uses the sibling module and the dependency.

            >>> values = [bumped(v) for v in range(3)]
            >>> values
            [3, 6, 9]
            >>> print(list(range(12)))
            [0, 1, 2, 3, 4,
             5, 6, 7, 8, 9, 10, 11]
            >>> bumped(10)  # doctest: +SKIP
            -1
            """
            return tinydep.triple(helper(x))


        def uses_missing(x):
            """Its body names something that does not exist.

            >>> uses_missing(1)
            1
            """
            return x + undefined_name


        class Counter:
            """Counts.

            >>> c = Counter()
            >>> c.add(2).add(3).total
            5
            """

            def __init__(self):
                self.total = 0

            def add(self, n):
                """Adds n.

                >>> Counter().add(4).total
                5
                >>> Counter().add(1)
                <pkg.core.Counter object at 0x...>
                """
                self.total += n
                return self
        ''',
    "src/pkg/broken.py": '''
        """Needs a package that is not installed."""

        import not_installed_anywhere


        def f():
            """F.

            >>> f()
            1
            """
            return 1
        ''',
}

REFERENCE = textwrap.dedent(
    """
    import doctest, importlib, json, sys
    sys.path.insert(0, sys.argv[1])
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    out = {}
    class Runner(doctest.DocTestRunner):
        def report_failure(self, o, test, example, got):
            out[self.name]["failed"].append(test.lineno + example.lineno + 1)
        def report_unexpected_exception(self, o, test, example, exc_info):
            out[self.name]["failed"].append(test.lineno + example.lineno + 1)
    for name in sys.argv[2:]:
        module = importlib.import_module(name)
        for test in doctest.DocTestFinder().find(module):
            if not test.examples:
                continue
            runner = Runner(optionflags=flags)
            runner.name = f"{module.__file__}:{test.name[len(name) + 1:] or '<module>'}"
            out[runner.name] = {"failed": []}
            result = runner.run(test, out=lambda s: None)
            out[runner.name]["ran"] = result.attempted
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True, timeout=120)
    (site,) = (root / ".venv" / "lib").glob("python3*/site-packages")
    (site / "tinydep").mkdir()
    (site / "tinydep" / "__init__.py").write_text("def triple(x):\n    return 3 * x\n")
    return root


def test_lift_lsp_lacks_the_projects_dependency() -> None:
    done = subprocess.run([sys.executable, "-c", "import tinydep"], capture_output=True, timeout=60)
    assert done.returncode != 0


def test_module_names_and_the_projects_python(project: Path) -> None:
    core = module_target(str(project / "src/pkg/core.py"))
    assert (core.name, core.root, core.is_package) == ("pkg.core", str(project / "src"), False)
    init = module_target(str(project / "src/pkg/__init__.py"))
    assert (init.name, init.is_package) == ("pkg", True)
    interpreter = find_interpreter(str(project / "src/pkg/core.py"))
    assert interpreter.python.path == str(project / ".venv/bin/python") and interpreter.is_project
    missing = find_interpreter(str(project / "src/pkg/core.py"), setting=str(project / "no-python"))
    assert missing.python.path == sys.executable and "does not exist" in missing.note


def test_a_relative_interpreter_setting_is_taken_from_the_workspace_or_the_current_folder(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = str(project / "src/pkg/core.py")
    from_workspace = find_interpreter(core, setting=".venv/bin/python", workspace_roots=[str(project)])
    assert from_workspace.python.path == str(project / ".venv/bin/python") and from_workspace.is_project
    monkeypatch.chdir(project)  # the command line: `lift-lsp check --python .venv/bin/python` in the project
    done = subprocess.run(
        [sys.executable, "-m", "lift_lsp.cli", "check", "--python", ".venv/bin/python", "src/pkg/util.py"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert f"Python: {project / '.venv/bin/python'} (python.interpreter)" in done.stdout, done.stdout + done.stderr


def test_check_agrees_with_doctest_run_by_the_projects_python(project: Path, tmp_path: Path) -> None:
    python = str(project / ".venv/bin/python")
    done = subprocess.run(
        [python, "-c", REFERENCE, str(project / "src"), "pkg", "pkg.core"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    reference = json.loads(done.stdout)
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "lift_lsp.cli", "check", str(project), "--report", str(report_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"Python: {python} ({project / '.venv'})" in done.stdout
    files = {Path(entry["file"]).name: entry for entry in json.loads(report_path.read_text())}
    assert set(files) == {"__init__.py", "util.py", "core.py", "broken.py"}
    for key, expected in reference.items():
        file, function = key.split(":")
        entry = files[Path(file).name]
        status = next(f for f in entry["functions"] if f["function"] == function)
        assert (status["ran"], status["failed"]) == (expected["ran"], len(expected["failed"])), key
        lines = [f["line"] for f in entry["findings"] if f["function"] == function and f["code"] < "LIFT005"]
        assert sorted(lines) == sorted(expected["failed"]), key
    assert {k.split(":")[1] for k in reference if reference[k]["failed"]} == {"double", "uses_missing", "Counter.add"}
    (wrong,) = [f for f in files["core.py"]["findings"] if f["function"] == "double"]
    assert wrong["message"] == "`double(3)`: expected 7, got 6"
    assert wrong["data"] == {"expected_range": [15, 4, 15, 5], "actual": "6"}
    (missing,) = [f for f in files["core.py"]["findings"] if f["function"] == "uses_missing"]
    assert missing["code"] == Code.EXAMPLE_UNEXPECTED_RAISE and "undefined_name" in missing["message"]
    (failed_import,) = files["broken.py"]["findings"]
    assert failed_import["code"] == Code.MODULE_FAILED and failed_import["line"] == 3
    assert "No module named 'not_installed_anywhere'" in failed_import["message"] and python in failed_import["message"]
    (could_not_run,) = files["broken.py"]["functions"]
    assert could_not_run["function"] == "f" and could_not_run["ran"] == 0
    assert "not_installed_anywhere" in could_not_run["reasons"][0]


def test_the_unsaved_buffer_is_what_runs(project: Path) -> None:
    path = project / "src/pkg/core.py"
    buffer = path.read_text().replace("    >>> double(3)\n    7\n", "    >>> double(3)\n    6\n")
    report = check_document(buffer, str(path))
    assert not [f for f in report.findings if f.function == "double"]
    assert report.statuses["double"].summary().startswith("2 examples ran: 2 passed, 0 failed; Python: ")
    assert report.statuses["Counter"].ran == 2  # a class docstring, found by doctest


def test_a_name_the_function_lacks_is_an_error_and_one_the_example_lacks_is_not(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """
        # spec: Adds up the numbers.
        # >>> total(values)
        # 6
        # >>> total([1, 2])
        # 3
        def total(xs):
            return sum(xs) + offset
        """
    )
    path = tmp_path / "m.py"
    path.write_text(source)
    report = check_document(source, str(path))
    (error,) = report.findings
    assert error.code == Code.EXAMPLE_UNEXPECTED_RAISE and "`total([1, 2])` raised NameError" in error.message
    status = report.statuses["total"]
    assert (status.ran, status.failed, status.not_run) == (1, 1, 1)
    assert "`total(values)` uses `values`, which the example does not define" in status.reasons
    site = next(s for s in find_sites(source) if s.name == "total")
    # forward mode validates a generated body with the same checks
    found = check_function_examples(source, str(path), site, read_spec(site), SandboxOptions())
    assert [f.code for f in found] == [Code.EXAMPLE_UNEXPECTED_RAISE]


@pytest.mark.skipif(shutil.which("pypy3") is None, reason="needs PyPy 3.9 (Debian's pypy3) to run the worker on 3.9")
def test_the_worker_runs_on_python_3_9(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text('def f(x):\n    """F.\n\n    >>> f(1)\n    3\n    """\n    return x + 1\n')
    pypy = find_interpreter(str(path), setting=str(shutil.which("pypy3")))
    assert pypy.python.version == (3, 9)
    report = check_document(path.read_text(), str(path), interpreter=pypy)
    assert [f.message for f in report.findings] == ["`f(1)`: expected 3, got 2"]


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, project: Path):  # type: ignore[no-untyped-def]
    await start(lsp_client, options={"diagnostics": {"onOpen": False}, "sandbox": {"trustAll": True}}, root=project)
    yield
    await lsp_client.shutdown_session()


async def test_workspace_check_with_progress_and_the_status_on_hover(client: LanguageClient, project: Path) -> None:
    core = project / "src/pkg/core.py"
    buffer = core.read_text().replace("    >>> double(3)\n    7\n", "    >>> double(3)\n    6\n")
    uri = open_doc(client, core, buffer)
    totals = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=CHECK_WORKSPACE_COMMAND, arguments=[])
    )
    assert totals["files"] == 4 and totals["errors"] == 2  # uses_missing and Counter.add; double fixed in the buffer
    (reports,) = client.progress_reports.values()
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and isinstance(reports[-1], types.WorkDoneProgressEnd)
    broken = (project / "src/pkg/broken.py").as_uri()
    (failed_import,) = client.diagnostics[broken]
    assert failed_import.code == Code.MODULE_FAILED and failed_import.range.start.line == 2
    assert {d.message.split("`")[1] for d in client.diagnostics[uri]} == {"uses_missing(1)", "Counter().add(4).total"}
    line = buffer.split("\n").index("def double(x):")
    found = await hover(client, uri, line, 5)
    assert found is not None and isinstance(found.contents, types.MarkupContent)
    assert "2 examples ran: 2 passed, 0 failed; Python: " in found.contents.value.replace("\\", "")


def test_forward_mode_compares_a_doctest_by_value_where_check_does_as_doctest(tmp_path: Path) -> None:
    """`lift-lsp check` agrees with doctest (`"21"` written for `'21'` fails); a generated body that returns the value
    the docstring states passes forward mode's validation (no right answer lost to the docstring's quoting)."""
    source = textwrap.dedent(
        '''
        def join(parts: list[str]) -> str:
            """Join the parts.

            >>> join(["2", "1"])
            "21"
            >>> join(["a", "b"]) == "ab"
            """
            return "".join(parts)
        '''
    )
    path = tmp_path / "m.py"
    path.write_text(source)
    checked = check_document(source, str(path))
    assert [f.code for f in checked.findings] == [Code.EXAMPLE_WRONG_RESULT, Code.EXAMPLE_WRONG_RESULT]
    site = next(s for s in find_sites(source) if s.name == "join")
    assert check_function_examples(source, str(path), site, read_spec(site), SandboxOptions()) == []
    wrong = source.replace('return "".join(parts)', 'return "-".join(parts)')
    found = check_function_examples(wrong, str(path), site, read_spec(site), SandboxOptions())
    assert [f.code for f in found] == [Code.EXAMPLE_WRONG_RESULT, Code.EXAMPLE_WRONG_RESULT]


def test_a_docstring_doctest_cannot_read_is_a_warning_and_the_others_still_run(tmp_path: Path) -> None:
    """doctest's parser refuses a docstring whose string holds a real newline (`python -m doctest` stops the whole
    module there); lift-lsp says so at that docstring, with doctest's words, and runs the other docstrings."""
    source = textwrap.dedent(
        '''
        def strip(text):
            """Strip.

            >>> strip("a\\nb")
            'ab'
            """
            return text.replace("\\n", "")


        def double(x):
            """Twice x.

            >>> double(2)
            5
            """
            return x * 2


        class Joiner:
            """Joins lines.

            >>> Joiner().join(["a", "b"])
            'a\\nb'
            """

            def join(self, lines):
                return "\\n".join(lines)
        '''
    )
    path = tmp_path / "m.py"
    path.write_text(source)
    doctest_run = subprocess.run([sys.executable, "-m", "doctest", str(path)], capture_output=True, text=True)
    assert doctest_run.returncode != 0 and "inconsistent leading whitespace" in doctest_run.stderr
    report = check_document(source, str(path))
    unreadable, wrong, unreadable_class = report.findings
    lines = source.split("\n")
    for finding, name, line in (
        (unreadable, "strip", '    """Strip.'),
        (unreadable_class, "Joiner", '    """Joins lines.'),
    ):
        assert finding.code == Code.MODULE_FAILED and finding.severity == "warning"
        assert finding.function == name and finding.line == lines.index(line) + 1
        assert "doctest cannot read the docstring" in finding.message
        assert "has inconsistent leading whitespace" in finding.message
    assert wrong.code == Code.EXAMPLE_WRONG_RESULT and wrong.function == "double"
    assert report.statuses["double"].failed == 1
    assert report.statuses["Joiner"].ran == 0 and "doctest cannot read" in report.statuses["Joiner"].reasons[0]


def test_forward_mode_checks_each_example_of_a_docstring_doctest_cannot_read_by_value(tmp_path: Path) -> None:
    """No right answer is lost to a docstring doctest cannot read: forward mode's validation runs each of its examples
    alone, by value, as lift-lsp reads them (the `\\n` as written); a wrong body still fails them."""
    source = textwrap.dedent(
        '''
        def strip(text: str) -> str:
            """Strip.

            >>> strip("a\\nb")
            'ab'
            >>> strip("c")
            'c'
            """
        '''
    )
    path = tmp_path / "m.py"
    right = source + '    return text.replace("\\n", "")\n'
    site = find_sites(right)[0]
    assert check_function_examples(right, str(path), site, read_spec(site), SandboxOptions()) == []
    wrong = source + "    return text\n"
    site = find_sites(wrong)[0]
    found = check_function_examples(wrong, str(path), site, read_spec(site), SandboxOptions())
    assert [(f.code, f.message.split(" [")[0]) for f in found] == [
        (Code.EXAMPLE_WRONG_RESULT, "`strip(\"a\\nb\")` returned 'a\\nb', expected 'ab'")
    ]


def test_a_project_check_starts_with_the_largest_files_and_reports_in_file_order(tmp_path: Path) -> None:
    sizes = {"a.py": 1, "b.py": 40, "c.py": 8}
    for name, lines in sizes.items():
        (tmp_path / name).write_text("".join(f"def f{i}(x: int) -> int:\n    return x\n" for i in range(lines)))
    done: list[str] = []
    checked = check_paths([str(tmp_path)], jobs=1, progress=lambda _n, _total, file: done.append(Path(file).name))
    assert done == ["b.py", "c.py", "a.py"]
    assert [Path(c.file).name for c in checked] == ["a.py", "b.py", "c.py"]
