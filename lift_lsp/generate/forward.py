"""Forward mode: a stub's spec -> IR -> code candidates -> validated function body, as text edits.

Both model steps are constrained by the IR's and the code's grammars, so every output parses. The `def` line and
the docstring stay as the user wrote them; only the stub's body is replaced (plus imports at the top of the file and
helpers above the function). Every candidate is validated (parse, compile, pyflakes' certain errors such as undefined
names, then the spec's examples and contracts in the sandbox and z3's refutations) and repaired with the error fed
back, a bounded number of times. `fix` does the same for an implemented function that fails its spec, starting from
its current body and the checks it fails.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pydantic import BaseModel, ValidationError

from lift_lsp import pyast
from lift_lsp.check.contracts.report import check_function_contracts
from lift_lsp.check.example_runs import check_function_examples
from lift_lsp.check.isolation import sandbox_problem
from lift_lsp.check.sandbox import check_source_compiles
from lift_lsp.check.static import static_errors
from lift_lsp.generate.backends.base import Backend, BackendError, GenerationRequest
from lift_lsp.generate.constraints import code_constraint_for, pinned_ir_constraint, python_block_constraint
from lift_lsp.generate.prompts import (
    CodeFormat,
    code_messages,
    code_messages_after_ir,
    fix_messages,
    ir_messages,
    repair_messages,
)
from lift_lsp.options import BackendOptions, GenerationOptions, SandboxOptions
from lift_lsp.spec.docstrings import DocSpec
from lift_lsp.spec.ir import IR, CodeCandidate, Provenance, Source
from lift_lsp.spec.reverse import function_ir
from lift_lsp.spec.sites import SpecSite, find_sites
from lift_lsp.spec.typecontext import TypeContext

Progress = Callable[[str, int], None]
"""(message, percentage) reports for the user."""
DEFAULT_TIMEOUT_S = BackendOptions().timeout_s


@dataclass(frozen=True)
class Edit:
    """Replace [start, end) (0-based lines, code-point columns) with `text`."""

    start_line: int
    start_col: int
    end_line: int
    end_col: int
    text: str


Failure = Literal["refused", "backend", "invalid", "checks"]
"""Why forward mode delivered nothing: it (or the model) refused the spec; the backend failed; the model's output was
cut off or did not match the schema; no candidate passed the checks."""


@dataclass
class Outcome:
    ok: bool
    message: str
    edits: list[Edit] = field(default_factory=list)
    new_text: str = ""
    ir: IR | None = None
    attempts: int = 0
    """Code rounds used (1: the first round passed; 2: after one repair, ...)."""
    errors: list[str] = field(default_factory=list)
    failure: Failure | None = None


class GenerationFailed(Exception):
    pass


def apply_edits(text: str, edits: list[Edit]) -> str:
    """The text with non-overlapping edits applied (they are applied from the last to the first)."""
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)

    def offset(line: int, col: int) -> int:
        if line >= len(lines):
            return len(text)
        return offsets[line] + min(col, len(lines[line]))

    out = text
    for edit in sorted(edits, key=lambda e: (e.start_line, e.start_col), reverse=True):
        out = out[: offset(edit.start_line, edit.start_col)] + edit.text + out[offset(edit.end_line, edit.end_col) :]
    return out


def _opening_end(site: SpecSite) -> tuple[int, int]:
    """(line, column) where the function's `def` line(s) and docstring end: what the body follows."""
    if site.docstring_span is not None:
        return site.docstring_span.end_line, site.docstring_span.end_col
    return site.header_end_line, site.header_colon_col + 1


def body_edit(site: SpecSite, body: str) -> Edit:
    """The edit that replaces the stub's body (after the docstring, if any) with `body` (zero-indented)."""
    indented = textwrap.indent(body.strip("\n"), site.body_indent, lambda line: bool(line.strip()))
    start = _opening_end(site)
    end_line, end_col = site.body_span.end_line, site.body_span.end_col
    if site.docstring_span is not None and (end_line, end_col) < start:
        end_line, end_col = start
    return Edit(start[0], start[1], end_line, end_col, "\n" + indented)


