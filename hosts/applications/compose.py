"""Compose files as the portal takes them: parsed, validated, refused where the portal cannot
honour them (each problem with its key and line), interpolated, and their services ordered.

An application template is a Compose file a person saved; the portal deploys it on Docker
engines with the docker SDK, so this module is the gate. ``check`` validates a file as saved
(its ``${VARIABLES}`` still text) against the Compose Specification's schema (vendored next to
this module, ``compose-spec.json``) and the portal's rules (``hosts.applications.compose_rules``);
``variables`` lists what a deploy must fill in; ``render`` fills them in and checks the result
again; ``deploy_order`` orders the services by their ``depends_on``. No Django here: the
catalog and the deploys call it, and its tests need no database.

YAML is read as Compose reads it (YAML 1.2's core schema): ``8080:80`` is text, not a base-60
number, and ``yes`` is text, not true. Keys stay text. A duplicate key is an error (PyYAML
would keep the last one silently); anchors and merge keys (``<<: *base``) work.
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any

import yaml

# jsonschema ships no type hints, and no stubs package is installed.
from jsonschema import Draft7Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError, best_match  # type: ignore[import-untyped]
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hosts.applications import compose_rules as rules
from hosts.applications import compose_values as texts
from hosts.applications.compose_rules import Finding, Path

SCHEMA = FilePath(__file__).with_name("compose-spec.json")
#: Values in the file once its anchors are expanded: a few aliases of aliases can otherwise
#: make a short file expand into millions of values (and validating them would hang a worker).
MAX_VALUES = 50_000
#: Levels of nesting: a Compose file needs a handful, and deeper ones would exhaust the stack.
MAX_DEPTH = 64


@dataclass(frozen=True)
class Problem:
    path: str  # dotted key path, "services.web.build"; "" for the file as a whole
    line: int  # 1-based line of that key (or value) in the source; 0 if unknown
    message: str  # a sentence for a person, path and line included


class ComposeInvalid(ValueError):
    """A Compose file the portal cannot take, with every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(p.message for p in self.problems))


@dataclass(frozen=True)
class Variable:
    name: str
    default: str | None  # from ${NAME:-default} or ${NAME-default}
    required: bool  # ${NAME:?error} or ${NAME?error}
    error: str  # the error text a required variable gives when missing


# --- Reading YAML -----------------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's core schema, as Compose (Go's yaml.v3) reads files."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Keys as written: Compose's keys are text ("80": ..., "true": ...), never numbers.
        self.flatten_mapping(node)
        mapping = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise yaml.constructor.ConstructorError(None, None, "a key must be text", key_node.start_mark)
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping


def _construct_int(loader: _Loader, node: ScalarNode) -> int:
    text = loader.construct_scalar(node)
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    return int(text[2:] if base != 10 else text, base)


# YAML 1.1's extra forms go (sexagesimal 8080:80, yes/no/on/off, 0755 as octal, timestamps, "=").
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag[len(_TAG) :] in ("null", "merge")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_TAG + "bool", re.compile(r"^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    _TAG + "int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    _TAG + "float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Loader.add_constructor(_TAG + "int", _construct_int)


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1  # marks count from 0


class _Lines:
    """Where each key path is in the source: its key's line, and a scalar value's line."""

    def __init__(self) -> None:
        self.keys: dict[Path, int] = {}
        self.values: dict[Path, int] = {}
        self.findings: list[Finding] = []
        self.count = 0
        self._checked: set[int] = set()  # mappings checked for duplicates: an alias repeats one

    def of(self, path: Path, at_value: bool = False) -> int:
        if at_value and path in self.values:
            return self.values[path]
        while path and path not in self.keys:
            path = path[:-1]  # a path made up by a rule: its nearest written parent
        return self.keys.get(path, 0)

    def walk(self, node: Node, path: Path = (), inside: frozenset[int] = frozenset()) -> None:
        """Record the lines of every path the model will have, merged keys included."""
        self.count += 1
        if self.count > MAX_VALUES:
            raise _Refused(Finding((), f"expands to more than {MAX_VALUES} values through its anchors."))
        if len(path) > MAX_DEPTH:
            raise _Refused(Finding((), f"is nested more than {MAX_DEPTH} levels deep.", line=_line(node)))
        if id(node) in inside:
            raise _Refused(Finding(path, "refers to itself through an anchor.", line=_line(node)))
        inside |= {id(node)}
        if isinstance(node, ScalarNode):
            self.values[path] = _line(node)
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                self.keys[(*path, i)] = _line(item)
                self.walk(item, (*path, i), inside)
        elif isinstance(node, MappingNode):
            self._duplicates(node, path)
            for key, (key_node, value_node) in self._pairs(node, inside).items():
                self.keys[(*path, key)] = _line(key_node)
                self.walk(value_node, (*path, key), inside)

    def _pairs(self, node: MappingNode, inside: frozenset[int]) -> dict[str, tuple[Node, Node]]:
        """A mapping's keys once merged, as PyYAML merges them: merged first, the later winning."""
        pairs: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag != _TAG + "merge":
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, MappingNode) and id(source) not in inside:
                    pairs.update(self._pairs(source, inside | {id(source)}))
        for key_node, value_node in node.value:
            if key_node.tag != _TAG + "merge" and isinstance(key_node, ScalarNode):
                pairs[key_node.value] = (key_node, value_node)
        return pairs

    def _duplicates(self, node: MappingNode, path: Path) -> None:
        if id(node) in self._checked:
            return
        self._checked.add(id(node))
        first: dict[str, int] = {}
        for key_node, _ in node.value:
            key, line = key_node.value, _line(key_node)
            if not isinstance(key, str):
                continue
            if key in first:
                text = f"appears twice in this mapping (first on line {first[key]}); remove one."
                self.findings.append(Finding((*path, key), text, line=line))
            first.setdefault(key, line)


