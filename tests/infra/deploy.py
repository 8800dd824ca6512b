"""What a deployment of the templates would create, for given parameters (no Bicep compiler here).

pycep, a real Bicep parser, gives the syntax tree; this evaluates the subset the templates use:
literals, parameters and variables, `${…}` interpolation, objects and arrays, the conditional,
comparison and logical operators, property and index access, and the few functions below.
Conditions and loops of resources and modules are followed, and module parameters passed on,
so a test can ask what `vnetEnabled=false` deploys and with which properties. What only Azure
knows (resource ids, the clock, the subscription) is an `Unknown`; so is a module's output where
its caller reads it, though `Deployment.output` evaluates it on the module's side. This is the
one reader of the Bicep templates for the tests (ROOT and INFRA are their paths), and the one
place of the arguments main.bicep requires (REQUIRED_ARGUMENTS).

pycep writes identifiers and string literals alike: a plain string is a parameter, variable or
symbol when one of that name is in scope, else a literal (the templates' names never collide).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
_NAME = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Unknown:
    """A value only the deployment knows (a module output, a resource id, the clock)."""

    expression: str


# environment() in Azure public cloud: the names private DNS zones are made of.
PUBLIC_CLOUD = {"name": "AzureCloud", "suffixes": {"storage": "core.windows.net"}}


@dataclass(frozen=True)
class ResourceId:
    """`resourceId(type, name, …)` (or subscriptionResourceId): a resource by type and name(s)."""

    type: str
    names: tuple[object, ...]


@dataclass(frozen=True)
class Symbol:
    """A resource or module symbol used as a value (a parent, a scope, a dependency)."""

    name: str


@cache
def _parser() -> BicepParser:
    return BicepParser()


@cache
def parse(path: str) -> dict[str, Any]:
    """The syntax tree of a template under infra/ (`main.bicep`, `modules/x.bicep`)."""
    text = (INFRA / path).read_text(encoding="utf-8")
    tree: dict[str, Any] = dict(_parser().parse(text=text))
    for section in ("parameters", "variables", "resources", "modules", "outputs"):
        tree.setdefault(section, {})
    return tree


@cache
def _expression(source: str) -> Any:
    """The syntax tree of one expression (the inside of a `${…}`)."""
    return _parser().parse(text=f"var x = {source}\n")["variables"]["x"]["value"]


def _fake_unique_string(*values: object) -> str:
    """uniqueString: 13 characters, deterministic in its arguments (not Azure's hash)."""
    return hashlib.sha256(repr(values).encode()).hexdigest()[:13]


def _take(value: object, count: object) -> object:
    if isinstance(value, str | list) and isinstance(count, int):
        return value[:count]
    return Unknown(f"take({value!r}, {count!r})")


def _union(*values: object) -> object:
    if all(isinstance(v, dict) for v in values):
        merged: dict[str, object] = {}
        for v in values:
            assert isinstance(v, dict)
            merged.update(v)
        return merged
    return Unknown(f"union{values!r}")


def _concat(*values: object) -> object:
    if all(isinstance(v, list) for v in values):
        return [item for v in values if isinstance(v, list) for item in v]
    if all(isinstance(v, str) for v in values):
        return "".join(str(v) for v in values)
    return Unknown(f"concat{values!r}")


def _string(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, Unknown) else str(value)


def _empty(value: object) -> object:
    if isinstance(value, ResourceId):
        return False
    return Unknown(f"empty({value!r})") if isinstance(value, Unknown) else not value


def _resource_id(call: dict[str, Any], scope: Scope) -> ResourceId:
    arguments = call.get("parameters") or {}
    names = tuple(
        evaluate(arguments[key], scope)
        for key in sorted(arguments)
        if key.startswith("resource_name_") and arguments[key] is not None
    )
    kind = evaluate(arguments["resource_type"], scope)
    assert isinstance(kind, str), f"resourceId of an unknown type: {kind!r}"
    return ResourceId(kind, names)


def _date_time_add(base: object, duration: object, _format: object = None) -> object:
    days = re.fullmatch(r"P(\d+)D", duration) if isinstance(duration, str) else None
    if not isinstance(base, str) or days is None:
        return Unknown(f"dateTimeAdd({base!r}, {duration!r})")
    moved = datetime.fromisoformat(base) + timedelta(days=int(days[1]))
    return moved.isoformat().replace("+00:00", "Z")


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else Unknown(f"json({value!r})")


def _date_time_to_epoch(value: object) -> object:
    if not isinstance(value, str):
        return Unknown(f"dateTimeToEpoch({value!r})")
    return int(datetime.fromisoformat(value).timestamp())


_FUNCTIONS: dict[str, Callable[..., object]] = {
    "empty": _empty,
    "concat": _concat,
    "union": _union,
    "take": _take,
    "to_lower": lambda value: value.lower() if isinstance(value, str) else value,
    "unique_string": _fake_unique_string,
    "string": _string,
    "environment": lambda: PUBLIC_CLOUD,
    "date_time_add": _date_time_add,
    "date_time_to_epoch": _date_time_to_epoch,
    "json": _json,
}


def _truth(value: object, what: str) -> bool:
    if isinstance(value, bool):
        return value
    raise AssertionError(f"{what}: not a known boolean at deployment time: {value!r}")


@dataclass
class Scope:
    """Names visible in one template (or one loop iteration of it)."""

    tree: dict[str, Any]
    params: dict[str, object]
    locals: dict[str, object] = field(default_factory=dict)
    _vars: dict[str, object] = field(default_factory=dict)

    def with_locals(self, names: Mapping[str, object]) -> Scope:
        return Scope(self.tree, self.params, {**self.locals, **names}, self._vars)

    def has(self, name: str) -> bool:
        return (
            name in self.locals
            or name in self.params
            or name in self.tree["variables"]
            or name in self.tree["resources"]
            or name in self.tree["modules"]
        )

    def lookup(self, name: str) -> object:
        if name in self.locals:
            return self.locals[name]
        if name in self.params:
            return self.params[name]
        if name in self.tree["variables"]:
            if name not in self._vars:
                self._vars[name] = evaluate(self.tree["variables"][name]["value"], self)
            return self._vars[name]
        return Symbol(name)


def _path(node: Any) -> list[str] | None:
    """`a.b.c` as pycep nests it (operand_2 holds the rest of the path), or None."""
    if isinstance(node, str):
        return [node]
    accessor = node.get("operator", {}) if isinstance(node, dict) else {}
    if accessor.get("type") == "property_accessor":
        first = _path(accessor["operands"]["operand_1"])
        rest = _path(accessor["operands"]["operand_2"])
        return first + rest if first is not None and rest is not None else None
    return None


def _member(value: object, name: str, scope: Scope) -> object:
    if isinstance(value, dict):
        if name not in value:
            raise AssertionError(f"no property {name!r} in {value!r}")
        return value[name]
    if isinstance(value, Symbol):
        declaration = scope.tree["resources"].get(value.name)
        if name == "name" and declaration and "loop_type" not in declaration["config"]:
            body = declaration["config"].get("config", declaration["config"])
            return evaluate(body["name"], scope)
        return Unknown(f"{value.name}.{name}")
    if isinstance(value, Unknown):
        return Unknown(f"{value.expression}.{name}")
    raise AssertionError(f"cannot read {name!r} of {value!r}")


_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "greater_than": lambda a, b: a > b,
    "greater_than_or_equals": lambda a, b: a >= b,
    "less_than": lambda a, b: a < b,
    "less_than_or_equals": lambda a, b: a <= b,
}


