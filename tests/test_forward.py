"""Forward mode's own logic: assembling edits, validating candidates, repairing, and its error paths.

The scripted backend replays fixed answers: it stands in only for malformed output, failures and a first candidate
that fails its examples (the repair path), never for a result claimed as quality.
"""

from __future__ import annotations

import ast
import json
import textwrap

from lift_lsp.generate.backends.base import BackendError
from lift_lsp.generate.backends.scripted import ScriptedBackend
from lift_lsp.generate.forward import apply_edits, candidate_edits, fix, generate
from lift_lsp.options import GenerationOptions, SandboxOptions
from lift_lsp.spec.ir import CodeCandidate
from lift_lsp.spec.reverse import extract_file
from lift_lsp.spec.sites import find_sites

MODULE = textwrap.dedent(
    '''\
    """Numbers."""

    import math


    def double(n: int) -> int:
        """Twice n.

        >>> double(2)
        4
        >>> double(-3)
        -6
        """
        ...


    def keep(x: float) -> float:
        return math.floor(x)
    '''
)
OPTIONS = GenerationOptions(candidates=1, repairs=1, cache=False, ir_source="model")  # the IR step scripted too
FEEDBACK = OPTIONS.model_copy(update={"repair_prompt": "feedback"})  # repair rounds shown the checks that failed


def _ir_json(text: str = MODULE, name: str = "double") -> str:
    return json.dumps(extract_file(text, function=name, types=False)[0].ir.model_dump(mode="json"))


def _code(body: str, **extra: object) -> str:
    return json.dumps({"imports": [], "helpers": [], "body": body, **extra})


def _site(text: str, name: str):  # type: ignore[no-untyped-def]
    return next(s for s in find_sites(text) if s.qualname == name)


async def _run(  # type: ignore[no-untyped-def]
    script: list[object], text: str = MODULE, name: str = "double", options: GenerationOptions = OPTIONS
):
    backend = ScriptedBackend(script)  # type: ignore[arg-type]
    outcome = await generate(text, _site(text, name), backend, options, SandboxOptions(example_timeout_s=2))
    return outcome, backend


async def test_passing_candidate_replaces_only_the_stub_body() -> None:
    outcome, _ = await _run([_ir_json(), _code("return n * 2")])
    assert outcome.ok, outcome.message
    assert outcome.new_text == MODULE.replace("    ...\n", "    return n * 2\n")


async def test_a_repair_round_asks_the_first_request_again_by_default() -> None:
    outcome, backend = await _run([_ir_json(), _code("return n + 2"), _code("return 2 * n")])
    assert outcome.ok and outcome.attempts == 2
    assert backend.requests[2].messages == backend.requests[1].messages
    assert backend.requests[2].temperature == OPTIONS.temperature > 0
    assert "return 2 * n" in outcome.new_text


async def test_failing_candidate_is_repaired_with_the_error_fed_back() -> None:
    outcome, backend = await _run([_ir_json(), _code("return n + 2"), _code("return 2 * n")], options=FEEDBACK)
    assert outcome.ok and outcome.attempts == 2
    repair_prompt = backend.requests[2].messages[-1]["content"]
    assert "`double(2)`" not in repair_prompt and "`double(-3)`: expected -6, got -1" in repair_prompt
    assert "return 2 * n" in outcome.new_text


async def test_no_passing_candidate_leaves_a_message_with_the_last_error() -> None:
    outcome, _ = await _run([_ir_json(), _code("return n"), _code("return n +")])
    assert not outcome.ok and outcome.edits == []
    assert "no candidate passed after 1 repair round(s)" in outcome.message and "line" in outcome.message


async def test_error_paths_each_give_a_clear_message() -> None:
    cases = {
        "malformed IR": ([_ir_json()[:40]], "does not match the IR schema"),
        "schema-invalid IR": (['{"intent": 1}'], "does not match the IR schema"),
        "malformed code": ([_ir_json(), '{"body": ', '{"body": '], "does not match the code schema"),
        "timeout": ([BackendError("timeout", "no answer from http://x/v1 within 5 s")], "no answer from"),
        "refused": ([BackendError("refused", "the model refused: no")], "the model refused"),
        "unreachable": ([BackendError("unreachable", "cannot reach http://x/v1 (connection refused)")], "cannot reach"),
    }
    for name, (script, expected) in cases.items():
        outcome, _ = await _run(script)
        assert not outcome.ok and expected in outcome.message, (name, outcome.message)