class _Refused(Exception):
    def __init__(self, finding: Finding) -> None:
        self.finding = finding


def _parse(source: str) -> tuple[Any, Node | None, _Lines]:
    """The data, its node tree and its lines, or ComposeInvalid for a file that is not YAML."""
    lines = _Lines()
    loader = _Loader(source)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None, lines
        lines.walk(node)  # before constructing: that flattens the merge keys away
        return loader.construct_document(node), node, lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = Finding(
            (), f"the YAML is not valid: {exc.problem or exc.context}.", line=mark.line + 1 if mark else 0
        )
        raise ComposeInvalid(_problems([what], lines)) from None
    except yaml.YAMLError as exc:
        raise ComposeInvalid(_problems([Finding((), f"the YAML is not valid: {exc}.")], lines)) from None
    except _Refused as exc:
        raise ComposeInvalid(_problems([exc.finding], lines)) from None
    except RecursionError:
        raise ComposeInvalid(_problems([Finding((), "is nested too deeply.")], lines)) from None
    except ValueError as exc:  # a value with an explicit tag it does not fit: !!int "0b1"
        raise ComposeInvalid(
            _problems([Finding((), f"has a value that cannot be read: {exc}.")], lines)
        ) from None
    finally:
        loader.dispose()


def _problems(findings: list[Finding], lines: _Lines) -> list[Problem]:
    """Findings as problems, each once, in the file's order."""
    problems: dict[tuple[str, int, str], Problem] = {}
    for finding in findings:
        line = finding.line or lines.of(finding.path, finding.at_value)
        dotted = ".".join(str(part) for part in finding.path)
        where = f"{dotted} (line {line})" if dotted and line else dotted or (f"line {line}" if line else "")
        message = f"{where}: {finding.text}" if where else f"The file {finding.text}"
        problems.setdefault((dotted, line, message), Problem(dotted, line, message))
    return sorted(problems.values(), key=lambda p: (p.line, p.path))


# --- Validating -------------------------------------------------------------------------------


@functools.cache
def _validator() -> Draft7Validator:
    # Loaded once, on first use: the schema is 75 kB, and most requests never need it.
    return Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "empty",
}


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"the text '{value}'"
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    return f"a {type(value).__name__} value"  # from an explicit tag: !!binary, !!timestamp


def _either(types: list[str]) -> str:
    words = list(dict.fromkeys(_WORDS.get(t, t) for t in types))
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _schema_findings(model: Any) -> list[Finding]:
    return [f for error in _validator().iter_errors(model) for f in _describe(error)]


def _describe(error: ValidationError) -> list[Finding]:
    """A schema error in words, at the key it is about."""
    path: Path = tuple(error.absolute_path)
    keyword, expected, value = error.validator, error.validator_value, error.instance
    if keyword == "additionalProperties" and isinstance(value, dict):
        names = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        patterns = error.schema.get("patternProperties", {}) if isinstance(error.schema, dict) else {}
        extra = [k for k in value if k not in names and not any(re.search(p, k) for p in patterns)]
        text = (
            "is not a key Compose knows here (extension keys start with x-)."
            if names
            else "is not a valid name: use letters, digits, '.', '_' and '-'."
        )
        return [Finding((*path, key), text) for key in extra]
    if keyword in ("oneOf", "anyOf"):
        branches: dict[Any, list[ValidationError]] = defaultdict(list)
        for sub in error.context or ():
            branches[sub.relative_schema_path[0]].append(sub)
        fitting = [errs for errs in branches.values() if not any(_wrong_type(e) for e in errs)]
        if len(fitting) == 1:  # the form the value has; say what is wrong inside it
            return _describe(best_match(fitting[0]) or fitting[0][0])
        types = [t for errs in branches.values() for e in errs if _wrong_type(e) for t in _types(e)]
        if types and not fitting:
            return [Finding(path, f"must be {_either(types)}, not {_kind(value)}.", at_value=True)]
    if keyword == "type":
        return [Finding(path, f"must be {_either(_types(error))}, not {_kind(value)}.", at_value=True)]
    if keyword == "enum":
        return [Finding(path, f"must be one of {', '.join(map(str, expected))}, not {_kind(value)}.", True)]
    if keyword == "required" and isinstance(value, dict):
        return [Finding(path, f"needs the key {key}.") for key in expected if key not in value]
    if keyword == "uniqueItems":
        return [Finding(path, "lists the same item twice.", at_value=True)]
    return [Finding(path, f"{error.message}.", at_value=True)]


