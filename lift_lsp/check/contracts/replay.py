"""Worker side of contracts: one call of a function judged against its contract, in plain Python.

Runs in the sandbox worker, never in the server. Standard library only and Python 3.9 syntax: the worker loads
this file by its path for the "contracts" command (`entry`), so that a counterexample replays in whatever
interpreter runs the project, engines or not. The engines (`search`) use `attempt` for each input they try.

A call is judged as PEP 316 says: inputs that break a precondition (or make it raise) are outside the contract;
an exception the docstring declares (`raises:`) is allowed; anything else is a violation: an undeclared exception,
a postcondition that is false or raises, or an argument changed that `post[...]` does not list.
"""

from __future__ import annotations

import builtins
import copy
import math
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_MAX_REPR = 2000


@dataclass(frozen=True)
class Contract:
    """One function's contract, its conditions compiled once."""

    fn: Callable[..., Any]
    posonly: tuple[str, ...]
    """Parameters passed by position."""
    pre: tuple[tuple[str, types.CodeType], ...]
    post: tuple[tuple[str, types.CodeType], ...]
    mutable: tuple[str, ...] | None
    """`post[a, b]:` the arguments the function may change; None: any (no `post[...]` line)."""
    raises: tuple[type, ...]
    namespace: dict[str, Any]
    """The module's globals: what the conditions may name besides the arguments."""


@dataclass(frozen=True)
class Attempt:
    status: str
    """rejected (outside the preconditions), allowed (raised a declared exception), held, violated."""
    result: str | None = None
    """repr of the return value."""
    raised: str | None = None
    """Name of the exception the call raised."""
    detail: str = ""
    """What was violated, in words."""


def build_contract(module: types.ModuleType, spec: dict[str, Any]) -> Contract:
    """The contract of `spec["function"]` (a module-level name) in `module`; raises LookupError when absent."""
    namespace = module.__dict__
    fn = namespace.get(spec["function"])
    if not callable(fn):
        raise LookupError(f"`{spec['function']}` is not a function of the module")
    raises: list[type] = []
    for name in spec.get("raises", []):
        found = _resolve(name, namespace)
        if isinstance(found, type) and issubclass(found, BaseException):
            raises.append(found)
    mutable = spec.get("mutable")
    return Contract(
        fn=fn,
        posonly=tuple(spec.get("posonly", [])),
        pre=tuple((expr, compile(expr, "<precondition>", "eval")) for expr in spec.get("pre", [])),
        post=tuple((expr, compile(expr, "<postcondition>", "eval")) for expr in spec.get("post", [])),
        mutable=None if mutable is None else tuple(mutable),
        raises=tuple(raises),
        namespace=namespace,
    )


def _resolve(dotted: str, namespace: dict[str, Any]) -> object:
    head, *rest = dotted.split(".")
    value = namespace.get(head, getattr(builtins, head, None))
    for part in rest:
        value = getattr(value, part, None)
    return value


