"""Bounded verification of a function's postconditions with z3: the proofs behind LIFT013.

Part of the contract checks (`runner.py`): z3 reads the code, it never runs it, so it works in this
process. What it proves (for all inputs, in its fragment) needs no engine; its counterexamples are exact and
instant, and are replayed in the sandbox like Hypothesis's and CrossHair's. Everything outside the fragment
(floats, strings, containers, calls, raised exceptions) is left to those engines.

The function is executed symbolically (an environment name -> z3 term, branches merged with ``z3.If``) over a small
fragment of Python: ``int``/``bool`` parameters, integer and boolean arithmetic with Python semantics (floor ``//``
and ``%``), ``if``/``assert``/``raise``/``return``, ``for i in range(...)`` and ``while`` unrolled up to a bound,
``break``/``continue``; constant expressions such as ``2**31`` are folded. Paths that raise never return, so they
cannot violate a postcondition (a raised exception is the engines' to find). Anything outside the fragment makes
the verdict ``unsupported``.

For each postcondition, ``pre ∧ returns ∧ ¬post`` is checked: ``sat`` gives a concrete counterexample (a real one:
the unrolled paths are exact), ``unsat`` a proof, unless a loop may run past the unroll bound (then ``unknown``).

Details: a loop gets ``unroll`` iterations whose entry condition is symbolic, and up to ``4 * unroll`` when it is
concrete (``range(10)``); a path that returns None fails any postcondition mentioning ``result``; a value mixing
``bool`` and ``int`` (``x and 1``, a variable assigned both) is an int, so ``result`` may read ``1`` where Python
says ``True`` (equal values). Decorators are ignored. Queries run in a worker process that is killed at its deadline
(see below), so a call takes at most about ``1.5 * timeout_ms + 1 s`` per query; it blocks: from asyncio, run it
in an executor.
"""

from __future__ import annotations

import ast
import atexit
import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import z3

from lift_lsp import pyast

Status = Literal["proved", "counterexample", "unknown", "unsupported"]

__all__ = ["SmtVerdict", "Status", "check_postconditions"]

Z = Any  # a z3 expression (z3 ships no type information)

_BUILTINS = frozenset({"abs", "min", "max", "int", "bool"})
_MAX_POW = 16  # largest constant exponent expanded for ``x ** k``
_MAX_FOLDED_BITS = 4096  # largest constant ``a ** k`` folded (in bits)


@dataclass(frozen=True)
class SmtVerdict:
    """The outcome of checking one postcondition."""

    condition: str
    status: Status
    counterexample: dict[str, str] = field(default_factory=dict)
    result: str | None = None
    message: str = ""


class Unsupported(Exception):
    """Raised when the source leaves the fragment that is translated to z3."""

    def __init__(self, what: str, node: ast.AST | None = None) -> None:
        line = getattr(node, "lineno", None)
        super().__init__(f"{what} (line {line})" if line is not None else what)


# --------------------------------------------------------------------------------------------------- z3 helpers

# Each call works in its own z3 context: calls in different threads do not share state, and a timeout interrupts
# only its own query.
_CONTEXT: ContextVar[Any] = ContextVar("lift_lsp_smt_context")


def _ctx() -> Z:
    return _CONTEXT.get()


def _true() -> Z:
    return z3.BoolVal(True, _ctx())


def _false() -> Z:
    return z3.BoolVal(False, _ctx())


def _is_bool(v: Z) -> bool:
    return bool(z3.is_bool(v))


def _as_int(v: Z) -> Z:
    """Python's ``int(b)`` for a bool; ints unchanged."""
    return z3.If(v, z3.IntVal(1, _ctx()), z3.IntVal(0, _ctx())) if _is_bool(v) else v


def _truthy(v: Z) -> Z:
    return v if _is_bool(v) else v != 0


def _and(*cs: Z) -> Z:
    """Conjunction that drops literal ``True`` terms (keeps terms small)."""
    kept = [c for c in cs if not z3.is_true(c)]
    if any(z3.is_false(c) for c in kept):
        return _false()
    if not kept:
        return _true()
    return kept[0] if len(kept) == 1 else z3.And(*kept)


def _or(cs: Sequence[Z]) -> Z:
    kept = [c for c in cs if not z3.is_false(c)]
    if any(z3.is_true(c) for c in kept):
        return _true()
    if not kept:
        return _false()
    return kept[0] if len(kept) == 1 else z3.Or(*kept)


def _not(c: Z) -> Z:
    if z3.is_true(c):
        return _false()
    if z3.is_false(c):
        return _true()
    return z3.Not(c)


def _implies(a: Z, b: Z) -> Z:
    if z3.is_true(b):
        return _true()
    return z3.Implies(a, b)


def _unify(vals: Sequence[Z]) -> list[Z]:
    """Values of mixed bool/int sorts become ints (``True == 1`` in Python)."""
    if all(_is_bool(v) for v in vals) or not any(_is_bool(v) for v in vals):
        return list(vals)
    return [_as_int(v) for v in vals]


