"""Shared pieces of the benchmarks: seeded Python modules with specs, request timing, statistics, results.

The module generator writes functions whose docstring examples are computed by running the function itself (so
they are correct unless asked to be wrong), in the spec styles lift-lsp reads: Google, NumPy, reST, plain doctests,
prose examples, PEP 316 contracts, `# spec:` comments; some stubs, some classes with methods.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lift_lsp.benchmark import percentile

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
T = TypeVar("T")

# ---------------------------------------------------------------- statistics and output


def quantile_ms(seconds: Sequence[float], q: float) -> float:
    """The q-quantile of durations in seconds, in milliseconds (`lift_lsp.benchmark.percentile`); nan for none."""
    value = percentile(seconds, q)
    return math.nan if value is None else round(value * 1e3, 3)


def summary_ms(seconds: Sequence[float]) -> dict[str, float | int]:
    """n, mean, p50, p95, p99, min and max of durations given in seconds, in milliseconds."""
    if not seconds:
        return {"n": 0}
    return {
        "n": len(seconds),
        "mean_ms": round(statistics.fmean(seconds) * 1e3, 3),
        "p50_ms": quantile_ms(seconds, 0.5),
        "p95_ms": quantile_ms(seconds, 0.95),
        "p99_ms": quantile_ms(seconds, 0.99),
        "min_ms": round(min(seconds) * 1e3, 3),
        "max_ms": round(max(seconds) * 1e3, 3),
    }


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table, first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in header], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.1f}"
    return str(value)


def write_json(path: Path, report: dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


# ---------------------------------------------------------------- timing requests


async def timed(request: Awaitable[T], timeout_s: float = 120.0) -> tuple[T, float]:
    """(the result, the seconds from sending the request to having its response). A pygls client request
    (`client.text_document_hover_async(...)`) is a coroutine: it is written when awaited here; its time ends when
    the client has decoded the response (the same client and the same decoding for every server measured)."""
    started = time.perf_counter()
    async with asyncio.timeout(timeout_s):
        result = await request
    return result, time.perf_counter() - started


# ---------------------------------------------------------------- seeded modules with specs


@dataclass(frozen=True)
class Recipe:
    """A function shape: its parameters (name, annotation, description), return, code, example arguments."""

    stem: str
    summary: str
    params: tuple[tuple[str, str, str], ...]
    returns: tuple[str, str]
    body: str
    """Indented by four spaces; may use {c} (a per-function constant) and {helper} (an earlier function)."""
    args: Callable[[random.Random], tuple[Any, ...]]
    raises: tuple[tuple[str, str], ...] = ()
    pre: tuple[str, ...] = ()
    post: tuple[str, ...] = ()
    needs_helper: bool = False


def _ints(n: int, lo: int = -20, hi: int = 40) -> Callable[[random.Random], tuple[Any, ...]]:
    return lambda r: tuple(r.randint(lo, hi) for _ in range(n))


def _int_list(r: random.Random) -> tuple[Any, ...]:
    return ([r.randint(-9, 30) for _ in range(r.randint(0, 6))],)


def _words(r: random.Random) -> tuple[Any, ...]:
    pool = ["alpha", "beta", "gamma", "delta", "beta", "alpha", "pi", "rho"]
    return ([r.choice(pool) for _ in range(r.randint(0, 5))],)


def _text(r: random.Random) -> tuple[Any, ...]:
    pool = ["Hello", "World", "lift", "Spec", "to", "Code", "again"]
    return (" ".join(r.choice(pool) for _ in range(r.randint(1, 4))),)


def _clamp_args(r: random.Random) -> tuple[Any, ...]:
    lo = r.randint(-10, 10)
    return (r.randint(-30, 30), lo, lo + r.randint(0, 20))


def _div_args(r: random.Random) -> tuple[Any, ...]:
    return (r.randint(-50, 50), r.choice([0, 1, 2, 3, 5, 7, -4]))


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        "scale",
        "Scale x by k and shift the result by a constant.",
        (("x", "int", "the value to scale"), ("k", "int", "the factor")),
        ("int", "x * k plus the constant"),
        "    return x * k + {c}\n",
        _ints(2),
        post=("__return__ == x * k + {c}",),
    ),
    Recipe(
        "clamp",
        "Clamp x into the closed interval [lo, hi].",
        (("x", "int", "the value"), ("lo", "int", "the lower bound"), ("hi", "int", "the upper bound")),
        ("int", "the nearest value to x within the bounds"),
        "    if x < lo:\n        return lo\n    if x > hi:\n        return hi\n    return x\n",
        _clamp_args,
        pre=("lo <= hi",),
        post=("lo <= __return__ <= hi",),
    ),
    Recipe(
        "distance",
        "The absolute difference of two integers.",
        (("a", "int", "the first integer"), ("b", "int", "the second integer")),
        ("int", "how far apart a and b are"),
        "    if a > b:\n        return a - b\n    return b - a\n",
        _ints(2),
        post=("__return__ >= 0",),
    ),
    Recipe(
        "weighted_total",
        "Sum the values, each weighted by its position plus a constant.",
        (("values", "list[int]", "the values to add up"),),
        ("int", "the weighted sum"),
        "    total = 0\n    for i, v in enumerate(values):\n        total += v * (i + {c})\n    return total\n",
        _int_list,
    ),
    Recipe(
        "running_max",
        "The running maximum of a list of integers.",
        (("values", "list[int]", "the integers, in order"),),
        ("list[int]", "a list whose i-th item is the maximum of the first i + 1 values"),
        "    out: list[int] = []\n    for v in values:\n        out.append(v if not out else max(out[-1], v))\n"
        "    return out\n",
        _int_list,
    ),
    Recipe(
        "slug",
        "Lower-case words joined by dashes.",
        (("text", "str", "the text to turn into a slug"),),
        ("str", "the slug"),
        '    return "-".join(text.lower().split())\n',
        _text,
    ),
    Recipe(
        "count_upper",
        "Count the upper-case letters in a text.",
        (("text", "str", "the text to scan"),),
        ("int", "how many upper-case letters it holds"),
        "    return sum(1 for ch in text if ch.isupper())\n",
        _text,
    ),
    Recipe(
        "safe_div",
        "Integer division that refuses a zero divisor.",
        (("a", "int", "the dividend"), ("b", "int", "the divisor")),
        ("int", "a // b"),
        '    if b == 0:\n        raise ValueError("division by zero")\n    return a // b\n',
        _div_args,
        raises=(("ValueError", "if b is zero"),),
    ),
    Recipe(
        "tally",
        "Count how often each word occurs.",
        (("words", "list[str]", "the words"),),
        ("dict[str, int]", "each distinct word with its count"),
        "    counts: dict[str, int] = {{}}\n    for w in words:\n        counts[w] = counts.get(w, 0) + 1\n"
        "    return counts\n",
        _words,
    ),
    Recipe(
        "triangle",
        "The sum of i * c for i below n.",
        (("n", "int", "how many terms"),),
        ("int", "the sum"),
        "    acc = 0\n    for i in range(n):\n        acc += i * {c}\n    return acc\n",
        _ints(1, 0, 12),
        pre=("n >= 0",),
        post=("__return__ >= 0",),
    ),
    Recipe(
        "combine",
        "Combine x with an earlier helper's result.",
        (("x", "int", "the input"),),
        ("int", "the helper's value for x, plus a constant"),
        "    return {helper}(x, {c}) + {c}\n",
        _ints(1),
        needs_helper=True,
    ),
)

STYLES = ("google", "numpy", "rest", "doctest", "prose", "contract", "comment")


@dataclass
class Generated:
    text: str
    functions: int = 0
    stubs: int = 0
    methods: int = 0
    examples: int = 0
    wrong_examples: int = 0
    styles: dict[str, int] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        return {
            "lines": self.text.count("\n"),
            "functions": self.functions,
            "stubs": self.stubs,
            "methods": self.methods,
            "examples": self.examples,
            "wrong_examples": self.wrong_examples,
            "styles": dict(sorted(self.styles.items())),
        }


class ModuleWriter:
    """Builds a module function by function, running each one (in this process: the code is ours) to compute its
    examples' results."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.parts: list[str] = ['"""Generated by bench/common.py: functions with specs in mixed styles."""\n\n']
        self.namespace: dict[str, Any] = {}
        self.helpers: list[str] = []
        self.out = Generated(text="")
        self.serial = 0

    def text(self) -> str:
        return "".join(self.parts)

    def lines(self) -> int:
        return self.text().count("\n")

    def _name(self, stem: str) -> str:
        self.serial += 1
        return f"{stem}_{self.serial:04d}"

    def function(
        self,
        style: str | None = None,
        examples: int | None = None,
        stub: bool = False,
        wrong: int = 0,
        recipe: Recipe | None = None,
    ) -> None:
        rng = self.rng
        if recipe is None:
            choices = [r for r in RECIPES if self.helpers or not r.needs_helper]
            recipe = rng.choice(choices)
        style = style or rng.choice(STYLES)
        if (style == "contract" and not recipe.post) or (style in ("prose", "comment") and recipe.raises):
            style = "google"  # contracts need a postcondition; prose examples have no form for a raise
        name = self._name(recipe.stem)
        c = rng.randint(1, 9)
        helper = rng.choice(self.helpers) if recipe.needs_helper else ""
        body = recipe.body.format(c=c, helper=helper)
        params = ", ".join(f"{p}: {t}" for p, t, _ in recipe.params)
        untyped = stub and rng.random() < 0.3
        if untyped:  # no annotations: the spec leaves the types open (holes)
            params = ", ".join(p for p, _, _ in recipe.params)
        signature = f"def {name}({params})" + ("" if untyped else f" -> {recipe.returns[0]}") + ":\n"
        exec(compile(f"{signature}{body}", f"<bench {name}>", "exec"), self.namespace)
        calls = self._examples(name, recipe, examples if examples is not None else rng.randint(1, 3), wrong)
        pre = [p.format(c=c) for p in recipe.pre]
        post = [p.format(c=c) for p in recipe.post]
        spec = _docstring(style, recipe, calls, pre, post)
        code = "    ...\n" if stub else body
        if stub:
            code = rng.choice(["    ...\n", "    pass\n", "    raise NotImplementedError\n"])
        if style == "comment":
            comment = "".join(f"# {line}".rstrip() + "\n" for line in spec.splitlines())
            self.parts.append(f"{comment}{signature}{code}\n\n")
        else:
            self.parts.append(f'{signature}    """{spec}    """\n{code}\n\n')
        self.out.functions += 1
        self.out.stubs += stub
        self.out.examples += len(calls)
        self.out.wrong_examples += sum(w for _, _, w in calls)
        self.out.styles[style] = self.out.styles.get(style, 0) + 1
        if not stub and len(recipe.params) == 2 and recipe.params[1][1] == "int" and recipe.returns[0] == "int":
            self.helpers.append(name)

    def _examples(self, name: str, recipe: Recipe, n: int, wrong: int) -> list[tuple[str, str, bool]]:
        """(call, expected output or `raises Name`, is_wrong) for n distinct argument tuples."""
        out: list[tuple[str, str, bool]] = []
        seen: set[str] = set()
        for _ in range(20 * n):
            if len(out) == n:
                break
            args = recipe.args(self.rng)
            call = f"{name}({', '.join(repr(a) for a in args)})"
            if call in seen:
                continue
            seen.add(call)
            try:
                result = self.namespace[name](*args)
            except Exception as err:
                out.append((call, f"raises {type(err).__name__}: {err}", False))
                continue
            is_wrong = len(out) >= n - wrong
            if is_wrong:
                result = _perturb(result)
            out.append((call, repr(result), is_wrong))
        return out

    def klass(self) -> None:
        """A class with a constructor and two methods whose examples build the object first."""
        rng = self.rng
        name = f"Counter{self._name('c').split('_')[1]}"
        start, step = rng.randint(0, 9), rng.randint(1, 5)
        bump = rng.randint(1, 6)
        self.parts.append(
            f'class {name}:\n    """A counter that starts at a value and moves in steps of {step}."""\n\n'
            f"    def __init__(self, start: int) -> None:\n"
            f'        """Make a counter.\n\n        Args:\n            start: the first value.\n        """\n'
            f"        self.value = start\n\n"
            f"    def advance(self, times: int) -> int:\n"
            f'        """Move the counter forward and return its new value.\n\n'
            f"        Args:\n            times: how many steps to take.\n\n"
            f"        Returns:\n            The value after the steps.\n\n"
            f"        >>> {name}({start}).advance(3)\n        {start + 3 * step}\n"
            f'        """\n'
            f"        self.value += times * {step}\n        return self.value\n\n"
            f"    def peek(self, extra: int = {bump}) -> int:\n"
            f'        """The value plus extra, without moving.\n\n'
            f"        :param extra: what to add.\n        :returns: value + extra.\n\n"
            f"        >>> {name}({start}).peek()\n        {start + bump}\n"
            f'        """\n'
            f"        return self.value + extra\n\n"
            f"    def reset(self, to: int) -> None:\n"
            f'        """Put the counter back at `to`."""\n'
            f"        ...\n\n\n"
        )
        self.out.methods += 4
        self.out.functions += 4
        self.out.stubs += 1
        self.out.examples += 2
        self.out.styles["class"] = self.out.styles.get("class", 0) + 1


