"""`comms init`, `comms import FILE`, `comms clients`."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from comms import i18n
from comms.cli import print_json, shown, whole_number
from comms.errors import CommsError, ConsentNotStated
from comms.i18n import _, ngettext
from comms.store import open_store

if TYPE_CHECKING:
    from comms.clients.importing import ImportReport

# What --consent takes (comms.clients.importing.CONSENT_CHOICES, which a test keeps equal);
# the handlers import the clients package themselves, so `comms import` loads only the import.
CONSENT_CHOICES = ("email,sms", "email", "sms", "none")

MAX_PROBLEMS_SHOWN = 50


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the client commands to the `comms` parser."""
    p = sub.add_parser(
        "init",
        parents=[common],
        help=_("create the database; load the sample clients when there are none"),
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "import",
        parents=[common],
        help=_("import a CSV / XLSX client list"),
        description=_(
            "Import a client list from a CSV or XLSX file into the client directory: new"
            " clients are added, known ones (the same e-mail or phone) updated."
        ),
    )
    p.add_argument("file", metavar="FILE", help=_("CSV or XLSX file"))
    p.add_argument("--list", dest="list_name", metavar="NAME", help=_("list name (default: file)"))
    p.add_argument("--region", metavar="CC", help=_("default phone region, e.g. CZ"))
    p.add_argument(
        "--sheet",
        metavar="NAME",
        help=_("XLSX: the sheet to import (default: the first with a header)"),
    )
    p.add_argument(
        "--consent",
        metavar="|".join(CONSENT_CHOICES),
        help=_(
            "the consent these clients gave, for the channels the file has no consent column for"
        ),
    )
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "clients",
        parents=[common],
        help=_("list the matching clients"),
        description=_("List the clients of the client directory that match the filters."),
    )
    p.add_argument(
        "--search", metavar="TEXT", help=_("free text: name, e-mail, phone, company ...")
    )
    p.add_argument("--list", dest="list_name", metavar="NAME", help=_("only this list"))
    p.add_argument("--tag", metavar="TAG", help=_("only clients with this tag"))
    p.add_argument("--city", metavar="CITY", help=_("only clients in this city"))
    p.add_argument("--limit", type=whole_number(1), metavar="N", help=_("at most N clients"))
    p.add_argument(
        "--csv",
        metavar="FILE",
        help=_("write the matching clients to FILE, the same CSV as the Clients page's download"),
    )
    p.set_defaults(func=cmd_clients)


def cmd_init(args: argparse.Namespace) -> int:
    from comms.clients.sample import load_sample_if_empty
    from comms.templates.starter import add_starter_templates

    store = open_store(args.db)
    report = load_sample_if_empty(store)
    # A fresh install can walk the wizard at once: example templates in Czech and English.
    starters = add_starter_templates(store)
    total = store.scalar("SELECT count(*) FROM clients")
    if args.json:
        print_json(
            {
                "db": str(store.path),
                "clients": total,
                "sample_loaded": bool(report),
                "starter_templates": starters,
            }
        )
        return 0
    if report:
        print(
            ngettext(
                "{db}: loaded {n} sample client as list 'Sample'.",
                "{db}: loaded {n} sample clients as list 'Sample'.",
                report.imported,
            ).format(db=store.path, n=i18n.number(report.imported))
        )
    else:
        print(
            ngettext("{db}: ready, {n} client.", "{db}: ready, {n} clients.", total).format(
                db=store.path, n=i18n.number(total)
            )
        )
    if starters:
        print(
            ngettext(
                "Added {n} example template (Templates).",
                "Added {n} example templates (Templates).",
                starters,
            ).format(n=starters)
        )
    return 0


def _print_report(report: ImportReport) -> None:
    n = i18n.number
    source = report.kind
    if report.sheet:
        source += _(", sheet '{sheet}'").format(sheet=report.sheet)
    title = (
        _("List '{name}'").format(name=report.list_name)
        if report.list_name
        else _("The file's lists")
    )
    print(
        _(
            "{title}: {imported} imported, {updated} updated, {skipped} skipped, {problems}"
            " problems ({source}, {encoding}, header on row {row})."
        ).format(
            title=title,
            imported=n(report.imported),
            updated=n(report.updated),
            skipped=n(report.skipped),
            problems=n(len(report.problems)),
            source=source,
            encoding=report.encoding or "-",
            row=n(report.header_row),
        )
    )
    for note in report.notes:
        print(_("  note: {note}").format(note=note))
    for p in report.problems[:MAX_PROBLEMS_SHOWN]:
        print(_("  row {row}: {reason}").format(row=n(p["row"]), reason=shown(p["reason"])))
    if len(report.problems) > MAX_PROBLEMS_SHOWN:
        more = len(report.problems) - MAX_PROBLEMS_SHOWN
        # English says "more" for one and many alike; Czech has three forms.
        print(
            ngettext(
                "  ... and {count} more (use --json)", "  ... and {count} more (use --json)", more
            ).format(count=n(more))
        )


def cmd_import(args: argparse.Namespace) -> int:
    from comms.clients.importing import import_clients

    store = open_store(args.db)
    try:
        report = import_clients(
            store,
            args.file,
            list_name=args.list_name,
            region=args.region,
            sheet=args.sheet,
            consent=args.consent,
        )
    except ConsentNotStated as exc:
        raise CommsError(exc.sentence("--consent " + "|".join(CONSENT_CHOICES))) from None
    if args.json:
        print_json(report.to_dict())
    else:
        _print_report(report)
    return 0


def _write_file(path: str, data: bytes) -> None:
    """Write data to path whole or not at all (a temporary file beside it, then renamed)."""
    target = Path(path)
    if target.is_dir():
        raise CommsError(
            _("--csv {path} is a folder; give a file name such as {example}.").format(
                path=path, example=target / "clients.csv"
            )
        )
    try:
        fd, tmp = tempfile.mkstemp(prefix=".comms-", suffix=".csv", dir=target.parent or ".")
    except OSError as exc:
        raise CommsError(_cannot_write(path, exc)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except OSError as exc:
        os.unlink(tmp)
        raise CommsError(_cannot_write(path, exc)) from None


def _cannot_write(path: str, exc: OSError) -> str:
    return _("--csv {path} cannot be written: {reason}.").format(path=path, reason=exc.strerror)


def cmd_clients(args: argparse.Namespace) -> int:
    from comms.clients import ClientFilter, count_clients, export_csv, query_clients

    store = open_store(args.db)
    f = ClientFilter(search=args.search, list=args.list_name, tag=args.tag, city=args.city)
    if args.csv:
        if args.limit is not None:
            raise CommsError(
                _("--limit does not apply to --csv: the file holds every matching client.")
            )
        data = export_csv(store, f)
        _write_file(args.csv, data)
        rows = count_clients(store, f)
        if args.json:
            print_json({"file": args.csv, "clients": rows, "bytes": len(data)})
        else:
            # English keeps its one form ("1 clients"); Czech has three.
            print(
                ngettext(
                    "{count} clients written to {file}.", "{count} clients written to {file}.", rows
                ).format(count=i18n.number(rows), file=args.csv)
            )
        return 0
    clients = query_clients(store, f, limit=args.limit)
    if args.json:
        print_json(clients)
        return 0
    for c in clients:
        print(
            f"{c['id']:>6}  {c['name'] or '':<28} {c['email'] or '':<36} "
            f"{c['phone'] or '':<16} {c['list'] or ''}"
        )
    print(
        ngettext("{count} clients", "{count} clients", len(clients)).format(
            count=i18n.number(len(clients))
        )
    )
    return 0
