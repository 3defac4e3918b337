"""The checked-in schemas and grammars are exactly what the models export, and they bound every string and list."""

from __future__ import annotations

from typing import Any

import pytest

from lift_lsp.generate.schemas import GRAMMARS_DIR, code_schema, exported, ir_schema


@pytest.mark.parametrize("name", sorted(exported()))
def test_checked_in_file_matches_the_models(name: str) -> None:
    on_disk = (GRAMMARS_DIR / name).read_text(encoding="utf-8")
    assert on_disk == exported()[name], f"grammars/{name} is stale: run `make schemas` and commit it"


def _unbounded(node: Any, path: str = "$") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        types = node.get("type")
        types = types if isinstance(types, list) else [types]
        if "string" in types and "maxLength" not in node and "enum" not in node and "const" not in node:
            found.append(path)
        if "array" in types and "maxItems" not in node:
            found.append(path)
        if "object" in types and isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            found.append(path)
        for key, value in node.items():
            found += _unbounded(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _unbounded(value, f"{path}[{index}]")
    return found


@pytest.mark.parametrize("schema", [ir_schema(), code_schema()], ids=["ir", "code"])
def test_every_string_list_and_map_is_bounded(schema: dict[str, Any]) -> None:
    assert _unbounded(schema) == []


def test_the_bound_check_notices_an_unbounded_string() -> None:
    assert _unbounded({"properties": {"s": {"type": "string"}}}) == ["$.properties.s"]