async def test_holes_block_generation_until_resolved() -> None:
    text = 'def f(x):\n    """Halve it.\n\n    >>> f(4)\n    2\n    """\n'
    outcome, backend = await _run([], text=text, name="f")
    assert not outcome.ok and "unresolved holes" in outcome.message and "type-x" in outcome.message
    assert backend.requests == []  # the model is not asked


def test_imports_go_to_the_top_and_helpers_above_the_function() -> None:
    site = _site(MODULE, "double")
    code = CodeCandidate(imports=["import math", "import functools", "from typing import *"],
                         helpers=["def _twice(v):\n    return v + v"], body="return _twice(n)")  # fmt: skip
    new = apply_edits(MODULE, candidate_edits(MODULE, site, code))
    ast.parse(new)
    assert "import *" not in new  # a star import never enters the user's module
    assert new.count("import math") == 1 and new.index("import functools") < new.index("def _twice")
    assert new.index("def _twice") < new.index("def double") and "    return _twice(n)\n" in new
    assert new.endswith("def keep(x: float) -> float:\n    return math.floor(x)\n")


def test_one_line_stubs_and_methods() -> None:
    text = "class K:\n    def m(self, a: int) -> int: ...\n\n\ndef g(x: int) -> int: pass\n"
    for name, body in (("K.m", "return a"), ("g", "y = x\nreturn y")):
        site = _site(text, name)
        code = CodeCandidate(helpers=["def h(v):\n    return v"], body=body)
        new = apply_edits(text, candidate_edits(text, site, code))
        ast.parse(new)
        if name == "K.m":  # a method's helpers go inside its body, where the name resolves
            assert "    def m(self, a: int) -> int:\n        def h(v):\n            return v\n" in new
        else:
            assert new.endswith("def g(x: int) -> int:\n    y = x\n    return y\n")


async def test_undefined_names_are_caught_before_any_example_runs_and_fed_back() -> None:
    outcome, backend = await _run([_ir_json(), _code("return twice(n)"), _code("return 2 * n")], options=FEEDBACK)
    assert outcome.ok and outcome.attempts == 2
    assert outcome.errors == ["line 14: undefined name 'twice'"]  # pyflakes' message, not a NameError at run time
    assert "undefined name 'twice'" in backend.requests[2].messages[-1]["content"]


async def test_undefined_names_in_helpers_count_and_the_rest_of_the_file_does_not() -> None:
    text = MODULE.replace("        return math.floor(x)", "        return math.floor(x) + UNKNOWN")
    helper = json.dumps(
        {"imports": [], "helpers": ["def _twice(v):\n    return v * factor"], "body": "return _twice(n)"}
    )
    outcome, _ = await _run([_ir_json(text), helper, _code("return n * 2")], text=text)
    assert outcome.ok and outcome.attempts == 2  # `UNKNOWN` elsewhere in the file is not the candidate's fault
    assert outcome.errors == ["line 7: undefined name 'factor'"]  # in the helper, inserted above `double`


async def test_every_request_carries_the_backend_timeout() -> None:
    backend = ScriptedBackend([_ir_json(), _code("return n + 1"), _code("return n * 2")])
    site = _site(MODULE, "double")
    outcome = await generate(MODULE, site, backend, OPTIONS, SandboxOptions(), timeout_s=300)
    assert outcome.ok and len(backend.requests) == 3
    assert {r.timeout_s for r in backend.requests} == {300}


async def test_a_cold_start_is_reported_as_the_steps_progress() -> None:
    """The backend's own messages (an endpoint answering 503 while it loads its model) reach the user's progress."""
    from lift_lsp.generate.backends.openai import OpenAIBackend
    from tests.fault_server import FaultServer, ok, status

    reported: list[str] = []
    with FaultServer() as server:
        server.script(
            status(503, "loading", headers={"Retry-After": "0.05"}), ok(_ir_json()), ok(_code("return n * 2"))
        )
        backend = OpenAIBackend(server.url, "m", max_retries=0)
        try:
            outcome = await generate(
                MODULE, _site(MODULE, "double"), backend, OPTIONS, SandboxOptions(),
                progress=lambda message, _: reported.append(message),
            )  # fmt: skip
        finally:
            await backend.aclose()
    assert outcome.ok, outcome.message
    assert any(m.startswith("IR: the endpoint is starting: ") for m in reported), reported


