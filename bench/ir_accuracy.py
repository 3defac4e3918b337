"""How faithfully the IR reads real docstrings: the documented functions of popular libraries in each style, read by
lift-lsp and by that style's own parser.

    .venv/bin/python -m bench.ir_accuracy [--workers N] [--out bench/results/ir_accuracy.json]

The libraries are pinned wheels that pip downloads from PyPI into `bench/.cache/wheels/` (once; they are read as zip
archives, never installed or imported). Every function with a docstring in every `.py` file of a wheel is read twice:
- by the style's reference parser on the docstring as Python has it (`ast.get_docstring`, cleaned as
  `inspect.cleandoc` does): numpydoc's `NumpyDocString` for NumPy style (a parameter line written without the space
  before the colon, `x: str`, which numpydoc reads whole as a name, read as its author means it: `x : str`),
  docstring_parser's Google, reST and Epydoc parsers for the others. A function is *documented* when the reference
  finds a parameter, a return or a raise in it.
- by lift-lsp, as a user's hover does: `extract_file(source, types=False)` on the whole file, then the function's IR
  (and, for a documented parameter that is not in the signature, the docstring reading the IR is built from).

Per style: the share of the reference's documented parameters whose description (and, separately, type as written)
the IR holds; of returns with a description, and with a type; of raises (exception and description). Texts are
compared with whitespace normalised; a text the IR cut at its bound (ending in "…") counts when what it kept is the
reference's start. A *mis-parse* is an IR value that differs from the reference's (a wrong description, type, return
or exception); a crash is one too. *Beyond the reference*: parameters, returns or raises the IR reads where the
reference reads none (sections the reference parser does not know, such as Google's `Keyword Args:`); counted, not
scored. Docstrings the reference rejects are left out and counted.

Prints a table (also the one README shows), writes JSON with samples of every miss and mis-parse.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import math
import os
import re
import subprocess
import sys
import time
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Any, Literal

from bench.common import REPO, RESULTS, machine, write_json

Style = Literal["numpy", "google", "rest", "epydoc"]
LIBRARIES: dict[Style, tuple[str, ...]] = {
    "numpy": ("networkx==3.6.1", "pandas==3.1.1", "scikit-learn==1.9.1"),
    "google": ("transformers==5.24.0", "google-auth==2.63.0", "google-api-core==2.44.0", "absl-py==2.5.1"),
    "rest": (
        "openstacksdk==4.22.0",
        "azure-core==1.41.0",
        "azure-storage-blob==12.31.1",
        "requests==2.34.2",
        "paramiko==5.1.0",
        "github3.py==4.0.1",
    ),
    "epydoc": ("twisted==26.10.0", "wokkel==18.0.0", "klein==24.8.0", "pydoctor==25.10.1"),
}
STYLE_NAMES: dict[Style, str] = {"numpy": "NumPy", "google": "Google", "rest": "reST", "epydoc": "Epydoc"}
REFERENCES: dict[Style, str] = {
    "numpy": "numpydoc",
    "google": "docstring_parser (google)",
    "rest": "docstring_parser (rest)",
    "epydoc": "docstring_parser (epydoc)",
}
MEASURES = ("param_description", "param_type", "returns_description", "returns_type", "raises")
MEASURE_NAMES = {
    "param_description": "parameters: description",
    "param_type": "parameters: type as written",
    "returns_description": "returns: description",
    "returns_type": "returns: type as written",
    "raises": "raises: exception and description",
}
CACHE = REPO / "bench" / ".cache" / "wheels"
SAMPLES = 12


# ---------------------------------------------------------------- what the reference reads


@dataclass(frozen=True)
class Reference:
    params: list[tuple[str, str | None, str]]
    """(name, type as written, description) of each documented parameter."""
    returns: list[tuple[str, str | None, str]]
    """(name, type, description) of each return entry (NumPy style may name several)."""
    raises: list[tuple[str | None, str]]
    """(exception, description)."""


def _words(text: str | None) -> str:
    return " ".join((text or "").split())


_ATTRIBUTES = {"attribute", "ivar", "cvar", "var"}
_EPYDOC_ATTRIBUTE = re.compile(r"^@(?:ivar|cvar|var)\b.*?(?=^@|\Z)", re.S | re.M)
"""Fields docstring_parser reads as parameters that document attributes."""


_NAME_COLON_TYPE = re.compile(r"(?P<names>\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s*:(?!/)\s*(?P<type>.*)")
"""A parameter line without the space before the colon (`x: str`, `G, H: graphs`), which numpydoc reads whole as a
name."""


def _as_meant(name: str, type_text: str) -> tuple[str, str]:
    """A numpydoc parameter's names and type as its author means them: `x: str` read as `x : str`."""
    match = None if type_text else _NAME_COLON_TYPE.fullmatch(name.strip())
    return (match["names"], match["type"]) if match else (name, type_text)