def _wrong_type(error: ValidationError) -> bool:
    """Whether the value itself (not something inside it) has a type this branch does not take."""
    return bool(error.validator == "type" and not error.path)


def _types(error: ValidationError) -> list[str]:
    expected = error.validator_value
    return [expected] if isinstance(expected, str) else list(expected)


def _validate(model: Any, lines: _Lines, findings: list[Finding], rendered: bool) -> None:
    """Raise ComposeInvalid with every problem: ``findings``, the schema's and the rules'."""
    if not isinstance(model, dict):
        text = "is empty." if model is None else f"must be a mapping (services: ...), not {_kind(model)}."
        findings = [*findings, Finding((), text)]
        raise ComposeInvalid(_problems(findings, lines))
    unread = texts.cast(model, rendered)
    # A value that could not be read needs no second finding from a rule that reads it.
    found = unread + [f for f in rules.findings(model, rendered) if f.path not in {u.path for u in unread}]
    refused = [f.path for f in found]
    # A key the rules refuse needs no schema error under it as well.
    schema = [f for f in _schema_findings(model) if not any(f.path[: len(p)] == p for p in refused)]
    problems = _problems([*findings, *found, *schema], lines)
    if problems:
        raise ComposeInvalid(problems)


# --- The API ----------------------------------------------------------------------------------


def _checked(source: str) -> tuple[dict[str, Any], _Lines]:
    data, _, lines = _parse(source)
    findings = [*lines.findings, *texts.template_findings(data)]
    _validate(data, lines, findings, rendered=False)
    return data, lines


def check(source: str) -> dict[str, Any]:
    """The file's model, its ${VARIABLES} left as text; ComposeInvalid with every problem found."""
    return _checked(source)[0]


def variables(source: str) -> list[Variable]:
    """The variables the file uses, in the order they first appear, each once."""
    _, node, _ = _parse(source)
    found: dict[str, Variable] = {}
    problems: list[Finding] = []
    for text in _scalars(node, set()):
        try:
            refs = list(texts.refs(text))
        except texts.BadTemplate as exc:
            problems.append(Finding((), f"has a bad variable: {exc}"))
            continue
        for ref in refs:
            required = ref.operator.endswith("?")
            default = ref.argument if ref.operator.endswith("-") else None
            seen = found.get(ref.name)
            if seen is None:
                found[ref.name] = Variable(ref.name, default, required, ref.argument if required else "")
            elif (required and not seen.required) or (default is not None and seen.default is None):
                # Used twice: required if any use requires it, with the first default given.
                error = seen.error if seen.required else ref.argument if required else ""
                default = seen.default if seen.default is not None else default
                found[ref.name] = Variable(ref.name, default, seen.required or required, error)
    if problems:
        raise ComposeInvalid(_problems(problems, _Lines()))
    return list(found.values())


def _scalars(node: Node | None, seen: set[int]) -> Iterator[str]:
    """The text values in the source's order, each node once (an alias is the same node)."""
    if node is None or id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, ScalarNode) and node.tag == _TAG + "str":
        yield node.value
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from _scalars(item, seen)
    elif isinstance(node, MappingNode):
        for _, value in node.value:
            yield from _scalars(value, seen)


def render(source: str, values: Mapping[str, str]) -> dict[str, Any]:
    """The model with ``values`` filled in for its variables, checked again once filled in."""
    model, lines = _checked(source)
    missing: list[Finding] = []
    rendered = texts.interpolate(model, values, (), missing)
    if missing:
        raise ComposeInvalid(_problems(missing, lines))
    _validate(rendered, lines, [], rendered=True)
    return rendered


def deploy_order(model: dict[str, Any]) -> list[str]:
    """The services in the order to start them: dependencies first, peers by name."""
    graph, found = rules.dependencies(rules.services_of(model))
    if found:
        raise ComposeInvalid(_problems(found, _Lines()))
    return [name for wave in rules.waves(graph) for name in wave]