_STAR_IMPORT = re.compile(r"from\s+\S+\s+import\s+\*$")


def import_edit(text: str, imports: list[str]) -> Edit | None:
    """Imports the module lacks, inserted after its docstring, `__future__` imports and leading imports. A star import
    (`from typing import *`, which a model completing a file likes to write) is never added to the user's module: a
    body that needs one of its names fails the static check, and that error goes back to the model."""
    existing = {line.strip() for line in text.split("\n")}
    stripped = (i.strip() for i in imports)
    wanted = [i for i in stripped if i and i not in existing and not _STAR_IMPORT.match(i)]
    if not wanted:
        return None
    lines = text.split("\n")
    insert_at = 0
    try:
        module = pyast.parse(text)
        for node in module.body:
            is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node is module.body[0]
            if is_doc or isinstance(node, ast.Import | ast.ImportFrom):
                insert_at = node.end_lineno or insert_at
            else:
                break
    except (SyntaxError, ValueError, RecursionError):
        insert_at = 0
    insert_at = min(insert_at, len(lines))
    return Edit(insert_at, 0, insert_at, 0, "".join(f"{line}\n" for line in dict.fromkeys(wanted)))


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)
"""What the model may write beside the function that the function can use: helpers, classes, constants."""


def unwrap_definition(code: CodeCandidate, name: str) -> CodeCandidate:
    """The candidate as a body, where the model wrote the whole function instead (`def name(...):` in `body` or in
    a helper, as models trained on chat answers do): that definition's statements (its docstring dropped) become the
    body; the imports and other definitions beside it, imports and helpers; statements that only use the function
    (a demo call, a `print`) are dropped. Any other candidate is left as it is."""
    for index, source in [(-1, code.body), *enumerate(code.helpers)]:
        found = _definition(textwrap.dedent(source), name)
        if found is None:
            continue
        body, imports, helpers = found
        kept = [helper for i, helper in enumerate(code.helpers) if i != index]
        return code.model_copy(update={"body": body, "imports": [*code.imports, *imports], "helpers": kept + helpers})
    return code