def _operator(operator: dict[str, Any], scope: Scope) -> object:
    kind, operands = operator["type"], operator["operands"]
    if kind == "conditional":
        condition = evaluate(operands["condition"], scope)
        if isinstance(condition, Unknown):
            return Unknown(f"{condition.expression} ? …")
        branch = "true_value" if _truth(condition, "condition") else "false_value"
        return evaluate(operands[branch], scope)
    if kind == "property_accessor":
        base = evaluate(operands["operand_1"], scope)
        names = _path(operands["operand_2"])
        if names is None:
            return Unknown(repr(operator))
        for name in names:
            base = _member(base, name, scope)
        return base
    if kind == "index_accessor":
        base, index = (evaluate(operands[k], scope) for k in ("operand_1", "operand_2"))
        if isinstance(base, dict) and isinstance(index, str):
            return base[index]
        if isinstance(base, list) and isinstance(index, int):
            return base[index]
        return Unknown(f"{base!r}[{index!r}]")
    if kind == "not":
        value = evaluate(operands["bool_value"], scope)
        return value if isinstance(value, Unknown) else not _truth(value, "!")
    left, right = (evaluate(operands[k], scope) for k in ("operand_1", "operand_2"))
    if isinstance(left, Unknown) or isinstance(right, Unknown):
        return Unknown(f"{left!r} {kind} {right!r}")
    if kind == "equals":
        return left == right
    if kind == "not_equals":
        return left != right
    if kind in _COMPARISONS and isinstance(left, int) and isinstance(right, int):
        return _COMPARISONS[kind](left, right)
    if kind == "and":
        return _truth(left, "&&") and _truth(right, "&&")
    if kind == "or":
        return _truth(left, "||") or _truth(right, "||")
    return Unknown(repr(operator))


