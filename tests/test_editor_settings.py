"""The VS Code extension's settings are the server's settings: one list, checked from both sides.

`editor-clients/vscode/package.json` declares `lift.<key>` for every row of `settings_table()` (same default, same
JSON type, same enum and bounds) plus the client-only `lift.serverPath` and `lift.trace.server`. Its defaults, mapped
by the extension's own compiled `settings.js` (run with node), are options that `parse_options` takes without a
complaint and that equal the server's defaults.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import typing
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from pydantic.alias_generators import to_camel

from lift_lsp.options import Options, parse_options, settings_table

VSCODE = Path(__file__).resolve().parents[1] / "editor-clients" / "vscode"
CLIENT_ONLY = {"lift.serverPath", "lift.trace.server"}
JSON_TYPES: dict[str, Any] = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "Literal": "string",
    "int | None": ["integer", "null"],
    "list": "array",
}


def properties() -> dict[str, dict[str, Any]]:
    package = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    props: dict[str, dict[str, Any]] = package["contributes"]["configuration"]["properties"]
    return props


def fields() -> dict[str, Any]:
    """Every server setting's pydantic field, by dotted camelCase key."""
    out: dict[str, Any] = {}
    for section_name, section in Options.model_fields.items():
        section_type = section.annotation
        assert isinstance(section_type, type)
        for name, field in section_type.model_fields.items():
            out[f"{to_camel(section_name)}.{to_camel(name)}"] = field
    return out


def test_package_json_declares_exactly_the_server_settings_and_the_client_ones() -> None:
    assert set(properties()) == {f"lift.{key}" for key, _, _ in settings_table()} | CLIENT_ONLY


@pytest.mark.parametrize(("key", "type_name", "default"), settings_table(), ids=[row[0] for row in settings_table()])
def test_each_setting_matches_the_server(key: str, type_name: str, default: Any) -> None:
    prop = properties()[f"lift.{key}"]
    assert type_name in JSON_TYPES, f"no JSON type known for {type_name!r}: extend JSON_TYPES"
    assert prop["type"] == JSON_TYPES[type_name]
    assert prop["default"] == default
    assert isinstance(prop["default"], bool) == isinstance(default, bool)  # True == 1 in Python: check the kind too
    assert isinstance(prop["default"], str) == isinstance(default, str)
    assert prop.get("markdownDescription") or prop.get("description")
    field = fields()[key]
    if type_name == "Literal":
        assert prop["enum"] == list(typing.get_args(field.annotation))
    bounds: dict[str, Any] = {}
    for rule in field.metadata:
        if isinstance(rule, annotated_types.Ge):
            bounds["minimum"] = rule.ge
        elif isinstance(rule, annotated_types.Gt):
            bounds["exclusiveMinimum"] = rule.gt
        elif isinstance(rule, annotated_types.Le):
            bounds["maximum"] = rule.le
    assert {k: prop[k] for k in ("minimum", "exclusiveMinimum", "maximum") if k in prop} == bounds


def test_client_only_settings() -> None:
    props = properties()
    assert props["lift.serverPath"]["type"] == "string" and props["lift.serverPath"]["default"] == ""
    # vscode-languageclient reads `<client id>.trace.server`; the client id is "lift".
    assert props["lift.trace.server"]["enum"] == ["off", "messages", "verbose"]
    assert props["lift.trace.server"]["default"] == "off"


MAP_DEFAULTS = """
const s = require('./out/settings.js');
const props = require('./package.json').contributes.configuration.properties;
process.stdout.write(JSON.stringify(s.toInitializationOptions(s.serverSettingKeys(props), s.packageDefaults(props))));
"""


def test_package_defaults_through_the_extension_mapping_are_valid_server_options() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot run the extension's settings.js")
    if not (VSCODE / "out" / "settings.js").exists():
        pytest.skip("editor-clients/vscode/out/settings.js missing: run `npm ci && npm run compile` there first")
    done = subprocess.run([node, "-e", MAP_DEFAULTS], cwd=VSCODE, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    raw = json.loads(done.stdout)
    assert set(raw) == {to_camel(name) for name in Options.model_fields}
    options, problems = parse_options(raw)
    assert problems == []
    assert options == Options()
    # and the same mapping carries a changed value through to the server's options
    raw["backend"] |= {"kind": "modal", "constraintFormat": "ebnf"}
    options, problems = parse_options(raw)
    assert problems == [] and options.backend.kind == "modal" and options.backend.constraint_format == "ebnf"