async def test_a_docstring_after_leading_imports_is_a_spec() -> None:
    text = 'def floor_half(x: float) -> int:\n    import math\n    """Half, rounded down.\n\n'
    text += '    >>> floor_half(5)\n    2\n    """\n'
    site = _site(text, "floor_half")
    assert site.is_stub and site.docstring is not None and "Half, rounded down." in site.docstring
    outcome, _ = await _run([_ir_json(text, "floor_half"), _code("return math.floor(x / 2)")], text, "floor_half")
    assert outcome.ok, outcome.message
    assert outcome.new_text == text + "    return math.floor(x / 2)\n"


async def test_failures_say_what_kind_they_are() -> None:
    cases = {
        "invalid": [_ir_json()[:40]],
        "backend": [BackendError("timeout", "no answer")],
        "refused": [BackendError("refused", "the model refused: no")],
        "checks": [_ir_json(), _code("return n"), _code("return n + 1")],
    }
    for failure, script in cases.items():
        outcome, _ = await _run(script)
        assert not outcome.ok and outcome.failure == failure, (failure, outcome.message)
    outcome, _ = await _run([_ir_json(), '{"body": 3}', '{"body": '])
    assert outcome.failure == "invalid"  # no candidate matched the schema


BROKEN = MODULE.replace("    ...\n", "    return n + 2\n")


async def _fix(  # type: ignore[no-untyped-def]
    script: list[object], text: str = BROKEN, name: str = "double", options: GenerationOptions = OPTIONS
):
    backend = ScriptedBackend(script)  # type: ignore[arg-type]
    outcome = await fix(text, _site(text, name), backend, options, SandboxOptions(example_timeout_s=2))
    return outcome, backend


async def test_fix_sends_the_current_body_and_failing_checks_and_offers_a_passing_candidate() -> None:
    outcome, backend = await _fix([_code("return n * 3"), _code("return n * 2")], options=FEEDBACK)
    assert outcome.ok and outcome.attempts == 2, outcome.message
    assert outcome.new_text == MODULE.replace("    ...\n", "    return n * 2\n")
    prompt = backend.requests[0].messages[-1]["content"]
    assert "    return n + 2" in prompt  # the current body
    assert "`double(-3)`: expected -6, got -1" in prompt and "`double(2)`" not in prompt  # only what fails
    assert "`double(2)`: expected 4, got 6" in backend.requests[1].messages[-1]["content"]


async def test_fix_offers_nothing_unless_a_candidate_passes_and_says_so() -> None:
    outcome, _ = await _fix([_code("return n * 3"), _code("return n - 2")])
    assert not outcome.ok and outcome.edits == [] and outcome.failure == "checks"
    assert "no candidate passed" in outcome.message and "nothing was changed" in outcome.message


async def test_fix_refuses_what_it_cannot_check() -> None:
    passing = MODULE.replace("    ...\n", "    return n * 2\n")
    no_spec = 'def f(n: int) -> int:\n    """Something."""\n    return n\n'
    for text, name, expected in [
        (passing, "double", "nothing to fix"),
        (no_spec, "f", "no examples or contracts"),
        (MODULE, "double", "no code yet"),
    ]:
        outcome, backend = await _fix([], text, name)
        assert not outcome.ok and expected in outcome.message and outcome.failure == "refused", outcome.message
        assert backend.requests == []


async def test_a_whole_function_written_as_the_body_is_unwrapped_with_its_imports_and_helpers() -> None:
    """Real models write `def name(...):` inside `body` (Qwen2.5-Coder-0.5B did on every HumanEval prompt tried):
    the definition's statements become the body, its docstring and demo calls dropped."""
    written = textwrap.dedent(
        '''\
        import operator
        def double(n: int) -> int:
            """Twice n."""
            return twice(n)

        def twice(n):
            return operator.mul(n, 2)

        # Examples:
        print(double(2))
        if __name__ == "__main__":
            double(3)
        '''
    )
    outcome, _ = await _run([_ir_json(), _code(written)])
    assert outcome.ok, outcome.message
    function = outcome.new_text.split("def double(n: int) -> int:")[1]
    assert "    return twice(n)\n" in function and "print(" not in outcome.new_text
    assert outcome.new_text.count("def double") == 1 and "__main__" not in outcome.new_text
    assert "import operator\n" in outcome.new_text.split("def ")[0]  # at the top, with the module's imports
    assert outcome.new_text.index("def twice") < outcome.new_text.index("def double")


