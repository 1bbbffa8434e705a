"""Supply-chain checks: know exactly which image runs, and where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from auditor.check import Context, Outcome, check, failed, passed, unknown
from auditor.model import Container, Job
from auditor.settings import Severity


@dataclass(frozen=True, slots=True)
class ImageReference:
    registry: str
    repository: str
    tag: str | None
    digest: str | None


def parse_image(image: str) -> ImageReference:
    """Split `[registry[:port]/]repository[:tag][@digest]` the way Docker does.

    The first path component is a registry only if it has a dot or a port, or is `localhost`;
    otherwise the image is on Docker Hub (`python:3.12-slim` is `docker.io/library/python`).
    A colon in the registry part is a port, never a tag.
    """
    rest, _, digest = image.strip().partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first.lower(), remainder
    else:
        registry, path = "docker.io", rest
    name, colon, tag = path.rpartition(":") if ":" in path else (path, "", "")
    return ImageReference(registry, name if colon else path, tag or None, digest or None)


def _label(container: Container) -> str:
    return f"{'init container' if container.is_init else 'container'} '{container.name}'"


@check(
    id="CAJ-020",
    title="Container images are pinned to a version or digest",
    severity=Severity.MEDIUM,
    category="Supply chain",
    rationale=(
        "An image without a tag, or tagged `latest`, changes under the job without a "
        "deployment: what was reviewed is not what runs, and a compromised push runs at the "
        "next execution."
    ),
    remediation=(
        "Reference an immutable version, best a digest: `az containerapp job update -n JOB "
        "-g RG --image REGISTRY/REPO@sha256:DIGEST`."
    ),
    references=("https://learn.microsoft.com/azure/container-registry/"
                "container-registry-image-tag-version",),
    controls={"MCSB": ("DS-6", "PV-2"), "CIS-v8": ("16.4", "2.5"),
              "NIST-800-53": ("CM-2", "SR-11"), "ISO-27001-2022": ("A.8.32", "A.8.19"),
              "SOC2": ("CC8.1",)},
)
def pinned_images(job: Job, context: Context) -> Outcome:
    if not job.containers:
        return unknown("The job's containers are not in the data.")
    loose = []
    for container in job.containers:
        if not container.image:
            loose.append((container, "no image"))
            continue
        ref = parse_image(container.image)
        if ref.digest is None and (ref.tag is None or ref.tag.lower() == "latest"):
            loose.append((container, f"{container.image} ({'latest' if ref.tag else 'untagged'})"))
    if loose:
        return failed(f"{len(loose)} image(s) not pinned.",
                      *(f"{_label(c)}: {why}" for c, why in loose),
                      subject=",".join(sorted(c.name or "" for c, _ in loose)))
    return passed("Every image is pinned.",
                  *(f"{_label(c)}: {c.image}" for c in job.containers))


@check(
    id="CAJ-021",
    title="Images come from approved registries",
    severity=Severity.HIGH,
    category="Supply chain",
    rationale=(
        "Public registries serve whatever their publishers push, and pulls from them are "
        "rate-limited and unscanned by the organisation; approved registries are scanned, "
        "access-controlled and mirrored."
    ),
    remediation=(
        "Import the image into an approved registry and point the job at it: `az acr import "
        "-n REGISTRY --source docker.io/library/IMAGE:TAG`."
    ),
    references=("https://learn.microsoft.com/azure/container-registry/"
                "container-registry-import-images",),
    controls={"MCSB": ("DS-6",), "CIS-v8": ("2.5", "16.4"), "NIST-800-53": ("SR-3", "CM-7(5)"),
              "ISO-27001-2022": ("A.8.19", "A.5.21"), "SOC2": ("CC8.1",)},
    parameters=("approved_registries",),
)
def approved_registries(job: Job, context: Context) -> Outcome:
    if not job.containers:
        return unknown("The job's containers are not in the data.")
    patterns = [p.lower() for p in context.policy.approved_registries]
    found = [(c, parse_image(c.image).registry) for c in job.containers if c.image]
    outside = [(c, r) for c, r in found if not any(fnmatchcase(r, p) for p in patterns)]
    if outside:
        return failed(
            f"{len(outside)} image(s) from registries outside policy.",
            *(f"{_label(c)}: {c.image} from {r}" for c, r in outside),
            f"approved: {', '.join(context.policy.approved_registries)}",
            subject=",".join(sorted(c.name or "" for c, _ in outside)),
        )
    return passed("Every image comes from an approved registry.",
                  *(f"{_label(c)}: {r}" for c, r in found))
