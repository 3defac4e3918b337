"""`.pre-commit-hooks.yaml` as a user's project takes it: the real pre-commit reads the hook from a clone of this
repository at a commit, installs it (core dependencies only) into its own environment under a temporary
PRE_COMMIT_HOME, and fails on a file whose example is wrong, naming the finding; passes once it is fixed. The
examples run in the project's `.venv`, not in pre-commit's environment for the hook."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD = 'def half(x):\n    """Half of x.\n\n    >>> half(4)\n    2\n    """\n    return x // 2\n'
BAD = 'def double(x):\n    """Twice x.\n\n    >>> double(2)\n    5\n    """\n    return 2 * x\n'
GIT = ["git", "-c", "user.name=lift-lsp tests", "-c", "user.email=tests@lift-lsp.invalid", "-c", "commit.gpgsign=false"]


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def snapshot_of_this_repository(into: Path) -> str:
    """This working tree's files (tracked, and untracked ones git does not ignore) committed in a repository of
    their own, as a user's clone at a release would be; its commit."""
    listed = git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, into / name)
    git(into, "init", "-q")
    git(into, "add", "-A")
    git(into, "commit", "-q", "-m", "snapshot")
    return git(into, "rev-parse", "HEAD")


def pre_commit(project: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PRE_COMMIT_HOME")}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
        cwd=project,
        env=env | {"PRE_COMMIT_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.mark.slow
def test_the_hook_fails_on_a_wrong_example_and_passes_once_fixed(tmp_path: Path) -> None:
    hook_repo = tmp_path / "lift-lsp"
    hook_repo.mkdir()
    rev = snapshot_of_this_repository(hook_repo)
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")
    config = f"repos:\n- repo: {hook_repo}\n  rev: {rev}\n  hooks:\n  - id: lift-lsp-check\n"
    (project / ".pre-commit-config.yaml").write_text(config, encoding="utf-8")
    (project / "good.py").write_text(GOOD, encoding="utf-8")
    (project / "bad.py").write_text(BAD, encoding="utf-8")
    (project / "notes.txt").write_text(">>> not python\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True, timeout=300)
    (project / ".gitignore").write_text(".venv/\n", encoding="utf-8")
    git(project, "add", "-A")
    home = tmp_path / "pre-commit-home"

    failed = pre_commit(project, home)
    out = failed.stdout + failed.stderr
    assert "An unexpected error has occurred" not in out and "CalledProcessError" not in out, out  # install failed
    assert failed.returncode == 1, out
    assert "lift-lsp check" in out and "Failed" in out and "- hook id: lift-lsp-check" in out, out
    assert "bad.py:4: error LIFT001 [double] `double(2)`: expected 5, got 4" in out, out
    assert "good.py:" not in out and "notes.txt" not in out, out
    assert "1 finding(s), 1 error(s) in 2 file(s)" in out, out  # the Python files only, in one call
    assert f"Python: {project / '.venv/bin/python'} ({project / '.venv'})" in out, out

    (environment,) = [p for p in home.glob("repo*/py_env-*") if p.is_dir()]
    installed = subprocess.run(
        [str(environment / "bin/python"), "-c", "import importlib.util as u; print(u.find_spec('pytest'), "
         "u.find_spec('torch'), u.find_spec('lift_lsp') is not None)"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert installed.stdout.split() == ["None", "None", "True"], installed.stderr  # core dependencies only

    (project / "bad.py").write_text(BAD.replace("    5\n", "    4\n"), encoding="utf-8")
    git(project, "add", "-A")
    passed = pre_commit(project, home)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "lift-lsp check" in passed.stdout and "Passed" in passed.stdout
