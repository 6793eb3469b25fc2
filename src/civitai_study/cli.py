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

from . import __version__

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
    parser = argparse.ArgumentParser(
        prog="civitai-study",
        description="Research compendium on CivitAI (Wagner & Cetinic 2025, reproduced). "
                    "Content warning: the data is sexually explicit and about gendered harm.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


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
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as err:
        print(f"civitai-study {args.command}: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ValueError | FileNotFoundError) else 1


if __name__ == "__main__":
    sys.exit(main())
