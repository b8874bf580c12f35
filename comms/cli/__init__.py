"""The `comms` command (also `python -m comms`).

Subcommands live in `comms/cli/<area>.py`, each with `register(sub, common)`
adding its parsers and handlers `handler(args) -> int`. Every command takes
`--db PATH` (else $COMMS_DB, else data/comms.duckdb) and, where it prints
results, `--json`. Every failure a person can cause (a bad argument, file,
database path or setting) is one line on stderr and a non-zero exit code:
2 for a usage error or a database held by another process, 1 for the rest.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from comms import i18n
from comms.errors import CommsError, DatabaseInUse
from comms.i18n import N_, _

# Each module and the commands its register() adds. A command loads only its own
# module (`comms send` starts without pandas, Jinja2 or the import machinery: for cron
# and for the CPU each run costs); --help and an unknown command load them all.
COMMANDS: dict[str, tuple[str, ...]] = {
    "comms.cli.clients": ("init", "import", "clients"),
    "comms.cli.templates": ("templates", "generate", "queue"),
    "comms.cli.sending": ("send",),
    "comms.cli.history": ("history", "compose", "send-draft", "suppressions", "log"),
    "comms.cli.feedback": ("serve", "bounces", "sms-status"),
}


# argparse's own words ("usage:", "positional arguments", "options", "show this help
# message and exit", "the following arguments are required: ...") are `_(...)` and
# `ngettext(...)` calls on the globals of the argparse module (`from gettext import
# gettext as _, ngettext`), looked up each time they are said: in the help formatter,
# in ArgumentParser.__init__ (the group titles, -h's help), in ArgumentError and in a
# dozen parse errors. A subclass could reach only some of them (each method would be
# copied whole), and gettext's global domain would follow LANG rather than --lang; so
# those two globals are ours: the same catalogue and language as every other line. In
# English ours returns the message unchanged, as gettext without a catalogue does.
argparse._ = _  # type: ignore[attr-defined]
argparse.ngettext = i18n.ngettext  # type: ignore[attr-defined]

# argparse's messages a person may read (Python 3.11's wording), for the catalogue:
# the coverage test (tests/test_i18n.py) checks each has Czech.
ARGPARSE_MESSAGES = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("unrecognized arguments: %s"),
    N_("the following arguments are required: %s"),
    N_("one of the arguments %s is required"),
    N_("not allowed with argument %s"),
    N_("ignored explicit argument %r"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("unexpected option string: %s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("unknown parser %(parser_name)r (choices: %(choices)s)"),
    N_("can't open '%(filename)s': %(error)s"),
)
# ngettext("expected %s argument", "expected %s arguments", n): in cli.po too.


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        hint = _("see `{command} --help`").format(command=self.prog)
        self.exit(2, f"{self.prog}: {message} ({hint})\n")


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`, else one clear line."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                _("must be a whole number, at least {minimum}").format(minimum=minimum)
            )
        return value

    parse.__name__ = "whole number"  # argparse names the type in some messages
    return parse


def _lang_option(parser: argparse.ArgumentParser) -> None:
    """--lang in the help: main() takes it out of argv before parsing (it must choose the
    language the parser's own help is built in), so argparse only shows it."""
    parser.add_argument(
        "--lang",
        metavar="|".join(i18n.LANGUAGES),
        help=_("language of the output (default: from LC_ALL / LANG, else English)"),
    )


def common_parser() -> argparse.ArgumentParser:
    """--db and --json, shared by every subcommand (and --lang, shown in their help)."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--db", metavar="PATH", help=_("DuckDB file (default: $COMMS_DB or data/comms.duckdb)")
    )
    common.add_argument("--json", action="store_true", help=_("print results as JSON"))
    _lang_option(common)
    return common


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `comms` parser: every command, or only the module of `command` when it names one."""
    parser = _Parser(prog="comms", description=_("Client communication desk."), allow_abbrev=False)
    _lang_option(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_parser()
    owners = [m for m, names in COMMANDS.items() if command in names] or list(COMMANDS)
    for name in owners:
        importlib.import_module(name).register(sub, common)
    _no_abbreviations(parser)
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The subcommand argv names (its first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def _no_abbreviations(parser: argparse.ArgumentParser) -> None:
    """Refuse abbreviated options everywhere, so `--body` never silently means `--body-file`."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _no_abbreviations(child)


def shown(code: Any) -> str:
    """A stored code (status, source, action, reason) in the viewer's language."""
    return i18n.shown_code(code)


def channel_name(code: str | None) -> str:
    """A channel code ('email', 'sms') as a person reads it; English keeps the code."""
    if i18n.language() == i18n.DEFAULT or not code:
        return code or ""
    from comms.rules.validation import CHANNEL_NAMES

    return _(CHANNEL_NAMES.get(code, code))


def column(values: list[str], least: int) -> int:
    """A column's width: `least` (the English layout), wider when a translation is longer."""
    return max([least, *(len(v) for v in values)])


def print_json(obj: Any) -> None:
    # One string, one write: json.dump to a stream writes every token (a second for 10k rows).
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str, indent=2) + "\n")


def report(args: argparse.Namespace, payload: Any, line: str, errors: list[str]) -> int:
    """A run's result: JSON with --json, else one line; each error on stderr; exit 1 if any."""
    if args.json:
        print_json(payload)
    else:
        print(line)
        for err in errors:
            print(_("error: {error}").format(error=err), file=sys.stderr)
    return 1 if errors else 0


def _language_of(argv: list[str]) -> tuple[str | None, list[str]]:
    """`--lang X` / `--lang=X` (anywhere before `--`) and argv without it."""
    lang, rest, i = None, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg == "--lang" and i + 1 < len(argv):
            lang, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--lang="):
            lang, i = arg.split("=", 1)[1], i + 1
            continue
        rest.append(arg)
        i += 1
    return lang, rest


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The language: --lang cs|en (before or after the command), else LC_ALL / LANG, else English.
    lang, argv = _language_of(argv)
    if lang is not None and i18n.normalise(lang) is None:
        i18n.set_language(i18n.from_environment())
        choices = ", ".join(i18n.LANGUAGES)
        print(
            "comms: "
            + _("unknown language {lang!r}; choose one of: {choices}.").format(
                lang=lang, choices=choices
            ),
            file=sys.stderr,
        )
        return 2
    i18n.set_language(lang if lang is not None else i18n.from_environment())
    parser = build_parser(_command_of(argv))
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