def reference(style: Style, docstring: str) -> Reference:
    """What the style's own parser reads in a docstring (as Python has it: numpydoc is given it cleaned, as
    `inspect.getdoc` does; docstring_parser cleans it itself)."""
    if style == "epydoc":  # docstring_parser keeps attributes and parameters in one table: a same-named one overwrites
        docstring = _EPYDOC_ATTRIBUTE.sub("", inspect.cleandoc(docstring))
    if style == "numpy":
        from numpydoc.docscrape import NumpyDocString

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            doc = NumpyDocString(inspect.cleandoc(docstring))
        params = [
            (name.strip().lstrip("*"), _words(type_text) or None, _words(" ".join(e.desc)))
            for e in [*doc["Parameters"], *doc["Other Parameters"]]
            for names, type_text in [_as_meant(e.name, e.type)]
            for name in names.split(",")
            if name.strip()
        ]
        entries = doc["Returns"] or doc["Yields"]
        returns = [(e.name, _words(e.type) or None, _words(" ".join(e.desc))) for e in entries]
        raises = [(e.name or e.type, _words(" ".join([e.type if e.name else "", *e.desc]))) for e in doc["Raises"]]
        return Reference(params, returns, raises)
    from docstring_parser import epydoc, google, rest

    parsed = {"google": google, "rest": rest, "epydoc": epydoc}[style].parse(docstring)
    return Reference(
        [
            (p.arg_name.lstrip("*"), _words(p.type_name) or None, _words(p.description))
            for p in parsed.params
            if p.args[0] not in _ATTRIBUTES
        ],
        [("", _words(r.type_name) or None, _words(r.description)) for r in parsed.many_returns[:1]],
        [(r.type_name or None, _words(r.description)) for r in parsed.raises],
    )


# ---------------------------------------------------------------- one file: both readings compared