def _ite(c: Z, a: Z, b: Z) -> Z:
    if a.eq(b):
        return a
    a, b = _unify([a, b])
    return z3.If(c, a, b)


def _floordiv(a: Z, b: Z, axioms: list[Z]) -> Z:
    """Python ``a // b`` (floor), meaningful for ``b != 0``.

    z3's ``/`` is Euclidean, and nested divisions by symbolic divisors make z3 hang past its time limits, so a
    symbolic divisor gets a fresh quotient ``q`` and remainder ``r`` with ``b != 0 -> a == b*q + r``, ``r`` in
    ``[0, b)`` or ``(b, 0]``: for each input exactly one ``q``, so the axiom restricts no input.
    """
    if z3.is_int_value(b):
        n = b.as_long()
        return a / b if n > 0 else (-a) / (-b)
    ctx = _ctx()
    q = z3.FreshInt("q", ctx)
    r = z3.FreshInt("r", ctx)
    in_range = z3.If(b > 0, z3.And(r >= 0, r < b), z3.And(r <= 0, r > b))
    axioms.append(z3.Implies(b != 0, z3.And(a == b * q + r, in_range)))
    return q


def _mod(a: Z, b: Z, axioms: list[Z]) -> Z:
    """Python ``a % b`` (sign of ``b``), meaningful for ``b != 0``."""
    return a - b * _floordiv(a, b, axioms)


def _literal(v: Z) -> str:
    if z3.is_true(v):
        return "True"
    if z3.is_false(v):
        return "False"
    if z3.is_int_value(v):
        return str(v.as_long())
    return str(v)


# --------------------------------------------------------------------------------------------------- execution


@dataclass
class _Var:
    value: Z
    defined: Z  # the variable is bound (on the paths where the state is alive)


@dataclass
class _State:
    alive: Z  # path condition: execution reaches this point
    env: dict[str, _Var]

    def dead(self) -> bool:
        return bool(z3.is_false(self.alive))


@dataclass
class _Loop:
    breaks: list[_State] = field(default_factory=list)
    continues: list[_State] = field(default_factory=list)


def _merge(states: Sequence[_State]) -> _State:
    """Join states with disjoint path conditions."""
    live = [s for s in states if not s.dead()]
    if not live:
        return _State(_false(), dict(states[0].env) if states else {})
    if len(live) == 1:
        return live[0]
    names: list[str] = []
    for s in live:
        names.extend(n for n in s.env if n not in names)
    env: dict[str, _Var] = {}
    for name in names:
        having = [(s.alive, s.env[name]) for s in live if name in s.env]
        vals = _unify([v.value for _, v in having])
        value = vals[-1]
        for (guard, _), val in zip(reversed(having[:-1]), reversed(vals[:-1]), strict=True):
            value = value if val.eq(value) else z3.If(guard, val, value)
        if len(having) == len(live) and all(z3.is_true(v.defined) for _, v in having):
            defined = _true()
        else:
            defined = _or([_and(g, v.defined) for g, v in having])
        env[name] = _Var(value, defined)
    return _State(_or([s.alive for s in live]), env)


def _assigned_names(fn: ast.FunctionDef) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


