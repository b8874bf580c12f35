"""The `comms` command (also `python -m comms`).

Subcommands live in `comms/commands/<area>.py`, each with `register(sub, common)`
adding its parsers and handlers `handler(args) -> int`. Every command takes
`--db PATH` (else $COMMS_DB, else data/comms.duckdb) and, where it prints
results, `--json`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from typing import Any

from comms.errors import CommsError, DatabaseInUse

COMMAND_MODULES = (
    "comms.cli.clients",
    "comms.cli.templates",
    "comms.cli.sending",
    "comms.cli.history",
    "comms.cli.feedback",
)


def common_parser() -> argparse.ArgumentParser:
    """--db and --json, shared by every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db", metavar="PATH", help="DuckDB file (default: $COMMS_DB or data/comms.duckdb)"
    )
    common.add_argument("--json", action="store_true", help="print results as JSON")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="comms", description="Client communication desk.", allow_abbrev=False
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_parser()
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue  # an area not built yet
        importlib.import_module(name).register(sub, common)
    _no_abbreviations(parser)
    return parser


def _no_abbreviations(parser: argparse.ArgumentParser) -> None:
    """Refuse abbreviated options everywhere, so `--body` never silently means `--body-file`."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _no_abbreviations(child)


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, default=str, indent=2)
    sys.stdout.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DatabaseInUse as exc:
        print(f"comms: {exc}", file=sys.stderr)
        return 2
    except CommsError as exc:
        print(f"comms: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as Unix tools do.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
