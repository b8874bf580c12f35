"""The simplest templates rendered without Jinja's machinery, to the same text.

Most templates are text with fields and a few `{% if %}`s. For one of those
(`compile_simple`) the renderer gets a plain Python function, generated once,
that looks each field up once and joins the pieces: about half of a Jinja
render of the same template, which is most of a bulk generation's time.

S1 (same output): the function does exactly what Jinja's generated code does
for the constructs it accepts: text as written (the parser already applied
trim_blocks / lstrip_blocks), `{{ field }}` as str(value), or
markupsafe.escape(value) in an autoescaped part, through the environment's
finalize when it has one; `{% if %}` / `{% elif %}` / `{% else %}` on a field's
truth, a comparison with constants, `and` / `or` / `not`, `is defined` /
`is undefined`. Any other construct makes the template not simple (None):
it renders with Jinja.
S2 (Jinja decides the hard cases): when a field the function needs is missing
it returns None, and when a test raises (`'x' > 5`) it raises; either way the
caller renders with Jinja, so a missing field's error, a render error, the
`{{ field }}` draft and StrictUndefined's rules stay Jinja's own.
S3 (budget): nothing here can loop or grow, so a simple render needs no
watchdog; its size is the template's plus its values' (the caller checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import markupsafe
from jinja2 import nodes
from markupsafe import escape

_MISSING = object()
# markupsafe's own C routine behind escape(): escape(s) is Markup(_escape_inner(s)) for a
# str. Calling it directly gives the same text without a Markup object per field (a
# tenth of a bulk render); any other value, or a markupsafe without it, takes escape().
_escape_inner = getattr(markupsafe, "_escape_inner", None)


def _escape(value: Any) -> str:
    """escape(value)'s text (S1): the same characters, as a plain str when value is one."""
    if _escape_inner is not None and type(value) is str:
        return _escape_inner(value)
    if type(value) is int:  # str(int) has nothing to escape
        return str(value)
    return escape(value)


_COMPARE = {"eq": "==", "ne": "!=", "gt": ">", "gteq": ">=", "lt": "<", "lteq": "<="}
_COMPARE |= {"in": "in", "notin": "not in"}


class _NotSimple(Exception):
    """A construct this renderer leaves to Jinja."""