class _Executor:
    """Symbolic execution of one function body (and evaluation of conditions)."""

    def __init__(self, local_names: set[str], unroll: int) -> None:
        self.local_names = local_names
        self.unroll = max(0, unroll)
        self.concrete_cap = max(4 * self.unroll, self.unroll)
        self.returns: list[tuple[Z, Z | None]] = []  # (guard, value); None: the path returns None
        self.overflow: list[Z] = []  # paths cut because a loop ran past the unroll bound
        self.loops: list[_Loop] = []
        self.axioms: list[Z] = []  # definitions of the fresh quotients introduced by `//` and `%`

    # ------------------------------------------------------------------ expressions

    def eval(self, node: ast.expr, env: dict[str, _Var]) -> tuple[Z, Z]:
        """Value of ``node`` and the condition under which evaluating it does not raise."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return z3.BoolVal(node.value, _ctx()), _true()
            if isinstance(node.value, int):
                return z3.IntVal(node.value, _ctx()), _true()
            raise Unsupported(f"constant {node.value!r}", node)
        if isinstance(node, ast.Name):
            return self._name(node, env)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node, env)
        if isinstance(node, ast.BinOp):
            return self._binop(node, env)
        if isinstance(node, ast.BoolOp):
            return self._boolop(node, env)
        if isinstance(node, ast.Compare):
            return self._compare(node, env)
        if isinstance(node, ast.IfExp):
            c, ok_c = self.eval(node.test, env)
            a, ok_a = self.eval(node.body, env)
            b, ok_b = self.eval(node.orelse, env)
            t = _truthy(c)
            return _ite(t, a, b), _and(ok_c, _ite(t, ok_a, ok_b))
        if isinstance(node, ast.Call):
            return self._call(node, env)
        raise Unsupported(f"expression `{ast.unparse(node)}`", node)

    def _name(self, node: ast.Name, env: dict[str, _Var]) -> tuple[Z, Z]:
        var = env.get(node.id)
        if var is not None:
            return var.value, var.defined
        if node.id in self.local_names:  # read before any assignment: UnboundLocalError
            return z3.IntVal(0, _ctx()), _false()
        raise Unsupported(f"global name `{node.id}`", node)

    def _unary(self, node: ast.UnaryOp, env: dict[str, _Var]) -> tuple[Z, Z]:
        v, ok = self.eval(node.operand, env)
        if isinstance(node.op, ast.Not):
            return _not(_truthy(v)), ok
        if isinstance(node.op, ast.USub):
            return -_as_int(v), ok
        if isinstance(node.op, ast.UAdd):
            return _as_int(v), ok
        return -_as_int(v) - 1, ok  # ast.Invert: ~x == -x - 1

    def _binop(self, node: ast.BinOp, env: dict[str, _Var]) -> tuple[Z, Z]:
        a, ok_a = self.eval(node.left, env)
        op = node.op
        if isinstance(op, ast.Pow):
            return self._pow(node, _as_int(a), ok_a, env)
        if isinstance(op, ast.LShift | ast.RShift):
            k = node.right
            if not (isinstance(k, ast.Constant) and type(k.value) is int and 0 <= k.value <= 64):
                raise Unsupported("shift by a non-constant amount", node)
            p = z3.IntVal(2**k.value, _ctx())
            return (_as_int(a) * p if isinstance(op, ast.LShift) else _floordiv(_as_int(a), p, self.axioms)), ok_a
        b, ok_b = self.eval(node.right, env)
        ok = _and(ok_a, ok_b)
        if isinstance(op, ast.BitAnd | ast.BitOr | ast.BitXor):
            if not (_is_bool(a) and _is_bool(b)):
                raise Unsupported("bitwise operator on ints", node)
            if isinstance(op, ast.BitAnd):
                return z3.And(a, b), ok
            return (z3.Or(a, b) if isinstance(op, ast.BitOr) else z3.Xor(a, b)), ok
        x, y = _as_int(a), _as_int(b)
        if isinstance(op, ast.Add):
            return x + y, ok
        if isinstance(op, ast.Sub):
            return x - y, ok
        if isinstance(op, ast.Mult):
            return x * y, ok
        if isinstance(op, ast.FloorDiv):
            return _floordiv(x, y, self.axioms), _and(ok, y != 0)
        if isinstance(op, ast.Mod):
            return _mod(x, y, self.axioms), _and(ok, y != 0)
        raise Unsupported(f"operator `{ast.unparse(node)}`", node)

    def _pow(self, node: ast.BinOp, base: Z, ok: Z, env: dict[str, _Var]) -> tuple[Z, Z]:
        """`a ** k` for a constant `k >= 0`: folded when `a` is constant too (`2**31`), else expanded (k <= 16)."""
        k, ok_k = self.eval(node.right, env)
        k, base = z3.simplify(_as_int(k)), z3.simplify(base)
        if not z3.is_int_value(k) or k.as_long() < 0:
            raise Unsupported("`**` with a non-constant or negative exponent", node)
        exponent = k.as_long()
        if z3.is_int_value(base) and abs(base.as_long()).bit_length() * exponent <= _MAX_FOLDED_BITS:
            return z3.IntVal(base.as_long() ** exponent, _ctx()), _and(ok, ok_k)
        if exponent > _MAX_POW:
            raise Unsupported("`**` with a large exponent on a variable", node)
        r: Z = z3.IntVal(1, _ctx())
        for _ in range(exponent):
            r = base if z3.is_int_value(r) and r.as_long() == 1 else r * base
        return r, _and(ok, ok_k)

    def _boolop(self, node: ast.BoolOp, env: dict[str, _Var]) -> tuple[Z, Z]:
        evaluated = [self.eval(v, env) for v in node.values]
        vals = [v for v, _ in evaluated]
        is_and = isinstance(node.op, ast.And)
        # ok: each operand is evaluated only when the previous ones did not short-circuit
        ok = evaluated[-1][1]
        for v, ok_v in reversed(evaluated[:-1]):
            t = _truthy(v)
            ok = _and(ok_v, _implies(t if is_and else _not(t), ok))
        if all(_is_bool(v) for v in vals):
            return (z3.And(*vals) if is_and else z3.Or(*vals)), ok
        ints = _unify(vals)
        value = ints[-1]
        for orig, v in zip(reversed(vals[:-1]), reversed(ints[:-1]), strict=True):
            t = _truthy(orig)
            value = z3.If(_not(t) if is_and else t, v, value)
        return value, ok

    def _compare(self, node: ast.Compare, env: dict[str, _Var]) -> tuple[Z, Z]:
        left, ok = self.eval(node.left, env)
        parts: list[Z] = []
        oks: list[Z] = [ok]
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right, ok_r = self.eval(comp, env)
            # the right operand is evaluated only if every comparison so far held
            oks.append(_implies(_and(*parts), ok_r) if parts else ok_r)
            parts.append(self._compare_one(op, left, right, node))
            left = right
        return _and(*parts) if len(parts) > 1 else parts[0], _and(*oks)

    @staticmethod
    def _compare_one(op: ast.cmpop, a: Z, b: Z, node: ast.AST) -> Z:
        if isinstance(op, ast.Eq | ast.NotEq):
            x, y = _unify([a, b])
            return x == y if isinstance(op, ast.Eq) else x != y
        x, y = _as_int(a), _as_int(b)
        if isinstance(op, ast.Lt):
            return x < y
        if isinstance(op, ast.LtE):
            return x <= y
        if isinstance(op, ast.Gt):
            return x > y
        if isinstance(op, ast.GtE):
            return x >= y
        raise Unsupported(f"comparison `{type(op).__name__}`", node)

    def _call(self, node: ast.Call, env: dict[str, _Var]) -> tuple[Z, Z]:
        fn = node.func
        if not isinstance(fn, ast.Name) or fn.id not in _BUILTINS or fn.id in env or fn.id in self.local_names:
            raise Unsupported(f"call `{ast.unparse(node.func)}(...)`", node)
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise Unsupported(f"`{fn.id}` with keyword or starred arguments", node)
        args = [self.eval(a, env) for a in node.args]
        vals = [v for v, _ in args]
        ok = _and(*(o for _, o in args))
        if fn.id == "abs" and len(vals) == 1:
            x = _as_int(vals[0])
            return z3.If(x >= 0, x, -x), ok
        if fn.id == "int" and len(vals) == 1:
            return _as_int(vals[0]), ok
        if fn.id == "bool" and len(vals) == 1:
            return _truthy(vals[0]), ok
        if fn.id in ("min", "max") and len(vals) >= 2:
            us = _unify(vals)
            if all(_is_bool(v) for v in us):
                return (z3.And(*us) if fn.id == "min" else z3.Or(*us)), ok
            best = us[0]  # Python keeps the first of equal extremes
            for v in us[1:]:
                best = z3.If(v < best, v, best) if fn.id == "min" else z3.If(v > best, v, best)
            return best, ok
        raise Unsupported(f"`{fn.id}` with {len(vals)} argument(s)", node)

    # ------------------------------------------------------------------ statements

    def block(self, stmts: Sequence[ast.stmt], st: _State) -> _State:
        for stmt in stmts:
            if st.dead():
                break  # unreachable code after return/raise/break/continue
            st = self.stmt(stmt, st)
        return st

    def _assign(self, st: _State, name: str, value: Z) -> _State:
        env = dict(st.env)
        env[name] = _Var(value, _true())
        return _State(st.alive, env)

    def stmt(self, node: ast.stmt, st: _State) -> _State:
        if isinstance(node, ast.Pass):
            return st
        if isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant) and (isinstance(node.value.value, str) or node.value.value is ...):
                return st  # docstring or `...`
            _, ok = self.eval(node.value, st.env)
            return _State(_and(st.alive, ok), st.env)
        if isinstance(node, ast.Assign):
            return self._assign_stmt(node, st)
        if isinstance(node, ast.AnnAssign):
            if not isinstance(node.target, ast.Name):
                raise Unsupported("annotated assignment to a non-name", node)
            if node.value is None:
                return st
            v, ok = self.eval(node.value, st.env)
            return self._assign(_State(_and(st.alive, ok), st.env), node.target.id, v)
        if isinstance(node, ast.AugAssign):
            if not isinstance(node.target, ast.Name):
                raise Unsupported("augmented assignment to a non-name", node)
            load = ast.copy_location(ast.Name(id=node.target.id, ctx=ast.Load()), node)
            expr = ast.copy_location(ast.BinOp(left=load, op=node.op, right=node.value), node)
            v, ok = self.eval(expr, st.env)
            return self._assign(_State(_and(st.alive, ok), st.env), node.target.id, v)
        if isinstance(node, ast.If):
            c, ok = self.eval(node.test, st.env)
            t = _truthy(c)
            base = _and(st.alive, ok)
            then = self.block(node.body, _State(_and(base, t), st.env))
            other = self.block(node.orelse, _State(_and(base, _not(t)), st.env))
            return _merge([then, other])
        if isinstance(node, ast.Return):
            if node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None):
                self.returns.append((st.alive, None))
            else:
                v, ok = self.eval(node.value, st.env)
                self.returns.append((_and(st.alive, ok), v))
            return _State(_false(), st.env)
        if isinstance(node, ast.Raise):
            return _State(_false(), st.env)  # the path raises: it never returns
        if isinstance(node, ast.Assert):
            c, ok = self.eval(node.test, st.env)
            return _State(_and(st.alive, ok, _truthy(c)), st.env)
        if isinstance(node, ast.Break | ast.Continue):
            if not self.loops:
                raise Unsupported("`break`/`continue` outside a loop", node)
            frame = self.loops[-1]
            (frame.breaks if isinstance(node, ast.Break) else frame.continues).append(st)
            return _State(_false(), st.env)
        if isinstance(node, ast.For):
            return self._for(node, st)
        if isinstance(node, ast.While):
            return self._while(node, st)
        raise Unsupported(f"statement `{type(node).__name__}`", node)

    def _assign_stmt(self, node: ast.Assign, st: _State) -> _State:
        for target in node.targets:
            if isinstance(target, ast.Name):
                continue
            if isinstance(target, ast.Tuple | ast.List) and all(isinstance(e, ast.Name) for e in target.elts):
                if not isinstance(node.value, ast.Tuple | ast.List) or len(node.value.elts) != len(target.elts):
                    raise Unsupported("tuple assignment from a non-tuple", node)
                continue
            raise Unsupported(f"assignment to `{ast.unparse(target)}`", node)
        if isinstance(node.value, ast.Tuple | ast.List):
            if any(isinstance(t, ast.Name) for t in node.targets):
                raise Unsupported("assigning a tuple to a name", node)
            evaluated = [self.eval(e, st.env) for e in node.value.elts]
            st = _State(_and(st.alive, *(ok for _, ok in evaluated)), st.env)
            for target in node.targets:
                assert isinstance(target, ast.Tuple | ast.List)
                for elt, (v, _) in zip(target.elts, evaluated, strict=True):
                    assert isinstance(elt, ast.Name)
                    st = self._assign(st, elt.id, v)
            return st
        v, ok = self.eval(node.value, st.env)
        st = _State(_and(st.alive, ok), st.env)
        for target in node.targets:
            assert isinstance(target, ast.Name)
            st = self._assign(st, target.id, v)
        return st

    def _loop_body(self, body: Sequence[ast.stmt], st: _State, breaks: list[_State]) -> _State:
        frame = _Loop()
        self.loops.append(frame)
        try:
            end = self.block(body, st)
        finally:
            self.loops.pop()
        breaks.extend(frame.breaks)
        return _merge([end, *frame.continues])

    def _for(self, node: ast.For, st: _State) -> _State:
        it = node.iter
        if not isinstance(node.target, ast.Name):
            raise Unsupported("`for` target other than a name", node)
        if not (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id == "range"
            and "range" not in self.local_names
            and 1 <= len(it.args) <= 3
            and not it.keywords
            and not any(isinstance(a, ast.Starred) for a in it.args)
        ):
            raise Unsupported("`for` over something other than `range(...)`", node)
        evaluated = [self.eval(a, st.env) for a in it.args]
        if any(_is_bool(v) for v, _ in evaluated):
            evaluated = [(_as_int(v), ok) for v, ok in evaluated]
        if len(evaluated) == 1:
            start, stop, step = z3.IntVal(0, _ctx()), evaluated[0][0], z3.IntVal(1, _ctx())
        else:
            start, stop = evaluated[0][0], evaluated[1][0]
            step = evaluated[2][0] if len(evaluated) == 3 else z3.IntVal(1, _ctx())
        bounds = [z3.simplify(x) for x in (start, stop, step)]
        concrete = all(z3.is_int_value(x) for x in bounds)
        limit = self.concrete_cap if concrete else self.unroll
        if concrete:
            start, stop, step = bounds
        nonzero = z3.simplify(step != 0) if z3.is_int_value(bounds[2]) else step != 0  # range(.., 0): ValueError
        st = _State(_and(st.alive, *(ok for _, ok in evaluated), nonzero), st.env)

        up = bounds[2].as_long() > 0 if z3.is_int_value(bounds[2]) else None

        def enters(k: int) -> Z:
            i = z3.simplify(start + k * step) if concrete else start + k * step
            cond = z3.If(step > 0, i < stop, i > stop) if up is None else (i < stop if up else i > stop)
            return z3.simplify(cond) if concrete else cond

        exits: list[_State] = []
        breaks: list[_State] = []
        for k in range(limit):
            if st.dead():
                break
            cond = enters(k)
            exits.append(_State(_and(st.alive, _not(cond)), st.env))
            body = self._assign(_State(_and(st.alive, cond), st.env), node.target.id, start + k * step)
            st = self._loop_body(node.body, body, breaks)
        if not st.dead():
            cond = enters(limit)
            self.overflow.append(_and(st.alive, cond))
            exits.append(_State(_and(st.alive, _not(cond)), st.env))
        normal = _merge(exits)
        if node.orelse:
            normal = self.block(node.orelse, normal)
        return _merge([normal, *breaks])

    def _while(self, node: ast.While, st: _State) -> _State:
        exits: list[_State] = []
        breaks: list[_State] = []
        symbolic = 0
        for iteration in range(self.concrete_cap + 1):
            if st.dead():
                break
            c, ok = self.eval(node.test, st.env)
            cond = z3.simplify(_truthy(c))
            st = _State(_and(st.alive, ok), st.env)
            if z3.is_false(cond):
                exits.append(st)
                st = _State(_false(), st.env)
                break
            if not z3.is_true(cond):
                symbolic += 1
            if symbolic > self.unroll or iteration == self.concrete_cap:  # one iteration too many: cut it
                self.overflow.append(_and(st.alive, cond))
                exits.append(_State(_and(st.alive, _not(cond)), st.env))
                st = _State(_false(), st.env)
                break
            exits.append(_State(_and(st.alive, _not(cond)), st.env))
            st = self._loop_body(node.body, _State(_and(st.alive, cond), st.env), breaks)
        normal = _merge(exits)
        if node.orelse:
            normal = self.block(node.orelse, normal)
        return _merge([normal, *breaks])


# --------------------------------------------------------------------------------------------------- front end


def _parse_function(source: str) -> ast.FunctionDef:
    try:
        module = pyast.parse(textwrap.dedent(source))
        stmts = module.body
    except SyntaxError:
        try:  # e.g. a method whose docstring has lines less indented than the `def`
            stmts = pyast.parse("if 1:\n" + source).body
            stmts = stmts[0].body if stmts and isinstance(stmts[0], ast.If) else stmts
        except SyntaxError as exc:
            raise Unsupported(f"syntax error: {exc.msg}") from None
    for stmt in stmts:
        if isinstance(stmt, ast.FunctionDef):
            return stmt
        if isinstance(stmt, ast.AsyncFunctionDef):
            raise Unsupported("async function", stmt)
    raise Unsupported("no function definition")


def _annotation(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.strip()
    return None if node is None else ast.unparse(node)


def _params(fn: ast.FunctionDef) -> dict[str, Z]:
    args = fn.args
    if args.vararg or args.kwarg:
        raise Unsupported("`*args`/`**kwargs` parameters", fn)
    params: dict[str, Z] = {}
    all_args = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    for i, arg in enumerate(all_args):
        ann = _annotation(arg.annotation)
        if ann is None and i == 0 and arg.arg in ("self", "cls"):
            used = any(isinstance(n, ast.Name) and n.id == arg.arg for n in ast.walk(fn))
            if used:
                raise Unsupported(f"use of `{arg.arg}`", fn)
            continue
        if arg.arg == "result":
            raise Unsupported("a parameter named `result` clashes with the postconditions' `result`", arg)
        if ann == "int":
            params[arg.arg] = z3.Int(f"p!{len(params)}", _ctx())
        elif ann == "bool":
            params[arg.arg] = z3.Bool(f"p!{len(params)}", _ctx())
        elif ann is None:
            raise Unsupported(f"parameter `{arg.arg}` has no annotation", arg)
        else:
            raise Unsupported(f"parameter `{arg.arg}: {ann}`", arg)
    ret = _annotation(fn.returns)
    if ret not in (None, "int", "bool"):
        raise Unsupported(f"return type `{ret}`", fn)
    return params


@dataclass
class _Model:
    params: dict[str, Z]
    executor: _Executor
    result: Z  # the value returned (meaningful where ``ret_value`` holds)
    ret_value: Z  # the function returns an int/bool
    ret_none: Z  # the function returns None
    overflow: Z  # some loop ran past the unroll bound


def _build(source: str, unroll: int) -> _Model:
    fn = _parse_function(source)
    params = _params(fn)
    local_names = _assigned_names(fn) | set(params)
    ex = _Executor(local_names, unroll)
    env = {name: _Var(v, _true()) for name, v in params.items()}
    end = ex.block(fn.body, _State(_true(), env))
    if not end.dead():
        ex.returns.append((end.alive, None))  # falls off the end
    values = [(g, v) for g, v in ex.returns if v is not None and not z3.is_false(g)]
    result: Z = z3.IntVal(0, _ctx())
    if values:
        vals = _unify([v for _, v in values])
        result = vals[-1]
        for (g, _), v in zip(reversed(values[:-1]), reversed(vals[:-1]), strict=True):
            result = result if v.eq(result) else z3.If(g, v, result)
    return _Model(
        params=params,
        executor=ex,
        result=result,
        ret_value=_or([g for g, _ in values]),
        ret_none=_or([g for g, v in ex.returns if v is None]),
        overflow=_or(ex.overflow),
    )


def _condition(text: str, env: dict[str, _Var], ex: _Executor) -> tuple[Z, Z, bool]:
    """(value, no-raise condition, mentions ``result``) of a pre/postcondition."""
    try:
        expression = pyast.parse_expression(text.strip())
    except SyntaxError as exc:
        raise Unsupported(f"syntax error: {exc.msg}") from None
    mentions = any(isinstance(n, ast.Name) and n.id == "result" for n in ast.walk(expression))
    saved = ex.local_names
    ex.local_names = set()  # in a condition, unknown names are globals
    try:
        v, ok = ex.eval(expression, env)
    finally:
        ex.local_names = saved
    return _truthy(v), ok, mentions


# --------------------------------------------------------------------------------------------------- solving
#
# z3 does not always honour its time limit (``timeout``, ``rlimit``, even ``Context.interrupt``) on nonlinear integer
# problems: an unrolled ``gcd`` ran for minutes. Queries therefore run in a worker process (``python -c`` importing
# this module), sent as SMT-LIB text, and a worker that overruns its deadline is killed. Idle workers are reused.


@dataclass(frozen=True)
class _Answer:
    status: Literal["sat", "unsat", "unknown"]
    values: dict[str, str]  # on sat: SMT name -> Python literal
    reason: str = ""


def _solve_smt2(smt2: str, names: Sequence[tuple[str, str]], timeout_ms: int) -> _Answer:
    """Check SMT-LIB assertions; on sat, the values of the named Int/Bool constants."""
    ctx = z3.Context()
    solver = z3.Solver(ctx=ctx)
    solver.set("timeout", max(1, timeout_ms))
    solver.from_string(smt2)
    res = solver.check()
    if res == z3.sat:
        model = solver.model()
        make = {"Int": z3.Int, "Bool": z3.Bool}
        values = {n: _literal(model.eval(make[sort](n, ctx), model_completion=True)) for n, sort in names}
        return _Answer("sat", values)
    if res == z3.unsat:
        return _Answer("unsat", {})
    return _Answer("unknown", {}, str(solver.reason_unknown()))


def _serve() -> None:
    """Worker loop: one JSON request per stdin line, one JSON answer per line on the original stdout."""
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything else printed goes to stderr
    proto.write('{"ready": true}\n')
    proto.flush()
    for line in sys.stdin:
        req = json.loads(line)
        _limit_cpu(req["timeout_ms"])
        try:
            ans = _solve_smt2(req["smt2"], [(n, s) for n, s in req["names"]], req["timeout_ms"])
        except z3.Z3Exception as exc:
            ans = _Answer("unknown", {}, f"z3 error: {exc}")
        proto.write(json.dumps({"status": ans.status, "values": ans.values, "reason": ans.reason}) + "\n")
        proto.flush()


def _limit_cpu(timeout_ms: int) -> None:
    """Backstop in the worker: the OS ends it if one query burns far more CPU than its time limit."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(usage.ru_utime + usage.ru_stime + 2 * timeout_ms / 1000 + 10)
    if hard == resource.RLIM_INFINITY or soft <= hard:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


