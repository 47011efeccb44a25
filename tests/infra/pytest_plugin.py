"""pytest fixtures for the real test environment (see tests/infra/README.md).

Loaded by ``tests/conftest.py`` with ``pytest_plugins = ["infra.pytest_plugin"]``.

Session scope: ``minio_server``, ``kube_cluster``, ``real_node``, ``testenv_log``.
Function scope: ``s3_bucket``, ``kube_namespace``. Nothing starts unless a test asks
for it.

Missing servers are built first: once collection is done, the components the
selected tests need (through their fixtures) and that the cache folder lacks are built
by ``build_testenv.build`` with progress lines on the terminal (``pytest tests/unit``
builds nothing). ``SPIKEBATCH_TESTENV_BUILD=0`` turns that off.

Where things come from, in order:
* S3: ``SPIKEBATCH_TEST_S3_ENDPOINT`` + ``..._ACCESS_KEY`` + ``..._SECRET_KEY``
  (+ optional ``..._REGION``), else the MinIO binary from the cache folder.
* Kubernetes: ``SPIKEBATCH_TEST_KUBECONFIG`` (+ optional
  ``SPIKEBATCH_TEST_USER_KUBECONFIG`` / ``SPIKEBATCH_TEST_USER_NAMESPACE``), else
  the binaries from the cache folder.
* A real node (``real_node``): only on the built-in control plane, from the node
  binaries in the cache folder, as root with util-linux, runc and
  containernetworking-plugins installed.
* Neither: the tests skip, saying how to enable them -- or fail instead of
  skipping when ``SPIKEBATCH_TESTENV_REQUIRED=1`` (CI on this project's machines).
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Callable, Iterable

import pytest

from . import build_testenv
from .real_node import RealNode, unavailable_reason as real_node_unavailable_reason
from .testenv import KubeCluster, MinioServer, missing

HOW_TO_ENABLE = ("run `python tests/infra/build_testenv.py` (needs Go; builds into "
                 f"{build_testenv.cache_dir()}), or point the tests at existing services with "
                 "SPIKEBATCH_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY and SPIKEBATCH_TEST_KUBECONFIG")


def _required() -> bool:
    return os.environ.get("SPIKEBATCH_TESTENV_REQUIRED", "") not in ("", "0", "false")


def _autobuild() -> bool:
    return os.environ.get("SPIKEBATCH_TESTENV_BUILD", "") not in ("0", "false", "no")


def unavailable(msg: str) -> None:
    """Skip the test with ``msg`` -- or fail it when SPIKEBATCH_TESTENV_REQUIRED is set."""
    if _required():
        pytest.fail(msg + " (SPIKEBATCH_TESTENV_REQUIRED is set, so this fails instead of skipping)",
                    pytrace=False)
    pytest.skip(msg)


def _unavailable(what: str, comps: list[str]) -> None:
    errors = sorted({_BUILD_ERRORS[c] for c in comps if c in _BUILD_ERRORS})
    msg = f"{what} not available: missing {', '.join(comps)} in the test-environment cache; {HOW_TO_ENABLE}"
    if errors:
        msg += "; the automatic build failed: " + " | ".join(errors)
    unavailable(msg)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs real services (MinIO, a Kubernetes API server)")


# --------------------------------------------------------------------------- progress + building

_T0 = time.monotonic()


def terminal_log(config: pytest.Config) -> Callable[[str], None]:
    """A ``log(msg)`` that writes a progress line straight to the terminal, also while
    pytest captures output (fixtures, collection)."""
    capman = config.pluginmanager.getplugin("capturemanager")

    def log(msg: str) -> None:
        line = f"[testenv {time.monotonic() - _T0:6.1f}s] {msg}"
        reporter = config.pluginmanager.getplugin("terminalreporter")
        with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
            if reporter is None:
                print(line, flush=True)
                return
            if getattr(getattr(reporter, "_tw", None), "width_of_current_line", 0):
                reporter.line("")  # after a row of progress dots
            reporter.line(line)

    return log


_BUILD_ERRORS: dict[str, str] = {}  # component -> why its automatic build failed (not retried)


def ensure_built(config: pytest.Config, components: Iterable[str], why: str) -> None:
    """Build the ``components`` the cache folder lacks (unless SPIKEBATCH_TESTENV_BUILD=0),
    showing build_testenv's progress lines. A failed build is remembered, not retried:
    the fixtures then skip or fail with its message."""
    if not _autobuild():
        return
    todo = [c for c in build_testenv.missing_components(components=components) if c not in _BUILD_ERRORS]
    if not todo:
        return
    capman = config.pluginmanager.getplugin("capturemanager")
    ctx = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
    with ctx:
        print(f"\n[testenv {time.monotonic() - _T0:6.1f}s] {why} need {', '.join(todo)}, missing from "
              f"{build_testenv.cache_dir()}: building (one-off; go output in build.log there)", flush=True)
        try:
            build_testenv.build(components=todo)
        except (build_testenv.BuildError, OSError) as e:
            first = str(e).splitlines()[0]
            for c in todo:
                _BUILD_ERRORS[c] = first
            print(f"[testenv] build failed: {e}", flush=True)


def needed_components(fixturenames: Iterable[str]) -> tuple[str, ...]:
    """The cache components the given fixtures (a test's fixture closure) start."""
    names = set(fixturenames)
    comps: list[str] = []
    if "minio_server" in names and not os.environ.get("SPIKEBATCH_TEST_S3_ENDPOINT"):
        comps += MinioServer.COMPONENTS
    if "kube_cluster" in names and not os.environ.get("SPIKEBATCH_TEST_KUBECONFIG"):
        comps += KubeCluster.COMPONENTS
    if "real_node" in names:
        comps += RealNode.COMPONENTS
    return tuple(dict.fromkeys(comps))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build, before the first test runs, what the selected tests' fixtures need."""
    if session.config.option.collectonly or not session.items:
        return
    names: set[str] = set()
    for item in session.items:
        names.update(getattr(item, "fixturenames", ()))
    comps = needed_components(names)
    if comps:
        ensure_built(session.config, comps, "the selected tests")


@pytest.fixture(scope="session")
def testenv_log(pytestconfig) -> Callable[[str], None]:
    """``log(msg)``: a progress line on the terminal even under output capture (for
    fixtures that build something slow, e.g. an image)."""
    return terminal_log(pytestconfig)


def _built_and_started(server_class, what: str, config: pytest.Config):
    """Start ``server_class`` from the built binaries (built now if missing; skip or
    fail, saying how to build them, when that is not possible) and stop it when the
    fixture ends."""
    ensure_built(config, server_class.COMPONENTS, what)
    absent = missing(server_class.COMPONENTS)
    if absent:
        _unavailable(what, absent)
    server = server_class().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def minio_server(pytestconfig):
    endpoint = os.environ.get("SPIKEBATCH_TEST_S3_ENDPOINT")
    if endpoint:
        access = os.environ.get("SPIKEBATCH_TEST_S3_ACCESS_KEY")
        secret = os.environ.get("SPIKEBATCH_TEST_S3_SECRET_KEY")
        if not (access and secret):
            pytest.fail("SPIKEBATCH_TEST_S3_ENDPOINT is set but SPIKEBATCH_TEST_S3_ACCESS_KEY / "
                        "SPIKEBATCH_TEST_S3_SECRET_KEY are not", pytrace=False)
        yield MinioServer.external_endpoint(endpoint, access, secret,
                                            os.environ.get("SPIKEBATCH_TEST_S3_REGION", "us-east-1"))
        return
    yield from _built_and_started(MinioServer, "MinIO", pytestconfig)


@pytest.fixture
def s3_bucket(minio_server):
    name = minio_server.make_bucket()
    yield name
    minio_server.remove_bucket(name)


@pytest.fixture(scope="session")
def kube_cluster(pytestconfig):
    kubeconfig = os.environ.get("SPIKEBATCH_TEST_KUBECONFIG")
    if kubeconfig:
        yield KubeCluster.from_kubeconfig(
            kubeconfig,
            user_kubeconfig=os.environ.get("SPIKEBATCH_TEST_USER_KUBECONFIG"),
            user_namespace=os.environ.get("SPIKEBATCH_TEST_USER_NAMESPACE"),
        )
        return
    yield from _built_and_started(KubeCluster, "Kubernetes control plane", pytestconfig)


@pytest.fixture
def kube_namespace(kube_cluster):
    name = kube_cluster.create_namespace()
    yield name
    kube_cluster.delete_namespace(name)


@pytest.fixture(scope="session")
def real_node(kube_cluster, pytestconfig):
    """A real kubelet + containerd node (``127.0.0.1``) on the test control plane, beside
    kwok: ``.name``, ``.node_selector``, ``.tolerations``, ``.import_image(archive)``,
    ``.kubelet_log``, ``.containerd_log``, ``.timings``. See ``real_node.py``.
    Its teardown fails if anything of the node is left on the host."""
    if kube_cluster.external:
        unavailable("real_node joins the built-in control plane only (it issues the node's certificates "
                    "from its CA): unset SPIKEBATCH_TEST_KUBECONFIG")
    reason = real_node_unavailable_reason()
    if reason:
        unavailable(f"real node not available: {reason}")
    ensure_built(pytestconfig, RealNode.COMPONENTS, "the real node")
    absent = missing(RealNode.COMPONENTS)
    if absent:
        _unavailable("real node", absent)
    log = terminal_log(pytestconfig)
    node = RealNode(kube_cluster).start()
    log(f"real node {node.name} Ready in {node.timings['total']:.1f} s ("
        + ", ".join(f"{k} {v:.2f} s" for k, v in node.timings.items() if k != "total") + ")")
    try:
        yield node
    finally:
        node.stop()
        left = node.leftovers()
        if left:
            pytest.fail("the real node left things on the host after stop():\n  " + "\n  ".join(left),
                        pytrace=False)


def pytest_report_header(config: pytest.Config) -> list[str]:
    miss = build_testenv.missing_components()
    return [f"spikebatch testenv cache: {build_testenv.cache_dir()} "
            f"({'complete' if not miss else 'missing ' + ', '.join(miss)})"]


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # Backstop: whatever is still running (an aborted session) goes now, not at exit.
    from .processes import stop_all

    stop_all()

