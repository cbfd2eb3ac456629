"""`${name(args)}` calls: the built-in functions, entry-point plugins (`vn.functions`) and expansion."""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import EntryPoint, entry_points
from typing import NamedTuple

from lxml import etree

from vnvs.hydration.budget import OutputBudget
from vnvs.hydration.errors import HydrationError, Scope
from vnvs.hydration.xpaths import split_top_level, xpath_literal

ENTRY_POINT_GROUP = "vn.functions"
_CALL_START = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]*)\(")
# select's argument is an XPath, handed over untouched; other functions get their arguments unquoted.
_RAW_ARGUMENTS = frozenset({"select"})


@dataclass(frozen=True, slots=True)
class FunctionContext:
    """What a function may look at: the request, the element holding the call and its context node."""

    request_id: str
    element: etree._Element
    context_node: etree._Element
    lookup: Callable[[str, bool], str]
    literal: bool = False

    def select(self, xpath: str) -> str:
        """String value of the single node `xpath` finds (elements serialised outside XPath literals)."""
        return self.lookup(xpath, self.literal)


VnFunction = Callable[..., str]


def _today(ctx: FunctionContext) -> str:
    return datetime.now(UTC).date().isoformat()


def _now(ctx: FunctionContext) -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _uuid(ctx: FunctionContext) -> str:
    return str(uuid.uuid4())


def _request_id(ctx: FunctionContext) -> str:
    return ctx.request_id


def _select(ctx: FunctionContext, xpath: str) -> str:
    return ctx.select(xpath)


BUILTINS: dict[str, VnFunction] = {
    "today": _today,
    "now": _now,
    "uuid": _uuid,
    "requestId": _request_id,
    "select": _select,
}


class FunctionRegistry:
    """Built-ins first, then plugins found through the `vn.functions` entry point group (loaded lazily)."""

    def __init__(self) -> None:
        self._functions: dict[str, VnFunction] = dict(BUILTINS)
        self._plugins: dict[str, EntryPoint] | None = None

    def lookup(self, name: str) -> VnFunction | None:
        """The function called `name`, or None when nothing provides it."""
        found = self._functions.get(name)
        if found is not None:
            return found
        if self._plugins is None:
            self._plugins = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        entry = self._plugins.get(name)
        if entry is None:
            return None
        loaded = entry.load()
        if not callable(loaded):
            raise TypeError(f"entry point {entry.value} is not callable")
        function: VnFunction = loaded
        self._functions[name] = function
        return function


class Call(NamedTuple):
    """One `${name(args)}` occurrence: its span in the text, name and raw argument text."""

    start: int
    end: int
    name: str
    arguments: str


def find_call(text: str, position: int = 0) -> Call | None:
    """The next call at or after `position`; ValueError when one is opened but never closed."""
    match = _CALL_START.search(text, position)
    if match is None:
        return None
    depth = 0
    quote = ""
    for index in range(match.end(), len(text)):
        char = text[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]" and depth:
            depth -= 1
        elif char == ")":
            if text.startswith("}", index + 1):
                return Call(match.start(), index + 2, match.group(1), text[match.end() : index])
            break
    raise ValueError(f"unterminated call to {match.group(1)}()")


def _arguments(call: Call) -> list[str]:
    if not call.arguments.strip():
        return []
    if call.name in _RAW_ARGUMENTS:
        return [part.strip() for part in split_top_level(call.arguments, ",")]
    args = []
    for part in split_top_level(call.arguments, ","):
        arg = part.strip()
        if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "'\"":
            arg = arg[1:-1]
        args.append(arg)
    return args


class Expander:
    """Replaces calls in strings, as plain text or (inside select expressions) as XPath literals.

    Each value is charged to the output budget before it joins the text: expanded content is hydrated
    again on the next pass, so two selects of a node holding those same two selects would double forever.
    """

    def __init__(self, registry: FunctionRegistry, budget: OutputBudget) -> None:
        self.registry = registry
        self.budget = budget
        self._signatures: dict[VnFunction, inspect.Signature | None] = {}

    def expand(self, text: str, ctx: FunctionContext, scope: Scope, literal: bool) -> str:
        """`text` with every call replaced by its value; errors name the whole text as the expression."""
        if "${" not in text:
            return text
        if literal and not ctx.literal:
            ctx = replace(ctx, literal=True)
        out: list[str] = []
        position = 0
        while True:
            try:
                call = find_call(text, position)
            except ValueError as exc:
                raise scope.error(str(exc), text, ctx.element) from None
            if call is None:
                break
            value = self._call(call, ctx, scope, text)
            self.budget.spend_bytes(len(value), scope, text, ctx.element)
            out.append(text[position : call.start])
            out.append(xpath_literal(value) if literal else value)
            position = call.end
        out.append(text[position:])
        return "".join(out)

    def _call(self, call: Call, ctx: FunctionContext, scope: Scope, text: str) -> str:
        try:
            function = self.registry.lookup(call.name)
        except Exception as exc:  # a broken plugin must fail the request, not the service
            raise scope.error(f"function {call.name}() cannot be loaded ({exc})", text, ctx.element) from None
        if function is None:
            raise scope.error(f"unknown function {call.name}()", text, ctx.element)
        args = _arguments(call)
        if call.name in _RAW_ARGUMENTS:
            # Placeholders nested in an XPath argument become literals before it is evaluated.
            args = [self.expand(arg, ctx, scope, literal=True) for arg in args]
        signature = self._signature(function)
        try:
            if signature is not None:
                signature.bind(ctx, *args)
        except TypeError:
            raise scope.error(
                f"wrong argument count for {call.name}() ({len(args)} given)", text, ctx.element
            ) from None
        return self._invoke(function, call.name, ctx, args, scope, text)

    def _signature(self, function: VnFunction) -> inspect.Signature | None:
        if function not in self._signatures:
            try:
                self._signatures[function] = inspect.signature(function)
            except (TypeError, ValueError):
                self._signatures[function] = None  # C callables may have none; the call itself decides
        return self._signatures[function]

    def _invoke(
        self, function: VnFunction, name: str, ctx: FunctionContext, args: list[str], scope: Scope, text: str
    ) -> str:
        try:
            value = function(ctx, *args)
        except HydrationError:
            raise
        except Exception as exc:  # plugin code is outside our control; report it as bad input
            raise scope.error(f"function {name}() failed ({exc})", text, ctx.element) from None
        if not isinstance(value, str):
            raise scope.error(f"function {name}() returned {type(value).__name__}, not str", text, ctx.element)
        return value
