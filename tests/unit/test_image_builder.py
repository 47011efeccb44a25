"""``spikebatch image build``: the plan (tag, base, build arguments, checks made before
anything runs), the use case with a fake engine, the build context made from this
spikebatch, and the docker / podman command lines (run against small stand-in programs:
this machine has no Docker daemon; the real podman build is in tests/e2e)."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from dependency_injector import providers

from spikebatch.application.images import (
    DEFAULT_CPU_BASE,
    DEFAULT_GPU_BASE,
    ImageBuildOptions,
    build_runner_image,
    parse_image_reference,
    plan_runner_image,
)
from spikebatch.domain.errors import ConfigError
from spikebatch.ports.images import (
    CA_BUNDLE_SECRET,
    ImageBuildError,
    ImageBuildRequest,
    ImageEngine,
    ImageEngineUnavailableError,
    RunnerBuildContext,
)

REPO = Path(__file__).resolve().parents[2]
PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


@pytest.fixture
def ca_bundle(tmp_path: Path) -> Path:
    path = tmp_path / "proxy-ca.pem"
    path.write_text(PEM)
    return path


# --- the plan -----------------------------------------------------------------------------
def test_the_default_plan_is_the_cpu_image_on_python_slim() -> None:
    plan = plan_runner_image(ImageBuildOptions(), "0.1.0")
    assert plan.tag == "spikebatch-runner:0.1.0"
    assert plan.base == DEFAULT_CPU_BASE == "python:3.11-slim"
    assert plan.image_profile == "cpu"
    assert dict(plan.build_args) == {"BASE": "python:3.11-slim", "SPIKEBATCH_VERSION": "0.1.0", "IMAGE_PROFILE": "cpu"}
    assert (plan.ca_bundle, plan.network, plan.platform, plan.push, plan.pull, plan.no_cache) == (
        None, None, None, False, False, False)


def test_gpu_takes_a_cuda_base_and_a_gpu_tag() -> None:
    plan = plan_runner_image(ImageBuildOptions(gpu=True), "0.1.0")
    assert plan.tag == "spikebatch-runner:0.1.0-gpu"
    assert plan.base == DEFAULT_GPU_BASE and DEFAULT_GPU_BASE.startswith("nvidia/cuda:")
    assert plan.build_args["BASE"] == DEFAULT_GPU_BASE and plan.build_args["IMAGE_PROFILE"] == "gpu"
    # a base of the user's wins over the CUDA default
    own = plan_runner_image(ImageBuildOptions(gpu=True, base="registry.example.org/cuda:13-py"), "0.1.0")
    assert own.base == own.build_args["BASE"] == "registry.example.org/cuda:13-py"
    assert own.tag == "spikebatch-runner:0.1.0-gpu"


@pytest.mark.parametrize("gpu, expected", [(False, "registry.example.org/lab/runner:2.0.1"),
                                           (True, "registry.example.org/lab/runner:2.0.1-gpu")])
def test_a_name_without_a_tag_gets_the_version(gpu: bool, expected: str) -> None:
    plan = plan_runner_image(ImageBuildOptions(tag="registry.example.org/lab/runner", gpu=gpu), "2.0.1")
    assert plan.tag == expected


def test_the_options_reach_the_build_request(ca_bundle: Path, tmp_path: Path) -> None:
    plan = plan_runner_image(ImageBuildOptions(
        tag="localhost/spikebatch-runner:test", base="localhost/debian-py:bookworm", ca_bundle=ca_bundle,
        network="host", platform="linux/amd64", pull=True, no_cache=True, build_args={"PYTHON": "python3.11"},
    ), "0.1.0")
    request = plan.request(tmp_path)
    assert request == ImageBuildRequest(
        context=tmp_path, tag="localhost/spikebatch-runner:test",
        build_args={"PYTHON": "python3.11", "BASE": "localhost/debian-py:bookworm", "SPIKEBATCH_VERSION": "0.1.0",
                    "IMAGE_PROFILE": "cpu"},
        ca_bundle=ca_bundle.resolve(), network="host", platform="linux/amd64", pull=True, no_cache=True,
    )
    assert request.dockerfile == tmp_path / "Dockerfile"


@pytest.mark.parametrize("tag", [
    "localhost/spikebatch-runner:test", "spikebatch-runner:0.1.0", "lab/runner", "registry.example.org:5000/a/b/c:1.0",
    "ghcr.io/braingeneers/spikebatch-runner:0.1.0-gpu", "localhost:5000/x", "[::1]:5000/runner:v1", "a_b/c__d/e-f:T_1.x",
])
def test_valid_tags(tag: str) -> None:
    assert parse_image_reference(tag) is not None
    assert plan_runner_image(ImageBuildOptions(tag=tag), "0.1.0").tag.startswith(tag)


@pytest.mark.parametrize("tag", [
    "Bad Tag", "Upper/runner:1", "runner:", "runner:bad tag", "runner@sha256:" + "a" * 64, "-runner", "a//b",
    "runner:" + "x" * 129, "registry.example.org/", "runner:.hidden", "x" * 256,
])
def test_a_bad_tag_is_one_line_naming_the_option_and_the_fix(tag: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_runner_image(ImageBuildOptions(tag=tag), "0.1.0")
    message = caught.value.message
    assert message.startswith(f"--tag {tag!r} is not a valid image name") and "\n" not in message
    assert "e.g. registry.example.org/lab/spikebatch-runner:0.1.0" in message


def test_push_needs_a_name_a_registry_can_take() -> None:
    with pytest.raises(ConfigError, match=r"^--push cannot push 'spikebatch-runner:0.1.0': the name has no registry"):
        plan_runner_image(ImageBuildOptions(push=True), "0.1.0")
    # a registry host, or an account on the default registry, can be pushed
    assert plan_runner_image(ImageBuildOptions(push=True, tag="registry.example.org/lab/r:1"), "0.1.0").push
    assert plan_runner_image(ImageBuildOptions(push=True, tag="mylab/spikebatch-runner"), "0.1.0").push


def test_the_ca_bundle_must_be_a_readable_pem_file(tmp_path: Path, ca_bundle: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--ca-bundle '.*/absent.pem' cannot be read \(No such file or directory\); "
                                          r"give the path of a PEM file"):
        plan_runner_image(ImageBuildOptions(ca_bundle=tmp_path / "absent.pem"), "0.1.0")
    with pytest.raises(ConfigError, match=r"^--ca-bundle '.*' cannot be read \(Is a directory\)"):
        plan_runner_image(ImageBuildOptions(ca_bundle=tmp_path), "0.1.0")
    not_pem = tmp_path / "cert.der"
    not_pem.write_bytes(b"\x30\x82\x01\x0a")
    with pytest.raises(ConfigError, match=r"holds no PEM certificate .*; give a PEM bundle"):
        plan_runner_image(ImageBuildOptions(ca_bundle=not_pem), "0.1.0")
    if os.geteuid() != 0:  # root reads any file
        unreadable = tmp_path / "secret.pem"
        unreadable.write_text(PEM)
        unreadable.chmod(0)
        with pytest.raises(ConfigError, match=r"cannot be read \(Permission denied\)"):
            plan_runner_image(ImageBuildOptions(ca_bundle=unreadable), "0.1.0")
    relative = Path(os.path.relpath(ca_bundle))
    assert plan_runner_image(ImageBuildOptions(ca_bundle=relative), "0.1.0").ca_bundle == ca_bundle.resolve()


@pytest.mark.parametrize("options, message", [
    (ImageBuildOptions(network="host; rm -rf /"), "--network 'host; rm -rf /' is not a network name; use e.g. host"),
    (ImageBuildOptions(platform="amd64"), "--platform 'amd64' must look like os/arch, e.g. linux/amd64"),
    (ImageBuildOptions(base="Not An Image"), "--base 'Not An Image' is not a valid image name"),
    (ImageBuildOptions(build_args={"BASE": "x"}), "--build-arg BASE is set by the command; use --base / --gpu instead"),
    (ImageBuildOptions(build_args={"1X": "x"}), "--build-arg '1X' is not a build argument name"),
])
def test_other_options_are_checked_before_anything_runs(options: ImageBuildOptions, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_runner_image(options, "0.1.0")
    assert caught.value.message.startswith(message)


def test_a_base_pinned_by_digest_is_accepted() -> None:
    base = "python:3.11-slim@sha256:" + "0" * 64
    assert plan_runner_image(ImageBuildOptions(base=base), "0.1.0").base == base


def test_a_local_version_makes_a_valid_tag() -> None:
    assert plan_runner_image(ImageBuildOptions(), "0.2.0.dev3+g1234abc").tag == "spikebatch-runner:0.2.0.dev3-g1234abc"


# --- the use case with a fake engine ------------------------------------------------------
class FakeContext:
    version = "0.1.0"
    origin = "the source tree at /src"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folders: list[Path] = []

    @contextmanager
    def materialize(self) -> Iterator[Path]:
        folder = self.root / f"context-{len(self.folders)}"
        folder.mkdir()
        (folder / "Dockerfile").write_text("FROM scratch\n")
        self.folders.append(folder)
        try:
            yield folder
        finally:
            (folder / "Dockerfile").unlink()
            folder.rmdir()


class FakeEngine:
    name = "podman"

    def __init__(self, fail_build: bool = False, fail_push: bool = False) -> None:
        self.calls: list[tuple] = []
        self.fail_build, self.fail_push = fail_build, fail_push

    def build(self, request: ImageBuildRequest, on_output) -> str:
        assert request.dockerfile.is_file(), "the context exists while the engine builds"
        self.calls.append(("build", request))
        on_output("STEP 1/2: FROM base")
        if self.fail_build:
            raise ImageBuildError("podman build of x failed (exit 1): boom; the build output above says why")
        on_output("COMMIT")
        return "sha256:" + "ab" * 32

    def push(self, tag: str, on_output) -> None:
        self.calls.append(("push", tag))
        if self.fail_push:
            raise ImageBuildError(f"podman push {tag} failed (exit 125)")
        on_output(f"Writing manifest to image destination {tag}")


def test_the_fakes_fit_the_ports(tmp_path: Path) -> None:
    assert isinstance(FakeEngine(), ImageEngine) and isinstance(FakeContext(tmp_path), RunnerBuildContext)


def test_build_then_push_and_the_profile_line(tmp_path: Path, ca_bundle: Path) -> None:
    engine, context = FakeEngine(), FakeContext(tmp_path)
    plan = plan_runner_image(ImageBuildOptions(tag="registry.example.org/lab/r:1", push=True, ca_bundle=ca_bundle,
                                               network="host"), context.version)
    notes, lines = [], []
    result = build_runner_image(plan, engine=engine, context=context, progress=notes.append,
                                engine_output=lines.append)
    assert [call[0] for call in engine.calls] == ["build", "push"]
    request = engine.calls[0][1]
    assert request.context == context.folders[0] and request.ca_bundle == ca_bundle.resolve()
    assert request.network == "host" and request.tag == "registry.example.org/lab/r:1"
    assert not context.folders[0].exists(), "the build context is removed after the build"
    assert lines == ["STEP 1/2: FROM base", "COMMIT", "Writing manifest to image destination registry.example.org/lab/r:1"]
    assert notes[0] == ("building registry.example.org/lab/r:1 with podman on python:3.11-slim; spikebatch 0.1.0 "
                        "from the source tree at /src; CA bundle given as a build secret")
    assert notes[1:] == ["built registry.example.org/lab/r:1 (abababababab)", "pushing registry.example.org/lab/r:1",
                         "pushed registry.example.org/lab/r:1"]
    assert (result.tag, result.image_id, result.engine, result.pushed) == (
        "registry.example.org/lab/r:1", "sha256:" + "ab" * 32, "podman", True)
    assert result.default_images == {"cpu": "registry.example.org/lab/r:1"}
    assert result.profile_line == "default_images: {cpu: registry.example.org/lab/r:1}"


def test_the_gpu_image_goes_under_gpu(tmp_path: Path) -> None:
    result = build_runner_image(plan_runner_image(ImageBuildOptions(gpu=True), "0.1.0"), engine=FakeEngine(),
                                context=FakeContext(tmp_path), progress=lambda _: None)
    assert result.profile_line == "default_images: {gpu: spikebatch-runner:0.1.0-gpu}"
    assert result.base == DEFAULT_GPU_BASE and not result.pushed


def test_a_failed_build_pushes_nothing_and_leaves_no_context(tmp_path: Path) -> None:
    engine, context = FakeEngine(fail_build=True), FakeContext(tmp_path)
    plan = plan_runner_image(ImageBuildOptions(tag="registry.example.org/lab/r:1", push=True), "0.1.0")
    with pytest.raises(ImageBuildError, match="failed"):
        build_runner_image(plan, engine=engine, context=context, progress=lambda _: None)
    assert [call[0] for call in engine.calls] == ["build"]
    assert not context.folders[0].exists()


# --- the build context ------------------------------------------------------------------
def _checkout(root: Path, pyproject: str) -> Path:
    package = root / "src" / "spikebatch"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("__version__ = '9.9.9'\n")
    (package / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"junk")
    (root / "src" / "spikebatch.egg-info").mkdir()
    (root / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    (root / "README.md").write_text("# spikebatch\n")
    (root / "LICENSE").write_text("MIT\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_x.py").write_text("")
    return package


PYPROJECT = """
    [build-system]
    requires = ["setuptools>=77", "wheel"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "spikebatch"
    version = "9.9.9"
    dependencies = ["pydantic>=2.6,<3", "PyYAML>=6.0"]

    [project.optional-dependencies]
    sorting = ["spikeinterface[full]==0.105.3", "numpy>=1.24"]
    spikelab = ["spikelab==0.1.2", "numpy>=1.24"]
    runner = ["spikebatch[sorting,spikelab]", "tqdm; python_version >= '3.10'"]
    test = ["pytest>=8"]
"""


def test_from_a_source_checkout_the_context_holds_the_source_and_its_dependencies(tmp_path: Path) -> None:
    from spikebatch.adapters.images.build_context import RunnerBuildContext as Context, dockerfile_text

    package = _checkout(tmp_path / "checkout", PYPROJECT)
    context = Context(package_dir=package)
    assert context.version == "9.9.9"
    assert context.origin == f"the source tree at {tmp_path / 'checkout'}"
    with context.materialize() as folder:
        assert folder.is_dir() and folder.name.startswith("spikebatch-image-")
        assert (folder / "Dockerfile").read_text() == dockerfile_text()
        assert (folder / "requirements.txt").read_text().splitlines()[1:] == [
            "pydantic>=2.6,<3", "PyYAML>=6.0", "spikeinterface[full]==0.105.3", "numpy>=1.24", "spikelab==0.1.2",
            "tqdm; python_version >= '3.10'"]
        assert (folder / "build-requirements.txt").read_text().splitlines()[1:] == ["setuptools>=77", "wheel"]
        copied = sorted(str(p.relative_to(folder / "source")) for p in (folder / "source").rglob("*"))
        assert copied == ["LICENSE", "README.md", "pyproject.toml", "src", "src/spikebatch", "src/spikebatch/__init__.py"]
    assert not folder.exists(), "the temporary context is removed"


def test_installed_from_an_index_the_image_installs_that_version(tmp_path: Path) -> None:
    from spikebatch.adapters.images.build_context import RunnerBuildContext as Context

    package = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "spikebatch"
    package.mkdir(parents=True)
    context = Context(package_dir=package, installed_version="1.2.3")
    assert (context.version, context.origin) == ("1.2.3", "spikebatch[runner]==1.2.3 from the package index")
    with context.materialize() as folder:
        assert (folder / "requirements.txt").read_text().splitlines()[1:] == ["spikebatch[runner]==1.2.3"]
        assert (folder / "build-requirements.txt").read_text().splitlines()[1:] == []
        assert list((folder / "source").iterdir()) == []
    assert not folder.exists()


def test_a_src_folder_of_another_project_is_not_a_spikebatch_checkout(tmp_path: Path) -> None:
    from spikebatch.adapters.images.build_context import source_root

    package = _checkout(tmp_path / "other", PYPROJECT.replace('name = "spikebatch"', 'name = "other-tool"'))
    assert source_root(package) is None
    assert source_root(_checkout(tmp_path / "mine", PYPROJECT)) == tmp_path / "mine"


def test_this_checkout_is_built_from_its_pyproject() -> None:
    import tomllib

    from spikebatch.adapters.images.build_context import RunnerBuildContext as Context

    context = Context()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert context.root == REPO and context.version == project["version"]
    requirements = context.requirements()
    assert set(project["dependencies"]) <= set(requirements)
    assert "spikeinterface[full]==0.105.3" in requirements and "spikelab==0.1.2" in requirements
    assert not any(line.startswith(("spikebatch", "pytest")) for line in requirements)


def test_the_dockerfile_is_package_data() -> None:
    import tomllib

    from spikebatch.adapters.images.build_context import dockerfile_text

    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["spikebatch"]
    assert "images/*.Dockerfile" in data
    assert dockerfile_text() == (REPO / "src" / "spikebatch" / "images" / "runner.Dockerfile").read_text()


def test_requirements_with_a_loop_or_an_unknown_extra() -> None:
    from spikebatch.adapters.images.build_context import expand_requirements

    project = {"name": "Spike_Batch", "dependencies": ["a"],
               "optional-dependencies": {"x": ["spike-batch[y]", "b"], "y": ["Spike.Batch [x]", "c", "a"]}}
    assert expand_requirements(project, ["x"]) == ["a", "c", "b"]
    with pytest.raises(ConfigError, match="pyproject.toml has no optional-dependencies 'runner'"):
        expand_requirements(project, ["runner"])
    with pytest.raises(ConfigError, match="self-reference 'spikebatch\\[x\\]>=1' has a version or marker"):
        expand_requirements({"name": "spikebatch", "optional-dependencies": {"r": ["spikebatch[x]>=1"], "x": []}},
                            ["r"])


# --- the engines' command lines (stand-in programs) ---------------------------------------
FAKE_ENGINE = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_ENGINE_LOG"], "a") as log:
    log.write(json.dumps({{"argv": args, "buildkit": os.environ.get("DOCKER_BUILDKIT")}}) + "\\n")
if args[:1] == ["version"]:
    if os.environ.get("FAKE_DAEMON") == "down":
        print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
              file=sys.stderr)
        sys.exit(1)
    print("28.2.2")
elif args[:1] == ["build"]:
    print("STEP 1/3: FROM base", flush=True)
    print("progress on stderr", file=sys.stderr, flush=True)
    if os.environ.get("FAKE_BUILD") == "fail":
        print("error: CERTIFICATE_VERIFY_FAILED", file=sys.stderr)
        sys.exit(1)
    with open(args[args.index("--iidfile") + 1], "w") as out:
        out.write("sha256:" + "cd" * 32)
elif args[:1] == ["push"]:
    print("denied: requested access to the resource is denied", file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def fake_engines(tmp_path: Path, monkeypatch) -> Path:
    """``docker`` and ``podman`` stand-ins on PATH that log their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("docker", "podman"):
        program = bin_dir / name
        program.write_text(FAKE_ENGINE.format(python=sys.executable))
        program.chmod(program.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "engine.log"
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_ENGINE_LOG", str(log))
    return log


def _logged(log: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in log.read_text().splitlines()]


def test_podman_build_command_line_and_streamed_output(fake_engines: Path, tmp_path: Path, ca_bundle: Path) -> None:
    from spikebatch.adapters.images.podman_cli import PodmanEngine

    engine = PodmanEngine()
    assert engine.binary == str(tmp_path / "bin" / "podman")
    request = plan_runner_image(ImageBuildOptions(tag="localhost/r:test", base="localhost/debian-py:bookworm",
                                                  ca_bundle=ca_bundle, network="host", pull=True, no_cache=True,
                                                  platform="linux/arm64"), "0.1.0").request(tmp_path)
    lines: list[str] = []
    assert engine.build(request, lines.append) == "sha256:" + "cd" * 32
    assert lines == ["STEP 1/3: FROM base", "progress on stderr"]
    (call,) = _logged(fake_engines)
    argv = call["argv"]
    iid = argv[argv.index("--iidfile") + 1]
    assert argv == ["build", "--file", str(tmp_path / "Dockerfile"), "--tag", "localhost/r:test", "--iidfile", iid,
                    "--build-arg", "BASE=localhost/debian-py:bookworm", "--build-arg", "SPIKEBATCH_VERSION=0.1.0",
                    "--build-arg", "IMAGE_PROFILE=cpu", "--secret", f"id={CA_BUNDLE_SECRET},src={ca_bundle.resolve()}",
                    "--network", "host", "--platform", "linux/arm64", "--pull=always", "--no-cache", str(tmp_path)]
    assert not Path(iid).exists(), "the id file's folder is removed"
    assert call["buildkit"] is None


def test_docker_builds_with_buildkit_and_plain_progress(fake_engines: Path, tmp_path: Path, ca_bundle: Path) -> None:
    from spikebatch.adapters.images.docker_cli import DockerEngine

    engine = DockerEngine()
    request = plan_runner_image(ImageBuildOptions(ca_bundle=ca_bundle, pull=True), "0.1.0").request(tmp_path)
    engine.build(request, lambda _: None)
    version, build = _logged(fake_engines)
    assert version["argv"] == ["version", "--format", "{{.Server.Version}}"]
    assert build["buildkit"] == "1"
    argv = build["argv"]
    assert argv[argv.index("--secret") + 1] == f"id=ca_bundle,src={ca_bundle.resolve()}"
    assert argv[-4:] == ["--pull", "--progress", "plain", str(tmp_path)]


def test_a_failed_build_says_how_it_ended(fake_engines: Path, tmp_path: Path, monkeypatch) -> None:
    from spikebatch.adapters.images.podman_cli import PodmanEngine

    monkeypatch.setenv("FAKE_BUILD", "fail")
    request = plan_runner_image(ImageBuildOptions(), "0.1.0").request(tmp_path)
    with pytest.raises(ImageBuildError) as caught:
        PodmanEngine().build(request, lambda _: None)
    assert caught.value.message == ("podman build of spikebatch-runner:0.1.0 failed (exit 1): error: "
                                    "CERTIFICATE_VERIFY_FAILED; the build output above says why")
    assert caught.value.exit_code == 1


def test_a_refused_push_suggests_logging_in(fake_engines: Path) -> None:
    from spikebatch.adapters.images.podman_cli import PodmanEngine

    with pytest.raises(ImageBuildError, match=r"^podman push registry.example.org/lab/r:1 failed \(exit 1\): denied: "
                                              r"requested access to the resource is denied; if the registry asks for "
                                              r"credentials, run `podman login registry.example.org` first$"):
        PodmanEngine().push("registry.example.org/lab/r:1", lambda _: None)


def test_docker_whose_daemon_is_down_is_refused_before_building(fake_engines: Path, monkeypatch) -> None:
    from spikebatch.adapters.images.docker_cli import DockerEngine

    monkeypatch.setenv("FAKE_DAEMON", "down")
    with pytest.raises(ImageEngineUnavailableError) as caught:
        DockerEngine()
    assert caught.value.message == ("docker's daemon does not answer (Cannot connect to the Docker daemon at "
                                    "unix:///var/run/docker.sock. Is the docker daemon running?); start it, "
                                    "or use --engine podman")
    assert caught.value.exit_code == 3


def test_the_engine_picked_when_none_is_named(fake_engines: Path, tmp_path: Path, monkeypatch) -> None:
    from spikebatch.container import image_engine

    assert image_engine().name == "docker"  # its daemon answers
    monkeypatch.setenv("FAKE_DAEMON", "down")
    assert image_engine().name == "podman"
    assert image_engine("podman").name == "podman"
    (tmp_path / "bin" / "podman").unlink()
    with pytest.raises(ImageEngineUnavailableError, match=r"^docker's daemon does not answer \(Cannot connect .*\) "
                                                          r"and podman is not installed; start docker's daemon or "
                                                          r"install podman$"):
        image_engine()
    (tmp_path / "bin" / "docker").unlink()
    with pytest.raises(ImageEngineUnavailableError, match="^no container engine found: install docker"):
        image_engine()
    with pytest.raises(ImageEngineUnavailableError, match=r"^podman \('podman'\) is not on PATH; install podman, or "
                                                          r"choose another engine with --engine$"):
        image_engine("podman")
    with pytest.raises(ConfigError, match=r"^unknown container engine \(--engine\) 'buildah'; use docker or podman$"):
        image_engine("buildah")


# --- the command, in process, with the fake engine ----------------------------------------
@pytest.fixture
def image_tools(tmp_path: Path):
    from spikebatch.container import IMAGE_TOOLS

    engine, context = FakeEngine(), FakeContext(tmp_path)
    IMAGE_TOOLS.engine_answering.override(providers.Object(lambda: "podman"))
    IMAGE_TOOLS.engine.providers["podman"].override(providers.Object(engine))
    IMAGE_TOOLS.runner_build_context.override(providers.Object(context))
    try:
        yield engine, context
    finally:
        IMAGE_TOOLS.engine_answering.reset_override()
        IMAGE_TOOLS.engine.providers["podman"].reset_override()
        IMAGE_TOOLS.runner_build_context.reset_override()


def test_the_command_prints_the_image_and_the_profile_line(image_tools, capsys) -> None:
    from spikebatch.entrypoints.cli import run

    engine, _ = image_tools
    assert run(["image", "build", "--network", "host"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["IMAGE=spikebatch-runner:0.1.0", "IMAGE_ID=sha256:" + "ab" * 32, "ENGINE=podman",
                                "PUSHED=false", "DEFAULT_IMAGES={cpu: spikebatch-runner:0.1.0}"]
    assert "STEP 1/2: FROM base\nCOMMIT\n" in err
    assert "put this in your profile: default_images: {cpu: spikebatch-runner:0.1.0}" in err
    assert engine.calls[0][1].network == "host"


def test_the_command_in_json(image_tools, capsys) -> None:
    import json

    from spikebatch.entrypoints.cli import run

    assert run(["image", "build", "--gpu", "--tag", "mylab/runner", "--push", "-o", "json", "--engine", "podman"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {"image": "mylab/runner:0.1.0-gpu", "image_id": "sha256:" + "ab" * 32, "engine": "podman",
                        "pushed": True, "default_images": {"gpu": "mylab/runner:0.1.0-gpu"},
                        "base": DEFAULT_GPU_BASE, "source": "the source tree at /src"}


def test_bad_options_stop_the_command_before_the_engine_runs(image_tools, capsys, tmp_path: Path) -> None:
    from spikebatch.entrypoints.cli import run

    engine, context = image_tools
    assert run(["image", "build", "--tag", "Bad Tag"]) == 2
    assert run(["image", "build", "--ca-bundle", str(tmp_path / "none.pem")]) == 2
    assert run(["image", "build", "--engine", "buildah"]) == 2
    assert run(["image", "build", "--build-arg", "novalue"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("error: ") for line in err)
    for line, option in zip(err, ["--tag", "--ca-bundle", "--engine", "--build-arg"]):
        assert option in line, line
    assert engine.calls == [] and context.folders == []


def test_quiet_drops_the_engine_output(image_tools, capsys) -> None:
    from spikebatch.entrypoints.cli import run

    assert run(["--quiet", "image", "build"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "IMAGE=spikebatch-runner:0.1.0" in out


def test_a_failed_build_exits_1_with_one_line(tmp_path: Path, capsys) -> None:
    from spikebatch.container import IMAGE_TOOLS
    from spikebatch.entrypoints.cli import run

    IMAGE_TOOLS.engine.providers["podman"].override(providers.Object(FakeEngine(fail_build=True)))
    IMAGE_TOOLS.runner_build_context.override(providers.Object(FakeContext(tmp_path)))
    try:
        assert run(["image", "build", "--engine", "podman"]) == 1
    finally:
        IMAGE_TOOLS.engine.providers["podman"].reset_override()
        IMAGE_TOOLS.runner_build_context.reset_override()
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "error: podman build of x failed (exit 1): boom; the build output above says why"
