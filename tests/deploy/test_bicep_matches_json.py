"""deploy/main.json is deploy/main.bicep (and its modules) compiled by hand: the two must agree.

There is no Bicep CLI here (it is a downloaded .NET binary, and neither npm nor PyPI carries a
Bicep compiler), so the Bicep files are parsed with pycep-parser, a Python grammar of the Bicep
language, and compared with the JSON declaration by declaration: parameters (type, default,
description, bounds, allowed values), variables, resources (type, api-version, every key and
literal value, the literal parts of every interpolated string, which values are expressions),
modules (scope, loop, parameters, and their own files against the inline templates) and outputs.
What this cannot catch: an expression that is wrong in the same place on both sides, or Bicep the
real compiler would reject but pycep accepts (pycep's grammar is not the compiler's). The
expressions themselves are evaluated in test_template.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.arm import Node, parse

pycep = pytest.importorskip("pycep", reason="pycep-parser (a dev dependency) parses the Bicep")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
_INTERPOLATION = re.compile(r"\$\{(?:[^{}']|'[^']*')*\}")
_DECORATORS = {"min_length": "minLength", "max_length": "maxLength", "min_value": "minValue",
               "max_value": "maxValue", "allowed": "allowedValues"}


def _bicep(path: Path) -> dict[str, Any]:
    parsed: dict[str, Any] = pycep.BicepParser().parse(file_path=path)
    return parsed


def _expression(value: Any) -> Node | None:
    if isinstance(value, str) and value.startswith("[") and not value.startswith("[["):
        return parse(value[1:-1])
    return None


def _text(value: Any) -> Any:
    return value.replace("\\'", "'") if isinstance(value, str) else value


class Comparison:
    """Compares one Bicep file's declarations with one ARM JSON template."""

    def __init__(self, bicep: dict[str, Any], template: dict[str, Any], where: str) -> None:
        self.bicep, self.template, self.where = bicep, template, where
        self.parameters = set(bicep.get("parameters", {}))
        self.variables = set(bicep.get("variables", {}))
        self.symbols = self.parameters | self.variables | set(bicep.get("resources", {})) \
            | set(bicep.get("modules", {}))

    def run(self) -> None:
        self.compare_parameters()
        self.compare_variables()
        self.compare_resources()
        self.compare_modules()
        self.compare_outputs()

    def compare_parameters(self) -> None:
        declared = self.bicep.get("parameters", {})
        compiled = self.template.get("parameters", {})
        assert list(declared) == list(compiled), f"{self.where}: parameters"
        for name, parameter in declared.items():
            spec, at = compiled[name], f"{self.where}: parameter {name}"
            secure = any(d["type"] == "secure" for d in parameter["decorators"])
            expected = parameter["type"]
            if secure:
                expected = {"string": "securestring", "object": "secureObject"}[expected]
            assert spec["type"] == expected, at
            seen = {"type", "metadata"}
            for decorator in parameter["decorators"]:
                if decorator["type"] == "description":
                    assert spec["metadata"]["description"] == _text(decorator["argument"]), at
                elif decorator["type"] in _DECORATORS:
                    key = _DECORATORS[decorator["type"]]
                    assert spec[key] == decorator["argument"], f"{at}: {key}"
                    seen.add(key)
            if parameter.get("default") is not None:  # pycep: None when there is none
                self.same(parameter["default"], spec["defaultValue"], f"{at}: default")
                seen.add("defaultValue")
            assert set(spec) == seen, f"{at}: keys {sorted(set(spec) - seen)} not in the Bicep"

    def compare_variables(self) -> None:
        declared = self.bicep.get("variables", {})
        compiled = self.template.get("variables", {})
        assert list(declared) == list(compiled), f"{self.where}: variables"
        for name, variable in declared.items():
            self.same(variable["value"], compiled[name], f"{self.where}: variable {name}")

    def compare_resources(self) -> None:
        declared = [(n, r) for n, r in self.bicep.get("resources", {}).items()
                    if not r["existing"]]
        compiled = [r for r in self.template["resources"]
                    if r["type"] != "Microsoft.Resources/deployments"]
        assert [r["type"] for _, r in declared] == [r["type"] for r in compiled], \
            f"{self.where}: resource types in order"
        for (name, resource), json_resource in zip(declared, compiled, strict=True):
            at = f"{self.where}: resource {name}"
            assert json_resource["apiVersion"] == resource["api_version"], at
            config = dict(resource["config"])
            assert ("scope" in config) == ("scope" in json_resource), f"{at}: scope"
            if "parent" not in config:
                self.same(config["name"], json_resource["name"], f"{at}: name")
            for key in set(config) - {"name", "parent", "scope", "dependsOn"}:
                assert key in json_resource, f"{at}: {key} missing from the JSON"
                self.same(config[key], json_resource[key], f"{at}: {key}")
            extra = set(json_resource) - set(config) - {"type", "apiVersion", "dependsOn"}
            assert not extra, f"{at}: {sorted(extra)} only in the JSON"
            for dependency in config.get("dependsOn", []):
                assert any(dependency in d or f"'{dependency}'" in d
                           for d in json_resource.get("dependsOn", [])) \
                    or self._depends_on_symbol(dependency, json_resource), \
                    f"{at}: dependsOn {dependency}"

    def _depends_on_symbol(self, symbol: str, json_resource: dict[str, Any]) -> bool:
        """A Bicep dependency on a symbol appears as its resource id or its copy loop name."""
        target = self.bicep.get("resources", {}).get(symbol) or {}
        module = self.bicep.get("modules", {}).get(symbol)
        texts = json_resource.get("dependsOn", [])
        if module is not None:
            return symbol in texts or any("Microsoft.Resources/deployments" in t for t in texts)
        return any(target.get("type", "?") in t for t in texts)

    def compare_modules(self) -> None:
        declared = list(self.bicep.get("modules", {}).items())
        compiled = [r for r in self.template["resources"]
                    if r["type"] == "Microsoft.Resources/deployments"]
        assert len(declared) == len(compiled), f"{self.where}: modules"
        for (name, module), deployment in zip(declared, compiled, strict=True):
            at = f"{self.where}: module {name}"
            config = module["config"]
            loop = config.get("loop_type")
            if loop:
                assert deployment["copy"]["name"] == name, f"{at}: copy loop name"
                array = loop["detail"]["array_name"]
                assert deployment["copy"]["count"] == f"[length(parameters('{array}'))]", at
                config = config["config"]
            else:
                assert "copy" not in deployment, at
            self.same(_loop_free(config["name"], loop), deployment["name"], f"{at}: name")
            scope = config["scope"]["function"]
            if scope["type"] == "subscription":
                assert "subscriptionId" in deployment and "resourceGroup" not in deployment, at
                assert "location" in deployment, f"{at}: a subscription deployment needs one"
            else:
                assert scope["type"] == "resource_group", at
                assert "resourceGroup" in deployment, at
                assert ("subscriptionId" in deployment) == \
                    (scope["parameters"]["subscription_id"] is not None), at
            properties = deployment["properties"]
            assert properties["expressionEvaluationOptions"] == {"scope": "inner"}, at
            assert list(config["params"]) == list(properties["parameters"]), f"{at}: params"
            for key, value in config["params"].items():
                self.same(_loop_free(value, loop), properties["parameters"][key]["value"],
                          f"{at}: param {key}")
            path = DEPLOY / module["detail"]["path"]
            inner = _bicep(path)
            assert properties["template"]["metadata"]["source"] == \
                f"deploy/{module['detail']['path']}", at
            Comparison(inner, properties["template"], str(path.relative_to(DEPLOY))).run()
            expected_schema = ("subscriptionDeploymentTemplate" if
                               inner["globals"]["scope"]["value"] == "subscription"
                               else "deploymentTemplate")
            assert expected_schema + ".json#" in properties["template"]["$schema"], at

    def compare_outputs(self) -> None:
        declared = self.bicep.get("outputs", {})
        compiled = self.template.get("outputs", {})
        assert list(declared) == list(compiled), f"{self.where}: outputs"
        for name, output in declared.items():
            assert compiled[name]["type"] == output["type"], f"{self.where}: output {name}"
            self.same(output["value"], compiled[name]["value"], f"{self.where}: output {name}")

    # one value

    def same(self, bicep: Any, compiled: Any, at: str) -> None:
        if isinstance(bicep, dict) and len(bicep) == 1 and set(bicep) <= {"operator",
                                                                          "function"}:
            assert _expression(compiled) is not None, f"{at}: expected an expression"
            return
        if isinstance(bicep, str) and "${" in bicep:
            self._interpolated(bicep, compiled, at)
            return
        if isinstance(bicep, str) and bicep in self.symbols:
            node = _expression(compiled)
            assert node is not None, f"{at}: {bicep} is a reference, the JSON has a literal"
            if bicep in self.parameters or bicep in self.variables:
                function = "parameters" if bicep in self.parameters else "variables"
                assert node == Node("call", function, (Node("str", bicep),)), \
                    f"{at}: expected {function}('{bicep}'), found {compiled}"
            return
        if isinstance(bicep, list):
            assert isinstance(compiled, list) and len(compiled) == len(bicep), at
            for index, (b, c) in enumerate(zip(bicep, compiled, strict=True)):
                self.same(b, c, f"{at}[{index}]")
            return
        if isinstance(bicep, dict):
            assert isinstance(compiled, dict), f"{at}: expected an object, found {compiled!r}"
            keys = {self._key(k, compiled, at): k for k in bicep}
            assert set(keys) == set(compiled), f"{at}: keys {sorted(keys)} != {sorted(compiled)}"
            for key, original in keys.items():
                self.same(bicep[original], compiled[key], f"{at}.{key}")
            return
        assert _expression(compiled) is None and compiled == _text(bicep), \
            f"{at}: {bicep!r} != {compiled!r}"

    def _key(self, key: str, compiled: dict[str, Any], at: str) -> str:
        if key.startswith("'") and key.endswith("'"):
            key = key[1:-1]
        if "${" not in key:
            return key
        matches = [k for k in compiled if _skeleton_of(k) == _skeleton(key)]
        assert len(matches) == 1, f"{at}: no JSON key for {key}"
        return matches[0]

    def _interpolated(self, bicep: str, compiled: Any, at: str) -> None:
        assert _skeleton_of(compiled) == _skeleton(bicep), \
            f"{at}: {bicep!r} compiles to format('{_skeleton(bicep)}', ...), found {compiled!r}"


