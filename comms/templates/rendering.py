"""Sandboxed Jinja2 rendering: the environments, checks, render, body -> HTML / text.

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
  joining the three, switching autoescape on and off between them (in one
  scope when no part assigns a name, else each in its own autoescape block);
  a simple template (text, fields, `{% if %}`) renders through a generated
  function instead (comms.templates.simple), to the same text.

A recipient whose render fails still gets a readable draft: rendered again
with `ShowMissing`, which leaves `{{ field }}` where a value is missing, so the
review shows the message and a person can complete it by hand.

Every Jinja render runs under its budget of time and size (comms.templates.budget):
the sandbox bounds the operators, filters and str methods that can make a big
value, its code generator counts the output that can repeat, and a render
over budget raises RenderFailed with the reason `template too slow` or
`template too large`. A template that blows the budget whatever the client
is refused when it is compiled for saving (TemplateTooCostly, one sentence);
a preview says the same sentence.
"""

from __future__ import annotations

import functools
import html
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import markdown as md
from jinja2 import (
    ChainableUndefined,
    StrictUndefined,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
)
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from markupsafe import Markup

from comms.errors import TemplateError
from comms.i18n import N_, _
from comms.rules.sms import to_gsm7
from comms.rules.validation import (
    CHANNELS,
    TEMPLATE_TOO_LARGE,
    TEMPLATE_TOO_SLOW,
    missing_field,
    render_error,
)
from comms.templates import budget
from comms.templates.simple import compile_simple

FORMATS = ("markdown", "html", "text")
MARKDOWN_EXTENSIONS = ["extra", "sane_lists", "nl2br"]
# The per-recipient reasons of a render over its budget (comms.templates.budget).
BUDGET_REASONS = frozenset({TEMPLATE_TOO_SLOW, TEMPLATE_TOO_LARGE})


class TemplateTooCostly(TemplateError):
    """A template that blows its render budget whatever the client; the message is one sentence."""


def unknown_channel(channel: Any) -> str:
    return _("Unknown channel {channel!r}: use email or sms.").format(channel=channel)


def unknown_format(body_format: Any) -> str:
    return _("Unknown body format {format!r}: use markdown, html or text.").format(
        format=body_format
    )


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, plus the output count of budget B3 and a check of `~`.

    Output inside a loop, a block or a buffer (macro, call, `{% set %}` and
    `{% filter %}` blocks) can repeat: each such piece goes through
    `environment.counted`, so a loop is cut as soon as it has made too much.
    Any other piece runs once per render and costs nothing extra.
    """

    _count = False
    _loops = 0  # how many {% for %} bodies the code being written is inside

    def visit_For(self, node: nodes.For, frame: Any) -> None:
        self._loops += 1
        try:
            super().visit_For(node, frame)
        finally:
            self._loops -= 1

    def visit_Output(self, node: nodes.Output, frame: Any) -> None:
        self._count = bool(self._loops) or frame.buffer is not None or frame.block is not None
        try:
            super().visit_Output(node, frame)
        finally:
            self._count = False

    def _output_const_repr(self, group: Any) -> str:
        out = super()._output_const_repr(group)
        return f"environment.counted({out})" if self._count else out

    def _output_child_pre(self, node: nodes.Expr, frame: Any, finalize: Any) -> None:
        if self._count:
            self.write("environment.counted(")
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Any, finalize: Any) -> None:
        super()._output_child_post(node, frame, finalize)
        if self._count:
            self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Any) -> None:
        self.write("environment.bounded(")
        super().visit_Concat(node, frame)
        self.write(")")


class _BoundedFormatter(SandboxedFormatter):
    """str.format in the sandbox, refusing a field width over the budget (B2)."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget.format_spec(format_spec)
        return budget.check(super().format_field(value, format_spec))


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    pass


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every way to make a big value bounded (budget B2, B3)."""

    code_generator_class = _BoundedCodeGenerator
    # `*`, `**` and `%` are checked before they run, `+` after; an intercepted
    # operator is also never folded at compile time (`'A' * 10000000000`).
    intercepted_binops = frozenset({"+", "*", "**", "%"})
    counted = staticmethod(budget.counted)
    bounded = staticmethod(budget.check)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters = budget.bounded_filters(self.filters)
        self.globals["lipsum"] = budget.bounded_lipsum(self.globals["lipsum"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        return budget.binop(operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        return budget.check(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Any:
        """str.format / format_map with bounded widths, and the bounded str methods (B2)."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType):
            return None
        if value.__name__ not in ("format", "format_map"):
            return budget.bounded_method(value)
        f_self = value.__self__
        if not isinstance(f_self, str):
            return None
        formatter: SandboxedFormatter
        if isinstance(f_self, Markup):
            formatter = _BoundedEscapeFormatter(self, escape=f_self.escape)
        else:
            formatter = _BoundedFormatter(self)
        str_type = type(f_self)
        is_format_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs, args = args[0], ()
            return str_type(formatter.vformat(f_self, args, kwargs))

        return wrapper


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
# The parts of a template a refusal names ("body: syntax error on line 2: ...").
_PARTS = {"body": N_("body"), "subject": N_("subject")}


