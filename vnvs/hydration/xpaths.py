"""XPath helpers: top-level splitting, safe literals, vn:link parsing, and a cached evaluator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from vnvs.hydration.errors import Scope

LINK_PREFIX = "vn:link("
# libexslt registers its functions (str:padding, set:*, math:*, date:*) for any of its namespaces the
# evaluator is given; none of them is part of VNML, and str:padding alone can ask for gigabytes.
EXSLT_NAMESPACES = "http://exslt.org/"
_OPENERS = {"(": ")", "[": "]"}
_CLOSERS = {")", "]"}


def split_top_level(expression: str, separator: str) -> list[str]:
    """Split on `separator` where it is outside quotes, brackets and parentheses."""
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    for index, char in enumerate(expression):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth = max(depth - 1, 0)
        elif char == separator and depth == 0:
            parts.append(expression[start:index])
            start = index + 1
    parts.append(expression[start:])
    return parts


def xpath_literal(value: str) -> str:
    """`value` as an XPath string literal; concat() when it holds both quote kinds."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    pieces = value.split("'")
    quoted = ", \"'\", ".join(f"'{piece}'" for piece in pieces)
    return f"concat({quoted})"


def parse_link(expression: str) -> tuple[str, str] | None:
    """(sourceXPath, childXPath) of `vn:link(source, child)`, None when it is not a link, error text if bad."""
    text = expression.strip()
    if not text.startswith(LINK_PREFIX) or not text.endswith(")"):
        return None
    inner = text[len(LINK_PREFIX) : -1]
    args = [arg.strip() for arg in split_top_level(inner, ",")]
    if len(args) != 2 or not all(args):
        raise ValueError(f"vn:link takes 2 arguments, got {len(args) if any(args) else 0}")
    return args[0], args[1]


def is_absolute(expression: str) -> bool:
    """True when the result does not depend on the context node, so it can be cached per group."""
    return expression.startswith("/") and "|" not in expression and "current()" not in expression


def string_value(item: Any) -> str:
    """XPath string value of one result item; numbers without a spurious '.0'."""
    if isinstance(item, etree._Element):
        return "".join(str(text) for text in item.itertext())
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, float):
        return str(int(item)) if item.is_integer() else repr(item)
    return str(item)


def namespaces(element: etree._Element) -> Any:
    """The element's prefix map as lxml takes it back (the stubs disallow the None default prefix)."""
    return dict(element.nsmap)


def is_element(item: Any) -> bool:
    """True for a real element (not a comment, PI or entity)."""
    return isinstance(item, etree._Element) and isinstance(item.tag, str)


@dataclass(slots=True)
class Evaluator:
    """Compiles each expression once and evaluates absolute ones once per group pass."""

    root: etree._Element
    namespaces: dict[str, str]
    compiled: dict[str, etree.XPath]
    absolute: dict[str, list[Any]]

    @classmethod
    def for_document(cls, root: etree._Element) -> Evaluator:
        """An evaluator knowing the root's namespace prefixes, except EXSLT's (see EXSLT_NAMESPACES)."""
        namespaces = {prefix: uri for prefix, uri in root.nsmap.items()
                      if prefix and not uri.startswith(EXSLT_NAMESPACES)}
        return cls(root, namespaces, {}, {})

    def evaluate(self, expression: str, context: etree._Element, scope: Scope, at: etree._Element) -> list[Any]:
        """Results of `expression` against `context` as a list; any XPath failure is a HydrationError."""
        if is_absolute(expression):
            cached = self.absolute.get(expression)
            if cached is None:
                # Absolute paths always read the working document, even when the context is a clone.
                cached = self._run(expression, self.root, scope, at)
                self.absolute[expression] = cached
            return cached
        return self._run(expression, context, scope, at)

    def _compile(self, expression: str, scope: Scope, at: etree._Element) -> etree.XPath:
        compiled = self.compiled.get(expression)
        if compiled is None:
            try:
                compiled = compile_xpath(expression, self.namespaces)
            except etree.XPathError as exc:
                raise scope.error(f"invalid XPath ({_describe(exc)})", expression, at) from None
            self.compiled[expression] = compiled
        return compiled

    def _run(self, expression: str, context: etree._Element, scope: Scope, at: etree._Element) -> list[Any]:
        compiled = self._compile(expression, scope, at)
        try:
            result = compiled(context)
        except (etree.LxmlError, ValueError, TypeError) as exc:
            raise scope.error(f"XPath evaluation failed ({_describe(exc)})", expression, at) from None
        return list(result) if isinstance(result, list) else [result]


def compile_xpath(expression: str, namespaces: dict[str, str] | None = None) -> etree.XPath:
    """An XPath with nothing beyond XPath 1.0: no EXSLT regular expressions, no extension functions, and
    plain strings as results (smart strings would keep a reference to their whole tree)."""
    return etree.XPath(expression, namespaces=namespaces, extensions=None, regexp=False, smart_strings=False)


def _describe(exc: Exception) -> str:
    text = str(exc)
    if "Undefined namespace prefix" in text:
        return "unknown namespace prefix"
    return text or type(exc).__name__
