"""Text values in a Compose file: its ``${VARIABLES}`` (read as Compose reads them, listed,
filled in) and the typed values Compose reads from text (``privileged: "true"``, a replica
count filled in from a variable). Used by ``hosts.applications.compose``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hosts.applications.compose_rules import Finding, Path, unknown

#: Values Compose reads from text (interpolation gives text), by path: "*" is any key or
#: position. Compose's own list (compose-go's interpolation casts), with the portal's x-portal.
CASTS: tuple[tuple[tuple[str, ...], str], ...] = tuple(
    (("services", "*", *path.split(".")), kind)
    for path, kind in (
        ("privileged", "bool"),
        ("read_only", "bool"),
        ("init", "bool"),
        ("tty", "bool"),
        ("stdin_open", "bool"),
        ("oom_kill_disable", "bool"),
        ("use_api_socket", "bool"),
        ("cpu_count", "int"),
        ("cpu_percent", "int"),
        ("cpu_shares", "int"),
        ("cpus", "float"),
        ("oom_score_adj", "int"),
        ("pids_limit", "int"),
        ("mem_swappiness", "int"),
        ("deploy.replicas", "int"),
        ("healthcheck.retries", "int"),
        ("healthcheck.disable", "bool"),
        ("ports.*.target", "int"),
        ("volumes.*.read_only", "bool"),
        ("volumes.*.volume.nocopy", "bool"),
        ("post_start.*.privileged", "bool"),
        ("pre_stop.*.privileged", "bool"),
        ("ulimits.*", "int"),
        ("ulimits.*.soft", "int"),
        ("ulimits.*.hard", "int"),
        ("x-portal.max_per_host", "int"),
        ("x-portal.spread", "bool"),
    )
) + tuple(
    ((top, "*", key), "bool")
    for top, keys in (
        ("networks", ("external", "internal", "attachable", "enable_ipv4", "enable_ipv6")),
        ("volumes", ("external",)),
    )
    for key in keys
)
WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false"}
TRUE, FALSE = ("true", "yes", "y", "on"), ("false", "no", "n", "off")


def _convert(text: str, kind: str) -> Any:
    text = text.strip()
    if kind == "bool":
        return True if text.lower() in TRUE else False if text.lower() in FALSE else None
    if kind == "int":
        return int(text) if re.fullmatch(r"[-+]?[0-9]+", text) else None
    try:
        return float(text)
    except ValueError:
        return None


def _matches(node: Any, pattern: tuple[str, ...], path: Path = ()) -> Iterator[tuple[Path, Any, Any]]:
    head, rest = pattern[0], pattern[1:]
    keys: list[Any]
    if isinstance(node, dict):
        keys = [k for k in node if k == head or (head == "*" and not k.startswith("x-"))]
    elif isinstance(node, list) and head == "*":
        keys = list(range(len(node)))
    else:
        return
    for key in keys:
        if rest:
            yield from _matches(node[key], rest, (*path, key))
        else:
            yield (*path, key), node, key


def cast(model: dict[str, Any], rendered: bool) -> list[Finding]:
    """Turn text at typed paths into its type, in place; a value that cannot be read is a finding."""
    found = []
    for pattern, kind in CASTS:
        for path, container, key in _matches(model, pattern):
            value = container[key]
            if not isinstance(value, str) or unknown(value, rendered):
                continue
            converted = _convert(value, kind)
            if converted is None:
                found.append(Finding(path, f"must be {WORDS[kind]}, not '{value}'.", at_value=True))
            else:
                container[key] = converted
    return found


_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


@dataclass(frozen=True)
class Ref:
    name: str
    operator: str  # "" for $NAME and ${NAME}
    argument: str  # the default, the error text or the replacement


class BadTemplate(ValueError):
    """A ``${`` that is not a variable (Compose refuses the file)."""


def tokens(text: str) -> Iterator[str | Ref]:
    """Text and references, as Compose reads them: ``$$`` is a dollar, a lone ``$`` is text."""
    i = 0
    while i < len(text):
        start = text.find("$", i)
        if start < 0 or start == len(text) - 1:
            yield text[i:]
            return
        yield text[i:start]
        following = text[start + 1]
        name = _NAME.match(text, start + 1)
        if following == "$":
            yield "$"
            i = start + 2
        elif following == "{":
            end = _closing(text, start + 2)
            body = text[start + 2 : end]
            name = _NAME.match(body)
            rest = body[name.end() :] if name else ""
            operator = next((op for op in _OPERATORS if rest.startswith(op)), "")
            if end < 0 or not name or (rest and not operator):
                shown = text[start:] if end < 0 else text[start : end + 1]
                raise BadTemplate(f"'{shown}' is not a ${{VARIABLE}}; write $$ for a dollar sign.")
            ref = Ref(name.group(), operator, rest[len(operator) :])
            if operator.endswith(("-", "+")):
                list(tokens(ref.argument))  # a default may hold variables: they must be valid too
            yield ref
            i = end + 1
        elif name:
            yield Ref(name.group(), "", "")
            i = name.end()
        else:
            yield "$"
            i = start + 1


def _closing(text: str, i: int) -> int:
    """Where the ``}`` closing a ``${`` is (nested ``${...}`` in a default included), -1 if none."""
    depth = 0
    while i < len(text):
        if text.startswith("$$", i) or text.startswith("${", i):
            depth += text[i + 1] == "{"
            i += 2
            continue
        if text[i] == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def refs(text: str) -> Iterator[Ref]:
    """The variables a text refers to, those in defaults included, in order."""
    for token in tokens(text):
        if isinstance(token, Ref):
            yield token
            if token.operator.endswith(("-", "+")):
                yield from refs(token.argument)


class Missing(Exception):
    """A required variable without a value."""

    def __init__(self, ref: Ref) -> None:
        self.ref = ref


def fill(text: str, values: Mapping[str, str]) -> str:
    """The text with its variables filled in, as Compose does (an unset plain one is empty)."""
    out = []
    for token in tokens(text):
        if isinstance(token, str):
            out.append(token)
            continue
        given, value = token.name in values, values.get(token.name) or ""
        has = bool(value) if token.operator.startswith(":") else given
        if token.operator.endswith("?") and not has:
            raise Missing(token)
        if token.operator.endswith("-"):
            out.append(value if has else fill(token.argument, values))
        elif token.operator.endswith("+"):
            out.append(fill(token.argument, values) if has else "")
        else:
            out.append(value)
    return "".join(out)


def _strings(node: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every text value with its path (keys are not interpolated: Compose does not)."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict | list):
        for key, value in node.items() if isinstance(node, dict) else enumerate(node):
            yield from _strings(value, (*path, key))


def interpolate(node: Any, values: Mapping[str, str], path: Path, found: list[Finding]) -> Any:
    """A copy of the model with every text value filled in; a required variable missing is a finding."""
    if isinstance(node, dict):
        return {k: interpolate(v, values, (*path, k), found) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, values, (*path, i), found) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node
    try:
        return fill(node, values)
    except Missing as exc:
        error = exc.ref.argument.rstrip(". ") or "it has no value"
        found.append(Finding(path, f"the variable {exc.ref.name} is required: {error}.", at_value=True))
        return node


def template_findings(model: Any) -> list[Finding]:
    """A finding for each text value with a ``${`` that is not a variable."""
    found = []
    for path, text in _strings(model):
        try:
            list(tokens(text))
        except BadTemplate as exc:
            found.append(Finding(path, str(exc), at_value=True))
    return found