def _part(part: str) -> str:
    return _(_PARTS[part]) if part in _PARTS else part


def _syntax_message(part: str, exc: TemplateSyntaxError) -> str:
    # Jinja's own words (exc.message) stay English.
    return _("{part}: syntax error on line {line}: {error}").format(
        part=_part(part), line=exc.lineno, error=exc.message
    )


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
                    _(
                        "{part}: line {line}: the format string {text!r} reaches into "
                        "Python internals, which templates may not do."
                    ).format(part=_part(part), line=node.lineno, text=node.value)
                )
        if isinstance(name, str) and _unsafe_name(name):
            raise TemplateError(
                _(
                    "{part}: line {line}: '{name}' reaches into Python internals, which "
                    "templates may not do. Use the client's fields, e.g. {{{{ name }}}}."
                ).format(part=_part(part), line=node.lineno, name=name)
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
    """One recipient's render failed; `reason` is the per-recipient reason.

    `reason` (a code) and `detail` are stored with the message, so they are English;
    `sentence()` is the detail in the viewer's language, for a refusal at save or preview
    (`shown` makes it, only when asked: a bulk render never pays for it).
    """

    def __init__(self, reason: str, detail: str, shown: Callable[[], str] | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self._shown = shown

    def sentence(self) -> str:
        """The detail as the person looking reads it."""
        return self._shown() if self._shown is not None else self.detail

    def shown_reason(self) -> str:
        """The reason code in the viewer's language ('missing field: city', 'render error:
        ...'): the named part translated (core.po), the detail after it as it is."""
        head, sep, detail = self.reason.partition(": ")
        if head == "missing field" and sep:
            return _("missing field: {field}").format(field=detail)
        if head == "render error" and sep:
            return _("render error: {error}").format(error=detail)
        return _(self.reason)


_MISSING = N_(
    "this client has no value for “{name}”; fill it in, or make it optional in the "
    "template with {example}"
)


def _missing_sentence(name: str, translate: bool = False) -> str:
    text = _(_MISSING) if translate else _MISSING
    return text.format(name=name, example="{{ " + name + " | default('') }}")


_UNDEFINED_RE = re.compile(r"^'([^']+)' is undefined$")
_NO_ATTR_RE = re.compile(r"has no attribute '([^']+)'$")


def _render_failure(exc: Exception) -> RenderFailed:
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
                _missing_sentence(name),
                functools.partial(_missing_sentence, name, True),
            )
    return RenderFailed(render_error(msg), msg)


def _too_large(exc: budget.RenderTooLarge) -> RenderFailed:
    b = budget.limits()
    return RenderFailed(
        TEMPLATE_TOO_LARGE,
        budget.too_large_sentence(exc, b),
        functools.partial(budget.too_large_sentence, exc, b, shown=True),
    )


def _one_line(text: str) -> str:
    # A subject is a header: no line breaks, ever (header injection).
    return " ".join(text.split())


# -- body -> HTML, HTML -> text ------------------------------------------------
def markdown_to_html(text: str) -> str:
    """Markdown -> HTML with the extensions used everywhere in comms."""
    return md.markdown(text, extensions=MARKDOWN_EXTENSIONS, output_format="html")


def text_to_html(text: str) -> str:
    """Plain text shown as HTML (escaped, line breaks kept)."""
    return '<div style="white-space: pre-wrap">' + html.escape(text) + "</div>"


_SCRIPT_OR_TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)
_BLOCK_TAG = re.compile(r"</?(p|div|br|li|tr|h[1-6]|ul|ol|table|blockquote)\b[^>]*>", re.I)