def test_a_definition_of_another_name_or_on_one_line_is_handled_as_written() -> None:
    from lift_lsp.generate.forward import unwrap_definition

    other = CodeCandidate(body="def helper(n):\n    return n\n")
    assert unwrap_definition(other, "double") == other  # not the function: the checks will say what is wrong
    one_line = unwrap_definition(CodeCandidate(body="return f(n)", helpers=["def double(n): return n * 2"]), "double")
    assert one_line.body == "return n * 2" and one_line.helpers == []


async def test_the_code_step_continues_the_ir_steps_conversation() -> None:
    """So that an engine keeping the last sequence's KV cache evaluates only the new turn."""
    outcome, backend = await _run([_ir_json(), _code("return n * 2")])
    assert outcome.ok
    ir_request, code_request = backend.requests
    assert code_request.messages[: len(ir_request.messages)] == ir_request.messages
    assert code_request.messages[len(ir_request.messages)] == {"role": "assistant", "content": _ir_json()}
    assert "implement the body" in code_request.messages[-1]["content"]


async def test_with_the_ir_read_from_the_spec_the_model_is_asked_only_for_code_with_the_file_up_to_the_stub() -> None:
    backend = ScriptedBackend([_code("return n * 2")])
    options = OPTIONS.model_copy(update={"ir_source": "spec"})
    outcome = await generate(MODULE, _site(MODULE, "double"), backend, options, SandboxOptions(example_timeout_s=2))
    assert outcome.ok, outcome.message
    (request,) = backend.requests
    assert request.constraint.name == "CodeCandidate" and len(request.messages) == 1
    up_to_the_stub = MODULE.split("\n\n\ndef keep")[0]
    assert request.messages[0]["content"].endswith(f"```python\n{up_to_the_stub}\n```")  # the rest is not sent


def test_a_python_answer_gives_the_function_s_body_even_after_prose_copied_from_the_prompt() -> None:
    from lift_lsp.generate.forward import parse_candidate

    answer = (
        "```python\nfrom typing import List\nInferred types of names used:\n  strings: list\n\n"
        'def longest(strings: List[str]) -> str:\n    """The longest."""\n    return max(strings, key=len)\n```'
    )
    code = parse_candidate(answer, "longest")
    assert code.body == "return max(strings, key=len)" and code.imports == ["from typing import List"]
    try:
        parse_candidate("```python\nprint('no function here')\n```", "longest")
    except ValueError as err:
        assert "does not define `longest`" in str(err)
    else:
        raise AssertionError("an answer without the function is refused")


async def test_an_ir_whose_summary_is_longer_than_its_bound_is_cut_not_rejected() -> None:
    ir = json.loads(_ir_json())
    ir["intent"]["summary"] = "Twice n. " * 40  # 360 characters, over the 160 bound
    outcome, _ = await _run([json.dumps(ir), _code("return n * 2")])
    assert outcome.ok, outcome.message
    assert outcome.ir is not None and outcome.ir.intent.summary == ("Twice n. " * 40)[:160]
    ir["intent"] = {"summary": 3}  # any other error still rejects the IR
    outcome, _ = await _run([json.dumps(ir)])
    assert not outcome.ok and "does not match the IR schema" in outcome.message


async def test_the_first_candidate_is_greedy_and_the_repair_rounds_sample_without_rechecking_a_repeat() -> None:
    options = GenerationOptions(candidates=2, repairs=1, temperature=0.7, cache=False, ir_source="model")
    backend = ScriptedBackend([_ir_json(), _code("return n + 2"), [_code("return n + 2"), _code("return 2 * n")]])
    outcome = await generate(MODULE, _site(MODULE, "double"), backend, options, SandboxOptions(example_timeout_s=2))
    assert outcome.ok and outcome.attempts == 2, outcome.message
    ir_step, first, repair = backend.requests
    assert (ir_step.temperature, first.n, first.temperature) == (0.0, 1, 0.0)
    assert (repair.n, repair.temperature) == (2, 0.7)
    assert len(outcome.errors) == 1  # `return n + 2`, answered again in the repair round, was not checked again


def test_the_code_request_holds_at_most_the_last_part_of_a_long_file_before_the_stub() -> None:
    from lift_lsp.generate.prompts import CONTEXT_CHARS, code_messages

    text = "".join(f"X{i} = {i}\n" for i in range(3000)) + "\n\n" + MODULE
    content = code_messages(text, _site(text, "double"), "python")[0]["content"]
    before = content.split("```python\n", 1)[1].split("def double")[0]
    assert len(before) <= CONTEXT_CHARS and before.startswith("X")  # from a line's start
    assert "X2999 = 2999\n" in before and "\nX1 = 1\n" not in before and '"""Numbers."""' in before