class _Worker:
    """A solver process, talked to over pipes; killed when a query overruns."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[3])
        code = (
            f"import sys; sys.path.insert(0, {root!r}); from lift_lsp.check.contracts.z3_engine import _serve; _serve()"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.ready = False
        threading.Thread(target=self._pump, daemon=True).start()
        with _LOCK:
            _LIVE.add(self)

    def _pump(self) -> None:
        out = self.proc.stdout
        assert out is not None
        for line in out:
            self.lines.put(line)
        self.lines.put("")  # end of file: the worker died

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        with _LOCK:
            _LIVE.discard(self)

    def _read(self, timeout_s: float) -> dict[str, Any] | None:
        try:
            line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if not line:
            return None
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, smt2: str, names: Sequence[tuple[str, str]], timeout_ms: int) -> _Answer | None:
        """The answer, or None when the worker failed or overran (it is then killed)."""
        try:
            if not self.ready:
                self.ready = self._read(_STARTUP_S) is not None
                if not self.ready:
                    raise OSError("solver worker did not start")
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"smt2": smt2, "names": list(names), "timeout_ms": timeout_ms}) + "\n")
            self.proc.stdin.flush()
            reply = self._read(timeout_ms / 1000 * 1.5 + 1.0)
        except (OSError, ValueError):
            reply = None
        if reply is None:
            self.kill()
            return None
        return _Answer(reply["status"], dict(reply["values"]), str(reply["reason"]))


_STARTUP_S = 60.0
_MAX_IDLE = 2
_LOCK = threading.Lock()
_IDLE: list[_Worker] = []
_LIVE: set[_Worker] = set()


@atexit.register
def _kill_workers() -> None:
    with _LOCK:
        workers = list(_LIVE)
    for w in workers:
        w.kill()


def _ask_worker(smt2: str, names: Sequence[tuple[str, str]], timeout_ms: int) -> _Answer:
    with _LOCK:
        worker = _IDLE.pop() if _IDLE else None
    if worker is None:
        try:
            worker = _Worker()
        except OSError:  # no subprocesses here: solve in this process (z3's own time limit only)
            return _solve_smt2(smt2, names, timeout_ms)
    answer = worker.ask(smt2, names, timeout_ms)
    if answer is None:
        return _Answer("unknown", {}, f"timeout: solver stopped after {timeout_ms} ms")
    with _LOCK:
        keep = len(_IDLE) < _MAX_IDLE
        if keep:
            _IDLE.append(worker)
    if not keep:
        worker.kill()
    return answer


def _solve(constraints: Sequence[Z], timeout_ms: int, wanted: Sequence[Z] = ()) -> _Answer:
    """Check the conjunction; on sat, ``values`` holds ``_literal`` of each ``wanted`` term under its index."""
    ctx = _ctx()
    solver = z3.Solver(ctx=ctx)
    solver.add(*constraints)
    names: list[tuple[str, str]] = []
    for i, term in enumerate(wanted):
        sort = "Bool" if _is_bool(term) else "Int"
        name = f"w!{i}"
        solver.add((z3.Bool if sort == "Bool" else z3.Int)(name, ctx) == term)
        names.append((name, sort))
    answer = _ask_worker(solver.to_smt2(), names, timeout_ms)
    if answer.status != "sat":
        return answer
    return _Answer("sat", {str(i): answer.values[n] for i, (n, _) in enumerate(names)})


def check_postconditions(
    function_source: str,
    preconditions: Sequence[str],
    postconditions: Sequence[str],
    timeout_ms: int = 2000,
    unroll: int = 16,
) -> list[SmtVerdict]:
    """Prove each postcondition of ``function_source`` under the preconditions, or find a counterexample."""
    token = _CONTEXT.set(z3.Context())
    try:
        return _check_all(function_source, preconditions, postconditions, timeout_ms, unroll)
    finally:
        _CONTEXT.reset(token)


def _check_all(
    function_source: str, preconditions: Sequence[str], postconditions: Sequence[str], timeout_ms: int, unroll: int
) -> list[SmtVerdict]:
    try:
        m = _build(function_source, unroll)
    except Unsupported as exc:
        return [SmtVerdict(p, "unsupported", message=f"unsupported: {exc}") for p in postconditions]
    except RecursionError:
        return [SmtVerdict(p, "unsupported", message="unsupported: function too deeply nested") for p in postconditions]

    param_env = {name: _Var(v, _true()) for name, v in m.params.items()}
    pres: list[Z] = []
    skipped: list[str] = []
    for text in preconditions:
        try:
            v, ok, _ = _condition(text, param_env, m.executor)
        except Unsupported:
            skipped.append(text)
            continue
        pres.append(_and(ok, v))
    pre = _and(*pres)
    post_env = {**param_env, "result": _Var(m.result, _true())}
    return [_check_one(m, post, pre, skipped, post_env, timeout_ms, unroll) for post in postconditions]


def _check_one(
    m: _Model, post: str, pre: Z, skipped: list[str], env: dict[str, _Var], timeout_ms: int, unroll: int
) -> SmtVerdict:
    try:
        holds, ok, mentions = _condition(post, env, m.executor)
    except Unsupported as exc:
        return SmtVerdict(post, "unsupported", message=f"unsupported post `{post}`: {exc}")
    good = _and(ok, holds)
    if mentions:  # returning None cannot satisfy a condition on an int/bool result
        violation = _or([_and(m.ret_value, _not(good)), m.ret_none])
    else:
        violation = _and(_or([m.ret_value, m.ret_none]), _not(good))
    params = list(m.params.items())
    wanted = [v for _, v in params] + [m.result, m.ret_none, ok]
    ans = _solve([pre, violation, *m.executor.axioms], timeout_ms, wanted)
    if ans.status == "sat":
        vals = [ans.values[str(i)] for i in range(len(wanted))]
        cex = {name: vals[i] for i, (name, _) in enumerate(params)}
        value, returns_none, post_ok = vals[len(params) :]
        where = ", ".join(f"{k}={v}" for k, v in cex.items())
        if skipped:
            return SmtVerdict(
                post,
                "unsupported",
                message=f"possible counterexample {where}, but precondition `{skipped[0]}` is outside the fragment",
            )
        if mentions and returns_none == "True":
            return SmtVerdict(post, "counterexample", cex, "None", f"returns None for {where}; post `{post}` fails")
        verb = "raises" if post_ok == "False" else "fails"
        return SmtVerdict(post, "counterexample", cex, value, f"post `{post}` {verb} for {where} (result={value})")
    if ans.status == "unknown":
        return SmtVerdict(post, "unknown", message=f"post `{post}`: solver returned unknown ({ans.reason})")
    if not z3.is_false(m.overflow):
        bounded = _solve([pre, m.overflow, *m.executor.axioms], timeout_ms)
        if bounded.status != "unsat":
            why = "loops may run longer" if bounded.status == "sat" else f"loop bound undecided ({bounded.reason})"
            return SmtVerdict(post, "unknown", message=f"post `{post}` holds for up to {unroll} loop iterations; {why}")
    note = f" (precondition `{skipped[0]}` ignored)" if skipped else ""
    if _solve([pre, _or([m.ret_value, m.ret_none]), *m.executor.axioms], timeout_ms).status == "unsat":
        note += " (vacuously: no input allowed by the preconditions returns)"
    return SmtVerdict(post, "proved", message=f"post `{post}` proved{note}")