def _perturb(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "!"
    if isinstance(value, list):
        return [*value, 0]
    if isinstance(value, dict):
        return {**value, "zzz": 1}
    return None


def _docstring(style: str, recipe: Recipe, calls: list[tuple[str, str, bool]], pre: list[str], post: list[str]) -> str:
    """The spec text (starting right after the opening quotes, ending with a newline and the closing indent)."""
    ind = "    "
    lines = [recipe.summary, ""]

    def doctests(prefix: str = "") -> list[str]:
        out: list[str] = []
        for call, expected, _ in calls:
            out.append(f"{prefix}>>> {call}")
            if expected.startswith("raises "):
                out += [f"{prefix}Traceback (most recent call last):", f"{prefix}{expected.removeprefix('raises ')}"]
            else:
                out.append(f"{prefix}{expected}")
        return out

    if style == "google":
        lines += ["Args:", *[f"{ind}{p} ({t}): {d}." for p, t, d in recipe.params], ""]
        lines += ["Returns:", f"{ind}{recipe.returns[1].capitalize()}.", ""]
        if recipe.raises:
            lines += ["Raises:", *[f"{ind}{e}: {w}." for e, w in recipe.raises], ""]
        lines += ["Examples:", *doctests(ind)]
    elif style == "numpy":
        lines += ["Parameters", "----------"]
        for p, t, d in recipe.params:
            lines += [f"{p} : {t}", f"{ind}{d.capitalize()}."]
        lines += ["", "Returns", "-------", recipe.returns[0], f"{ind}{recipe.returns[1].capitalize()}.", ""]
        if recipe.raises:
            lines += ["Raises", "------", *[f"{e}\n{ind}{w.capitalize()}." for e, w in recipe.raises], ""]
        lines += ["Examples", "--------", *doctests()]
    elif style == "rest":
        for p, t, d in recipe.params:
            lines += [f":param {p}: {d}", f":type {p}: {t}"]
        lines += [f":returns: {recipe.returns[1]}", f":rtype: {recipe.returns[0]}"]
        lines += [f":raises {e}: {w}" for e, w in recipe.raises]
        lines += ["", *doctests()]
    elif style in ("prose", "comment"):
        for call, expected, _ in calls:
            if expected.startswith("raises "):
                lines.append(f"{call} raises {expected.removeprefix('raises ').split(':')[0]}")
            else:
                lines.append(f"{call} => {expected}" if style == "prose" else f"{call} == {expected}")
    elif style == "contract":
        lines += [f"pre: {p}" for p in pre] + [f"post: {p}" for p in post] + [""]
        lines += doctests()
    else:  # doctest
        lines += doctests()
    if style == "comment":
        return "spec: " + "\n".join(lines).rstrip() + "\n"
    text = "\n".join(f"{ind}{line}" if line and i else line for i, line in enumerate(lines))
    return text.rstrip() + "\n"


def generate_module(lines: int, seed: int) -> Generated:
    """Exactly `lines` lines of functions, stubs and classes (padded with comment lines); seeded."""
    writer = ModuleWriter(seed)
    while True:
        parts, counts = list(writer.parts), copy.deepcopy(writer.out)
        roll = writer.rng.random()
        if roll < 0.08:
            writer.klass()
        else:
            writer.function(stub=roll > 0.85)
        if writer.lines() > lines:  # the last piece overshot: drop it
            writer.parts, writer.out = parts, counts
            break
    text = writer.text()
    writer.out.text = text + "".join(f"# padding {i}\n" for i in range(lines - text.count("\n")))
    return writer.out


def generate_check_module(functions: int, examples: int, wrong: int, seed: int) -> Generated:
    """`functions` implemented functions with `examples` examples each; the last example of `wrong` of them (spread
    over the module) is wrong. No classes, no stubs: every example runs."""
    writer = ModuleWriter(seed)
    wrong_at = set(writer.rng.sample(range(functions), min(wrong, functions)))
    no_raise = [r for r in RECIPES if not r.raises]  # a raising example is still one example, but keep it simple
    styles = [s for s in STYLES if s != "comment"] + ["comment"]
    for i in range(functions):
        recipe = writer.rng.choice([r for r in no_raise if writer.helpers or not r.needs_helper])
        writer.function(style=styles[i % len(styles)], examples=examples, wrong=int(i in wrong_at), recipe=recipe)
    writer.out.text = writer.text()
    return writer.out


def def_positions(text: str) -> list[tuple[int, int, str, int]]:
    """(line, name column, name, line length) of every `def` in `text` (0-based lines)."""
    out: list[tuple[int, int, str, int]] = []
    for row, line in enumerate(text.split("\n")):
        m = re.match(r"^(\s*)def\s+(\w+)", line)
        if m:
            out.append((row, m.start(2), m.group(2), len(line)))
    return out


def run_quietly(command: Sequence[str], cwd: Path | None = None, timeout_s: float = 300) -> tuple[int, float, str]:
    """Run a command; (exit code, wall seconds from spawn to exit, stderr tail)."""
    started = time.perf_counter()
    done = subprocess.run(list(command), cwd=cwd, capture_output=True, timeout=timeout_s, check=False)
    return done.returncode, time.perf_counter() - started, done.stderr.decode(errors="replace")[-2000:]


def venv_tool(name: str) -> str | None:
    """A console script installed beside this interpreter (the virtualenv's bin/), if there is one."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None
