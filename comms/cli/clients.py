"""`comms init`, `comms import FILE`, `comms clients`."""

from __future__ import annotations

import argparse

from comms.cli import print_json
from comms.clients import (
    ClientFilter,
    ImportReport,
    import_clients,
    query_clients,
)
from comms.clients.sample import load_sample_if_empty
from comms.store import open_store

MAX_PROBLEMS_SHOWN = 50


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the client commands to the `comms` parser."""
    p = sub.add_parser(
        "init",
        parents=[common],
        help="create the database; load the sample clients when there are none",
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("import", parents=[common], help="import a CSV / XLSX client list")
    p.add_argument("file", metavar="FILE", help="CSV or XLSX file")
    p.add_argument("--list", dest="list_name", metavar="NAME", help="list name (default: file)")
    p.add_argument("--region", metavar="CC", help="default phone region, e.g. CZ")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("clients", parents=[common], help="list the matching clients")
    p.add_argument("--search", metavar="TEXT", help="free text: name, e-mail, phone, company ...")
    p.add_argument("--list", dest="list_name", metavar="NAME", help="only this list")
    p.add_argument("--tag", metavar="TAG", help="only clients with this tag")
    p.add_argument("--city", metavar="CITY", help="only clients in this city")
    p.add_argument("--limit", type=int, metavar="N", help="at most N clients")
    p.set_defaults(func=cmd_clients)


def cmd_init(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    report = load_sample_if_empty(store)
    total = store.scalar("SELECT count(*) FROM clients")
    if args.json:
        print_json({"db": str(store.path), "clients": total, "sample_loaded": bool(report)})
    elif report:
        print(f"{store.path}: loaded {report.imported} sample clients as list 'Sample'.")
    else:
        print(f"{store.path}: ready, {total} clients.")
    return 0


def _print_report(report: ImportReport) -> None:
    print(
        f"List '{report.list_name}': {report.imported} imported, {report.updated} updated, "
        f"{report.skipped} skipped, {len(report.problems)} problems "
        f"({report.kind}, {report.encoding or '-'}, header on row {report.header_row})."
    )
    for p in report.problems[:MAX_PROBLEMS_SHOWN]:
        print(f"  row {p['row']}: {p['reason']}")
    if len(report.problems) > MAX_PROBLEMS_SHOWN:
        print(f"  ... and {len(report.problems) - MAX_PROBLEMS_SHOWN} more (use --json)")


def cmd_import(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    report = import_clients(store, args.file, list_name=args.list_name, region=args.region)
    if args.json:
        print_json(report.to_dict())
    else:
        _print_report(report)
    return 0


def cmd_clients(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    f = ClientFilter(search=args.search, list=args.list_name, tag=args.tag, city=args.city)
    clients = query_clients(store, f, limit=args.limit)
    if args.json:
        print_json(clients)
        return 0
    for c in clients:
        print(
            f"{c['id']:>6}  {c['name'] or '':<28} {c['email'] or '':<36} "
            f"{c['phone'] or '':<16} {c['list'] or ''}"
        )
    print(f"{len(clients)} clients")
    return 0