def html_to_text(markup: str) -> str:
    """A readable plain text of HTML: the text part of an HTML e-mail (blocks become lines)."""
    text = _BLOCK_TAG.sub("\n", markup)
    text = _SCRIPT_OR_TAG.sub("", text)
    text = html.unescape(text)
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def body_parts(channel: str, body_format: str | None, body: str) -> tuple[str, str | None]:
    """(text part, HTML part or None) of a final body: no Jinja, the content is as typed.

    The one rule for a body a person edited (a generated message, a draft):
    raw HTML keeps its markup and gets a text part; plain text is escaped into
    HTML; Markdown (the default) is HTML-escaped before conversion, so the
    message cannot carry markup that the editor showed as text.
    """
    if channel == "sms":
        return body, None
    if body_format == "html":
        return html_to_text(body), body
    if body_format == "text":
        return body, text_to_html(body)
    return body, markdown_to_html(html.escape(body, quote=False))


_EMPTY_P = re.compile(r"<p>\s*</p>\n?")
# Names Jinja gives a meaning of its own: a template using one is not simple.
_SPECIAL_NAMES = frozenset({"self", "loop", "caller", "varargs", "kwargs", "super"})
# What sets a name in a template's scope: parts with one of these are not merged.
_STORES = (
    nodes.Assign,
    nodes.AssignBlock,
    nodes.Macro,
    nodes.Import,
    nodes.FromImport,
    nodes.Block,
)
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