class _Writer:
    """Python source for one render function, built from the parts' ASTs."""

    def __init__(self, finalize: Callable[[Any], Any] | None) -> None:
        self.finalize = finalize
        self.lines: list[str] = []
        self.names: dict[str, str] = {}  # field -> local variable
        self.present: set[str] = set()  # fields known present here (checked unconditionally)
        self.converted: set[str] = set()  # locals holding a converted value (s0, e0 ...)

    def var(self, name: str) -> str:
        if name not in self.names:
            self.names[name] = f"v{len(self.names)}"
        return self.names[name]

    def const(self, value: Any) -> str:
        # repr() of these is a Python literal of the same value (a LOAD_CONST, the fastest).
        if value is None or isinstance(value, bool | str) or type(value) is int:
            return repr(value)
        if isinstance(value, float) and value == value and abs(value) != float("inf"):
            return repr(value)
        raise _NotSimple

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    # -- expressions (if tests) -------------------------------------------------
    def test(self, node: nodes.Node, needed: set[str]) -> str:
        """A test as Python source; `needed` collects the fields it cannot do without."""
        if isinstance(node, nodes.Name) and node.ctx == "load":
            needed.add(node.name)
            return self.var(node.name)
        if isinstance(node, nodes.Const):
            return self.const(node.value)
        if isinstance(node, nodes.List | nodes.Tuple):
            items = [self.test(item, needed) for item in node.items]
            return "(" + "".join(f"{i}, " for i in items) + ")"
        if isinstance(node, nodes.Not):
            return f"(not {self.test(node.node, needed)})"
        if isinstance(node, nodes.And | nodes.Or):
            op = "and" if isinstance(node, nodes.And) else "or"
            return f"({self.test(node.left, needed)} {op} {self.test(node.right, needed)})"
        if isinstance(node, nodes.Compare):
            out = self.test(node.expr, needed)
            for operand in node.ops:
                if operand.op not in _COMPARE:
                    raise _NotSimple
                out += f" {_COMPARE[operand.op]} {self.test(operand.expr, needed)}"
            return f"({out})"
        if (
            isinstance(node, nodes.Test)
            and node.name in ("defined", "undefined")
            and isinstance(node.node, nodes.Name)
            and not node.args
            and not node.kwargs
            and node.dyn_args is None
            and node.dyn_kwargs is None
        ):
            is_ = "is not" if node.name == "defined" else "is"
            return f"({self.var(node.node.name)} {is_} M)"
        raise _NotSimple

    # -- statements -------------------------------------------------------------
    def check(self, names: set[str], depth: int) -> None:
        """Return None (Jinja renders) if one of these fields is missing (S2)."""
        for name in sorted(names - self.present):
            self.emit(depth, f"if {self.var(name)} is M: return None")
        if depth == 1:  # the top level runs unconditionally: known present from here on
            self.present |= names

    def value(self, name: str, escaped: bool, depth: int) -> str:
        v = self.var(name)
        local = ("e" if escaped else "s") + v[1:]
        if local in self.converted:
            return local
        inner = f"fin({v})" if self.finalize is not None else v
        expr = f"esc({inner})" if escaped else f"to_str({inner})"
        if depth > 1:  # inside an {% if %}: converted where used
            return expr
        self.emit(depth, f"{local} = {expr}")  # once per render, however often it is used
        self.converted.add(local)
        return local

    def block(self, body: Sequence[nodes.Node], out: str, escaped: bool, depth: int) -> None:
        """The statements of a body: its pieces added to list `out`."""
        needed = {
            child.name
            for node in body
            if isinstance(node, nodes.Output)
            for child in node.nodes
            if isinstance(child, nodes.Name)
        }
        self.check(needed, depth)  # S2: Jinja decides what a missing field means
        pieces: list[str] = []

        def flush() -> None:
            if pieces:
                self.emit(depth, f"{out} += ({''.join(p + ', ' for p in pieces)})")
                pieces.clear()

        for node in body:
            if isinstance(node, nodes.Output):
                for child in node.nodes:
                    if isinstance(child, nodes.TemplateData):
                        pieces.append(self.const(child.data))
                    elif isinstance(child, nodes.Name) and child.ctx == "load":
                        pieces.append(self.value(child.name, escaped, depth))
                    else:
                        raise _NotSimple
            elif isinstance(node, nodes.If):
                flush()
                self.branch(node, out, escaped, depth)
            else:
                raise _NotSimple
        flush()

    def branch(self, node: nodes.If, out: str, escaped: bool, depth: int) -> None:
        needed: set[str] = set()
        test = self.test(node.test, needed)
        self.check(needed, depth)
        self.emit(depth, f"if {test}:")
        self.block(node.body, out, escaped, depth + 1)
        if node.elif_:
            self.emit(depth, "else:")
            first, *rest = node.elif_
            follow = nodes.If(first.test, first.body, rest, node.else_, lineno=first.lineno)
            self.branch(follow, out, escaped, depth + 1)
        elif node.else_:
            self.emit(depth, "else:")
            self.block(node.else_, out, escaped, depth + 1)


def compile_simple(
    parts: Sequence[tuple[nodes.Template, bool]],
    finalize: Callable[[Any], Any] | None = None,
) -> Callable[[Mapping[str, Any]], tuple[str, ...] | None] | None:
    """A function of a context giving each part's text (None: a field it needs is missing).

    parts: each part's parsed template and whether it is autoescaped. None when
    a part uses anything but text, fields and `{% if %}` (S1).
    """
    writer = _Writer(finalize)
    body: list[str] = []
    try:
        for i, (ast, escaped) in enumerate(parts):
            writer.lines = []
            writer.block(ast.body, f"o{i}", escaped, 1)
            body += [f"    o{i} = []", *writer.lines]
    except _NotSimple:
        return None
    lookups = [f"    {v} = get({name!r}, M)" for name, v in writer.names.items()]
    joined = "".join(f'"".join(o{i}), ' for i in range(len(parts)))
    # Defaults make the helpers locals (LOAD_FAST): a render is a few microseconds.
    head = "def render(context, M=M, esc=esc, fin=fin, to_str=str):"
    source = "\n".join([head, "    get = context.get", *lookups, *body])
    source += f"\n    return ({joined})\n"
    namespace: dict[str, Any] = {"M": _MISSING, "esc": _escape, "fin": finalize}
    exec(compile(source, "<comms simple template>", "exec"), namespace)  # noqa: S102  (our own code)
    return namespace["render"]
