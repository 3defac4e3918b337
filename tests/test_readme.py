"""The README documents every setting and every diagnostic code the server has."""

from __future__ import annotations

from pathlib import Path

from lift_lsp.check.checks import Code
from lift_lsp.options import settings_markdown

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_settings_table_is_current() -> None:
    assert settings_markdown() in README, "regenerate the settings table: lift_lsp.options.settings_markdown()"


def test_every_diagnostic_code_is_documented() -> None:
    codes = [value for name, value in vars(Code).items() if name.isupper()]
    assert len(codes) == 16
    assert all(f"`{code}`" in README for code in codes)
