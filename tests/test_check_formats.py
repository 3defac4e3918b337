"""`lift-lsp check --format`: GitHub Actions workflow commands and SARIF 2.1.0 (validated against the official
schema), each read back and compared with the same run's `--json`; the exit statuses, through the real command."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import jsonschema
import pytest

from lift_lsp.check.findings import Code
from lift_lsp.check.output import RULES, github_data, github_property, line_span
from lift_lsp.cli import CHECK_EXIT_STATUS

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "tests" / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"

# One finding of each severity, and messages with the characters GitHub's commands must escape: `%` and line breaks
# (the expected output of `lines`); the folder's comma must be escaped in the `file=` property.
MODULE = '''def pct(x):
    """As a percentage.

    >>> pct(1)
    '100%'
    """
    return f"{x * 50}%"


def lines(n):
    """The numbers, one a line.

    >>> print(lines(2))
    1
    2
    """
    return "\\n".join(str(i) for i in range(n))


def scale(x, factor):
    """Scale x.

    :param x: the number
    :param y: gone
    """
    return x * factor


def inc(x: int) -> int:
    """One more.

    post: __return__ > x
    """
    return x + 1
'''
FILE = "dir,x/mod.py"
GOOD = 'def half(x):\n    """Half of x.\n\n    >>> half(4)\n    2\n    """\n    return x // 2\n'
BAD = GOOD.replace("    2\n", "    3\n")


def lift_check(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lift_lsp.cli", "check", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("formats")
    (folder / FILE).parent.mkdir()
    (folder / FILE).write_text(MODULE, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def as_json(project: Path) -> list[dict[str, object]]:
    run = lift_check(project, FILE, "--json")
    assert run.returncode == 1, run.stderr
    findings: list[dict[str, object]] = json.loads(run.stdout)
    assert {f["severity"] for f in findings} == {"error", "warning", "info"}, findings
    assert any("%" in str(f["message"]) for f in findings) and any("\n" in str(f["message"]) for f in findings)
    return findings


def expected_column(project: Path, line: object) -> int:
    """1-based column of the line's first non-blank character, read here from the file."""
    assert isinstance(line, int)
    text = (project / FILE).read_text(encoding="utf-8").split("\n")[line - 1]
    return len(text) - len(text.lstrip()) + 1


# ------------------------------------------------------------------------------------------------------ GitHub Actions


def test_github_escaping_follows_the_toolkit() -> None:
    assert github_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert github_data("a: b, c") == "a: b, c"  # the message keeps `:` and `,`
    assert github_property("a%: b,\nc") == "a%25%3A b%2C%0Ac"
    assert github_property("%3A") == "%253A"  # `%` first: an escape in the text is not taken for one


def unescape(text: str, *, property_value: bool) -> str:
    """GitHub's runner reading a command back: the inverse of `github_data` / `github_property`."""
    if property_value:
        text = text.replace("%3A", ":").replace("%2C", ",")
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


COMMAND = re.compile(r"::(?P<level>error|warning|notice) (?P<properties>[^:]*)::(?P<message>.*)")


def test_github_commands_carry_each_finding(project: Path, as_json: list[dict[str, object]]) -> None:
    run = lift_check(project, FILE, "--format", "github")
    assert run.returncode == 1, run.stderr
    out = run.stdout.splitlines()
    commands = [COMMAND.fullmatch(line) for line in out if line.startswith("::")]
    assert len(commands) == len(as_json) and all(commands)
    level = {"error": "error", "warning": "warning", "info": "notice"}
    for command, finding in zip(commands, as_json, strict=True):
        assert command is not None
        properties = dict(pair.split("=", 1) for pair in command["properties"].split(","))
        assert "%2C" in properties["file"]  # the folder's comma, escaped
        assert unescape(properties["file"], property_value=True) == finding["file"]
        assert properties["line"] == properties["endLine"] == str(finding["line"])
        assert properties["col"] == str(expected_column(project, finding["line"]))
        assert unescape(properties["title"], property_value=True) == f"{finding['code']} [{finding['function']}]"
        assert command["level"] == level[str(finding["severity"])]
        assert unescape(command["message"], property_value=False) == finding["message"]
        assert "\n" not in command["message"] and "\r" not in command["message"]
    assert out[len(commands)].startswith(f"{len(as_json)} finding(s), 2 error(s) in 1 file(s)")


def test_github_annotates_a_file_that_cannot_be_checked(tmp_path: Path) -> None:
    run = lift_check(tmp_path, "missing.py", "--format", "github")
    assert run.returncode == 2
    annotation = "::error file=missing.py,title=lift-lsp::cannot check: No such file or directory"
    assert run.stdout.splitlines()[0] == annotation
    assert "lift-lsp: cannot check missing.py" in run.stderr


# --------------------------------------------------------------------------------------------------------------- SARIF


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    data = SCHEMA.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SCHEMA_SHA256, "tests/fixtures/sarif/README.md says where it is from"
    schema = json.loads(data)
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def sarif_of(run: subprocess.CompletedProcess[str], validator: jsonschema.Draft4Validator) -> dict[str, object]:
    log: dict[str, object] = json.loads(run.stdout)  # stdout is the log alone
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(log)]
    assert errors == []
    return log


