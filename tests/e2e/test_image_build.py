"""``spikebatch image build`` for real, with podman: the image the real-pod tests run.

The session fixture ``runner_image`` (tests/infra/runner_fixtures.py -> infra.runner_image) runs
the command line on a Debian-packaged Python base (PEP 668, as a CUDA or distro base
gives) with the host's CA bundle as a build secret (this machine's package-index traffic
is re-signed by a proxy). These tests look inside the image it built: the user, the
virtual environment, the stack, a read-only root filesystem, the CA bundle in no layer,
the credentials paths of the profiles; and that a change to spikebatch's code rebuilds
only the small layers.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path
from typing import Iterable, Iterator

import pytest

from infra.podman import BASE_IMAGE, missing_tools, podman, podman_env
from infra.pytest_plugin import unavailable
from infra.runner_image import CA_BUNDLE, build_command

REPO = Path(__file__).resolve().parents[2]
#: Where the fixed profiles mount the S3 credentials (a secret volume), and where the
#: old nrp hook mounted them.
PROFILE_CREDENTIALS_DIR = "/var/run/secrets/spikebatch/s3"
OLD_CREDENTIALS_DIR = "/root/.aws"
_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\n(.*?)-----END CERTIFICATE-----", re.S)


@pytest.fixture(scope="module")
def image(request):
    """The runner image, once podman is here (else skip or, in CI, fail saying why)."""
    absent = missing_tools()
    if absent:
        unavailable(f"podman not available: missing Debian packages {', '.join(absent)} "
                    f"(`apt-get install {' '.join(absent)}`, as .ci/run does)")
    return request.getfixturevalue("runner_image")


def run_in_image(tag: str, *command: str, options: Iterable[str] = ()) -> subprocess.CompletedProcess:
    return podman("run", "--rm", "--network", "host", *options, tag, *command, check=False)


def test_image_build_help_imports_no_client_library() -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "spikebatch", "image", "build", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = set(re.findall(r"import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", proc.stderr))
    assert "spikebatch.entrypoints.cli_image" in loaded
    heavy = sorted(name for name in loaded if name.split(".")[0] in
                   ("boto3", "botocore", "kubernetes", "minio", "rich", "yaml", "dependency_injector")
                   or name.startswith(("spikebatch.adapters", "spikebatch.container", "spikebatch.application")))
    assert heavy == []


def test_the_image_runs_as_uid_1000_from_a_virtual_environment(image) -> None:
    probe = ("id -u; id -g; echo $HOME; stat -c '%u %a' $HOME; command -v python; "
             "python -c 'import sys, spikebatch, spikeinterface, spikelab; "
             "print(sys.prefix, sys.base_prefix, spikebatch.__version__, spikeinterface.__version__)'")
    proc = run_in_image(image.tag, "sh", "-c", probe)
    assert proc.returncode == 0, proc.stderr
    uid, gid, home, home_owner, python, versions = proc.stdout.splitlines()
    assert (uid, gid) == ("1000", "1000")
    assert home == "/home/runner" and home_owner == "1000 755"
    assert python == "/opt/spikebatch/venv/bin/python"
    prefix, base_prefix, spikebatch_version, spikeinterface_version = versions.split()
    assert prefix == "/opt/spikebatch/venv" and base_prefix == "/usr"
    assert spikebatch_version == re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), re.M)[1]
    assert spikeinterface_version == "0.105.3"
    inspect = json.loads(podman("image", "inspect", image.tag).stdout)[0]
    assert inspect["Config"]["User"] == "1000:1000"
    assert inspect["Labels"]["io.spikebatch.image-profile"] == "cpu"


def test_an_installed_spikebatch_ships_the_dockerfile_and_builds_from_the_index(image) -> None:
    # In the image spikebatch is installed from a wheel, as from PyPI: the Dockerfile is
    # package data there, and the context it would make installs this version from the index.
    code = ("from spikebatch.adapters.images.build_context import RunnerBuildContext, dockerfile_text\n"
            "context = RunnerBuildContext()\n"
            "print(context.origin)\n"
            "print(context.requirements())\n"
            "print('USER 1000:1000' in dockerfile_text())\n")
    proc = run_in_image(image.tag, "python", "-c", code)
    assert proc.returncode == 0, proc.stderr
    version = re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), re.M)[1]
    assert proc.stdout.splitlines() == [f"spikebatch[runner]=={version} from the package index",
                                        f"['spikebatch[runner]=={version}']", "True"]


def test_the_base_is_externally_managed_and_the_venv_is_not(image) -> None:
    # The base's own pip refuses (PEP 668) -- the defect of the old Dockerfile; the
    # image's pip works in its virtual environment.
    system = run_in_image(image.tag, "/usr/bin/python3", "-m", "pip", "install", "--dry-run", "--no-index", "spikebatch")
    assert system.returncode != 0 and "externally-managed-environment" in system.stdout + system.stderr
    venv = run_in_image(image.tag, "python", "-m", "pip", "install", "--dry-run", "--no-index", "--no-deps", "spikebatch")
    assert venv.returncode == 0, venv.stderr
    assert "Requirement already satisfied: spikebatch in /opt/spikebatch/venv/" in venv.stdout


def test_the_runner_starts_and_the_stack_works_on_a_read_only_root(image, tmp_path: Path) -> None:
    # Pods run it with readOnlyRootFilesystem and an emptyDir on /tmp: matplotlib's and
    # numba's state must go there (MPLCONFIGDIR, NUMBA_CACHE_DIR).
    usage = run_in_image(image.tag, "python", "-m", "spikebatch.entrypoints.runner")
    assert usage.returncode == 2 and "usage: python -m spikebatch.entrypoints.runner" in usage.stderr
    (tmp_path / "probe.py").write_text(
        "import os\n"
        "from numba import njit\n"
        "@njit(cache=True)\n"
        "def plus_one(x):\n"
        "    return x + 1\n"
        "assert plus_one(1) == 2\n"
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2]); plt.savefig('/tmp/figure.png')\n"
        "import spikeinterface.full, spikebatch.entrypoints.runner\n"
        "print(sorted(os.listdir('/tmp')))\n"
    )
    tmp_path.chmod(0o755)
    (tmp_path / "probe.py").chmod(0o644)
    proc = run_in_image(image.tag, "python", "/probe/probe.py",
                        options=["--read-only", "--tmpfs", "/tmp:rw,mode=1777", "-v", f"{tmp_path}:/probe:ro"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['figure.png', 'matplotlib', 'numba-cache']"


def _certificates(pem: str) -> set[str]:
    return {body.strip() for body in _CERT.findall(pem)}


def _blobs(archive: Path) -> Iterator[tuple[str, Iterator[bytes]]]:
    """(name, chunks) of every blob of an OCI archive, layers decompressed."""
    with tarfile.open(archive) as outer:
        for member in outer:
            if not member.isfile():
                continue
            handle = outer.extractfile(member)
            head = handle.read(2)

            def chunks(handle=handle, head=head) -> Iterator[bytes]:
                inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if head == b"\x1f\x8b" else None
                data = head
                while data:
                    yield inflate.decompress(data) if inflate else data
                    data = handle.read(1 << 20)

            yield member.name, chunks()


def _found(chunks: Iterator[bytes], needles: list[bytes]) -> set[bytes]:
    longest = max(len(n) for n in needles)
    tail, hits = b"", set()
    for chunk in chunks:
        window = tail + chunk
        hits.update(n for n in needles if n in window)
        tail = window[-longest:]
    return hits


def test_the_ca_bundle_is_in_no_layer_of_the_image(image) -> None:
    assert CA_BUNDLE.is_file()
    given = _certificates(CA_BUNDLE.read_text())
    base = run_in_image(BASE_IMAGE, "cat", "/etc/ssl/certs/ca-certificates.crt")
    assert base.returncode == 0, base.stderr
    # The certificates the build was given that the base does not have: here the
    # proxy's CA, which pip needed to reach the package index while building.
    only_given = given - _certificates(base.stdout)
    built = run_in_image(image.tag, "cat", "/etc/ssl/certs/ca-certificates.crt")
    assert built.returncode == 0, built.stderr
    assert _certificates(built.stdout) == _certificates(base.stdout), "the image's own CA store is the base's"
    secret = run_in_image(image.tag, "sh", "-c", "test -e /run/secrets/ca_bundle && echo present || echo absent")
    assert secret.stdout.strip() == "absent"
    inspect = podman("image", "inspect", image.tag).stdout
    env = json.loads(inspect)[0]["Config"]["Env"]
    assert not [e for e in env if e.split("=")[0] in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")]
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image.tag).stdout
    assert "BEGIN CERTIFICATE" not in inspect + history
    # Every layer of the archive the real node imports, searched for those certificates
    # (none on a machine without a proxy: its bundle is the distribution's, as the
    # base's) and, to show that the search finds what is there, for one of the base's.
    def needle(cert: str) -> bytes:
        return "\n".join(cert.splitlines()[:2]).encode()

    control = needle(sorted(_certificates(base.stdout))[0])
    needles = [needle(cert) for cert in only_given]
    hits = {name: found for name, chunks in _blobs(image.archive) if (found := _found(chunks, [control, *needles]))}
    assert any(control in found for found in hits.values()), "the search did not find the base's own CA store"
    leaks = sorted(name for name, found in hits.items() if found - {control})
    assert leaks == [], f"the CA bundle's certificates are in layers {leaks}"


def test_credentials_under_root_are_unreadable_and_the_profile_path_is_readable(image, tmp_path: Path) -> None:
    # The old nrp hook mounted the S3 credentials at /root/.aws, which uid 1000 cannot
    # traverse (/root is 0700); the fixed profiles mount them where it can.
    secret = tmp_path / "s3"
    secret.mkdir(mode=0o755)
    (secret / "credentials").write_text("[default]\naws_access_key_id = AKIAEXAMPLE\n")
    (secret / "credentials").chmod(0o644)
    read = "print(open('{}/credentials').read().splitlines()[0])"
    old = run_in_image(image.tag, "python", "-c", read.format(OLD_CREDENTIALS_DIR),
                       options=["-v", f"{secret}:{OLD_CREDENTIALS_DIR}:ro"])
    assert old.returncode == 1
    assert f"PermissionError: [Errno 13] Permission denied: '{OLD_CREDENTIALS_DIR}/credentials'" in old.stderr
    new = run_in_image(image.tag, "python", "-c", read.format(PROFILE_CREDENTIALS_DIR),
                       options=["-v", f"{secret}:{PROFILE_CREDENTIALS_DIR}:ro"])
    assert new.returncode == 0, new.stderr
    assert new.stdout.strip() == "[default]"


def test_nrp_mounts_the_credentials_where_the_image_user_can_read_them() -> None:
    # The path checked above is the one the built-in profile uses.
    from spikebatch.profiles import load_profile_from_name

    hooks = load_profile_from_name("nrp").namespace_hooks
    mounts = [volume.mount_path for hook in hooks.values() for volume in hook.required_volumes]
    assert PROFILE_CREDENTIALS_DIR in mounts
    assert not [path for path in mounts if path.startswith("/root")]


def test_a_code_change_rebuilds_only_the_package_layers(image, tmp_path: Path) -> None:
    """A checkout whose code differs from the image's: the dependency layer is reused
    (podman's cache), only the source and package layers are new, and the new image
    holds the changed code."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, checkout / name)
    shutil.copytree(REPO / "src", checkout / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    changed = checkout / "src" / "spikebatch" / "_changed_in_a_test.py"
    changed.write_text("CHANGED_IN_A_TEST = True\n")
    tag = "localhost/spikebatch-runner:e2e-changed"
    env = podman_env()
    env["PYTHONPATH"] = str(checkout / "src")
    try:
        proc = subprocess.run(build_command(tag, BASE_IMAGE), env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"from the source tree at {checkout}" in proc.stderr
        steps = re.split(r"^STEP \d+/\d+: ", proc.stderr, flags=re.M)
        deps_step = next(step for step in steps if step.startswith("RUN") and "requirements.txt" in step)
        assert "--> Using cache" in deps_step, deps_step[-2000:]
        assert json.loads(proc.stdout)["image_id"] != image.image_id
        layers = {t: json.loads(podman("image", "inspect", "--format", "{{json .RootFS.Layers}}", t).stdout)
                  for t in (image.tag, tag)}
        assert len(layers[tag]) == len(layers[image.tag])
        assert layers[tag][:-2] == layers[image.tag][:-2], "everything up to the dependencies is shared"
        assert layers[tag][-2] != layers[image.tag][-2] and layers[tag][-1] != layers[image.tag][-1]
        installed = run_in_image(tag, "python", "-c", "import spikebatch._changed_in_a_test as m; print(m.CHANGED_IN_A_TEST)")
        assert installed.stdout.strip() == "True", installed.stderr
    finally:
        podman("rmi", "--force", tag, check=False)