def _definition(source: str, name: str) -> tuple[str, list[str], list[str]] | None:
    """(the body of `def name` at the top of `source`, the imports beside it, the other statements), or None."""
    try:
        module = pyast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return None
    lines = source.split("\n")
    found = next((n for n in module.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    if found is None or found.name != name:
        return None
    statements = found.body[1:] if ast.get_docstring(found, clean=False) is not None else found.body
    if not statements:
        return None

    def segment(node: ast.stmt, start: int | None = None) -> str:
        return "\n".join(lines[(start or node.lineno) - 1 : node.end_lineno])

    first, column = statements[0].lineno - 1, statements[0].col_offset  # the body may start on the `def` line
    body_lines = [line[column:] if not line[:column].strip() else line for line in lines[first : found.end_lineno]]
    body_lines[0] = lines[first][column:]
    body = "\n".join(body_lines)
    others = [node for node in module.body if node is not found]
    imports = [segment(node) for node in others if isinstance(node, ast.Import | ast.ImportFrom)]
    definitions = [segment(node) for node in others if isinstance(node, _DEFINITIONS)]
    return body, imports, definitions  # calls, prints and `if __name__ == ...` blocks beside it are dropped


_CODE_BLOCK = re.compile(r"```(?:python|py)?\n(.*?)(?:```|$)", re.DOTALL)


def code_in_answer(answer: str) -> str:
    """The first Python code block of a model's answer (to its end when it is not closed), else the whole answer."""
    block = _CODE_BLOCK.search(answer)
    return block.group(1) if block else answer


def _from_definition(code: str, name: str) -> str:
    """`code` from the line that defines `name` on, after the import lines above it: what is left when a model
    copies prose from its prompt into the code block before the function."""
    lines = code.split("\n")
    start = next((i for i, line in enumerate(lines) if re.match(rf"(async\s+)?def\s+{re.escape(name)}\b", line)), None)
    if start is None:
        return code
    imports = [line for line in lines[:start] if line.startswith(("import ", "from "))]
    return "\n".join([*imports, *lines[start:]])


def parse_candidate(answer: str, name: str) -> CodeCandidate:
    """The code the model's answer holds: a JSON candidate (`generation.codeFormat: json`), or a Python code block
    with the function `name` in it (`python`). Raises ValueError with what is wrong, for the repair prompt."""
    if answer.lstrip().startswith("{"):
        try:
            return unwrap_definition(CodeCandidate.model_validate_json(answer), name)
        except ValidationError as err:
            raise ValueError(f"the output does not match the code schema: {_first_line(err)}") from None
    code = textwrap.dedent(code_in_answer(answer))
    found = _definition(code, name) or _definition(_from_definition(code, name), name)
    if found is None:
        raise ValueError(f"the answer does not define `{name}`: write the whole function, its `def` line first")
    body, imports, helpers = found
    try:
        return CodeCandidate.model_validate({"body": body, "imports": imports, "helpers": helpers})
    except ValidationError as err:
        raise ValueError(f"the function is too long: {_first_line(err)}") from None


def function_opening(text: str, site: SpecSite) -> str:
    """The function's `def` line(s) and docstring as the user wrote them in `text`, at zero indentation, and the
    newline after them: how the model's code block must begin (`python_block_constraint`). The newline belongs to the
    opening as the tokenizer splits text (`\"\"\"` and the newline after it are one token); without it the model took
    the line as unfinished and wrote spaces at the end of it."""
    lines = text.split("\n")
    end_line, end_col = _opening_end(site)
    chunk = lines[site.def_line : end_line + 1]
    chunk[-1] = chunk[-1][:end_col]
    indent = site.span.start_col
    return "\n".join(line[indent:] if not line[:indent].strip() else line for line in chunk) + "\n"


def candidate_edits(text: str, site: SpecSite, code: CodeCandidate) -> list[Edit]:
    body = code.body
    edits: list[Edit] = []
    helpers = [h.strip("\n") for h in code.helpers if h.strip()]
    if helpers and (site.class_name is not None or "<locals>" in site.qualname):
        # Helpers of methods and nested functions go inside the body, where their names resolve.
        body = "\n\n".join([*helpers, body])
    elif helpers:
        indent = " " * site.span.start_col
        block = "\n\n".join(textwrap.indent(h, indent, lambda line: bool(line.strip())) for h in helpers)
        edits.append(Edit(site.span.start_line, 0, site.span.start_line, 0, block + "\n\n\n"))
    edits.append(body_edit(site, body))
    imports = import_edit(text, code.imports)
    if imports is not None:
        edits.append(imports)
    # Helper and body edits never overlap the imports: those go above the first definition.
    return edits


def merge_ir(spec_ir: IR, model_ir: IR) -> IR:
    """The model's IR with what the spec states as fact put back: the signature (the `def` line is the user's),
    and the documented examples and conditions where the spec has them."""
    provenance = [*spec_ir.provenance]
    merged = model_ir.model_copy(
        update={
            "signature": spec_ir.signature,
            "examples": spec_ir.examples or model_ir.examples,
            "preconditions": spec_ir.preconditions or model_ir.preconditions,
            "postconditions": spec_ir.postconditions or model_ir.postconditions,
        }
    )
    for part in ("intent", "effects", "holes"):
        provenance.append(Provenance(part=part, source=Source.MODEL))
    merged.provenance = provenance[:24]
    return merged


def validate(text: str, site: SpecSite, doc: DocSpec, sandbox: SandboxOptions, file: str, lines: range) -> list[str]:
    """Errors of the document `text` in which `site` is the new function: compile errors; then certain static errors
    (pyflakes: undefined names, ...) on `lines` (1-based: the new code), before any of it runs; then failing examples
    and postconditions refuted by z3, Hypothesis or CrossHair (every counterexample replayed in the sandbox). Empty
    when it passes."""
    error = check_source_compiles(text, file)
    if error is not None:
        return [error]
    static = static_errors(text, file, lines)
    if static:
        return [f"line {e.line}: {e.message}" for e in static]
    findings = check_function_examples(text, file, site, doc, sandbox)
    findings += check_function_contracts(text, file, site, doc, sandbox)
    return [f"line {f.line}: {f.message}" for f in findings if f.severity in ("error", "warning")]


def _relocate(text: str, site: SpecSite) -> SpecSite:
    """The same function, found again in the edited text."""
    for candidate in find_sites(text):
        if candidate.qualname == site.qualname:
            return candidate
    raise GenerationFailed(f"`{site.qualname}` was lost while assembling the code")


def _function_lines(site: SpecSite) -> range:
    """The 1-based lines of the function `site`."""
    return range(site.span.start_line + 1, site.span.end_line + 2)


@dataclass(frozen=True)
class _Search:
    """What a search for a passing body needs besides the backend and the settings."""

    text: str
    site: SpecSite
    doc: DocSpec
    ir: IR
    messages: list[dict[str, str]]
    """The code step's first messages; a repair round adds the last candidate and its error."""
    file: str
    done: str
    """The message of a success."""


async def generate(
    text: str,
    site: SpecSite,
    backend: Backend,
    generation: GenerationOptions,
    sandbox: SandboxOptions,
    context: TypeContext | None = None,
    file: str = "<document>",
    progress: Progress | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Outcome:
    """Generate the body of the stub `site` in `text`. Never raises for model or backend failures: the outcome
    says what failed; cancelling the task cancels the generation. `timeout_s` bounds each model request."""
    report = progress or (lambda message, percent: None)
    spec = function_ir(site, context)
    if not site.is_stub:
        return Outcome(False, f"`{site.qualname}` is not a stub: it already has code", failure="refused")
    if site.spec_text is None or not site.spec_text.strip():
        return Outcome(
            False, f"`{site.qualname}` has no docstring or `# spec:` comment to generate from", failure="refused"
        )
    if spec.ir.holes:
        holes = "; ".join(f"{h.id}: {h.description}" for h in spec.ir.holes)
        return Outcome(
            False,
            f"the spec of `{site.qualname}` has unresolved holes ({holes}); resolve them first",
            failure="refused",
        )
    unavailable = sandbox_problem(sandbox.mode) if spec.doc.examples else None
    if unavailable is not None:  # the candidates could not be checked: say so before asking the model
        return Outcome(
            False,
            f"cannot check generated code against the examples: cannot sandbox: {unavailable}",
            failure="refused",
        )
    try:
        if generation.ir_source == "spec":
            ir, messages = spec.ir, code_messages(text, site, _format(generation))
        else:
            found = await _model_ir(site, spec.ir, backend, generation, context, report, timeout_s)
            if isinstance(found, Outcome):
                return found
            ir, messages = found
        search = _Search(text, site, spec.doc, ir, messages, file, f"generated `{site.qualname}`")
        return await _search(search, backend, generation, sandbox, report, timeout_s)
    except BackendError as err:
        return _backend_failure(err)


async def _model_ir(
    site: SpecSite,
    spec_ir: IR,
    backend: Backend,
    generation: GenerationOptions,
    context: TypeContext | None,
    report: Progress,
    timeout_s: float,
) -> tuple[IR, list[dict[str, str]]] | Outcome:
    """The IR step: the model's IR (the spec's facts pinned by the grammar and put back) and the code step's
    messages that continue its conversation; or why there is none."""
    report("IR: reading the spec", 5)
    messages = ir_messages(site, context)
    ir_result = await backend.generate(
        GenerationRequest(
            messages=messages,
            constraint=pinned_ir_constraint(spec_ir),
            n=1,
            max_tokens=generation.max_tokens_ir,
            temperature=0.0,
            seed=generation.seed,
            timeout_s=timeout_s,
            progress=_labelled(report, "IR", 5),
        )
    )
    if "length" in ir_result.finish_reasons[:1]:
        return Outcome(
            False,
            f"the model's IR was cut off at {generation.max_tokens_ir} tokens; raise generation.maxTokensIr",
            failure="invalid",
        )
    if not "".join(ir_result.texts[:1]).strip():
        return Outcome(False, "the model answered nothing but whitespace for the IR", failure="invalid")
    try:
        model_ir = validate_cutting_long_strings(IR, ir_result.texts[0])
    except (ValidationError, IndexError) as err:
        return Outcome(False, f"the model's IR does not match the IR schema: {_first_line(err)}", failure="invalid")
    ir = merge_ir(spec_ir, model_ir)
    if model_ir.holes:
        holes = "; ".join(f"{h.id}: {h.description}" for h in model_ir.holes)
        return Outcome(
            False, f"the model found the spec open ({holes}); add the missing detail", ir=ir, failure="refused"
        )
    return ir, code_messages_after_ir(messages, ir_result.texts[0], _format(generation))


async def fix(
    text: str,
    site: SpecSite,
    backend: Backend,
    generation: GenerationOptions,
    sandbox: SandboxOptions,
    context: TypeContext | None = None,
    file: str = "<document>",
    progress: Progress | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Outcome:
    """Fix the implemented function `site` from its spec: its current body and the checks it fails go to the model;
    a candidate is offered only when it passes every example and contract of the spec. Never raises for model or
    backend failures; cancelling the task cancels it."""
    report = progress or (lambda message, percent: None)
    if site.is_stub:
        return Outcome(False, f"`{site.qualname}` has no code yet: generate it from its spec", failure="refused")
    spec = function_ir(site, context)
    if not spec.doc.examples and not any(c.expr for c in spec.doc.postconditions):
        return Outcome(
            False, f"`{site.qualname}` has no examples or contracts to check a fix against", failure="refused"
        )
    report("checking the current code", 5)
    problems = await asyncio.to_thread(validate, text, site, spec.doc, sandbox, file, _function_lines(site))
    if not problems:
        return Outcome(False, f"`{site.qualname}` passes its examples and contracts: nothing to fix", failure="refused")
    search = _Search(
        text,
        site,
        spec.doc,
        spec.ir,
        fix_messages(site, spec.ir, problems, context, _format(generation)),
        file,
        f"fixed `{site.qualname}`: it passes its examples and contracts",
    )
    try:
        return await _search(search, backend, generation, sandbox, report, timeout_s)
    except BackendError as err:
        return _backend_failure(err)


def _labelled(report: Progress, label: str, percent: int) -> Callable[[str], None]:
    """A backend's own progress messages ("the endpoint is starting: 30 s") as this step's progress."""
    return lambda message: report(f"{label}: {message}", percent)


async def _search(
    search: _Search,
    backend: Backend,
    generation: GenerationOptions,
    sandbox: SandboxOptions,
    report: Progress,
    timeout_s: float,
) -> Outcome:
    """Code rounds, their candidates checked in turn; the first that passes wins. The first round is one greedy
    candidate: the model's own best answer, what it would write alone. After a round with none passing, a repair
    round of `generation.candidates` sampled candidates, asked the first request again or shown the last error
    (`generation.repairPrompt`), each function's opening forced (`python_block_constraint`: its tokens then cost no
    model step each). A candidate that repeats one already checked is not checked again."""
    text, site = search.text, search.site
    messages = search.messages
    errors: list[str] = []
    checked: set[str] = set()
    valid = 0
    rounds = generation.repairs + 1
    if _format(generation) == "python":
        first, repair = python_block_constraint(), python_block_constraint(function_opening(text, site))
    else:
        first = repair = code_constraint_for(site, generation.body_syntax)
    for round_index in range(rounds):
        label = "code" if round_index == 0 else f"repair {round_index}/{generation.repairs}"
        count = 1 if round_index == 0 else generation.candidates
        report(f"{label}: generating {count} candidate(s)", 20 + 70 * round_index // rounds)
        result = await backend.generate(
            GenerationRequest(
                messages=messages,
                constraint=repair if round_index else first,
                n=count,
                max_tokens=generation.max_tokens_code,
                temperature=0.0 if round_index == 0 else generation.temperature,
                seed=None if generation.seed is None else generation.seed + round_index,
                timeout_s=timeout_s,
                progress=_labelled(report, label, 20 + 70 * round_index // rounds),
            )
        )
        report(f"{label}: checking {len(result.texts)} candidate(s)", 20 + 70 * round_index // rounds + 10)
        last_text, last_error = "", ""
        for index, candidate_text in enumerate(result.texts):
            if index < len(result.finish_reasons) and result.finish_reasons[index] == "length":
                errors.append(
                    f"the code was cut off at {generation.max_tokens_code} tokens; raise generation.maxTokensCode"
                )
                continue
            if not candidate_text.strip():
                errors.append("the model answered nothing but whitespace for the code")
                continue
            if candidate_text in checked:
                continue
            checked.add(candidate_text)
            try:
                code = parse_candidate(candidate_text, site.name)
            except ValueError as err:
                last_text, last_error = candidate_text, str(err)
                errors.append(last_error)
                continue
            valid += 1
            edits = candidate_edits(text, site, code)
            new_text = apply_edits(text, edits)
            try:
                new_site = _relocate(new_text, site)
            except GenerationFailed as err:
                last_text, last_error = candidate_text, str(err)
                errors.append(last_error)
                continue
            imports = import_edit(text, code.imports)
            added = imports.text.count("\n") if imports is not None else 0
            lines = range(site.span.start_line + added + 1, new_site.span.end_line + 2)  # helpers, then the function
            problems = await asyncio.to_thread(validate, new_text, new_site, search.doc, sandbox, search.file, lines)
            if not problems:
                report("done", 100)
                return Outcome(True, search.done, edits, new_text, search.ir, round_index + 1, errors)
            last_text, last_error = candidate_text, "\n".join(problems[:5])
            errors.append(last_error)
        if round_index + 1 < rounds and last_text and generation.repair_prompt == "feedback":
            messages = repair_messages(search.messages, last_text, last_error, _format(generation))
    last = errors[-1] if errors else "?"
    return Outcome(
        False,
        f"no candidate passed after {generation.repairs} repair round(s), so nothing was changed; last error: {last}",
        ir=search.ir,
        attempts=rounds,
        errors=errors,
        failure="checks" if valid else "invalid",
    )


def _format(generation: GenerationOptions) -> CodeFormat:
    """The code step's answer format: `auto` is resolved with the backend's settings (`options._reconcile`); without
    them, JSON, which every backend takes."""
    return "python" if generation.code_format == "python" else "json"


def _backend_failure(err: BackendError) -> Outcome:
    return Outcome(
        False, f"generation failed: {err.message}", failure="refused" if err.kind == "refused" else "backend"
    )


Model = TypeVar("Model", bound=BaseModel)


def validate_cutting_long_strings(model: type[Model], text: str) -> Model:
    """`model` validated from the JSON `text`, where a string longer than its bound is cut to it: the bounds are
    there so that constrained generation ends, and a model that writes a summary longer than one is not wrong about
    the rest. Raises ValidationError for anything else."""
    try:
        return model.model_validate_json(text)
    except ValidationError as err:
        errors = err.errors()
        if not errors or any(e["type"] != "string_too_long" for e in errors):
            raise
        data = json.loads(text)
        for error in errors:
            *path, last = error["loc"]
            parent = data
            for key in path:
                parent = parent[key]
            parent[last] = parent[last][: error["ctx"]["max_length"]]
        return model.model_validate(data)


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return " ".join(text[:3])[:300]
