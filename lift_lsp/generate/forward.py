"""Forward mode: a stub's spec -> IR -> code candidates -> validated function body, as text edits.

Both model steps are constrained by the IR's and the code's grammars, so every output parses. The `def` line and
the docstring stay as the user wrote them; only the stub's body is replaced (plus imports at the top of the file and
helpers above the function). Every candidate is validated (parse, compile, the spec's examples and contracts in the
sandbox) and repaired with the error fed back, a bounded number of times.
"""

from __future__ import annotations

import ast
import asyncio
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from lift_lsp.check.checks import Finding, calls_for, example_findings, module_dirs
from lift_lsp.check.sandbox import SandboxLimits, check_source_compiles, run_calls
from lift_lsp.generate.backends.base import Backend, BackendError, GenerationRequest
from lift_lsp.generate.constraints import code_constraint_for, pinned_ir_constraint
from lift_lsp.generate.prompts import code_messages, ir_messages, repair_messages
from lift_lsp.options import GenerationOptions, SandboxOptions
from lift_lsp.spec import pyast
from lift_lsp.spec.docstrings import DocSpec
from lift_lsp.spec.ir import IR, CodeCandidate, Provenance, Source
from lift_lsp.spec.reverse import function_ir
from lift_lsp.spec.sites import SpecSite, find_sites
from lift_lsp.spec.typecontext import TypeContext

Progress = Callable[[str, int], None]
"""(message, percentage) reports for the user."""


@dataclass(frozen=True)
class Edit:
    """Replace [start, end) (0-based lines, code-point columns) with `text`."""

    start_line: int
    start_col: int
    end_line: int
    end_col: int
    text: str


@dataclass
class Outcome:
    ok: bool
    message: str
    edits: list[Edit] = field(default_factory=list)
    new_text: str = ""
    ir: IR | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


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


def body_edit(site: SpecSite, body: str) -> Edit:
    """The edit that replaces the stub's body (after the docstring, if any) with `body` (zero-indented)."""
    indented = textwrap.indent(body.strip("\n"), site.body_indent, lambda line: bool(line.strip()))
    if site.docstring_span is not None:
        start = (site.docstring_span.end_line, site.docstring_span.end_col)
    else:
        start = (site.header_end_line, site.header_colon_col + 1)
    end_line, end_col = site.body_span.end_line, site.body_span.end_col
    if site.docstring_span is not None and (end_line, end_col) < start:
        end_line, end_col = start
    return Edit(start[0], start[1], end_line, end_col, "\n" + indented)


def import_edit(text: str, imports: list[str]) -> Edit | None:
    """Imports the module lacks, inserted after its docstring, `__future__` imports and leading imports."""
    existing = {line.strip() for line in text.split("\n")}
    wanted = [i.strip() for i in imports if i.strip() and i.strip() not in existing]
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


def validate(text: str, site: SpecSite, doc: DocSpec, sandbox: SandboxOptions, file: str) -> list[str]:
    """Errors of the document `text` in which `site` is the new function: compile errors, then failing examples
    and contracts (run in the sandbox). Empty when it passes."""
    error = check_source_compiles(text, file)
    if error is not None:
        return [error]
    calls = calls_for(site, doc)
    if not calls:
        return []
    outcomes = run_calls(
        text,
        [call for call, _ in calls],
        SandboxLimits.from_options(sandbox),
        filename=file,
        sys_path=module_dirs(file),
    )
    findings: list[Finding] = []
    for (call, example), outcome in zip(calls, outcomes, strict=True):
        findings += example_findings(file, site, call, example, outcome)
    return [f"line {f.line}: {f.message}" for f in findings if f.severity in ("error", "warning")]


def _relocate(text: str, site: SpecSite) -> SpecSite:
    """The same function, found again in the edited text."""
    for candidate in find_sites(text):
        if candidate.qualname == site.qualname:
            return candidate
    raise GenerationFailed(f"`{site.qualname}` was lost while assembling the code")