def _interpolate(text: str, scope: Scope) -> object:
    parts: list[str] = []
    position = 0
    for match in _INTERPOLATION.finditer(text):
        value = evaluate(_expression(match[1]), scope)
        if isinstance(value, Unknown | ResourceId | Symbol | dict | list):
            return Unknown(text)
        parts += [text[position : match.start()], str(_string(value))]
        position = match.end()
    return "".join([*parts, text[position:]])


def evaluate(node: Any, scope: Scope) -> object:
    """The value of an expression in `scope`."""
    if node is None or isinstance(node, bool | int | float):
        return node
    if isinstance(node, str):
        if _NAME.fullmatch(node) and scope.has(node):
            return scope.lookup(node)
        return _interpolate(node, scope) if "${" in node else node
    if isinstance(node, list):
        return [evaluate(item, scope) for item in node]
    if set(node) == {"operator"}:
        return _operator(node["operator"], scope)
    if set(node) == {"function"}:
        if node["function"]["type"] in ("resource_id", "subscription_resource_id"):
            return _resource_id(node["function"], scope)
        function = _FUNCTIONS.get(node["function"]["type"])
        parameters = node["function"].get("parameters") or {}
        arguments = [evaluate(a, scope) for a in parameters.values()]
        if function is None:
            return Unknown(node["function"]["type"])
        return function(*arguments)
    if "loop_type" in node:
        return [evaluate(node["config"], iteration) for iteration in _iterations(node, scope)]
    # pycep keeps the quotes of a quoted key ('azd-env-name'); Azure's key has none.
    return {_unquoted(key): evaluate(value, scope) for key, value in node.items()}


def _unquoted(key: str) -> str:
    return key[1:-1] if len(key) > 1 and key[0] == key[-1] == "'" else key


def _iterations(config: dict[str, Any], scope: Scope) -> Iterator[Scope]:
    """One scope per item of a `[for …]` (only the deployed ones, `if` included)."""
    detail = config["loop_type"]["detail"]
    items = evaluate(detail["array_name"], scope)
    assert isinstance(items, list), f"loop over {detail['array_name']}: not an array: {items!r}"
    for index, item in enumerate(items):
        names: dict[str, object] = {detail["item_name"]: item}
        if "index_name" in detail:
            names[detail["index_name"]] = index
        iteration = scope.with_locals(names)
        condition = config.get("condition")
        if condition is None or _truth(evaluate(condition, iteration), "loop condition"):
            yield iteration


def _instances(config: dict[str, Any], scope: Scope, what: str) -> Iterator[tuple[Scope, Any]]:
    """(scope, body) of each instance a declaration deploys: none, one, or one per loop item."""
    if "loop_type" in config:
        for iteration in _iterations(config, scope):
            yield iteration, config["config"]
    elif set(config) == {"condition", "config"}:
        if _truth(evaluate(config["condition"], scope), f"{what}: condition"):
            yield scope, config["config"]
    else:
        yield scope, config


@dataclass(frozen=True)
class Resource:
    """One deployed resource instance, its body evaluated."""

    symbol: str
    type: str
    body: dict[str, Any]

    @property
    def properties(self) -> dict[str, Any]:
        value = self.body.get("properties", {})
        assert isinstance(value, dict)
        return value