def copy_args(args: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = {}
    for name, value in args.items():
        try:
            copied[name] = copy.deepcopy(value)
        except Exception:
            copied[name] = value
    return copied


def safe_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        return f"<repr() failed: {type(exc).__name__}>"
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + "..."


def attempt(contract: Contract, args: dict[str, Any], post: list[int] | None = None) -> Attempt:
    """Call the function on `args` (which it may change) and judge the call by the postconditions in `post`
    (indices; all when None)."""
    old = copy_args(args)
    scope = dict(contract.namespace)
    scope.update(args)
    scope["__old__"] = types.SimpleNamespace(**old)
    for expr, code in contract.pre:
        try:
            if not eval(code, scope):
                return Attempt("rejected", detail=f"precondition `{expr}` is false")
        except Exception as exc:
            return Attempt("rejected", detail=f"precondition `{expr}` raised {type(exc).__name__}")
    positional = [args[name] for name in contract.posonly]
    keywords = {name: value for name, value in args.items() if name not in contract.posonly}
    try:
        value = contract.fn(*positional, **keywords)
    except Exception as exc:
        name = type(exc).__name__
        if isinstance(exc, contract.raises):
            return Attempt("allowed", raised=name)
        return Attempt("violated", raised=name, detail=f"raised {name}: {_message(exc)}")
    result = safe_repr(value)
    scope.update(args)
    scope.update(result=value, __return__=value)
    scope.setdefault("_", value)
    chosen = range(len(contract.post)) if post is None else post
    for index in chosen:
        expr, code = contract.post[index]
        try:
            holds = bool(eval(code, scope))
        except Exception as exc:
            return Attempt("violated", result, detail=f"postcondition `{expr}` raised {type(exc).__name__}: {exc}")
        if not holds:
            return Attempt("violated", result, detail=f"postcondition `{expr}` is false")
    if contract.mutable is not None:
        for name in args:
            if name not in contract.mutable and not _same(old[name], args[name]):
                allowed = ", ".join(contract.mutable)
                return Attempt("violated", result, detail=f"changed `{name}`, which `post[{allowed}]` does not list")
    return Attempt("held", result)


def _same(before: object, after: object) -> bool:
    try:
        return bool(before == after) or safe_repr(before) == safe_repr(after)
    except Exception:
        return safe_repr(before) == safe_repr(after)


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        return "<str() failed>"
    return text if len(text) <= 300 else text[:300] + "..."


# ------------------------------------------------------------------------------------------- inputs as Python text


def literal(value: object) -> str | None:
    """Python source that evaluates to a value equal to `value` (a doctest can show it), or None when its repr
    does not read back. Non-finite floats become `float('nan')`, `float('inf')`."""
    text = _literal(value, 0)
    if text is None:
        return None
    try:
        back = eval(text, {"__builtins__": {"float": float, "set": set, "frozenset": frozenset}})
    except Exception:
        return None
    return text if _same(back, value) else None


def _literal(value: object, depth: int) -> str | None:
    if depth > 20:
        return None
    kind = type(value)
    if kind is float and not math.isfinite(value):  # type: ignore[arg-type]
        if value != value:
            return "float('nan')"
        return "float('inf')" if value > 0 else "-float('inf')"  # type: ignore[operator]
    if kind in (list, tuple, set, frozenset):
        items = [_literal(v, depth + 1) for v in value]  # type: ignore[attr-defined]
        if any(i is None for i in items):
            return None
        inner = ", ".join(items)  # type: ignore[arg-type]
        if kind is list:
            return f"[{inner}]"
        if kind is tuple:
            return f"({inner},)" if len(items) == 1 else f"({inner})"
        if not items:
            return "set()" if kind is set else "frozenset()"
        return f"{{{inner}}}" if kind is set else f"frozenset({{{inner}}})"
    if kind is dict:
        pairs = [(_literal(k, depth + 1), _literal(v, depth + 1)) for k, v in value.items()]  # type: ignore[attr-defined]
        if any(k is None or v is None for k, v in pairs):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    return repr(value)


def call_text(name: str, inputs: dict[str, str], posonly: tuple[str, ...] = ()) -> str:
    """`f(1, y=2)`: positional-only arguments by position, the others by name."""
    parts = [inputs[p] for p in posonly if p in inputs]
    parts += [f"{k}={v}" for k, v in inputs.items() if k not in posonly]
    return f"{name}({', '.join(parts)})"


# ------------------------------------------------------------------------------------------- the command


def replay(module: types.ModuleType, spec: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the inputs' source in the module's namespace and judge one call: {"status", "result", "raised",
    "detail"}; status "error" when the inputs cannot be evaluated."""
    contract = build_contract(module, spec)
    args: dict[str, Any] = {}
    for name, source in spec["inputs"].items():
        try:
            args[name] = eval(compile(source, f"<input {name}>", "eval"), dict(contract.namespace))
        except Exception as exc:
            return {"status": "error", "detail": f"input `{name} = {source}` raised {type(exc).__name__}"}
    post = spec.get("post_index")
    judged = attempt(contract, args, None if post is None else [post])
    return {"status": judged.status, "result": judged.result, "raised": judged.raised, "detail": judged.detail}


def entry(payload: dict[str, Any], module: types.ModuleType) -> dict[str, Any]:
    """The worker's "contracts" command: `replay` one counterexample, or `search` one function with the engines.

    The engines (Hypothesis, CrossHair) come from the project's packages when it has them, else from lift-lsp's own
    (appended to sys.path, after the project's), which only an interpreter of lift-lsp's Python version can load.
    """
    if payload["action"] == "replay":
        return replay(module, payload)
    wanted = tuple(payload["python"])
    if sys.version_info[:2] != wanted:
        have = ".".join(map(str, sys.version_info[:2]))
        return {"not_checked": f"the project's Python {have} is not lift-lsp's {'.'.join(map(str, wanted))}"}
    for path in payload["engine_path"]:
        if path not in sys.path:
            sys.path.append(path)
    try:
        from lift_lsp.check.contracts import search
    except ImportError as exc:
        return {"not_checked": f"the contract engines could not be imported: {exc}"}
    return search.search(module, payload)