def test_the_schema_rejects_what_is_not_sarif(validator: jsonschema.Draft4Validator) -> None:
    """The validation can fail: a result whose level is not SARIF's, a region starting at column 0."""
    log = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": []}]}
    assert validator.is_valid(log)
    bad_level = {"message": {"text": "m"}, "level": "info"}
    assert not validator.is_valid(log | {"runs": [{"tool": {"driver": {"name": "x"}}, "results": [bad_level]}]})
    location = {"physicalLocation": {"artifactLocation": {"uri": "a.py"}, "region": {"startColumn": 0}}}
    bad_column = {"message": {"text": "m"}, "locations": [location]}
    assert not validator.is_valid(log | {"runs": [{"tool": {"driver": {"name": "x"}}, "results": [bad_column]}]})


def test_sarif_is_valid_and_carries_each_finding(
    project: Path, as_json: list[dict[str, object]], validator: jsonschema.Draft4Validator
) -> None:
    run = lift_check(project, FILE, "--format", "sarif")
    assert run.returncode == 1, run.stderr
    log = sarif_of(run, validator)
    assert log["version"] == "2.1.0"
    (only_run,) = log["runs"]  # type: ignore[misc]
    driver = only_run["tool"]["driver"]
    assert driver["name"] == "lift-lsp" and driver["version"]
    codes = [value for name, value in vars(Code).items() if name.isupper()]
    assert [rule["id"] for rule in driver["rules"]] == codes == list(RULES)
    assert only_run["invocations"] == [{"executionSuccessful": True, "toolExecutionNotifications": []}]
    assert only_run["originalUriBaseIds"]["SRCROOT"]["uri"] == project.resolve().as_uri() + "/"
    level = {"error": "error", "warning": "warning", "info": "note"}
    assert len(only_run["results"]) == len(as_json)
    for result, finding in zip(only_run["results"], as_json, strict=True):
        assert result["ruleId"] == finding["code"] and driver["rules"][result["ruleIndex"]]["id"] == finding["code"]
        assert result["level"] == level[str(finding["severity"])]
        assert result["message"]["text"] == finding["message"]
        (location,) = result["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        assert artifact["uriBaseId"] == "SRCROOT" and unquote(artifact["uri"]) == finding["file"]
        region = location["physicalLocation"]["region"]
        assert region["startLine"] == region["endLine"] == finding["line"]
        assert region["startColumn"] == expected_column(project, finding["line"])
        assert location["logicalLocations"] == [{"fullyQualifiedName": finding["function"]}]


def test_sarif_outside_the_current_folder_and_unreadable(tmp_path: Path, validator: jsonschema.Draft4Validator) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "bad.py").write_text(BAD, encoding="utf-8")
    here = tmp_path / "here"
    here.mkdir()
    run = lift_check(here, str(outside / "bad.py"), "missing.py", "--format", "sarif")
    assert run.returncode == 2
    log = sarif_of(run, validator)
    (only_run,) = log["runs"]  # type: ignore[misc]
    (result,) = only_run["results"]
    artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": (outside / "bad.py").as_uri()}  # absolute: not under the current folder
    (invocation,) = only_run["invocations"]
    assert invocation["executionSuccessful"] is False
    (notification,) = invocation["toolExecutionNotifications"]
    assert notification["level"] == "error" and "cannot check missing.py" in notification["message"]["text"]
    assert notification["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "missing.py",
        "uriBaseId": "SRCROOT",
    }


def test_line_span_starts_at_the_first_non_blank() -> None:
    assert (line_span(3, "    >>> f(1)").column, line_span(3, "    >>> f(1)").end_column) == (5, 13)
    assert (line_span(1, "").column, line_span(1, "").end_column) == (1, 1)


# --------------------------------------------------------------------------------------------------------- exit status


def documented_statuses() -> dict[int, str]:
    """`lift-lsp check --help`'s exit statuses: {status: meaning}, a meaning's wrapped lines joined."""
    statuses: dict[int, str] = {}
    for line in CHECK_EXIT_STATUS.splitlines()[1:]:
        found = re.fullmatch(r"  (\d)  (.*)", line)
        if found:
            statuses[int(found[1])] = found[2]
        else:
            last = max(statuses)
            statuses[last] += " " + line.strip()
    return statuses


def test_exit_statuses_are_in_help_and_readme() -> None:
    statuses = documented_statuses()
    assert sorted(statuses) == [0, 1, 2]
    shown = subprocess.run(
        [sys.executable, "-m", "lift_lsp.cli", "check", "--help"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and CHECK_EXIT_STATUS in shown.stdout
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for status, meaning in statuses.items():
        assert f"| `{status}` | {meaning} |" in readme, f"README's exit status table: {status}"


@pytest.mark.parametrize(
    ("files", "options", "status"),
    [
        ({"good.py": GOOD}, [], 0),
        ({"bad.py": BAD}, [], 1),
        ({"bad.py": BAD}, ["--format", "sarif"], 1),
        ({}, ["missing.py"], 2),  # cannot be checked
        ({"bad.py": BAD}, ["missing.py"], 2),  # 2 wins over 1
        ({"good.py": GOOD}, ["--format", "xml"], 2),  # usage
        ({"good.py": GOOD}, ["--format", "github", "--json"], 2),  # usage: two formats
    ],
)
def test_exit_status(tmp_path: Path, files: dict[str, str], options: list[str], status: int) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    run = lift_check(tmp_path, *files, *options)
    assert run.returncode == status, run.stdout + run.stderr
    if status == 1:
        assert "LIFT001" in run.stdout
    if "missing.py" in options:
        assert "cannot check missing.py" in run.stderr
