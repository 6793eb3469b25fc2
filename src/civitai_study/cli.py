"""``civitai-study``: the command line of the compendium.

Each command group lives in ``civitai_study.commands.<name>`` and exposes
``register(subparsers)``; this module only assembles them and turns known errors into a clear
message and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from . import __version__

CONTENT_WARNING = ("Content warning: the data is sexually explicit and about gendered harm.")
#: Examples shown under every command's --help (the run command keeps its own, longer list).
EXAMPLES: dict[str, list[str]] = {
    "civitai-study": ["civitai-study sample --out data/sample", "civitai-study run",
                      "civitai-study run --list-parameters", "civitai-study report"],
    "civitai-study sample": ["civitai-study sample --out data/sample",
                             "civitai-study sample --out /tmp/small --images 2000 --models 200"],
    "civitai-study calibrate": ["civitai-study calibrate --crawl "
                                "../shared/civitai-samples/models/dfanr_v1_models_2023-07-04"
                                ".jsonl.gz"],
    "civitai-study collect": ["civitai-study collect images --out data/crawl --since 2023-01-01 "
                              "--until 2023-02-01 --max-items 1000"],
    "civitai-study collect images": ["civitai-study collect images --out data/crawl --since "
                                     "2023-01-01 --until 2023-02-01 --max-items 1000"],
    "civitai-study collect models": ["civitai-study collect models --out data/models "
                                     "--max-items 500 --rate 0.5"],
    "civitai-study import": ["civitai-study import models-jsonl models.jsonl.gz --out data/models"],
    "civitai-study import models-jsonl": ["civitai-study import models-jsonl "
                                          "../shared/civitai-samples/models/FILE.jsonl.gz "
                                          "--out data/models-2023"],
    "civitai-study import civ40k": ["civitai-study import civ40k civ40k.parquet --out data/civ40k"],
    "civitai-study import civiverse": ["civitai-study import civiverse civiverse/ "
                                       "--out data/civiverse"],
    "civitai-study code": ["civitai-study code --data data/sample --out /tmp/coded --workers 2"],
    "civitai-study coding": ["civitai-study coding validate",
                             "civitai-study coding export-sample --data data/sample --out sheets/"],
    "civitai-study coding validate": ["civitai-study coding validate",
                                      "civitai-study coding --codebook my.yaml validate"],
    "civitai-study coding export-sample": ["civitai-study coding export-sample --data data/sample "
                                           "--out sheets/ --coders ana ben"],
    "civitai-study coding agreement": ["civitai-study coding agreement sheets/ana.csv "
                                       "sheets/ben.csv --out agreement.csv"],
    "civitai-study coding validate-sample": ["civitai-study coding validate-sample --data "
                                             "data/real-2023 --out /tmp/judging/round1"],
    "civitai-study coding precision": ["civitai-study coding precision --data data/real-2023 "
                                       "--import-round /tmp/judging/round1"],
    "civitai-study coding candidates": ["civitai-study coding candidates --data data/sample "
                                        "--out /tmp/candidates.csv --top 50"],
    "civitai-study acquire": ["civitai-study acquire --list",
                              "civitai-study acquire real-2023 --out data/real-2023"],
    "civitai-study report": ["civitai-study report", "civitai-study report --out /tmp/site"],
    "civitai-study teaching": ["civitai-study teaching", "civitai-study teaching --out /tmp/t"],
}
#: Exceptions that mean "bad input or usage" (exit 2); anything else is a runtime failure (1).
INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, LookupError, FileNotFoundError,
                                                  FileExistsError, NotADirectoryError,
                                                  IsADirectoryError)


class Parser(argparse.ArgumentParser):
    """argparse with the project's error line: ``error: PROG: what; see PROG --help``."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {self.prog}: {message}; see `{self.prog} --help`\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks and adds each option's default where the help lacks it."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:  # examples: keep the lines as written
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS) \
                or not action.option_strings:
            return text
        default = action.default
        if isinstance(default, list):
            default = " ".join(map(str, default))
        if hasattr(default, "parts"):  # a path: shown relative to the repository when inside
            from .paths import display_path

            default = display_path(default)
        return f"{text} (default: {str(default).replace('%', '%%')})"


def _decorate(parser: argparse.ArgumentParser) -> None:
    """Every (sub)command's help: defaults, examples and the content warning."""
    parser.formatter_class = HelpFormatter
    epilog = parser.epilog or ""
    examples = EXAMPLES.get(parser.prog)
    if examples and "example" not in epilog:
        epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples) + "\n" + epilog
    if CONTENT_WARNING not in epilog:
        epilog = f"{epilog}\n{CONTENT_WARNING}".strip("\n")
    parser.epilog = epilog
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _decorate(child)

#: Command modules, in the order they appear in ``--help``.
COMMAND_MODULES = [
    "civitai_study.commands.sample",
    "civitai_study.commands.run",
    "civitai_study.commands.calibrate",
    "civitai_study.commands.collect",
    "civitai_study.commands.importers",
    "civitai_study.commands.acquire",
    "civitai_study.commands.code",
    "civitai_study.commands.coding",
    "civitai_study.commands.report",
    "civitai_study.commands.teaching",
]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="civitai-study",
        description="Research compendium on CivitAI (Wagner & Cetinic 2025, reproduced). "
                    + CONTENT_WARNING,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _decorate(parser)
    return parser


def first_line(err: BaseException) -> str:
    """An error's message without library noise after the first line (or its type)."""
    text = str(err).strip()
    if isinstance(err, KeyError | OSError) and err.args and not isinstance(err, FileNotFoundError
                                                                          | FileExistsError):
        text = str(err.args[-1]) if isinstance(err, OSError) and len(err.args) > 1 else text
    return text or type(err).__name__


def one_line(text: str) -> str:
    """Library messages (YAML, Arrow) spread over lines with carets; keep their words on one."""
    parts = [p.strip() for p in text.splitlines()]
    return " ".join(p for p in parts if p and set(p) != {"^"})


def report_error(command: str, err: BaseException, verbose: bool) -> int:
    """Print ``error: ...`` on stderr (the traceback only with -v) and return the exit code."""
    from .runner import RunError

    if verbose:
        traceback.print_exception(err, file=sys.stderr)
    text = str(err).strip() if isinstance(err, RunError) else one_line(first_line(err))
    if isinstance(err, OSError) and getattr(err, "filename", None) and \
            str(err.filename) not in text:
        text = f"{err.filename}: {text}"
    known = isinstance(err, (*INPUT_ERRORS, RuntimeError, OSError))
    if not known:
        text = (f"unexpected {type(err).__name__}: {text} (please report it; re-run with -v for "
                "the details)")
    print(f"error: civitai-study {command}: {text}", file=sys.stderr)
    return 2 if isinstance(err, INPUT_ERRORS) else 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # papermill narrates every cell at INFO; the runner prints progress
        logging.getLogger("papermill").setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"error: civitai-study {args.command}: interrupted; outputs were left as they were "
              "before the command", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every failure becomes one clear line
        return report_error(args.command, err, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
