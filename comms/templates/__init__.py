"""Templates: storage, sandboxed Jinja2 rendering, variables, template attachments.

Rendering runs in Jinja2's ImmutableSandboxedEnvironment with StrictUndefined,
so a template cannot reach Python internals or mutate what it is given, and a
field the client lacks is an error naming the field (the generator turns it
into the per-recipient reason ``missing field: X``).

E-mail bodies are Markdown (or raw HTML, or plain text) and are sent as
multipart text + HTML:

- the text part is the template rendered without escaping;
- the HTML part comes from an HTML template made ONCE per compile: the Jinja
  tags are swapped for opaque tokens, the Markdown is converted, and the tags
  are put back. That template renders with autoescape, so a client's value
  is HTML-escaped and can never add Markdown or HTML structure, and Markdown
  runs once per template instead of once per recipient (the speed of a
  100,000-message batch depends on it);
- subject, text and HTML come out of ONE render per recipient: a template
  joining the three, each in its own autoescape block.

A recipient whose render fails still gets a readable draft: rendered again
with `ShowMissing`, which leaves `{{ field }}` where a value is missing, so the
review shows the message and a person can complete it by hand.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import duckdb
import markdown as md
from jinja2 import (
    ChainableUndefined,
    StrictUndefined,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
)
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from comms import actionlog
from comms.errors import CommsError, NotFound, TemplateError
from comms.rules.sms import to_gsm7
from comms.rules.validation import CHANNELS
from comms.store import Store
from comms.templates import attachments as att

FORMATS = ("markdown", "html", "text")
# Fields every client has (besides its imported attributes), for the field list.
CLIENT_FIELDS = (
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "city",
    "company",
    "list",
    "tags",
)
MARKDOWN_EXTENSIONS = ["extra", "sane_lists", "nl2br"]
MAX_POWER = 10_000  # `{{ 9**9**9 }}` would hang the process


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus a cap on `**` so a template cannot hang a render."""

    intercepted_binops = frozenset({"**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_POWER:
                raise SecurityError(f"the exponent {right} is too large")
            return left**right
        return super().call_binop(context, operator, left, right)


class ShowMissing(ChainableUndefined):
    """A missing field shown as its placeholder, for drafts a person will fix by hand."""

    __slots__ = ()

    def __str__(self) -> str:
        return "{{ " + (self._undefined_name or "?") + " }}"


def _gsm7_value(value: Any) -> str:
    # str() first: a missing field still raises (StrictUndefined) or shows (ShowMissing).
    return to_gsm7(str(value))


def _env(autoescape: bool, undefined: type = StrictUndefined, finalize: Any = None) -> _Sandbox:
    return _Sandbox(
        finalize=finalize,
        undefined=undefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


TEXT_ENV = _env(False)
HTML_ENV = _env(True)
# For recipients whose render failed: the message is stored with `{{ field }}`
# where a value is missing, so the review can show and fix it.
LENIENT_TEXT_ENV = _env(False, ShowMissing)
LENIENT_HTML_ENV = _env(True, ShowMissing)
# SMS with "replace diacritics": the template's own text is transliterated once at
# compile time and only the values per recipient (far cheaper than the whole text).
GSM7_TEXT_ENV = _env(False, finalize=_gsm7_value)
LENIENT_GSM7_TEXT_ENV = _env(False, ShowMissing, _gsm7_value)
PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")


# -- checking ---------------------------------------------------------------
def _syntax_message(part: str, exc: TemplateSyntaxError) -> str:
    return f"{part}: syntax error on line {exc.lineno}: {exc.message}"


def _unsafe_name(name: str) -> bool:
    return name.startswith("_") or name in {"mro", "func_globals", "f_globals", "gi_frame"}


def _static_security_check(part: str, ast: nodes.Template) -> None:
    """Refuse templates that spell out an attribute into Python internals."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, nodes.Const)):
        name = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value if isinstance(node.arg.value, str) else None
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            arg = node.args[0]
            name = arg.value if isinstance(arg, nodes.Const) else None
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            # "{0.__class__}".format(x) and friends
            if "__" in node.value and "{" in node.value:
                raise TemplateError(
                    f"{part}: line {node.lineno}: the format string {node.value!r} reaches "
                    "into Python internals, which templates may not do."
                )
        if isinstance(name, str) and _unsafe_name(name):
            raise TemplateError(
                f"{part}: line {node.lineno}: '{name}' reaches into Python internals, "
                "which templates may not do. Use the client's fields, e.g. {{ name }}."
            )


def check_source(source: str, part: str = "body") -> nodes.Template:
    """Parse one template text; raise TemplateError naming the line on any problem."""
    try:
        ast = TEXT_ENV.parse(source or "")
    except TemplateSyntaxError as exc:
        raise TemplateError(_syntax_message(part, exc)) from None
    _static_security_check(part, ast)
    return ast


def variables(source: str) -> set[str]:
    """Names a template uses that it does not define itself (its fields)."""
    ast = check_source(source)
    return set(meta.find_undeclared_variables(ast)) - set(TEXT_ENV.globals)


# -- rendering --------------------------------------------------------------
@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


class RenderFailed(Exception):
    """One recipient's render failed; `reason` is the per-recipient reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


_UNDEFINED_RE = re.compile(r"^'([^']+)' is undefined$")
_NO_ATTR_RE = re.compile(r"has no attribute '([^']+)'$")


def _render_failure(exc: Exception) -> RenderFailed:
    from comms.rules.validation import missing_field, render_error

    msg = str(exc)
    if isinstance(exc, SecurityError):
        return RenderFailed(render_error(f"refused by the sandbox: {msg}"), msg)
    if isinstance(exc, UndefinedError):
        m = _UNDEFINED_RE.match(msg) or _NO_ATTR_RE.search(msg)
        if m:
            # Jinja's "'points' is undefined" means little to a marketer: say what to do.
            name = m.group(1)
            return RenderFailed(
                missing_field(name),
                f"this client has no value for “{name}”; fill it in, or make it optional "
                f"in the template with {{{{ {name} | default('') }}}}",
            )
    return RenderFailed(render_error(msg), msg)


def _one_line(text: str) -> str:
    # A subject is a header: no line breaks, ever (header injection).
    return " ".join(text.split())


def markdown_to_html(text: str) -> str:
    """Markdown -> HTML with the extensions used everywhere in comms."""
    return md.markdown(text, extensions=MARKDOWN_EXTENSIONS, output_format="html")


def text_to_html(text: str) -> str:
    """Plain text shown as HTML (escaped, line breaks kept)."""
    return '<div style="white-space: pre-wrap">' + html.escape(text) + "</div>"


class _TagStripper:
    _TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)
    _BLOCK = re.compile(r"</?(p|div|br|li|tr|h[1-6]|ul|ol|table|blockquote)\b[^>]*>", re.I)

    def __call__(self, source: str) -> str:
        text = self._BLOCK.sub("\n", source)
        text = self._TAG.sub("", text)
        text = html.unescape(text)
        text = re.sub(r"[ \t]+", " ", text)
        return re.sub(r"\n\s*\n+", "\n\n", text).strip()


html_to_text = _TagStripper()

_EMPTY_P = re.compile(r"<p>\s*</p>\n?")
_PART_SEP = "\x00\x1ecomms-part\x1e\x00"
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_JINJA_TAG_SPLIT = re.compile(r"(\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\})", re.S)


def _markdown_html_template(body: str) -> str | None:
    """The Markdown body converted to an HTML Jinja template, or None if tags don't survive."""
    tags: list[str] = []

    def token(m: re.Match[str]) -> str:
        tags.append(m.group(0))
        return f"jjtag{len(tags) - 1}x"

    tokenised = _JINJA_TAG.sub(token, body)
    converted = markdown_to_html(tokenised)
    for i, tag in enumerate(tags):
        tok = f"jjtag{i}x"
        if tag.startswith("{%"):
            # A block tag on its own line must not leave nl2br's <br> behind.
            converted = re.sub(rf"{tok}<br\s*/?>\n", f"{tok}\n", converted)
            converted = re.sub(rf"<br\s*/?>\n{tok}", f"\n{tok}", converted)
        if converted.count(tok) != 1:
            return None  # e.g. a tag inside raw HTML Markdown re-shaped: render per recipient
        converted = converted.replace(tok, tag)
    return converted


class CompiledTemplate:
    """A template parsed once and rendered for many recipients."""

    def __init__(
        self,
        channel: str,
        subject: str | None,
        body: str,
        body_format: str = "markdown",
        *,
        lenient: bool = False,
        gsm7: bool = False,
    ) -> None:
        self.gsm7 = gsm7 and channel == "sms"
        self._text_env = LENIENT_TEXT_ENV if lenient else TEXT_ENV
        if self.gsm7:
            self._text_env = LENIENT_GSM7_TEXT_ENV if lenient else GSM7_TEXT_ENV
        self._html_env = LENIENT_HTML_ENV if lenient else HTML_ENV
        self._lenient: CompiledTemplate | None = None
        if channel not in CHANNELS:
            raise TemplateError(f"Unknown channel {channel!r}: use email or sms.")
        if body_format not in FORMATS:
            raise TemplateError(f"Unknown body format {body_format!r}: use markdown, html or text.")
        self.channel = channel
        self.body_format = body_format if channel == "email" else "text"
        self.subject_source = (subject or "") if channel == "email" else None
        self.body_source = body or ""
        self._has_blocks = "{%" in self.body_source
        check_source(self.body_source, "body")
        self.fields = variables(self.body_source)
        self._subject = None
        if self.subject_source is not None:
            check_source(self.subject_source, "subject")
            self.fields |= variables(self.subject_source)
            self._subject = self._compile(self._text_env, self.subject_source, "subject")
        self._html = None
        self._md_per_render = False
        if self.body_format == "html":
            self._html = self._compile(self._html_env, self.body_source, "body")
            self._text = None
        else:
            source = _translit_static(self.body_source) if self.gsm7 else self.body_source
            self._text = self._compile(self._text_env, source, "body")
            if channel == "email" and self.body_format == "markdown":
                source = _markdown_html_template(self.body_source)
                if source is None:
                    self._md_per_render = True
                else:
                    try:
                        self._html = self._html_env.from_string(source)
                        self._html_source = source
                    except TemplateSyntaxError:
                        self._md_per_render = True
                if self._md_per_render:
                    self._html = self._compile(self._html_env, self.body_source, "body")
        self._combined = self._combine()

    @staticmethod
    def _compile(env: _Sandbox, source: str, part: str):
        try:
            return env.from_string(source)
        except TemplateSyntaxError as exc:
            raise TemplateError(_syntax_message(part, exc)) from None

    def _parts(self) -> list[tuple[str, bool]] | None:
        """(source, autoescape) of each output, or None when they cannot share one render."""
        if self._md_per_render:
            return None
        parts = [(self.subject_source, False)] if self.subject_source is not None else []
        if self.body_format == "html":
            return [*parts, (self.body_source, True)]
        parts.append((self.body_source, False))
        if self.channel == "email" and self.body_format == "markdown":
            parts.append((self._html_source, True))
        return parts

    def _combine(self):
        # One render per recipient instead of three: the parts joined by a separator,
        # each in its own autoescape block. `{%+ ... +%}` keeps trim_blocks /
        # lstrip_blocks from eating the parts' own leading newline or trailing spaces.
        parts = self._parts()
        if parts is None or len(parts) < 2:
            return None
        source = _PART_SEP.join(
            f"{{%+ autoescape {'true' if esc else 'false'} +%}}{src}{{%+ endautoescape +%}}"
            for src, esc in parts
        )
        try:
            return self._text_env.from_string(source)
        except TemplateSyntaxError:
            return None  # e.g. a part closes a block it did not open: render separately

    def render(self, context: Mapping[str, Any]) -> Rendered:
        """Render for one recipient; raise RenderFailed with the per-recipient reason."""
        try:
            if self._combined is not None:
                return self._from_parts(_fast_render(self._combined, context).split(_PART_SEP))
            if self.channel == "sms":
                return Rendered(None, _fast_render(self._text, context), None)
            return self._render_separately(context)
        except (JinjaTemplateError, ArithmeticError, TypeError, ValueError, KeyError) as exc:
            raise _render_failure(exc) from None
        except RecursionError:
            raise RenderFailed("render error: too deeply nested", "recursion") from None

    def render_draft(self, context: Mapping[str, Any]) -> Rendered | None:
        """Render with `{{ field }}` left where a value is missing (None if that fails too)."""
        if self._lenient is None:
            self._lenient = CompiledTemplate(
                self.channel,
                self.subject_source,
                self.body_source,
                self.body_format,
                lenient=True,
                gsm7=self.gsm7,
            )
        try:
            return self._lenient.render(context)
        except RenderFailed:
            return None

    def _from_parts(self, out: list[str]) -> Rendered:
        subject = _one_line(out.pop(0)) if self.subject_source is not None else None
        if self.body_format == "html":
            return Rendered(subject, html_to_text(out[0]), out[0])
        if self.body_format == "text":
            return Rendered(subject, out[0], text_to_html(out[0]))
        return Rendered(subject, out[0], self._tidy(out[1]))

    def _tidy(self, body_html: str) -> str:
        # An {% if %} paragraph that rendered empty leaves <p></p> behind.
        return _EMPTY_P.sub("", body_html) if self._has_blocks else body_html

    def _render_separately(self, context: Mapping[str, Any]) -> Rendered:
        subject = _one_line(self._subject.render(context)) if self._subject else None
        if self.body_format == "html":
            body_html = self._html.render(context)
            return Rendered(subject, html_to_text(body_html), body_html)
        text = self._text.render(context)
        if self.channel == "sms":
            return Rendered(None, text, None)
        if self.body_format == "text":
            return Rendered(subject, text, text_to_html(text))
        if self._md_per_render:
            # Rare fallback: escape values, then run Markdown for this recipient.
            return Rendered(subject, text, markdown_to_html(self._html.render(context)))
        return Rendered(subject, text, self._tidy(self._html.render(context)))


def _fast_render(tmpl: Any, context: Mapping[str, Any]) -> str:
    # Template.render() without its per-call ChainMap merge of the globals into a
    # fresh dict (a third of the render time of a small template).
    # Our templates have no globals of their own: the environment's plain dict is
    # all of tmpl.globals, without iterating a ChainMap on every render.
    ctx = tmpl.new_context({**tmpl.environment.globals, **context}, shared=True)
    return tmpl.environment.concat(tmpl.root_render_func(ctx))


def _translit_static(source: str) -> str:
    """A template with its literal text (not its tags) transliterated to GSM-7."""
    pieces = _JINJA_TAG_SPLIT.split(source)
    return "".join(p if i % 2 else to_gsm7(p) for i, p in enumerate(pieces))


def compile_template(
    channel: str,
    subject: str | None,
    body: str,
    body_format: str = "markdown",
    *,
    gsm7: bool = False,
) -> CompiledTemplate:
    """Parse and check a template once (TemplateError on syntax or sandbox problems).

    gsm7 (SMS only): the output is transliterated to GSM-7 (see comms.rules.sms.to_gsm7).
    """
    return CompiledTemplate(channel, subject, body, body_format, gsm7=gsm7)


def render_preview(compiled: CompiledTemplate, context: Mapping[str, Any]) -> Rendered:
    """Render for one client, turning a per-recipient failure into TemplateError."""
    try:
        return compiled.render(context)
    except RenderFailed as exc:
        raise TemplateError(f"{exc.reason} — {exc.detail}") from None


# -- client context -------------------------------------------------------
_IDENT = re.compile(r"[^0-9a-zA-Z_]+")


@lru_cache(maxsize=4096)
def field_name(key: str) -> str:
    """An attribute key as a Jinja name: 'Datum narození' -> 'datum_narozeni'."""

    plain = unicodedata.normalize("NFKD", str(key)).encode("ascii", "ignore").decode()
    name = _IDENT.sub("_", plain.strip()).strip("_").lower()
    if not name or name[0].isdigit():
        name = "f_" + name
    return name


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN from pandas
        return True
    return isinstance(value, str) and not value.strip()


_CORE = ("name", "first_name", "last_name", "email", "phone", "city", "company")
NON_ATTRIBUTE_FIELDS = frozenset((*_CORE, "list", "lists", "tags"))


def client_context(
    row: Mapping[str, Any],
    attributes: Mapping[str, Any] | None = None,
    only: frozenset[str] | None = None,
) -> dict:
    """The fields a template sees for one client; blank values are left out (missing).

    With `only` (a compiled template's fields), attributes the template does not
    use are skipped: the bulk generator builds 100,000 of these.
    """
    ctx: dict[str, Any] = {}
    if attributes:
        for key, value in attributes.items():
            if value is None or value == "" or _blank(value):
                continue
            ident = field_name(key)
            if only is not None and key not in only and ident not in only:
                continue
            ctx[key] = value
            if ident not in ctx:
                ctx[ident] = value
    for key in _CORE:
        value = row.get(key)
        if value is None or value == "" or (value.__class__ is not str and _blank(value)):
            ctx.pop(key, None)
        elif value.__class__ is str and value[0].isspace() and not value.strip():
            ctx.pop(key, None)
        else:
            ctx[key] = value
    lists = row.get("lists")
    if lists and (only is None or "list" in only or "lists" in only):
        lists = [x for x in lists if not _blank(x)]
        if lists:
            ctx["list"] = ", ".join(lists)
            ctx["lists"] = lists
    tags = row.get("tags")
    if tags and (only is None or "tags" in only):
        tags = [x for x in tags if not _blank(x)]
        if tags:
            ctx["tags"] = tags
    if "first_name" not in ctx and "name" in ctx:
        first = _first_name(str(ctx["name"]))
        if first:
            ctx["first_name"] = first
    return ctx


def _first_name(name: str) -> str | None:
    # "Ing. Jana Nováková" -> "Jana": academic titles end with a dot and are skipped.
    for word in name.replace(",", " ").split():
        if not word.endswith("."):
            return word
    return None


# -- storage --------------------------------------------------------------
@dataclass
class Template:
    id: int
    name: str
    channel: str
    subject: str | None
    body: str
    body_format: str
    attachments: list[att.Attachment] = field(default_factory=list)

    def compile(self) -> CompiledTemplate:
        return compile_template(self.channel, self.subject, self.body, self.body_format)


def _validate(name: str, channel: str, subject: str | None, body: str, body_format: str) -> None:
    if not (name or "").strip():
        raise TemplateError("A template needs a name.")
    if channel not in CHANNELS:
        raise TemplateError(f"Unknown channel {channel!r}: use email or sms.")
    if body_format not in FORMATS:
        raise TemplateError(f"Unknown body format {body_format!r}: use markdown, html or text.")
    if not (body or "").strip():
        raise TemplateError("A template needs a body.")
    if channel == "email" and not (subject or "").strip():
        raise TemplateError("An e-mail template needs a subject.")
    compile_template(channel, subject, body, body_format)


def _name_taken(cur: duckdb.DuckDBPyConnection, name: str, except_id: int | None) -> bool:
    row = cur.execute(
        "SELECT id FROM templates WHERE lower(name) = lower(?) AND id IS DISTINCT FROM ?",
        [name.strip(), except_id],
    ).fetchone()
    return row is not None


def _link(cur: duckdb.DuckDBPyConnection, template_id: int, attachment_ids: Iterable[int]) -> None:
    for aid in dict.fromkeys(int(a) for a in attachment_ids):
        cur.execute(
            "INSERT INTO template_attachments (template_id, attachment_id) VALUES (?, ?)",
            [template_id, aid],
        )


def create_template(
    store: Store,
    *,
    name: str,
    channel: str,
    body: str,
    subject: str | None = None,
    body_format: str = "markdown",
    attachment_ids: Iterable[int] = (),
) -> int:
    """Save a new template (only when it parses); return its id."""
    if channel == "sms":
        subject, body_format = None, "text"
    _validate(name, channel, subject, body, body_format)
    name = name.strip()
    attachment_ids = list(attachment_ids)
    if channel == "sms" and attachment_ids:
        raise TemplateError("SMS templates cannot carry attachments.")

    def tx(cur: duckdb.DuckDBPyConnection) -> int:
        tid = _insert(cur, name, channel, subject, body, body_format, attachment_ids)
        actionlog.record(
            cur,
            "template create",
            detail={"template_id": tid, "name": name, "channel": channel},
        )
        return tid

    return store.write(tx)


def _ensure_name_free(cur: duckdb.DuckDBPyConnection, name: str, template_id: int | None) -> None:
    if _name_taken(cur, name, template_id):
        raise TemplateError(f"A template named {name!r} already exists; choose another name.")


def _insert(
    cur: duckdb.DuckDBPyConnection,
    name: str,
    channel: str,
    subject: str | None,
    body: str,
    body_format: str,
    attachment_ids: list[int],
) -> int:
    """Insert one template row with its attachment links (names are unique); its id."""
    _ensure_name_free(cur, name, None)
    tid = cur.execute(
        "INSERT INTO templates (name, channel, subject, body, body_format)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        [name, channel, subject, body, body_format],
    ).fetchone()[0]
    _link(cur, tid, attachment_ids)
    return int(tid)


def update_template(
    store: Store,
    template_id: int,
    *,
    name: str | None = None,
    subject: str | None = None,
    body: str | None = None,
    body_format: str | None = None,
) -> None:
    """Change a template's name / subject / body / format (only when it parses)."""
    current = get_template(store, template_id)
    new_name = (name if name is not None else current.name).strip()
    new_subject = subject if subject is not None else current.subject
    new_body = body if body is not None else current.body
    new_format = body_format or current.body_format
    if current.channel == "sms":
        new_subject, new_format = None, "text"
    _validate(new_name, current.channel, new_subject, new_body, new_format)

    def tx(cur: duckdb.DuckDBPyConnection) -> None:
        _ensure_name_free(cur, new_name, template_id)
        cur.execute(
            "UPDATE templates SET name = ?, subject = ?, body = ?, body_format = ?,"
            " updated_at = current_timestamp WHERE id = ?",
            [new_name, new_subject, new_body, new_format, template_id],
        )
        changed = [
            k
            for k, old, new in (
                ("name", current.name, new_name),
                ("subject", current.subject, new_subject),
                ("body", current.body, new_body),
                ("body_format", current.body_format, new_format),
            )
            if old != new
        ]
        actionlog.record(
            cur,
            "template edit",
            detail={"template_id": template_id, "name": new_name, "changed": changed},
        )

    store.write(tx)


def duplicate_template(store: Store, template_id: int, new_name: str | None = None) -> int:
    """Copy a template (with its attachments) under a new name; return the copy's id."""
    src = get_template(store, template_id)
    name = (new_name or "").strip()
    if not name:
        taken = {r["name"].lower() for r in store.rows("SELECT name FROM templates")}
        name, n = f"{src.name} (copy)", 2
        while name.lower() in taken:
            name, n = f"{src.name} (copy {n})", n + 1

    def tx(cur: duckdb.DuckDBPyConnection) -> int:
        tid = _insert(
            cur,
            name,
            src.channel,
            src.subject,
            src.body,
            src.body_format,
            [a.id for a in src.attachments],
        )
        actionlog.record(
            cur,
            "template duplicate",
            detail={"template_id": tid, "from_template_id": template_id, "name": name},
        )
        return tid

    return store.write(tx)


def delete_template(store: Store, template_id: int) -> None:
    """Delete a template (messages already generated from it keep their text)."""
    src = get_template(store, template_id)

    def tx(cur: duckdb.DuckDBPyConnection) -> None:
        cur.execute("DELETE FROM template_attachments WHERE template_id = ?", [template_id])
        cur.execute("DELETE FROM templates WHERE id = ?", [template_id])
        actionlog.record(
            cur, "template delete", detail={"template_id": template_id, "name": src.name}
        )

    store.write(tx)


def attach(store: Store, template_id: int, filename: str, data: bytes) -> int:
    """Store a file and attach it to an e-mail template; return the attachment id."""
    tpl = get_template(store, template_id)
    if tpl.channel != "email":
        raise TemplateError("SMS templates cannot carry attachments.")
    att.check_total([*tpl.attachments, att.Attachment(0, "", filename, "", len(data))])

    def tx(cur: duckdb.DuckDBPyConnection) -> int:
        aid = att.add_in(cur, filename, data)
        exists = cur.execute(
            "SELECT 1 FROM template_attachments WHERE template_id = ? AND attachment_id = ?",
            [template_id, aid],
        ).fetchone()
        if not exists:
            _link(cur, template_id, [aid])
        actionlog.record(
            cur,
            "template attach",
            detail={"template_id": template_id, "attachment_id": aid, "filename": filename},
        )
        return aid

    return store.write(tx)


def detach(store: Store, template_id: int, attachment_id: int) -> None:
    """Remove one attachment from a template (the stored content stays for other users)."""
    get_template(store, template_id)

    def tx(cur: duckdb.DuckDBPyConnection) -> None:
        cur.execute(
            "DELETE FROM template_attachments WHERE template_id = ? AND attachment_id = ?",
            [template_id, attachment_id],
        )
        actionlog.record(
            cur,
            "template detach",
            detail={"template_id": template_id, "attachment_id": attachment_id},
        )

    store.write(tx)


def _row_to_template(store: Store, row: dict) -> Template:
    return Template(
        id=int(row["id"]),
        name=row["name"],
        channel=row["channel"],
        subject=row["subject"],
        body=row["body"],
        body_format=row["body_format"],
        attachments=att.for_template(store, int(row["id"])),
    )


def get_template(store: Store, template_id: int) -> Template:
    """One template with its attachments (NotFound when it does not exist)."""
    rows = store.rows(
        "SELECT id, name, channel, subject, body, body_format FROM templates WHERE id = ?",
        [int(template_id)],
    )
    if not rows:
        raise NotFound(f"Template {template_id} does not exist.")
    return _row_to_template(store, rows[0])


def get_template_by_name(store: Store, name: str) -> Template:
    """One template by its (case-insensitive) name."""
    rows = store.rows(
        "SELECT id, name, channel, subject, body, body_format FROM templates"
        " WHERE lower(name) = lower(?)",
        [name.strip()],
    )
    if not rows:
        raise NotFound(f"No template named {name!r}. `comms templates list` shows them.")
    return _row_to_template(store, rows[0])


def list_templates(store: Store, channel: str | None = None) -> list[dict]:
    """Every template (optionally one channel) with its attachment count, by name."""
    sql = (
        "SELECT t.id, t.name, t.channel, t.subject, t.body_format, t.updated_at,"
        " (SELECT count(*) FROM template_attachments ta WHERE ta.template_id = t.id)"
        " AS attachments, length(t.body) AS body_length FROM templates t"
    )
    params: list[Any] = []
    if channel:
        sql += " WHERE t.channel = ?"
        params.append(channel)
    sql += " ORDER BY lower(t.name)"
    return store.rows(sql, params)


def sample_client(store: Store, client_id: int | None = None) -> dict | None:
    """A client row (the given one, else the first) with parsed attributes, for previews."""
    import json

    sql = (
        "SELECT id, name, first_name, last_name, email, phone, city, company, lists, tags,"
        " attributes FROM clients"
    )
    rows = (
        store.rows(sql + " WHERE id = ?", [int(client_id)])
        if client_id is not None
        else store.rows(sql + " ORDER BY id LIMIT 1")
    )
    if not rows:
        return None
    row = rows[0]
    raw = row.get("attributes")
    try:
        row["attributes"] = json.loads(raw) if isinstance(raw, str) else (raw or {})
    except ValueError:
        row["attributes"] = {}
    return row


def preview_clients(store: Store, limit: int = 200) -> list[dict]:
    """id, name and e-mail of the first clients, for a preview picker."""
    return store.rows("SELECT id, name, email FROM clients ORDER BY id LIMIT ?", [limit])


def context_for(row: Mapping[str, Any]) -> dict:
    """client_context for a row returned by sample_client."""
    return client_context(row, row.get("attributes") or {})


def describe_error(exc: Exception) -> str:
    """A one-line message for any template problem."""
    if isinstance(exc, CommsError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
