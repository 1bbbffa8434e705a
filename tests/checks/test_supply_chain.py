import pytest

from auditor.check import Status
from checks.supply_chain import approved_registries, parse_image, pinned_images
from tests.factories import DELETE, make_context, make_job

DIGEST = "sha256:" + "a" * 64


def images(*refs: str, init: str | None = None) -> dict:
    changes: dict = {"properties.template.containers": [
        {"name": f"c{i}", "image": ref, "resources": {"cpu": 0.5, "memory": "1Gi"}}
        for i, ref in enumerate(refs)]}
    if init:
        changes["properties.template.initContainers"] = [{"name": "init", "image": init}]
    return changes


@pytest.mark.parametrize(("image", "registry", "repository", "tag", "digest"), [
    ("python:3.12-slim", "docker.io", "python", "3.12-slim", None),
    ("python", "docker.io", "python", None, None),
    ("library/python:3", "docker.io", "library/python", "3", None),
    ("contosoacr.azurecr.io/etl/loader:1.2", "contosoacr.azurecr.io", "etl/loader", "1.2", None),
    ("registry.contoso.com:5000/etl/loader", "registry.contoso.com:5000", "etl/loader", None,
     None),
    ("registry.contoso.com:5000/etl/loader:7", "registry.contoso.com:5000", "etl/loader", "7",
     None),
    (f"mcr.microsoft.com/azure-cli@{DIGEST}", "mcr.microsoft.com", "azure-cli", None, DIGEST),
    ("localhost/tool:dev", "localhost", "tool", "dev", None),
])
def test_parse_image(image: str, registry: str, repository: str, tag: str | None,
                     digest: str | None) -> None:
    ref = parse_image(image)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag,
                                                                   digest)


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param(images("contosoacr.azurecr.io/etl/loader:1.2.3"), Status.PASS, id="pass-tag"),
    pytest.param(images(f"contosoacr.azurecr.io/etl/loader@{DIGEST}"), Status.PASS,
                 id="pass-digest"),
    pytest.param(images(f"contosoacr.azurecr.io/etl/loader:latest@{DIGEST}"), Status.PASS,
                 id="pass-latest-with-digest"),
    pytest.param(images("contosoacr.azurecr.io/etl/loader:latest"), Status.FAIL,
                 id="fail-latest"),
    pytest.param(images("contosoacr.azurecr.io/etl/loader:LATEST"), Status.FAIL,
                 id="fail-latest-upper-case"),
    pytest.param(images("registry.contoso.com:5000/etl/loader"), Status.FAIL,
                 id="fail-port-is-not-a-tag"),
    pytest.param(images("contosoacr.azurecr.io/a:1", init="contosoacr.azurecr.io/init"),
                 Status.FAIL, id="fail-untagged-init-container"),
    pytest.param({"properties.template": DELETE}, Status.UNKNOWN, id="unknown-no-template"),
])
def test_pinned_images(changes: dict, expected: Status) -> None:
    assert pinned_images(make_job(**changes), make_context()).status is expected


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param(images("contosoacr.azurecr.io/etl:1"), Status.PASS, id="pass-acr"),
    pytest.param(images("mcr.microsoft.com/azure-cli:2.60.0"), Status.PASS, id="pass-mcr"),
    pytest.param(images("python:3.12-slim"), Status.FAIL, id="fail-docker-hub-short-name"),
    pytest.param(images("docker.io/library/python:3.12"), Status.FAIL, id="fail-docker-hub"),
    pytest.param(images("ghcr.io/org/tool:1"), Status.FAIL, id="fail-ghcr"),
    pytest.param(images("evil.azurecr.io.example.com/x:1"), Status.FAIL,
                 id="fail-lookalike-host"),
    pytest.param(images("contosoacr.azurecr.io/a:1", init="quay.io/org/init:1"), Status.FAIL,
                 id="fail-init-container-registry"),
    pytest.param({"properties.template": DELETE}, Status.UNKNOWN, id="unknown-no-template"),
])
def test_approved_registries(changes: dict, expected: Status) -> None:
    assert approved_registries(make_job(**changes), make_context()).status is expected


def test_approved_registries_follow_policy() -> None:
    job = make_job(**images("ghcr.io/org/tool:1"))
    context = make_context(approved_registries=["ghcr.io"])
    assert approved_registries(job, context).status is Status.PASS