@dataclass
class Tally:
    docstrings: int = 0
    documented: int = 0
    reference_failed: int = 0
    crashed: int = 0
    total: Counter[str] = field(default_factory=Counter)
    right: Counter[str] = field(default_factory=Counter)
    misparsed: Counter[str] = field(default_factory=Counter)
    runs_on: Counter[str] = field(default_factory=Counter)
    beyond: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        for name in ("docstrings", "documented", "reference_failed", "crashed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("total", "right", "misparsed", "runs_on", "beyond"):
            getattr(self, name).update(getattr(other, name))
        for kind, found in other.samples.items():
            kept = self.samples.setdefault(kind, [])
            kept += found[: SAMPLES - len(kept)]

    def sample(self, kind: str, where: str, ir: object, ref: object) -> None:
        found = self.samples.setdefault(kind, [])
        if len(found) < SAMPLES:
            found.append({"where": where, "lift_lsp": ir, "reference": ref})


_UNDERLINE = re.compile(r"\s*([-=~^*+#_`'\"])\1{2,}\s*$")


def _same(ir: str | None, ref: str | None) -> bool:
    """Equal with whitespace normalised; a text the IR cut at its bound ("…") agrees with the reference's start."""
    ir_words, ref_words = _words(ir), _words(ref)
    if ir_words.endswith("…") and len(ir_words) > 1:
        return ref_words.startswith(ir_words[:-1].rstrip())
    return ir_words == ref_words


def _runs_on(ir: str | None, ref: str | None, docstring: str) -> bool:
    """Whether the reference's text is the IR's and then the docstring's next paragraph, field or directive, or
    comes after a section title whose underline numpydoc does not know (`Examples` over `________`): the reference ran
    a field or section on past its end (docstring_parser reads a reST or Epydoc field up to the next field at the
    margin, or the docstring's end; numpydoc reads on to the next title underlined with `-` or `=`)."""
    ir_words, ref_words = _words(ir), _words(ref)
    if not ir_words:
        return bool(ref_words) and _after_unknown_title(ref_words, docstring)
    if not ref_words.startswith(ir_words + " "):
        return False
    rest = ref_words[len(ir_words) :].split()
    lines = docstring.split("\n")
    for k in range(1, len(lines)):
        starts = not lines[k - 1].strip() or lines[k].lstrip()[:1] in (":", "@", ".", ">") or _UNDERLINE.match(lines[k])
        if starts and " ".join(lines[k:]).split()[: len(rest[:20])] == rest[:20]:
            return True
    return False


def _after_unknown_title(text: str, docstring: str) -> bool:
    lines = docstring.split("\n")
    for k in range(len(lines) - 1):
        under = lines[k + 1].strip()
        if lines[k].strip() and _UNDERLINE.match(under) and under[0] not in "-=":
            return text not in _words("\n".join(lines[:k])) and text in _words("\n".join(lines[k:]))
    return False


def _score(tally: Tally, measure: str, where: str, ir: str | None, ref: str | None, docstring: str) -> None:
    """One value the reference reads (`ref`, maybe empty) against the IR's: right, missed, or a mis-parse (the IR's
    differs); right too where the reference's runs on past the field's end and the IR's stops there (counted apart);
    or the IR has a value where the reference has none (read beyond the reference)."""
    if ref:
        tally.total[measure] += 1
        if _same(ir, ref):
            tally.right[measure] += 1
            return
        if _runs_on(ir, ref, docstring):
            tally.right[measure] += 1
            tally.runs_on[measure] += 1
            tally.sample(f"reference runs on: {measure}", where, ir, ref)
            return
        tally.sample(f"missed {measure}", where, ir, ref)
    if ir and not ref:
        tally.beyond[measure] += 1
        tally.sample(f"beyond the reference: {measure}", where, ir, ref)
    elif ir and not _same(ir, ref):
        tally.misparsed[measure] += 1
        tally.sample(f"mis-parsed {measure}", where, ir, ref)


def compare(where: str, ref: Reference, fir: Any, docstring: str, tally: Tally) -> None:
    ir = fir.ir.signature
    in_ir = {p.name: (p.description, p.documented_type) for p in ir.parameters}
    in_doc = {p.name: (p.description, p.type) for p in fir.doc.params}
    documented: set[str] = set()
    for name, type_text, description in ref.params:
        if name in documented:  # documented twice: the IR holds one entry, the first
            continue
        documented.add(name)
        found = in_ir.get(name) or in_doc.get(name) or ("", None)
        _score(tally, "param_description", f"{where} ({name})", found[0], description, docstring)
        _score(tally, "param_type", f"{where} ({name})", found[1], type_text, docstring)
    for name, (description, type_text) in {**in_doc, **in_ir}.items():
        if name not in documented and (description or type_text):
            tally.beyond["parameters"] += 1
            tally.sample("beyond the reference: parameters", f"{where} ({name})", description or type_text, None)
    returns = ir.returns
    if len(ref.returns) == 1:
        _score(tally, "returns_type", where, returns.documented_type, ref.returns[0][1], docstring)
        _score(tally, "returns_description", where, returns.description, ref.returns[0][2], docstring)
    elif ref.returns:  # several NumPy entries: the IR writes their types `(T1, T2)`, descriptions `a: A; b: B`
        types = [t for _, t, _ in ref.returns if t]
        joined = f"({', '.join(types)})" if types else None
        _score(tally, "returns_type", where, returns.documented_type, joined, docstring)
        described = "; ".join(d for d in (f"{name}: " * bool(name) + text for name, _, text in ref.returns) if d)
        _score(tally, "returns_description", where, returns.description, described, docstring)
    elif returns.documented_type or returns.description:
        tally.beyond["returns"] += 1
        tally.sample("beyond the reference: returns", where, returns.description or returns.documented_type, None)
    matched: set[int] = set()
    for exception, description in ref.raises:
        tally.total["raises"] += 1
        for index, raised in enumerate(ir.raises):
            named = _same(raised.exception, exception) if exception else _words(raised.exception) in description
            said = _same(raised.when, description) if exception else _words(raised.when) in description
            if index not in matched and named and (said or _runs_on(raised.when, description, docstring)):
                matched.add(index)
                tally.right["raises"] += 1
                tally.runs_on["raises"] += not said
                break
        else:
            if _runs_on(None, description or exception, docstring):
                tally.right["raises"] += 1
                tally.runs_on["raises"] += 1
                continue
            tally.sample("missed raises", where, [r.model_dump() for r in ir.raises], ref.raises)
    ref_text = " ".join(f"{exception} {description}" for exception, description in ref.raises)
    for index, raised in enumerate(ir.raises):
        if index in matched:
            continue
        if raised.exception.rstrip("…") in ref_text:  # a raise the reference reads otherwise
            tally.misparsed["raises"] += 1
            tally.sample("mis-parsed raises", where, raised.model_dump(), ref.raises)
        else:
            tally.beyond["raises"] += 1
            tally.sample("beyond the reference: raises", where, raised.model_dump(), None)


_ARCHIVES: dict[str, zipfile.ZipFile] = {}


def measure_file(task: tuple[Style, str, str]) -> Tally:
    """Both readings of every function with a docstring in one file of a wheel."""
    from lift_lsp.spec.reverse import extract_file

    style, wheel, member = task
    archive = _ARCHIVES.setdefault(wheel, zipfile.ZipFile(wheel))
    tally = Tally()
    source = archive.read(member).decode("utf-8", errors="replace")
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return tally
    references: dict[int, tuple[str, Reference, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and ast.get_docstring(node, clean=False):
            tally.docstrings += 1
            docstring = ast.get_docstring(node, clean=False) or ""
            try:
                read = reference(style, docstring)
            except Exception:  # the reference rejects it: left out
                tally.reference_failed += 1
                continue
            references[node.lineno] = (node.name, read, inspect.cleandoc(docstring))
    if not references:
        return tally
    try:
        functions = {f.line: f for f in extract_file(source, path=member, types=False)}
    except Exception as err:
        tally.crashed += len(references)
        tally.sample("crashed", member, repr(err), None)
        return tally
    for line, (name, read, docstring) in references.items():
        where = f"{Path(wheel).name}:{member}:{line} {name}"
        fir = functions.get(line)
        if fir is None:
            tally.crashed += 1
            tally.sample("crashed", where, "no IR for this function", None)
            continue
        if read.params or read.returns or read.raises:
            tally.documented += 1
        compare(where, read, fir, docstring, tally)
    return tally


# ---------------------------------------------------------------- the wheels


def wheel_for(spec: str) -> Path:
    """The pinned wheel `name==version`, downloaded by pip into the cache on first use."""
    name, version = spec.split("==")

    def cached() -> list[Path]:
        def matches(path: Path) -> bool:
            project, _, rest = path.name.partition("-")
            return _normal(project) == _normal(name) and rest.startswith(f"{version}-")

        return [p for p in CACHE.glob("*.whl") if matches(p)]

    CACHE.mkdir(parents=True, exist_ok=True)
    if not cached():
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        subprocess.run([*command, "--dest", str(CACHE), spec], check=True, timeout=900)
    found = cached()
    if not found:
        raise SystemExit(f"pip downloaded no wheel for {spec}")
    return found[0]


def _normal(project: str) -> str:
    return re.sub(r"[-_.]+", "_", project).lower()


def tasks(wheels: dict[Style, list[Path]]) -> Iterator[tuple[Style, str, str]]:
    for style, paths in wheels.items():
        for wheel in paths:
            with zipfile.ZipFile(wheel) as archive:
                for member in archive.namelist():
                    if member.endswith(".py"):
                        yield style, str(wheel), member


# ---------------------------------------------------------------- the report


def percent(right: int, total: int) -> float:
    """Rounded down to a tenth: 100.0 only when all are right."""
    return math.floor(1000 * right / total) / 10 if total else 100.0


def markdown_table(styles: dict[str, Any]) -> str:
    """The table README shows."""
    names = [STYLE_NAMES[s] for s in styles]  # type: ignore[index]
    lines = ["| measure | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    rows: list[tuple[str, list[str]]] = [
        (
            "documented functions (of functions with a docstring)",
            [f"{r['documented']:,} (of {r['docstrings']:,})" for r in styles.values()],
        ),
    ]
    for measure in MEASURES:
        cells = [
            f"{r['measures'][measure]['percent']}% of {r['measures'][measure]['total']:,}" for r in styles.values()
        ]
        rows.append((MEASURE_NAMES[measure], cells))
    rows.append(
        ("mis-parses (a value that differs from the reference's)", [str(r["misparsed"]) for r in styles.values()])
    )
    rows.append(("crashes", [str(r["crashed"]) for r in styles.values()]))
    runs_on = [str(sum(r["reference_runs_on"].values())) for r in styles.values()]
    rows.append(("of the values held: the reference's runs on past its field, the IR's stops there", runs_on))
    rows.append(("read beyond the reference (not scored)", [str(sum(r["beyond"].values())) for r in styles.values()]))
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--styles", nargs="+", choices=list(LIBRARIES), default=list(LIBRARIES))
    parser.add_argument("--out", type=Path, default=RESULTS / "ir_accuracy.json")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    wheels = {style: [wheel_for(spec) for spec in LIBRARIES[style]] for style in args.styles}
    downloaded = time.perf_counter()
    tallies: dict[Style, Tally] = {style: Tally() for style in args.styles}
    work = list(tasks(wheels))
    with Pool(args.workers) as pool:
        for (style, _, _), tally in zip(work, pool.imap(measure_file, work, chunksize=16), strict=True):
            tallies[style].add(tally)

    styles: dict[str, Any] = {}
    for style, tally in tallies.items():
        styles[style] = {
            "libraries": list(LIBRARIES[style]),
            "reference": REFERENCES[style],
            "docstrings": tally.docstrings,
            "documented": tally.documented,
            "reference_failed": tally.reference_failed,
            "crashed": tally.crashed,
            "measures": {
                m: {
                    "right": tally.right[m],
                    "total": tally.total[m],
                    "percent": percent(tally.right[m], tally.total[m]),
                }
                for m in MEASURES
            },
            "misparsed": sum(tally.misparsed.values()) + tally.crashed,
            "misparsed_by_measure": dict(tally.misparsed),
            "reference_runs_on": dict(tally.runs_on),
            "beyond": dict(tally.beyond),
            "samples": tally.samples,
        }
    table = markdown_table(styles)
    report = {
        "machine": machine(),
        "seconds": {"download": round(downloaded - started, 1), "total": round(time.perf_counter() - started, 1)},
        "workers": args.workers,
        "styles": styles,
        "markdown": table,
    }
    print(table)
    for style, entry in styles.items():
        print(
            f"{STYLE_NAMES[style]}: {', '.join(entry['libraries'])}; reference {entry['reference']}; "  # type: ignore[index]
            f"{entry['reference_failed']} docstrings the reference rejects left out"
        )
    print(f"wrote {write_json(args.out, report)} in {report['seconds']['total']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