def _skeleton(text: str) -> str:
    """The literal parts of an interpolated Bicep string, as an ARM format() string."""
    counter = iter(range(100))
    return _INTERPOLATION.sub(lambda _: "{" + str(next(counter)) + "}", text)


def _skeleton_of(value: Any) -> str | None:
    node = _expression(value)
    if node is None or node.kind != "call" or node.value != "format" or not node.args:
        return None
    return str(node.args[0].value)


def _loop_free(value: Any, loop: dict[str, Any] | None) -> Any:
    """Inside `[for item in array: ...]` the item is `parameters('array')[copyIndex()]` in the
    JSON: an expression, so a bare reference to it compares as one."""
    if loop and value == loop["detail"]["item_name"]:
        return {"operator": "loop item"}
    return value


def test_main_json_matches_the_bicep() -> None:
    bicep = _bicep(DEPLOY / "main.bicep")
    assert bicep["globals"]["scope"]["value"] == "resourceGroup"
    template = json.loads((DEPLOY / "main.json").read_text())
    Comparison(bicep, template, "main.bicep").run()


def test_the_comparison_notices_a_drift() -> None:
    """A changed literal, key or api-version on one side is found."""
    bicep = _bicep(DEPLOY / "main.bicep")
    for mutate in (_change_timeout_default, _rename_property, _change_api_version):
        template = json.loads((DEPLOY / "main.json").read_text())
        mutate(template)
        with pytest.raises(AssertionError):
            Comparison(bicep, template, "main.bicep").run()


def _job(template: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in template["resources"] if r["type"] == "Microsoft.App/jobs")


def _change_timeout_default(template: dict[str, Any]) -> None:
    template["parameters"]["replicaTimeout"]["defaultValue"] = 7201


def _rename_property(template: dict[str, Any]) -> None:
    configuration = _job(template)["properties"]["configuration"]
    configuration["replicaRetryLimits"] = configuration.pop("replicaRetryLimit")


def _change_api_version(template: dict[str, Any]) -> None:
    _job(template)["apiVersion"] = "2023-05-01"