@dataclass(frozen=True)
class Deployment:
    """A template deployed with given parameters: its resources and its modules' deployments."""

    path: str
    params: dict[str, object]
    resources: tuple[Resource, ...]
    modules: dict[str, tuple[Deployment, ...]]

    def module(self, symbol: str) -> Deployment | None:
        """The one deployment of a module symbol, None when its condition is false."""
        found = self.modules.get(symbol, ())
        assert len(found) <= 1, f"{symbol} is a loop"
        return found[0] if found else None

    def resource(self, symbol: str) -> Resource:
        """The one instance of a resource symbol of this template."""
        found = [r for r in self.resources if r.symbol == symbol]
        assert len(found) == 1, f"{self.path}: {len(found)} instances of {symbol}"
        return found[0]

    def variable(self, name: str) -> object:
        """The value of a `var` of this template, as deployed."""
        scope = Scope(parse(self.path), dict(self.params))
        assert name in scope.tree["variables"], f"{self.path}: no variable {name}"
        return scope.lookup(name)

    def output(self, name: str) -> object:
        """The value of an `output` of this template (an `Unknown` if only Azure knows it)."""
        tree = parse(self.path)
        assert name in tree["outputs"], f"{self.path}: no output {name}"
        return evaluate(tree["outputs"][name]["value"], Scope(tree, dict(self.params)))

    def walk(self) -> Iterator[tuple[Deployment, Resource]]:
        """Every resource of this deployment and its modules, with the deployment it is in."""
        for resource in self.resources:
            yield self, resource
        for deployments in self.modules.values():
            for deployment in deployments:
                yield from deployment.walk()


def one(deployment: Deployment, symbol: str) -> Deployment:
    """The deployment of a module that must be deployed."""
    module = deployment.module(symbol)
    assert module is not None, f"module {symbol} is not deployed"
    return module


def required_parameters(path: str) -> set[str]:
    """The parameters of a template without a default: every deployment must pass them."""
    return {
        name for name, declared in parse(path)["parameters"].items() if declared["default"] is None
    }


# The tests' values for main.bicep's required parameters (test_templates checks the names
# against the Bicep); every infra test deploys with these, plus what it varies.
REQUIRED_ARGUMENTS: dict[str, object] = {
    "environmentName": "dev",
    "location": "swedencentral",
    "recordPiiKey": "0123456789abcdef" * 4,  # 64 characters, as azd generates it
}


def app_settings(deployment: Deployment) -> dict[str, object]:
    """The function app's settings as `main.bicep` deploys them (`Unknown` where Azure fills
    them in)."""
    return one(deployment, "functionApp").resource("app__settings").properties


def _allowed(declaration: dict[str, Any]) -> list[object] | None:
    for decorator in declaration["decorators"]:
        if decorator["type"] == "allowed":
            allowed: list[object] = decorator["argument"]
            return allowed
    return None


def deploy(path: str, arguments: Mapping[str, object]) -> Deployment:
    """Evaluate `path` as deployed with `arguments` (parameter defaults for the rest)."""
    tree = parse(path)
    unknown = set(arguments) - set(tree["parameters"])
    assert not unknown, f"{path}: no parameters {sorted(unknown)}"
    scope = Scope(tree, {})
    for name, declaration in tree["parameters"].items():
        if name in arguments:
            value = arguments[name]
        else:
            assert declaration["default"] is not None, f"{path}: parameter {name} is required"
            value = evaluate(declaration["default"], scope)
        allowed = _allowed(declaration)
        if allowed is not None and not isinstance(value, Unknown):
            assert value in allowed, f"{path}: {name}={value!r} is not one of {allowed}"
        scope.params[name] = value
    resources = tuple(
        Resource(symbol, declaration["type"], _object(evaluate(body, instance)))
        for symbol, declaration in tree["resources"].items()
        if not declaration["existing"]
        for instance, body in _instances(declaration["config"], scope, symbol)
    )
    here = PurePosixPath(path).parent
    modules: dict[str, tuple[Deployment, ...]] = {}
    for symbol, declaration in tree["modules"].items():
        target = str(here / declaration["detail"]["path"])
        modules[symbol] = tuple(
            deploy(target, _object(evaluate(body.get("params", {}), instance)))
            for instance, body in _instances(declaration["config"], scope, symbol)
        )
    return Deployment(path, scope.params, resources, modules)


def _object(value: object) -> dict[str, Any]:
    assert isinstance(value, dict), f"not an object: {value!r}"
    return value
