"""The on-disk cache of `lift-lsp check` (lift_lsp/check/file_cache.py), through the real CLI on a project in a
temporary folder: what a second run checks again, what an edit invalidates, entries that cannot be trusted, and the
interpreter and lift-lsp itself as part of the key."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from lift_lsp.check.file_cache import CheckSetup, FileCache
from lift_lsp.check.imports import ImportLine, ProjectSources, import_lines
from lift_lsp.check.workspace import check_paths
from lift_lsp.options import ContractOptions

MODULES = {
    "pkg/__init__.py": "",
    "pkg/base.py": '''
        def double(x):
            """Twice x.

            >>> double(2)
            4
            """
            return 2 * x
        ''',
    "pkg/user.py": '''
        from pkg.base import double


        def quad(x):
            """Four times x.

            >>> quad(2)
            8
            """
            return double(double(x))
        ''',
    "pkg/relative.py": '''
        from . import base


        def six(x):
            """Six times x.

            >>> six(1)
            6
            """
            return 3 * base.double(x)
        ''',
    "pkg/in_doctest.py": '''
        def half(x):
            """Half of x, wrongly documented.

            >>> from pkg.base import double
            >>> half(double(3))
            4
            """
            return x // 2
        ''',
    "pkg/alone.py": '''
        def inc(x):
            """x + 1.

            >>> inc(1)
            2
            """
            return x + 1
        ''',
}
IMPORTERS_OF_BASE = {"pkg/base.py", "pkg/user.py", "pkg/relative.py", "pkg/in_doctest.py"}
NO_CONTRACTS = ContractOptions(enabled=False)
STATS = re.compile(r"lift-lsp: (\d+) file\(s\) checked, (\d+) from the cache")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    report: list[dict[str, object]]

    @property
    def checked(self) -> set[str]:
        """The files checked (not answered from the cache), relative to the project."""
        return {str(entry["file"]).split("project/", 1)[1] for entry in self.report if not entry["from_cache"]}

    @property
    def counts(self) -> tuple[int, int]:
        found = STATS.search(self.stderr)
        assert found is not None, self.stderr
        return int(found.group(1)), int(found.group(2))

    def findings(self) -> list[object]:
        return [entry["findings"] for entry in self.report]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for name, text in MODULES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    (root / "pyproject.toml").write_text("")
    return root


def check(project: Path, cache: Path, *extra: str, prelude: str = "") -> Run:
    """The real CLI in a subprocess (`prelude`: Python run before it in that process)."""
    report = cache.parent / "report.json"
    argv = ["check", str(project), "--cache-dir", str(cache), "--report", str(report), *extra]
    launch = f"{prelude}\nimport sys\nfrom lift_lsp.cli import main\nsys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", launch, *argv], capture_output=True, text=True, timeout=300, cwd=project
    )
    return Run(done.returncode, done.stdout, done.stderr, json.loads(report.read_text()))


def entries(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.json"))


def test_a_second_run_checks_nothing_and_says_the_same(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = check(project, cache)
    assert first.counts == (len(MODULES), 0) and first.checked == set(MODULES)
    assert first.code == 1 and "LIFT001 [half]" in first.stdout  # the wrong example is an error
    assert len(entries(cache)) == len(MODULES)
    second = check(project, cache)
    assert second.counts == (0, len(MODULES)) and second.checked == set()
    assert (second.code, second.stdout) == (first.code, first.stdout)  # findings, totals, the Python line
    assert second.findings() == first.findings()


def test_an_edit_checks_again_only_the_file_and_its_importers(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    check(project, cache)
    with (project / "pkg/base.py").open("a") as file:
        file.write("\n\nLIMIT = 3\n")
    edited = check(project, cache)
    assert edited.checked == IMPORTERS_OF_BASE and edited.counts == (4, 2)
    (project / "pkg/alone.py").write_text((project / "pkg/alone.py").read_text().replace("2\n", "3\n", 1))
    alone = check(project, cache)
    assert alone.checked == {"pkg/alone.py"} and "LIFT001 [inc]" in alone.stdout
    (project / "pkg/__init__.py").write_text("VERSION = 1\n")  # every module of the package imports it first
    assert check(project, cache).checked == set(MODULES)
    assert len(entries(cache)) == len(MODULES)  # each file's entry overwritten, not one more per edit


def test_an_entry_that_cannot_be_trusted_is_ignored_with_a_note(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = check(project, cache)
    by_file = {json.loads(path.read_text())["file"].split("project/", 1)[1]: path for path in entries(cache)}
    base, user, alone, relative = (by_file[f"pkg/{name}.py"] for name in ("base", "user", "alone", "relative"))
    base.write_bytes(base.read_bytes()[:200])  # truncated
    user.write_text("not json at all")
    foreign = json.loads(alone.read_text())
    alone.write_text(relative.read_text())  # another file's entry in this file's place
    future = json.loads(relative.read_text()) | {"schema": 99}
    relative.write_text(json.dumps(future))
    second = check(project, cache)
    assert second.checked == {"pkg/base.py", "pkg/user.py", "pkg/alone.py", "pkg/relative.py"}
    notes = [line for line in second.stderr.splitlines() if "ignoring the check-cache entry" in line]
    assert len(notes) == 4, second.stderr
    assert any(str(base) in note and "not a valid entry" in note for note in notes)
    assert any(str(user) in note and "Invalid JSON" in note for note in notes)
    assert any(str(alone) in note and "relative.py's" in note for note in notes)
    assert any(str(relative) in note and "schema 99" in note for note in notes)
    assert second.findings() == first.findings() and second.code == first.code
    assert json.loads(alone.read_text())["report"] == foreign["report"]  # checked again, and rewritten
    assert check(project, cache).checked == set()


def _other_python() -> str | None:
    """A Python 3.9+ other than the one running the tests (another binary)."""
    own = os.path.realpath(sys.executable)
    for name in ["/usr/bin/python3", *(f"python3.{minor}" for minor in range(9, 15))]:
        found = shutil.which(name)
        if found and os.path.realpath(found) != own:
            return found
    return None


def test_a_changed_interpreter_or_installed_package_checks_every_file_again(project: Path, tmp_path: Path) -> None:
    other = _other_python()
    if other is None:
        pytest.skip("needs a second Python 3.9+ on this machine")
    cache = tmp_path / "cache"
    venv = project / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    first = check(project, cache)
    assert f"Python: {venv}/bin/python" in first.stdout and first.checked == set(MODULES)
    assert check(project, cache).checked == set()
    site = next((venv / "lib").glob("python3.*/site-packages"))
    (site / "newly_installed").mkdir()  # what installing a package does to the folder
    assert check(project, cache).checked == set(MODULES)
    subprocess.run([other, "-m", "venv", "--clear", "--without-pip", str(venv)], check=True)  # another Python
    again = check(project, cache)
    assert again.checked == set(MODULES) and f"Python: {venv}/bin/python" in again.stdout


def test_another_lift_lsp_version_checks_every_file_again(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    check(project, cache)
    assert check(project, cache).checked == set()
    bumped = check(project, cache, prelude="import lift_lsp; lift_lsp.__version__ = '999.0'")
    assert bumped.checked == set(MODULES)
    assert len(entries(cache)) == len(MODULES)
    assert check(project, cache, prelude="import lift_lsp; lift_lsp.__version__ = '999.0'").checked == set()


def test_options_that_change_results_are_part_of_the_key(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    check(project, cache)
    assert check(project, cache, "--isolate-files").checked == set(MODULES)
    assert check(project, cache, "--jobs", "1").checked == set()  # how many at once changes no result


def test_no_cache_checks_everything_and_keeps_nothing(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    check(project, cache)
    run = check(project, cache, "--no-cache")
    assert run.checked == set(MODULES) and run.counts == (len(MODULES), 0)
    (project / "pkg/alone.py").write_text("X = 1\n")
    check(project, tmp_path / "unused", "--no-cache")
    assert not (tmp_path / "unused").exists()


def test_a_result_that_hit_a_time_limit_is_not_kept(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "slow.py").write_text(
        'def spin():\n    """Never returns.\n\n    >>> spin()\n    """\n    while True:\n        pass\n'
    )
    cache = tmp_path / "cache"
    first = check(root, cache)
    assert "error LIFT004 [spin] `spin()` timed out after 2 s" in first.stdout, first.stdout
    assert entries(cache) == [] and check(root, cache).checked == {"slow.py"}


def test_the_editors_unsaved_text_is_keyed_by_that_text(project: Path, tmp_path: Path) -> None:
    """`check_paths` (what the editor's workspace check calls) with the documents the editor has open."""
    store = FileCache(tmp_path / "cache")
    alone = str(project / "pkg/alone.py")
    unsaved = (project / "pkg/alone.py").read_text().replace("2\n", "5\n", 1)

    def run(open_texts: dict[str, str]) -> dict[str, tuple[bool, list[str]]]:
        checked = check_paths(
            [str(project)], setup=CheckSetup(contracts=NO_CONTRACTS), store=store, open_texts=open_texts
        )
        reports = {item.file: (item.cached, item.report) for item in checked}
        return {
            file: (cached, [f.code for f in report.findings] if report else [])
            for file, (cached, report) in reports.items()
        }

    assert run({alone: unsaved})[alone] == (False, ["LIFT001"])
    assert run({alone: unsaved})[alone] == (True, ["LIFT001"])
    assert run({})[alone] == (False, [])  # the text on disk: another entry's inputs
    assert store.hits == len(MODULES) + len(MODULES) - 1  # every file on the second run, the others on the third


def test_import_lines_read_every_form() -> None:
    text = "from . import (\n    a,\n    b as c,\n)\nimport x.y as z, w\n"
    text += "    >>> from pkg.sub import thing\nfrom .. import q\n"
    assert import_lines(text) == [
        ImportLine(1, "", ("a", "b")),
        ImportLine(0, "x.y"),
        ImportLine(0, "w"),
        ImportLine(0, "pkg.sub", ("thing",)),
        ImportLine(2, "", ("q",)),
    ]


def test_dependencies_are_transitive_and_project_local(project: Path) -> None:
    (project / "pkg/top.py").write_text("import json\nfrom pkg import user\n")
    deps = ProjectSources().dependencies(str(project / "pkg/top.py"), (project / "pkg/top.py").read_text())
    assert [Path(path).name for path, _ in deps] == ["__init__.py", "base.py", "user.py"]


def test_notes_from_the_files_threads_are_told_one_at_a_time(tmp_path: Path) -> None:
    """Two threads that each find a corrupt entry: the second note starts only once the first is told (the command
    line prints each note as one line; two at once could share one)."""
    import threading

    from lift_lsp.check.file_cache import EntryKey

    events: list[str] = []
    first_started, release = threading.Event(), threading.Event()

    def note(message: str) -> None:
        events.append(f"start {message[-8:]}")
        if not first_started.is_set():
            first_started.set()
            release.wait(5)  # the other thread reaches its note meanwhile; only the lock holds it back
        events.append(f"end {message[-8:]}")

    store = FileCache(tmp_path, note)
    keys = [EntryKey(slot, "inputs") for slot in ("aa" * 32, "bb" * 32)]
    for key in keys:
        store.path_for(key).parent.mkdir(parents=True, exist_ok=True)
        store.path_for(key).write_text("not json")
    one = threading.Thread(target=store.get, args=(str(tmp_path / "one.py"), keys[0]))
    one.start()
    assert first_started.wait(30)
    two = threading.Thread(target=store.get, args=(str(tmp_path / "two.py"), keys[1]))
    two.start()
    two.join(0.5)
    release.set()
    one.join()
    two.join()
    assert len(events) == 4 and events[0].startswith("start") and events[1].startswith("end"), events
