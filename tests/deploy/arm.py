"""Just enough of Azure Resource Manager's template language to expand deploy/main.json offline.

`expand()` does what a deployment does before it calls resource providers: resolves and checks
parameters (type, allowed values, bounds, no unknown or missing ones), evaluates variables and
expressions, unrolls copy loops, follows nested deployments (inner-scoped, as Bicep emits modules)
into their target subscription or resource group, computes every resource id, and checks that
each dependsOn entry names a resource of the same template. Names may not call reference() or
listKeys() (ARM requires names to be known at the start); values that exist only after a
resource is created come from the `runtime` callback.

Only the functions the template uses are implemented; anything else is an ArmError, so a
template change that needs more fails loudly here instead of being evaluated wrongly. guid() and
uniqueString() are deterministic but not ARM's exact algorithms: ids are stable, not Azure's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class ArmError(Exception):
    """The template or its parameters would not deploy (or use what this evaluator lacks)."""


# --- expressions -----------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<punct>[(),.\[\]]))")


@dataclass(frozen=True)
class Node:
    kind: str  # "str", "num", "call", "prop", "index"
    value: Any = None
    args: tuple[Node, ...] = ()


def parse(text: str) -> Node:
    """Parse the inside of `[...]`."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if not text[position:].strip():
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise ArmError(f"cannot parse expression at {text[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    parser = _Parser(tokens, text)
    node = parser.expression()
    if parser.index != len(tokens):
        raise ArmError(f"unexpected {tokens[parser.index][1]!r} in {text!r}")
    return node


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens, self.text, self.index = tokens, text, 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.index] if self.index < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end" or (value is not None and token[1] != value):
            raise ArmError(f"expected {value or 'more'} in {self.text!r}")
        self.index += 1
        return token

    def expression(self) -> Node:
        kind, value = self.take()
        if kind == "str":
            node = Node("str", value[1:-1].replace("''", "'"))
        elif kind == "num":
            node = Node("num", int(value))
        elif kind == "name":
            self.take("(")
            args: list[Node] = []
            while self.peek()[1] != ")":
                args.append(self.expression())
                if self.peek()[1] == ",":
                    self.take(",")
            self.take(")")
            node = Node("call", value.lower(), tuple(args))
        else:
            raise ArmError(f"unexpected {value!r} in {self.text!r}")
        while self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                node = Node("prop", self.take()[1], (node,))
            else:
                index = self.expression()
                self.take("]")
                node = Node("index", None, (node, index))
        return node


# --- deployments -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """Where a template deploys: a resource group, or a subscription (resource_group None)."""

    subscription_id: str
    resource_group: str | None
    location: str
    tenant_id: str = "11111111-1111-1111-1111-111111111111"

    @property
    def id(self) -> str:
        base = f"/subscriptions/{self.subscription_id}"
        return f"{base}/resourceGroups/{self.resource_group}" if self.resource_group else base


@dataclass
class Deployed:
    """One resource the deployment creates, evaluated."""

    type: str
    api_version: str
    name: str
    id: str
    target: Target
    body: dict[str, Any]  # the evaluated resource declaration (location, tags, properties...)
    scope: str | None = None  # the full id of the scope of an extension resource
    depends_on: list[str] = field(default_factory=list)
    copy_name: str | None = None
    nested: list[Deployed] = field(default_factory=list)  # what a nested deployment creates


Runtime = Callable[[Deployed], Mapping[str, Any]]


def expand(template: Mapping[str, Any], parameters: Mapping[str, Any], target: Target,
           runtime: Runtime) -> list[Deployed]:
    """Every resource the template deploys at `target` (nested deployments included, flattened
    into `Deployed.nested` of their deployment resource)."""
    context = _Context(template, target, runtime)
    context.bind_parameters(parameters)
    resources = template.get("resources")
    if not isinstance(resources, list):
        raise ArmError("resources must be an array (symbolic-name templates are not supported)")
    declared: list[tuple[dict[str, Any], int | None, Deployed]] = []
    for resource in resources:
        copy = resource.get("copy")
        if copy:
            count = context.evaluate(copy["count"])
            if not isinstance(count, int) or count < 0:
                raise ArmError(f"copy {copy.get('name')}: count {count!r} is not a count")
            indexes: list[int | None] = list(range(count))
        else:
            indexes = [None]
        for index in indexes:
            context.copy_index = index
            if "condition" in resource and not context.evaluate(resource["condition"]):
                continue
            declared.append((resource, index, context.identify(resource)))
    context.copy_index = None
    context.known = {d.id.lower(): d for _, _, d in declared}
    copy_names = {r["copy"]["name"] for r, _, _ in declared if r.get("copy")}
    for resource, index, deployed in declared:
        context.copy_index = index
        body = {k: v for k, v in resource.items()
                if k not in ("type", "apiVersion", "name", "copy", "dependsOn", "scope",
                             "condition", "subscriptionId", "resourceGroup")}
        inner = None
        if deployed.type.lower() == "microsoft.resources/deployments":
            body["properties"] = dict(body["properties"])  # its template is evaluated inside
            inner = body["properties"].pop("template")
        deployed.body = context.evaluate(body)
        if inner is not None:
            deployed.body["properties"]["template"] = inner
        for entry in resource.get("dependsOn", []):
            value = context.evaluate(entry)
            if value not in copy_names and str(value).lower() not in context.known:
                raise ArmError(f"{deployed.name}: dependsOn {value!r} names no resource of this "
                               "template")
            deployed.depends_on.append(value)
        if deployed.type.lower() == "microsoft.resources/deployments":
            deployed.nested = _nested(deployed, runtime)
    return [d for _, _, d in declared]


