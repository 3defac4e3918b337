"""Contract statuses as findings (a refuted postcondition with its replayed counterexample, a proof, a confirmation,
what could not be checked), and one function's contracts checked on their own, as forward mode validates a candidate."""

from __future__ import annotations

from collections.abc import Sequence

from lift_lsp.check.contracts.runner import ConditionStatus, Counterexample, FunctionContracts, check_contracts
from lift_lsp.check.findings import Code, Finding
from lift_lsp.check.project import Interpreter, find_interpreter, module_target
from lift_lsp.check.sandbox import check_source_compiles
from lift_lsp.options import ContractOptions, SandboxOptions
from lift_lsp.spec.docstrings import DocSpec
from lift_lsp.spec.sites import SpecSite


def contract_statuses(
    text: str,
    file: str,
    functions: Sequence[tuple[SpecSite, DocSpec]],
    sandbox: SandboxOptions,
    contracts: ContractOptions,
    interpreter: Interpreter | None,
) -> dict[str, FunctionContracts]:
    """The contracts of `functions`, checked with the module imported as its examples are (no interpreter: no code
    runs, z3 alone)."""
    target = module_target(file)
    return check_contracts(
        text,
        file,
        functions,
        contracts,
        sandbox,
        runs_code=interpreter is not None,
        sys_path=[target.root] if target.root else [],
        module_name=target.name,
        is_package=target.is_package,
        python=interpreter.python if interpreter is not None else None,
    )


def contract_findings(file: str, site: SpecSite, checked: FunctionContracts) -> list[Finding]:
    """A refuted postcondition is an error (with its replayed counterexample in `data`); a proof (z3) or CrossHair's
    confirmation is information; so is a condition that could not be checked, and why."""
    if checked.not_checked is not None:
        message = f"contracts not checked: {checked.not_checked}"
        return [Finding(file, site.qualname, site.def_line + 1, Code.CONTRACT_UNCHECKED, "info", message)]
    out: list[Finding] = []
    reported: set[tuple[str, str | None]] = set()
    for status in checked.conditions:
        found = status.counterexample
        if found is not None:
            if (found.call, found.raised) in reported:
                continue
            reported.add((found.call, found.raised))
            out.append(_refuted(file, site, status, found))
        elif status.status in ("proved", "confirmed", "unchecked"):
            code = {
                "proved": Code.CONTRACT_PROVED,
                "confirmed": Code.CONTRACT_CONFIRMED,
                "unchecked": Code.CONTRACT_UNCHECKED,
            }[status.status]
            message = f"postcondition `{status.written}`: {status.detail}"
            out.append(Finding(file, site.qualname, status.line, code, "info", message))
    return out


def _refuted(file: str, site: SpecSite, status: ConditionStatus, found: Counterexample) -> Finding:
    call, raised = found.call, found.raised
    if raised is not None:
        what = f"`{call}` {found.detail}, which the docstring does not declare (`raises:`)"
    elif found.detail.startswith("changed"):
        what = f"`{call}` {found.detail}"
    elif "raised" in found.detail:  # the postcondition itself raised
        what = f"`{call}` returns {found.result}, and {found.detail}"
    else:
        what = f"postcondition `{status.written}` is false for `{call}`, which returns {found.result}"
    data: dict[str, object] = {
        "inputs": dict(found.inputs),
        "call": call,
        "result": found.result,
        "raised": raised,
        "condition": status.written,
    }
    message = f"{what} (found by {found.engine}, replayed)"
    return Finding(file, site.qualname, status.line, Code.CONTRACT_REFUTED, "error", message, data)


def check_function_contracts(
    text: str,
    file: str,
    site: SpecSite,
    doc: DocSpec,
    sandbox: SandboxOptions,
    contracts: ContractOptions | None = None,
    interpreter: Interpreter | None = None,
) -> list[Finding]:
    """The findings of one function's postconditions in the document `text` (z3, then the engines in the sandbox;
    every counterexample replayed): what forward mode validates a candidate with, beside its examples."""
    options = contracts or ContractOptions()
    if not options.enabled or check_source_compiles(text, file) is not None:
        return []
    python = interpreter or find_interpreter(file, mode=sandbox.mode)
    checked = contract_statuses(text, file, [(site, doc)], sandbox, options, python).get(site.qualname)
    return [] if checked is None else contract_findings(file, site, checked)
