"""Templates: e-mail and SMS texts with fields, rendered safely for each client.

- `rendering`: the sandboxed Jinja2 environments, template checks, compile and
  render (one render per recipient), body -> HTML (Markdown, plain text) and
  HTML -> text.
- `context`: what a template sees for one client (`client_context`), the
  field names (`CLIENT_FIELDS`, `field_name`) and sample clients for previews.
- `budget`: each render's budget of time and size, and the checks that keep it.
- `simple`: the simplest templates (text, fields, `{% if %}`) rendered without
  Jinja's machinery, to the same text.
- `batch`: one template rendered for many clients, in a worker process beside
  this one when there are many.
- `storage`: template CRUD and the links to their attachments.
- `attachments`: files stored once by content hash, linked to templates,
  batches and messages.

The names below are the package's public interface (`from comms import
templates as tpl; tpl.render_preview(...)`); each lives in the module named.
Those of `storage` and `attachments`, which reach the database, are loaded on
first use, so the render worker starts without DuckDB.
"""

import importlib
from typing import TYPE_CHECKING, Any

from comms.rules.validation import CHANNELS
from comms.templates.context import (
    CLIENT_FIELDS,
    NON_ATTRIBUTE_FIELDS,
    client_context,
    context_for,
    field_name,
    preview_clients,
    sample_client,
)
from comms.templates.rendering import (
    FORMATS,
    PLACEHOLDER_RE,
    CompiledTemplate,
    Rendered,
    RenderFailed,
    TemplateTooCostly,
    body_parts,
    check_source,
    compile_template,
    html_to_text,
    markdown_to_html,
    render_preview,
    text_to_html,
    variables,
)

if TYPE_CHECKING:
    from comms.templates import attachments  # noqa: F401  (loaded by __getattr__)
    from comms.templates.storage import (
        Template,
        attach,
        create_template,
        delete_template,
        detach,
        duplicate_template,
        get_template,
        get_template_by_name,
        list_templates,
        save_as_template,
        update_template,
    )

_STORAGE = frozenset(
    {
        "Template",
        "attach",
        "create_template",
        "delete_template",
        "detach",
        "duplicate_template",
        "get_template",
        "get_template_by_name",
        "list_templates",
        "save_as_template",
        "update_template",
    }
)


def __getattr__(name: str) -> Any:
    # import_module, not `from comms.templates import ...`: that would ask this
    # function for the name again.
    if name in _STORAGE:
        return getattr(importlib.import_module("comms.templates.storage"), name)
    if name == "attachments":
        return importlib.import_module("comms.templates.attachments")
    raise AttributeError(f"module 'comms.templates' has no attribute {name!r}")


__all__ = [
    "CHANNELS",
    "CLIENT_FIELDS",
    "FORMATS",
    "NON_ATTRIBUTE_FIELDS",
    "PLACEHOLDER_RE",
    "CompiledTemplate",
    "RenderFailed",
    "TemplateTooCostly",
    "Rendered",
    "Template",
    "attach",
    "body_parts",
    "check_source",
    "client_context",
    "compile_template",
    "context_for",
    "create_template",
    "delete_template",
    "detach",
    "duplicate_template",
    "field_name",
    "get_template",
    "get_template_by_name",
    "html_to_text",
    "list_templates",
    "markdown_to_html",
    "preview_clients",
    "render_preview",
    "sample_client",
    "save_as_template",
    "text_to_html",
    "update_template",
    "variables",
]