def _nested(deployment: Deployed, runtime: Runtime) -> list[Deployed]:
    properties = deployment.body.get("properties", {})
    if properties.get("expressionEvaluationOptions", {}).get("scope") != "inner":
        raise ArmError(f"{deployment.name}: only inner-scoped nested deployments are supported")
    if properties.get("mode") != "Incremental":
        raise ArmError(f"{deployment.name}: mode must be Incremental")
    values = {name: value["value"] for name, value in properties.get("parameters", {}).items()}
    return expand(properties["template"], values, deployment.target, runtime)


_PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "securestring": (str,), "int": (int,), "bool": (bool,),
    "object": (dict,), "secureobject": (dict,), "array": (list,),
}


class _Context:
    def __init__(self, template: Mapping[str, Any], target: Target, runtime: Runtime) -> None:
        self.template, self.target, self.runtime = template, target, runtime
        self.parameters: dict[str, Any] = {}
        self.variables: dict[str, Any] = {}
        self.copy_index: int | None = None
        self.known: dict[str, Deployed] | None = None  # None while names are being computed

    def bind_parameters(self, given: Mapping[str, Any]) -> None:
        declared = self.template.get("parameters", {})
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise ArmError(f"unknown parameter(s): {', '.join(unknown)}")
        for name, spec in declared.items():
            if name in given:
                value = given[name]
            elif "defaultValue" in spec:
                value = self.evaluate(spec["defaultValue"])
            else:
                raise ArmError(f"parameter {name} has no value and no default")
            _check_parameter(name, spec, value)
            self.parameters[name] = value

    def identify(self, resource: Mapping[str, Any]) -> Deployed:
        kind = self.evaluate(resource["type"])
        name = self.evaluate(resource["name"])
        target = self.target
        if kind.lower() == "microsoft.resources/deployments":
            subscription = self.evaluate(resource.get("subscriptionId", target.subscription_id))
            group = self.evaluate(resource["resourceGroup"]) if "resourceGroup" in resource \
                else (None if "subscriptionId" in resource else target.resource_group)
            if "subscriptionId" in resource and "resourceGroup" not in resource \
                    and "location" not in resource:
                raise ArmError(f"{name}: a subscription-scoped deployment needs a location")
            location = self.evaluate(resource.get("location", target.location))
            target = Target(subscription, group, location, target.tenant_id)
            return Deployed(kind, resource["apiVersion"], name,
                            _resource_id(target, kind, name), target, {},
                            copy_name=(resource.get("copy") or {}).get("name"))
        scope = None
        if "scope" in resource:
            relative = self.evaluate(resource["scope"])
            scope = relative if relative.startswith("/") else f"{target.id}/providers/{relative}"
            resource_id = f"{scope}/providers/{kind}/{name}"
        else:
            resource_id = _resource_id(target, kind, name)
        return Deployed(kind, resource["apiVersion"], name, resource_id, target, {}, scope=scope,
                        copy_name=(resource.get("copy") or {}).get("name"))

    # values

    def evaluate(self, value: Any) -> Any:
        if isinstance(value, str):
            if value.startswith("[["):
                return value[1:]
            if value.startswith("[") and value.endswith("]"):
                return self._node(parse(value[1:-1]))
            return value
        if isinstance(value, list):
            return [self.evaluate(v) for v in value]
        if isinstance(value, dict):
            return {self.evaluate(k): self.evaluate(v) for k, v in value.items()}
        return value

    def _node(self, node: Node) -> Any:
        if node.kind in ("str", "num"):
            return node.value
        if node.kind == "prop":
            base = self._node(node.args[0])
            if not isinstance(base, dict) or node.value not in base:
                raise ArmError(f"no property {node.value!r} in {base!r}")
            return base[node.value]
        if node.kind == "index":
            base, index = self._node(node.args[0]), self._node(node.args[1])
            try:
                return base[index]
            except (KeyError, IndexError, TypeError) as e:
                raise ArmError(f"cannot index {base!r} with {index!r}") from e
        return self._call(node.value, [self._node(a) for a in node.args])

    def _call(self, name: str, args: list[Any]) -> Any:
        target = self.target
        if name == "parameters":
            return self.parameters[args[0]]
        if name == "variables":
            if args[0] not in self.variables:
                self.variables[args[0]] = self.evaluate(self.template["variables"][args[0]])
            return self.variables[args[0]]
        if name == "format":
            return re.sub(r"\{(\d+)\}", lambda m: _text(args[1 + int(m.group(1))]), args[0])
        if name == "concat":
            return ([item for a in args for item in a] if all(isinstance(a, list) for a in args)
                    else "".join(_text(a) for a in args))
        if name == "resourceid":
            return _resource_id_call(target, args)
        if name == "subscriptionresourceid":
            subscription = args.pop(0) if len(args) > 1 and "/" not in args[0] else \
                target.subscription_id
            return _resource_id(Target(subscription, None, ""), args[0], "/".join(args[1:]))
        if name == "extensionresourceid":
            return f"{args[0]}/providers/{args[1]}/{'/'.join(args[2:])}"
        if name == "guid":
            return str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(args)))
        if name == "uniquestring":
            digest = hashlib.sha256("|".join(args).encode()).digest()
            return base64.b32encode(digest).decode().lower()[:13]
        if name == "subscription":
            return {"id": f"/subscriptions/{target.subscription_id}",
                    "subscriptionId": target.subscription_id, "tenantId": target.tenant_id}
        if name == "resourcegroup":
            if target.resource_group is None:
                raise ArmError("resourceGroup() in a subscription-scoped template")
            return {"id": target.id, "name": target.resource_group, "location": target.location}
        if name == "environment":
            return {"name": "AzureCloud", "suffixes": {"acrLoginServer": ".azurecr.io",
                                                       "storage": "core.windows.net"}}
        if name in ("reference", "listkeys"):
            return self._runtime(name, args)
        if name == "json":
            return json.loads(args[0])
        if name == "string":
            return _text(args[0])
        if name == "length":
            return len(args[0])
        if name == "split":
            return args[0].split(args[1])
        if name == "last":
            return args[0][-1]
        if name == "copyindex":
            if self.copy_index is None:
                raise ArmError("copyIndex() outside a copy loop")
            return self.copy_index + (args[0] if args else 0)
        raise ArmError(f"function {name}() is not supported by this evaluator")

    def _runtime(self, name: str, args: list[Any]) -> Any:
        if self.known is None:
            raise ArmError(f"{name}() in a resource name or type: ARM needs names at the start")
        deployed = self.known.get(str(args[0]).lower())
        if deployed is None:
            raise ArmError(f"{name}({args[0]!r}) names no resource of this template")
        if len(args) > 1 and args[1] != deployed.api_version:
            raise ArmError(f"{name}() of {deployed.type} with api-version {args[1]}, declared "
                           f"{deployed.api_version}")
        values = dict(self.runtime(deployed))
        if name == "listkeys":
            return values["keys"]
        return values


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _resource_id_call(target: Target, args: list[Any]) -> str:
    """resourceId([subscriptionId], [resourceGroupName], type, name...)."""
    position = next((i for i, a in enumerate(args) if "/" in str(a)), None)
    if position is None or position > 2:
        raise ArmError(f"resourceId({args!r}): no resource type")
    prefix, kind, names = args[:position], args[position], args[position + 1:]
    subscription, group = target.subscription_id, target.resource_group
    if len(prefix) == 2:
        subscription, group = prefix
    elif len(prefix) == 1:
        group = prefix[0]
    return _resource_id(Target(subscription, group, ""), kind, "/".join(names))


