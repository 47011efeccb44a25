"""Building the runner image (``spikebatch image build``).

``plan_runner_image`` turns the user's options into a checked plan (tag, base, build
arguments) before anything runs; ``build_runner_image`` makes the build context, has the
engine build (and push) it, and says which ``default_images`` line a profile needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional

from ..domain.errors import ConfigError
from ..ports.images import ImageBuildRequest, ImageEngine, RunnerBuildContext

#: The base of the CPU image: Python from python.org's image (a user's usual default).
DEFAULT_CPU_BASE = "python:3.11-slim"
#: The base of the GPU image: CUDA and cuDNN runtime, no Python (apt installs it).
DEFAULT_GPU_BASE = "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"
#: The image's name when --tag is not given.
DEFAULT_IMAGE_NAME = "spikebatch-runner"

# The grammar of an image reference (github.com/distribution/reference), without digests.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_REFERENCE = re.compile(rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?$")
_NETWORK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_PLATFORM = re.compile(r"^[a-z0-9_]+/[a-z0-9_]+(?:/[a-z0-9_.]+)?$")
_BUILD_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Build arguments the command sets itself.
RESERVED_BUILD_ARGS = ("BASE", "SPIKEBATCH_VERSION", "IMAGE_PROFILE")

ProgressSink = Callable[[str], None]


@dataclass(frozen=True)
class ImageBuildOptions:
    """What the user asked for (``spikebatch image build`` options)."""

    gpu: bool = False
    tag: Optional[str] = None
    base: Optional[str] = None
    push: bool = False
    ca_bundle: Optional[Path] = None
    network: Optional[str] = None
    platform: Optional[str] = None
    pull: bool = False
    no_cache: bool = False
    #: Extra ``--build-arg`` values (e.g. PYTHON=python3.12).
    build_args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageBuildPlan:
    """A checked build: every value final."""

    tag: str
    base: str
    image_profile: str
    version: str
    push: bool
    build_args: Mapping[str, str]
    ca_bundle: Optional[Path]
    network: Optional[str]
    platform: Optional[str]
    pull: bool
    no_cache: bool

    def request(self, context: Path) -> ImageBuildRequest:
        return ImageBuildRequest(
            context=context, tag=self.tag, build_args=dict(self.build_args), ca_bundle=self.ca_bundle,
            network=self.network, platform=self.platform, pull=self.pull, no_cache=self.no_cache,
        )


@dataclass(frozen=True)
class ImageBuildResult:
    tag: str
    image_id: str
    engine: str
    image_profile: str
    base: str
    origin: str
    pushed: bool

    @property
    def default_images(self) -> dict[str, str]:
        """The profile's ``default_images`` entry for this image."""
        return {self.image_profile: self.tag}

    @property
    def profile_line(self) -> str:
        """The line to put in a profile: ``default_images: {cpu: <tag>}``."""
        return f"default_images: {{{self.image_profile}: {self.tag}}}"


def short_id(image_id: str) -> str:
    """An image id as engines show it: 12 hex digits, no ``sha256:``."""
    return image_id.split(":", 1)[-1][:12]


def parse_image_reference(reference: str) -> Optional[dict[str, Optional[str]]]:
    """{domain, path, tag} of an image reference without a digest; None if malformed."""
    if len(reference) > 255:
        return None
    match = _REFERENCE.match(reference)
    if match is None:
        return None
    parts = match.groupdict()
    domain = parts["domain"]
    # "lab/runner": "lab" is a path component, not a registry (as docker reads it).
    if domain is not None and not ("." in domain or ":" in domain or domain == "localhost" or domain.startswith("[")):
        if not re.fullmatch(_COMPONENT, domain):
            return None
        parts = {"domain": None, "path": f"{domain}/{parts['path']}", "tag": parts["tag"]}
    return parts


def default_tag(version: str, gpu: bool) -> str:
    return f"{DEFAULT_IMAGE_NAME}:{_version_tag(version)}{'-gpu' if gpu else ''}"


def _version_tag(version: str) -> str:
    # A PEP 440 version is a valid tag once "+" (a local version) is replaced.
    return version.replace("+", "-")