class _Fast:
    """One compiled Jinja template, rendered without Template.render's per-call work.

    Template.render merges the globals into a fresh dict (a ChainMap walk) and
    builds a Context and an EvalContext through their constructors: a third of
    the render time of a small template. Here the Context is a copy of one made
    once, given the recipient's values as they are (Jinja never writes to a
    context's parent) and fresh `vars` / `exported_vars` / eval context, which a
    render does write; the globals are merged in only when the template uses one.
    """

    __slots__ = ("_eval", "_globals", "_proto", "_root")

    def __init__(self, template: Any, uses_globals: bool) -> None:
        proto = template.new_context({}, shared=True)
        self._proto = dict(proto.__dict__)
        self._eval = dict(proto.eval_ctx.__dict__)
        self._globals = dict(template.environment.globals) if uses_globals else None
        self._root = template.root_render_func

    def __call__(self, values: Mapping[str, Any]) -> str:
        ctx = Context.__new__(Context)
        eval_ctx = EvalContext.__new__(EvalContext)
        eval_ctx.__dict__.update(self._eval)
        d = ctx.__dict__
        d.update(self._proto)
        d["parent"] = values if self._globals is None else {**self._globals, **values}
        d["vars"] = {}
        d["exported_vars"] = set()
        d["eval_ctx"] = eval_ctx
        # Pieces that can repeat were counted as they were made (budget B3).
        return budget.check("".join(self._root(ctx)))


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
            raise TemplateError(unknown_channel(channel))
        if body_format not in FORMATS:
            raise TemplateError(unknown_format(body_format))
        self.channel = channel
        self.body_format = body_format if channel == "email" else "text"
        self.subject_source = (subject or "") if channel == "email" else None
        self.body_source = body or ""
        self._has_blocks = "{%" in self.body_source
        asts = [check_source(self.body_source, "body")]
        if self.subject_source is not None:
            asts.append(check_source(self.subject_source, "subject"))
        self.fields = set().union(*(meta.find_undeclared_variables(a) for a in asts))
        # range, lipsum, namespace ...: merged into a render's values only when used.
        self._uses_globals = any(
            n.name in TEXT_ENV.globals for a in asts for n in a.find_all(nodes.Name)
        )
        self._subject = None
        if self.subject_source is not None:
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
                        self._html = self._fast(self._html_env.from_string(source))
                        self._html_source = source
                    except TemplateSyntaxError:
                        self._md_per_render = True
                if self._md_per_render:
                    self._html = self._compile(self._html_env, self.body_source, "body")
        self._combined = self._combine()
        self._simple = self._make_simple(lenient)

    def _fast(self, template: Any) -> _Fast:
        return _Fast(template, self._uses_globals)

    def _compile(self, env: _Sandbox, source: str, part: str) -> _Fast:
        try:
            return self._fast(env.from_string(source))
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

    def _combine(self) -> _Fast | None:
        # One render per recipient instead of three: the parts joined by a separator.
        parts = self._parts()
        if parts is None or len(parts) < 2:
            return None
        env = self._text_env
        try:
            asts = [env.parse(src) for src, _ in parts]
        except TemplateSyntaxError:
            return None
        if not any(a.find(_STORES) for a in asts):
            # Nothing is assigned, so the parts can share one scope: the parsed parts
            # back to back, each switching autoescape on or off. Every field is looked
            # up once per render, not once per part (a fifth of a small render).
            body: list[nodes.Node] = []
            for (_, esc), ast in zip(parts, asts, strict=True):
                if body:
                    body.append(nodes.Output([nodes.TemplateData(_PART_SEP)], lineno=1))
                body.append(
                    nodes.EvalContextModifier(
                        [nodes.Keyword("autoescape", nodes.Const(esc), lineno=1)], lineno=1
                    )
                )
                body.extend(ast.body)
            tree = nodes.Template(body, lineno=1)
            tree.set_environment(env)
            try:
                code = env.compile(tree)
                return self._fast(env.template_class.from_code(env, code, env.make_globals(None)))
            except TemplateSyntaxError:
                pass
        # Else each part in its own autoescape block (a scope of its own).
        # `{%+ ... +%}` keeps trim_blocks / lstrip_blocks from eating the parts' own
        # leading newline or trailing spaces.
        source = _PART_SEP.join(
            f"{{%+ autoescape {'true' if esc else 'false'} +%}}{src}{{%+ endautoescape +%}}"
            for src, esc in parts
        )
        try:
            return self._fast(env.from_string(source))
        except TemplateSyntaxError:
            return None  # e.g. a part closes a block it did not open: render separately

    def render(self, context: Mapping[str, Any]) -> Rendered:
        """Render for one recipient; raise RenderFailed with the per-recipient reason."""
        return Rendered(*self.render_parts(context))

    def render_parts(self, context: Mapping[str, Any]) -> tuple[str | None, str, str | None]:
        """(subject, text, HTML) for one recipient, under the render budget; RenderFailed if not."""
        if self._simple is not None:
            # None or an error (a missing field, '>' between a text and a number): Jinja
            # renders and says what it means (simple.S2); over the size cap, Jinja's
            # render says so too (simple.S3).
            try:
                out = self._simple(context)
            except Exception:
                out = None
            if out is not None and sum(map(len, out)) <= budget.limits().max_chars:
                return self._finish(out)
        try:
            return budget.run(self._produce, context)
        except budget.RenderTooSlow:
            b = budget.limits()
            raise RenderFailed(
                TEMPLATE_TOO_SLOW,
                budget.too_slow_sentence(b),
                functools.partial(budget.too_slow_sentence, b, shown=True),
            ) from None
        except budget.RenderTooLarge as exc:
            raise _too_large(exc) from None
        except MemoryError:  # something the size checks did not foresee
            raise _too_large(budget.RenderTooLarge()) from None
        except (JinjaTemplateError, ArithmeticError, TypeError, ValueError, KeyError) as exc:
            raise _render_failure(exc) from None
        except RecursionError:
            raise RenderFailed("render error: too deeply nested", "recursion") from None

    def _produce(self, context: Mapping[str, Any]) -> tuple[str | None, str, str | None]:
        if self._combined is not None:
            return self._finish(self._combined(context).split(_PART_SEP))
        if self.channel == "sms":
            return None, self._text(context), None
        r = self._render_separately(context)
        return r.subject, r.text, r.html

    def _finish(self, out: list[str] | tuple[str, ...]) -> tuple[str | None, str, str | None]:
        """(subject, text, HTML) from the outputs of _parts() (or the SMS text alone)."""
        if self.channel == "sms":
            return None, out[0], None
        subject = _one_line(out[0])
        if self.body_format == "html":
            return subject, html_to_text(out[-1]), out[-1]
        if self.body_format == "text":
            return subject, out[-1], text_to_html(out[-1])
        return subject, out[1], self._tidy(out[2])

    def _make_simple(self, lenient: bool) -> Any:
        """comms.templates.simple's renderer of this template, or None (then Jinja renders)."""
        if lenient:  # drafts show {{ field }}: Jinja's ShowMissing does that
            return None
        if self.channel == "sms":
            source = _translit_static(self.body_source) if self.gsm7 else self.body_source
            parts = [(source, False)]
        else:
            parts = self._parts()
            if parts is None or self._combined is None:
                return None
        env = self._text_env
        try:
            asts = [(env.parse(src), esc) for src, esc in parts]
        except TemplateSyntaxError:
            return None
        if any(a.find(_STORES) for a, _ in asts) or self._uses_globals:
            return None
        if any(n.name in _SPECIAL_NAMES for a, _ in asts for n in a.find_all(nodes.Name)):
            return None
        return compile_simple(asts, env.finalize)

    def render_draft(self, context: Mapping[str, Any]) -> Rendered | None:
        """Render with `{{ field }}` left where a value is missing (None if that fails too)."""
        try:
            return self.lenient().render(context)
        except RenderFailed:
            return None

    def lenient(self) -> CompiledTemplate:
        """This template with `{{ field }}` shown where a value is missing (made once)."""
        if self._lenient is None:
            self._lenient = CompiledTemplate(
                self.channel,
                self.subject_source,
                self.body_source,
                self.body_format,
                lenient=True,
                gsm7=self.gsm7,
            )
        return self._lenient

    def check_budget(self) -> None:
        """Refuse (TemplateTooCostly) a template that blows its budget whatever the client.

        It is rendered once with no field at all, each shown as its placeholder:
        a loop, a repetition or a number that does not depend on the client's
        values is run exactly as it would run for every recipient.
        """
        try:
            self.lenient().render_parts({})
        except RenderFailed as exc:
            if exc.reason in BUDGET_REASONS:
                raise TemplateTooCostly(exc.sentence() + ".") from None

    def _tidy(self, body_html: str) -> str:
        # An {% if %} paragraph that rendered empty leaves <p></p> behind.
        return _EMPTY_P.sub("", body_html) if self._has_blocks else body_html

    def _render_separately(self, context: Mapping[str, Any]) -> Rendered:
        subject = _one_line(self._subject(context)) if self._subject else None
        if self.body_format == "html":
            body_html = self._html(context)
            out = (subject, html_to_text(body_html), body_html)
        elif self.body_format == "text":
            text = self._text(context)
            out = (subject, text, text_to_html(text))
        elif self._md_per_render:
            # Rare fallback: escape values, then run Markdown for this recipient.
            out = (subject, self._text(context), markdown_to_html(self._html(context)))
        else:
            out = (subject, self._text(context), self._tidy(self._html(context)))
        budget.check("".join(part or "" for part in out))  # the whole message, as one render
        return Rendered(*out)


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
    check_budget: bool = False,
) -> CompiledTemplate:
    """Parse and check a template once (TemplateError on syntax or sandbox problems).

    gsm7 (SMS only): the output is transliterated to GSM-7 (see comms.rules.sms.to_gsm7).
    The render budget is read from the settings (comms.config) here. With
    check_budget (saving does), a template that blows it whatever the client
    raises TemplateTooCostly; without, each render that blows it raises
    RenderFailed with a named reason (the bulk generator's per-recipient reason).
    """
    budget.use(budget.from_config())
    compiled = CompiledTemplate(channel, subject, body, body_format, gsm7=gsm7)
    if check_budget:
        compiled.check_budget()
    return compiled


def render_preview(compiled: CompiledTemplate, context: Mapping[str, Any]) -> Rendered:
    """Render for one client, turning a per-recipient failure into TemplateError."""
    try:
        return compiled.render(context)
    except RenderFailed as exc:
        if exc.reason in BUDGET_REASONS:
            raise TemplateError(exc.sentence() + ".") from None
        raise TemplateError(f"{exc.shown_reason()} — {exc.sentence()}") from None