def _resource_id(target: Target, kind: str, name: str) -> str:
    """/subscriptions/S[/resourceGroups/G]/providers/NS/t1/n1/t2/n2 (type NS/t1/t2, name n1/n2)."""
    namespace, *types = kind.split("/")
    names = name.split("/")
    if len(types) != len(names):
        raise ArmError(f"name {name!r} does not fit type {kind!r}")
    path = "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=True))
    return f"{target.id}/providers/{namespace}/{path}"


def _check_parameter(name: str, spec: Mapping[str, Any], value: Any) -> None:
    expected = _PARAMETER_TYPES.get(str(spec.get("type", "")).lower())
    if expected is None:
        raise ArmError(f"parameter {name}: unknown type {spec.get('type')!r}")
    if not isinstance(value, expected) or (expected == (int,) and isinstance(value, bool)):
        raise ArmError(f"parameter {name}: {value!r} is not of type {spec['type']}")
    if "allowedValues" in spec and value not in spec["allowedValues"]:
        raise ArmError(f"parameter {name}: {value!r} is not one of {spec['allowedValues']}")
    if "minValue" in spec and value < spec["minValue"]:
        raise ArmError(f"parameter {name}: {value} is below {spec['minValue']}")
    if "maxValue" in spec and value > spec["maxValue"]:
        raise ArmError(f"parameter {name}: {value} is above {spec['maxValue']}")
    if "minLength" in spec and len(value) < spec["minLength"]:
        raise ArmError(f"parameter {name}: shorter than {spec['minLength']}")
    if "maxLength" in spec and len(value) > spec["maxLength"]:
        raise ArmError(f"parameter {name}: longer than {spec['maxLength']}")