def check_tag(tag: str, *, version: str, gpu: bool, push: bool) -> str:
    """The tag to build: ``tag`` checked, with ``:<version>[-gpu]`` added when it has none."""
    parts = parse_image_reference(tag)
    if parts is None:
        raise ConfigError(
            f"--tag {tag!r} is not a valid image name: use lower-case letters, digits and . _ - in "
            f"/-separated parts, optionally a registry host first and :TAG last, e.g. "
            f"registry.example.org/lab/{DEFAULT_IMAGE_NAME}:{_version_tag(version)}"
        )
    if parts["tag"] is None:
        tag = f"{tag}:{_version_tag(version)}{'-gpu' if gpu else ''}"
    if push and parts["domain"] is None and "/" not in parts["path"]:
        raise ConfigError(
            f"--push cannot push {tag!r}: the name has no registry or account; give --tag with your registry, "
            f"e.g. --tag registry.example.org/lab/{DEFAULT_IMAGE_NAME}:{_version_tag(version)}"
        )
    return tag


def check_ca_bundle(path: Path) -> Path:
    """``path`` as an absolute path to a readable PEM bundle (ConfigError otherwise)."""
    path = Path(path).expanduser()
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)
    except OSError as exc:
        raise ConfigError(
            f"--ca-bundle {str(path)!r} cannot be read ({exc.strerror or exc}); give the path of a PEM file "
            "with your proxy's CA certificate(s), e.g. /etc/ssl/certs/ca-certificates.crt"
        ) from None
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise ConfigError(
            f"--ca-bundle {str(path)!r} holds no PEM certificate (no '-----BEGIN CERTIFICATE-----' line); "
            "give a PEM bundle, e.g. /etc/ssl/certs/ca-certificates.crt"
        )
    return path.resolve()


def plan_runner_image(options: ImageBuildOptions, version: str) -> ImageBuildPlan:
    """Check the options and fix every value of the build (raises ConfigError)."""
    image_profile = "gpu" if options.gpu else "cpu"
    tag = check_tag(options.tag or default_tag(version, options.gpu), version=version, gpu=options.gpu,
                    push=options.push)
    base = options.base or (DEFAULT_GPU_BASE if options.gpu else DEFAULT_CPU_BASE)
    if parse_image_reference(base.split("@", 1)[0]) is None:
        raise ConfigError(f"--base {base!r} is not a valid image name, e.g. {DEFAULT_CPU_BASE} or {DEFAULT_GPU_BASE}")
    if options.network is not None and not _NETWORK.match(options.network):
        raise ConfigError(f"--network {options.network!r} is not a network name; use e.g. host")
    if options.platform is not None and not _PLATFORM.match(options.platform):
        raise ConfigError(f"--platform {options.platform!r} must look like os/arch, e.g. linux/amd64")
    extra = dict(options.build_args)
    for name in extra:
        if not _BUILD_ARG.match(name):
            raise ConfigError(f"--build-arg {name!r} is not a build argument name (letters, digits, _)")
        if name in RESERVED_BUILD_ARGS:
            raise ConfigError(f"--build-arg {name} is set by the command; use --base / --gpu instead")
    build_args = {**extra, "BASE": base, "SPIKEBATCH_VERSION": version, "IMAGE_PROFILE": image_profile}
    ca_bundle = check_ca_bundle(options.ca_bundle) if options.ca_bundle is not None else None
    return ImageBuildPlan(
        tag=tag, base=base, image_profile=image_profile, version=version, push=options.push,
        build_args=build_args, ca_bundle=ca_bundle, network=options.network, platform=options.platform,
        pull=options.pull, no_cache=options.no_cache,
    )


def build_runner_image(
    plan: ImageBuildPlan,
    *,
    engine: ImageEngine,
    context: RunnerBuildContext,
    progress: ProgressSink,
    engine_output: Optional[ProgressSink] = None,
) -> ImageBuildResult:
    """Build (and push) the runner image; ``progress`` gets our notes, ``engine_output``
    (default: ``progress``) the engine's own lines as they come."""
    output = engine_output or progress
    progress(f"building {plan.tag} with {engine.name} on {plan.base}; spikebatch {plan.version} from {context.origin}"
             + ("; CA bundle given as a build secret" if plan.ca_bundle else ""))
    with context.materialize() as folder:
        image_id = engine.build(plan.request(folder), output)
    progress(f"built {plan.tag} ({short_id(image_id)})")
    if plan.push:
        progress(f"pushing {plan.tag}")
        engine.push(plan.tag, output)
        progress(f"pushed {plan.tag}")
    return ImageBuildResult(
        tag=plan.tag, image_id=image_id, engine=engine.name, image_profile=plan.image_profile, base=plan.base,
        origin=context.origin, pushed=plan.push,
    )
