"""Settings: a bad key is reported by its name and dropped alone; settings that only work together adapt or are
reported; the message for a missing backend names only what is missing."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from lift_lsp.options import missing_backend_message, parse_options
from tests.lsp_util import SERVER, open_doc, start

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_one_bad_key_among_good_ones_keeps_the_good_ones_and_names_the_bad_one() -> None:
    options, problems = parse_options(
        {
            "backend": {"kind": "openai", "url": "http://127.0.0.1:30000/v1", "model": "m", "timeout": 30},
            "generation": {"candidates": 0, "repairs": 5, "temperature": 0.7},
            "sandbox": {"memoryMb": 2048},
        }
    )
    assert options.backend.kind == "openai" and options.backend.url == "http://127.0.0.1:30000/v1"
    assert options.backend.model == "m"
    assert options.generation.candidates == 4  # the invalid one: its default
    assert options.generation.repairs == 5 and options.generation.temperature == 0.7
    assert options.sandbox.memory_mb == 2048
    assert problems == [
        "unknown setting 'backend.timeout' ignored (did you mean 'timeoutS'?)",
        "invalid setting 'generation.candidates': Input should be greater than or equal to 1; using its default 4",
    ]


def test_a_section_that_is_not_an_object_and_an_unknown_section() -> None:
    options, problems = parse_options({"backend": "openai", "hover": {"enabled": False}, "hovr": {}})
    assert options.backend.kind == "none" and options.hover.enabled is False
    assert problems == [
        "settings 'backend' must be an object, got str; 'backend' uses its defaults",
        "unknown setting 'hovr' ignored (did you mean 'hover'?)",
    ]


def test_the_subset_grammar_switches_the_constraint_to_ebnf() -> None:
    options, problems = parse_options({"backend": {"kind": "openai"}, "generation": {"bodySyntax": "subset"}})
    assert problems == []
    assert options.generation.body_syntax == "subset" and options.backend.constraint_format == "ebnf"


def test_the_subset_grammar_against_an_explicit_json_schema_is_reported() -> None:
    options, problems = parse_options(
        {"backend": {"kind": "openai", "constraintFormat": "json_schema"}, "generation": {"bodySyntax": "subset"}}
    )
    assert options.generation.body_syntax == "free" and options.backend.constraint_format == "json_schema"
    assert problems == [
        'generation.bodySyntax "subset" needs backend.constraintFormat "ebnf" or "structured_outputs" '
        '(it is "json_schema"); generating without the subset grammar'
    ]


def test_the_local_backend_takes_the_subset_grammar_as_it_is() -> None:
    options, problems = parse_options({"backend": {"kind": "local"}, "generation": {"bodySyntax": "subset"}})
    assert problems == [] and options.generation.body_syntax == "subset"


def test_the_missing_backend_message_blames_only_what_is_missing() -> None:
    nothing = missing_backend_message(parse_options({})[0].backend)
    assert nothing == (
        "no backend is configured: set backend.kind (openai, modal or local), backend.url and backend.model"
    )
    url_only = missing_backend_message(parse_options({"backend": {"url": "http://h/v1", "model": "m"}})[0].backend)
    assert url_only == (
        "no valid backend.kind is set (backend.url and backend.model are); set it to openai, modal or local"
    )
    off = missing_backend_message(parse_options({"backend": {"kind": "none", "url": "http://h/v1"}})[0].backend)
    assert off == 'backend.kind is "none", which turns generation off; set it to openai, modal or local'


async def test_the_server_reports_the_bad_key_and_keeps_the_rest() -> None:
    """Through the real server: the bad key is named, the backend's other settings stay (so a generation fails
    on the endpoint, not on "no backend is configured")."""
    client = await SERVER.start()
    try:
        settings = {
            "backend": {"kind": "openai", "url": "http://127.0.0.1:9/v1", "model": "m", "timeout": 3, "maxRetries": 0},
            "generation": {"cache": False},
            "diagnostics": {"onOpen": False},
        }
        await start(client, options=settings)
        await client.wait_for_notification(types.WINDOW_SHOW_MESSAGE)
        assert [m.message for m in client.messages] == [
            "lift-lsp: unknown setting 'backend.timeout' ignored (did you mean 'timeoutS'?)"
        ]
        uri = open_doc(client, EXAMPLES / "stubs.py")
        outcome = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="lift.generate", arguments=[uri, "running_max", 1])
        )
        assert outcome["ok"] is False
        assert "no backend" not in outcome["message"] and "127.0.0.1:9" in outcome["message"], outcome
    finally:
        await client.shutdown_session()
