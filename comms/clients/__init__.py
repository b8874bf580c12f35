"""Clients: the client directory, from an uploaded file to the rows a page shows.

    reading       bytes -> text -> header + rows: encoding, delimiter, header row,
                  column mapping; refuses devices, FIFOs and files over the limits
    workbook      XLSX read safely: archive and sheet checks before parsing (zip bombs),
                  the sheet to use, rows streamed
    checking      the e-mail / phone checks of a whole list: the libraries' answers,
                  the domain checked once per domain, numbers once per prefix class
    importing     one upload -> clients: normalise, dedupe, merge, write all or nothing
    queries       the directory's filter as SQL; counts, pages, selections, lookups
    options       the filter choices (lists, tags, cities, attribute keys), kept
                  current by every write to clients (write_clients)
    export        the filtered clients as a formula-safe CSV file
    sample        the generated sample list, loaded into an empty database
    profile       one client: edits with re-validation, opt-out / opt-in per channel
    suppressions  the list of addresses never sent to, and uploads of it

The names below are the ones other packages use, re-exported (loaded on first
use) so that callers write `from comms.clients import import_clients`; profile,
suppressions and sample are used as modules (`from comms.clients import profile`), and sample is
also a script (`python -m comms.clients.sample`), so this file does not load it.
"""

import importlib
from typing import TYPE_CHECKING, Any

# Each name and the module that owns it. They load when first used (PEP 562), so that
# `comms import` never loads the directory's queries and pandas it does not need.
_OWNERS = {
    "export_csv": "export",
    "ImportPreview": "importing",
    "ImportReport": "importing",
    "default_list_name": "importing",
    "import_clients": "importing",
    "preview_import": "importing",
    "filter_options": "options",
    "ClientFilter": "queries",
    "clients_for_ids": "queries",
    "clients_for_selection": "queries",
    "count_clients": "queries",
    "data_version": "queries",
    "filter_where": "queries",
    "get_client": "queries",
    "list_clients": "queries",
    "page_and_count": "queries",
    "query_clients": "queries",
    "search_clients": "queries",
    "selection_where": "queries",
}


def __getattr__(name: str) -> Any:
    """A facade name, imported from its module on first use."""
    owner = _OWNERS.get(name)
    if owner is None:
        raise AttributeError(f"module 'comms.clients' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"comms.clients.{owner}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from comms.clients.export import export_csv
    from comms.clients.importing import (
        ImportPreview,
        ImportReport,
        default_list_name,
        import_clients,
        preview_import,
    )
    from comms.clients.options import filter_options
    from comms.clients.queries import (
        ClientFilter,
        clients_for_ids,
        clients_for_selection,
        count_clients,
        data_version,
        filter_where,
        get_client,
        list_clients,
        page_and_count,
        query_clients,
        search_clients,
        selection_where,
    )

__all__ = [
    "ClientFilter",
    "ImportPreview",
    "ImportReport",
    "clients_for_ids",
    "clients_for_selection",
    "count_clients",
    "data_version",
    "default_list_name",
    "export_csv",
    "filter_options",
    "filter_where",
    "get_client",
    "import_clients",
    "list_clients",
    "page_and_count",
    "preview_import",
    "query_clients",
    "search_clients",
    "selection_where",
]