async def generate(
    text: str,
    site: SpecSite,
    backend: Backend,
    generation: GenerationOptions,
    sandbox: SandboxOptions,
    context: TypeContext | None = None,
    file: str = "<document>",
    progress: Progress | None = None,
) -> Outcome:
    """Generate the body of the stub `site` in `text`. Never raises for model or backend failures: the outcome
    says what failed; cancelling the task cancels the generation."""
    report = progress or (lambda message, percent: None)
    spec = function_ir(site, context)
    if not site.is_stub:
        return Outcome(False, f"`{site.qualname}` is not a stub: it already has code")
    if site.spec_text is None or not site.spec_text.strip():
        return Outcome(False, f"`{site.qualname}` has no docstring or `# spec:` comment to generate from")
    if spec.ir.holes:
        holes = "; ".join(f"{h.id}: {h.description}" for h in spec.ir.holes)
        return Outcome(False, f"the spec of `{site.qualname}` has unresolved holes ({holes}); resolve them first")
    try:
        report("IR: reading the spec", 5)
        ir_result = await backend.generate(
            GenerationRequest(
                messages=ir_messages(site, context),
                constraint=pinned_ir_constraint(spec.ir),
                n=1,
                max_tokens=generation.max_tokens_ir,
                temperature=generation.temperature,
                seed=generation.seed,
            )
        )
        if "length" in ir_result.finish_reasons[:1]:
            return Outcome(
                False,
                f"the model's IR was cut off at {generation.max_tokens_ir} tokens; raise generation.maxTokensIr",
            )
        try:
            model_ir = IR.model_validate_json(ir_result.texts[0])
        except (ValidationError, IndexError) as err:
            return Outcome(False, f"the model's IR does not match the IR schema: {_first_line(err)}")
        ir = merge_ir(spec.ir, model_ir)
        if model_ir.holes:
            holes = "; ".join(f"{h.id}: {h.description}" for h in model_ir.holes)
            return Outcome(False, f"the model found the spec open ({holes}); add the missing detail", ir=ir)

        messages = code_messages(site, ir, context)
        errors: list[str] = []
        rounds = generation.repairs + 1
        for round_index in range(rounds):
            label = "code" if round_index == 0 else f"repair {round_index}/{generation.repairs}"
            report(f"{label}: generating {generation.candidates} candidate(s)", 20 + 70 * round_index // rounds)
            result = await backend.generate(
                GenerationRequest(
                    messages=messages,
                    constraint=code_constraint_for(site, generation.body_syntax),
                    n=generation.candidates,
                    max_tokens=generation.max_tokens_code,
                    temperature=generation.temperature if round_index == 0 else max(generation.temperature, 0.4),
                    seed=None if generation.seed is None else generation.seed + round_index,
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
                try:
                    code = CodeCandidate.model_validate_json(candidate_text)
                except ValidationError as err:
                    last_text, last_error = (
                        candidate_text,
                        f"the output does not match the code schema: {_first_line(err)}",
                    )
                    errors.append(last_error)
                    continue
                edits = candidate_edits(text, site, code)
                new_text = apply_edits(text, edits)
                try:
                    new_site = _relocate(new_text, site)
                except GenerationFailed as err:
                    last_text, last_error = candidate_text, str(err)
                    errors.append(last_error)
                    continue
                problems = await asyncio.to_thread(validate, new_text, new_site, spec.doc, sandbox, file)
                if not problems:
                    report("done", 100)
                    attempts = round_index + 1
                    return Outcome(True, f"generated `{site.qualname}`", edits, new_text, ir, attempts, errors)
                last_text, last_error = candidate_text, "\n".join(problems[:5])
                errors.append(last_error)
            if round_index + 1 < rounds and last_text:
                messages = repair_messages(code_messages(site, ir, context), last_text, last_error)
        last = errors[-1] if errors else "?"
        return Outcome(
            False,
            f"no candidate passed after {generation.repairs} repair round(s); last error: {last}",
            ir=ir,
            attempts=rounds,
            errors=errors,
        )
    except BackendError as err:
        return Outcome(False, f"generation failed: {err.message}")


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return " ".join(text[:3])[:300]
