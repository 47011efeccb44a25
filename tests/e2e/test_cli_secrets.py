"""Secrets are masked in everything spikebatch shows or stores, and the policy warns
about credentials written as plain env values; the job itself still gets the real
values. On the local profile (real local processes) and on the test control plane.

Canaries: a job config's ``MY_API_TOKEN``, a profile hook's ``DB_PASSWORD`` and the
user's own ``AWS_SECRET_ACCESS_KEY`` (from the environment) each hold a random value
that must appear in no output, no file spikebatch writes for the user and no error."""

from __future__ import annotations

import hashlib
import secrets
import stat
import sys
from pathlib import Path
from typing import Dict, Iterable, List

import pytest
import yaml
from cli_support import Cli, Result, cli, write_workspace  # noqa: F401  (cli is a fixture)

from spikebatch.domain.redaction import MASK

RUNNER_IMAGE = "registry.example.org/lab/runner:1.0"


class Canaries:
    """The secret values of one test and the files that legitimately hold them (the
    test's own inputs)."""

    def __init__(self) -> None:
        self.job = f"canary-job-{secrets.token_hex(12)}"
        self.hook = f"canary-hook-{secrets.token_hex(12)}"
        self.aws = f"canary-aws-{secrets.token_hex(16)}"
        self.inputs: List[Path] = []

    @property
    def values(self) -> List[str]:
        return [self.job, self.hook, self.aws]

    def digest(self, value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()

    def env_check_command(self) -> List[str]:
        """A job command that exits 0 only if it got the real values (compared by
        digest, so the command itself holds no canary)."""
        code = ("import hashlib, os, sys\n"
                "d = lambda n: hashlib.sha256(os.environ.get(n, '').encode()).hexdigest()\n"
                f"ok = d('MY_API_TOKEN') == {self.digest(self.job)!r} and d('DB_PASSWORD') == {self.digest(self.hook)!r}\n"
                "print('job env: real values' if ok else 'job env: WRONG values', flush=True)\n"
                "sys.exit(0 if ok else 3)\n")
        return [sys.executable, "-c", code]

    def assert_absent(self, *texts: str, where: str = "output") -> None:
        for text in texts:
            for value in self.values:
                assert value not in text, f"a canary ({value[:11]}...) leaked into the {where}: {text[:2000]!r}"

    def assert_result_clean(self, result: Result, what: str) -> None:
        self.assert_absent(result.stdout, where=f"stdout of {what}")
        self.assert_absent(result.stderr, where=f"stderr of {what}")

    def files_holding_them(self, *roots: Path) -> Dict[Path, List[str]]:
        """Every file under ``roots`` (but the test's own inputs) holding a canary."""
        found: Dict[Path, List[str]] = {}
        for root in roots:
            for path in sorted(root.rglob("*")):
                if path.is_symlink() or not path.is_file() or path in self.inputs:
                    continue
                data = path.read_bytes()
                hits = [v for v in self.values if v.encode() in data]
                if hits:
                    found[path] = hits
        return found


def _write(path: Path, text: str, canaries: Canaries) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    canaries.inputs.append(path)
    return path


def _setup(cli: Cli, *, namespace: str = "default", base: str = "name: canaryprof\nextends: local\n",
           command: Iterable[str] = ()) -> Canaries:
    """A profile ``canaryprof`` (on SPIKEBATCH_PROFILE_PATH) whose hook for
    ``namespace`` sets DB_PASSWORD, a job config setting MY_API_TOKEN, and the user's
    AWS keys in the environment."""
    canaries = Canaries()
    profiles = cli.root / "profiles"
    _write(profiles / "canaryprof.yaml", base + (
        "namespace_hooks:\n"
        f"  {namespace}:\n"
        f"    env_defaults: {{DB_PASSWORD: {canaries.hook}, AWS_SHARED_CREDENTIALS_FILE: /var/run/s3/credentials}}\n"),
        canaries)
    cli.job_config = _write(cli.root / "job.yaml", yaml.safe_dump({
        "name_prefix": "canary job",
        "container": {"command": list(command) or canaries.env_check_command(),
                      "env": {"MY_API_TOKEN": canaries.job, "MPLBACKEND": "Agg"}},
    }), canaries)
    # A workspace job runs spikebatch's runner: its config sets the env, not a command.
    cli.workspace_config = _write(cli.root / "ws-job.yaml", yaml.safe_dump({
        "name_prefix": "canary analysis", "container": {"env": {"MY_API_TOKEN": canaries.job}}}), canaries)
    tmp = cli.root / "tmp"
    tmp.mkdir()
    cli.env.update(SPIKEBATCH_PROFILE_PATH=str(profiles), AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
                   AWS_SECRET_ACCESS_KEY=canaries.aws, TMPDIR=str(tmp))
    return canaries


def _container(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]["containers"][0]


def _env(manifest: dict) -> Dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _container(manifest).get("env", [])}


def _assert_masked(manifest: dict) -> None:
    env = _env(manifest)
    assert env["MY_API_TOKEN"] == MASK and env["DB_PASSWORD"] == MASK
    # what is not secret stays readable
    assert env["MPLBACKEND"] == "Agg" and env["AWS_SHARED_CREDENTIALS_FILE"] == "/var/run/s3/credentials"


# --- each output that shows a manifest or a profile -------------------------------------

RENDERINGS = {
    "render-job": (["render-job"], "stdout"),
    "render-job --output-manifest": (["render-job", "--output-manifest", "{file}"], "file"),
    "render-job -o json": (["render-job", "-o", "json"], "json"),
    "deploy-job --render-only": (["deploy-job", "--render-only"], "stdout"),
    "deploy-job --render-only -o json": (["deploy-job", "--render-only", "-o", "json"], "json"),
    "deploy-job --render-only --output-manifest": (["deploy-job", "--render-only", "--output-manifest", "{file}"], "file"),
}


@pytest.mark.parametrize("variant", list(RENDERINGS))
def test_rendered_manifests_mask_secret_env_values(cli: Cli, variant: str) -> None:
    canaries = _setup(cli)
    args, where = RENDERINGS[variant]
    out_file = cli.root / "out" / "job-manifest.yaml"
    out_file.parent.mkdir()
    result = cli("--profile", "canaryprof", *[a.format(file=out_file) for a in args],
                 "--job-config", str(cli.job_config))
    assert result.returncode == 0, result.stderr
    canaries.assert_result_clean(result, variant)
    if where == "stdout":
        manifest = yaml.safe_load(result.stdout)
    elif where == "json":
        manifest = result.json()["manifest"]
    else:
        assert result.keys["MANIFEST_PATH"] == str(out_file)
        text = out_file.read_text()
        canaries.assert_absent(text, where=str(out_file))
        manifest = yaml.safe_load(text)
        assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    _assert_masked(manifest)
    # the policy said why, on stderr, naming the variables and never their values
    assert "[WARN] plain_secret_env: environment variable MY_API_TOKEN" in result.stderr
    assert "[WARN] plain_secret_env: environment variable DB_PASSWORD" in result.stderr


@pytest.mark.parametrize("output", ["text", "json"])
def test_profiles_show_masks_a_hooks_secret(cli: Cli, output: str) -> None:
    canaries = _setup(cli)
    result = cli("profiles", "show", "canaryprof", "-o", output)
    assert result.returncode == 0, result.stderr
    canaries.assert_result_clean(result, f"profiles show -o {output}")
    shown = result.json() if output == "json" else yaml.safe_load(result.stdout)
    env_defaults = shown["namespace_hooks"]["default"]["env_defaults"]
    assert env_defaults == {"DB_PASSWORD": MASK, "AWS_SHARED_CREDENTIALS_FILE": "/var/run/s3/credentials"}


def test_policy_check_warns_about_credentials_in_plain_env_values(cli: Cli) -> None:
    canaries = _setup(cli)
    config = _write(cli.root / "shaped.yaml", yaml.safe_dump({
        "name_prefix": "shaped",
        "container": {"command": ["python", "a.py"],
                      "env": {"MY_API_TOKEN": canaries.job, "UPLOAD_ID": "AKIAIOSFODNN7EXAMPLE",
                              "S3_KEY": {"secret_name": "s3", "key": "secret-access-key"}}},
    }), canaries)
    text = cli("--profile", "canaryprof", "policy-check", "--job-config", str(config))
    assert text.returncode == 0, text.stderr  # a warning, not a block
    assert text.keys["POLICY"] == "WARN"
    warned = [line for line in text.stderr.splitlines() if "plain_secret_env" in line]
    assert len(warned) == 3, text.stderr  # MY_API_TOKEN by name, UPLOAD_ID by shape, DB_PASSWORD from the hook
    assert any("UPLOAD_ID" in line and "AWS access key id" in line for line in warned)
    assert all("{secret_name: <secret>, key: <key>}" in line for line in warned)
    assert "S3_KEY" not in text.stderr and "AKIAIOSFODNN7EXAMPLE" not in text.stderr
    canaries.assert_result_clean(text, "policy-check")

    as_json = cli("--profile", "canaryprof", "policy-check", "--job-config", str(config), "-o", "json")
    codes = [f["code"] for f in as_json.json()["findings"] if f["level"] == "WARN"]
    assert codes.count("plain_secret_env") == 3
    canaries.assert_result_clean(as_json, "policy-check -o json")


# --- the canary test: every command that shows or stores a manifest, a profile, a
# --- record, a log or an error --------------------------------------------------------


def test_a_canary_secret_appears_in_no_output_and_no_file(cli: Cli) -> None:
    canaries = _setup(cli)
    prof = ["--profile", "canaryprof"]
    job = ["--job-config", str(cli.job_config)]
    manifest_file = cli.root / "out" / "deployed.yaml"
    manifest_file.parent.mkdir()
    workspace = write_workspace(cli.root / "ws", x=21)
    script = cli.root / "analysis.py"
    # The script checks the job got the real values, by digest (it holds no canary).
    script.write_text(
        "import hashlib, os\n"
        "d = lambda n: hashlib.sha256(os.environ.get(n, '').encode()).hexdigest()\n"
        f"assert d('MY_API_TOKEN') == {canaries.digest(canaries.job)!r}, 'job token'\n"
        f"assert d('DB_PASSWORD') == {canaries.digest(canaries.hook)!r}, 'hook password'\n"
        "print('analysis saw the real values', flush=True)\n"
        "workspace.store('out', 'y', workspace.get('in', 'x') * 2)\n")

    results: Dict[str, Result] = {}

    def run(name: str, *args: str, code: int = 0) -> Result:
        result = cli(*args)
        assert result.returncode == code, (name, result.returncode, result.stderr)
        results[name] = result
        return result

    run("render-job", *prof, "render-job", *job)
    run("render-job --output-manifest", *prof, "render-job", *job, "--output-manifest", str(cli.root / "out" / "r.yaml"))
    run("render-job -o json", *prof, "render-job", *job, "-o", "json")
    run("deploy-job --render-only", *prof, "deploy-job", *job, "--render-only")
    run("deploy-job --render-only -o json", *prof, "deploy-job", *job, "--render-only", "-o", "json")
    run("policy-check", *prof, "policy-check", *job)
    run("policy-check -o json", *prof, "policy-check", *job, "-o", "json")
    run("profiles show", "profiles", "show", "canaryprof")
    run("profiles show -o json", "profiles", "show", "canaryprof", "-o", "json")
    run("profiles list", "profiles", "list", "-o", "json")
    run("profiles validate", "profiles", "validate", str(cli.root / "profiles" / "canaryprof.yaml"))

    deployed = run("deploy-job --output-manifest --wait", *prof, "deploy-job", *job, "--output-manifest",
                   str(manifest_file), "--wait", "--max-wait-seconds", "120")
    assert deployed.keys["FINAL_STATUS"] == "Complete"  # the job got the real values
    _assert_masked(yaml.safe_load(manifest_file.read_text()))
    submitted = run("submit-workspace --wait --retrieve-to", *prof, "submit-workspace", "--workspace", str(workspace),
                    "--script", str(script), "--job-config", str(cli.workspace_config), "--wait",
                    "--retrieve-to", str(cli.root / "results"))
    assert submitted.keys["FINAL_STATUS"] == "Complete", submitted.stderr
    run_id, ws_job = submitted.keys["RUN_ID"], submitted.keys["JOB_NAME"]
    prepared = deployed.keys["RUN_ID"]

    logs = run("job-logs", "job-logs", run_id)
    assert "analysis saw the real values" in logs.stdout
    run("job-logs -o json", "job-logs", run_id, "-o", "json")
    followed = run("job-logs --follow", "job-logs", prepared, "--follow")
    assert "job env: real values" in followed.stdout
    run("job-status", "job-status", run_id)
    run("job-status -o json", "job-status", prepared, "-o", "json")
    run("wait", "wait", run_id)
    run("list-jobs", *prof, "list-jobs")
    run("list-jobs -o json", *prof, "list-jobs", "-o", "json")
    run("list-jobs --offline", "list-jobs", "--offline", "-o", "json")
    run("retrieve", "retrieve", run_id, "--to", str(cli.root / "again"))

    # errors: a failing job (its error line and log), a policy block, bad input
    failing = _write(cli.root / "failing.yaml", yaml.safe_dump({
        "name_prefix": "failing", "container": {"command": [sys.executable, "-c", "raise SystemExit('no luck')"],
                                                "env": {"MY_API_TOKEN": canaries.job}}}), canaries)
    run("deploy-job of a failing job", *prof, "deploy-job", "--job-config", str(failing), "--wait",
        "--max-wait-seconds", "120", code=1)
    blocked = _write(cli.root / "blocked.yaml", yaml.safe_dump({
        "name_prefix": "idle", "container": {"command": ["sleep", "infinity"], "env": {"MY_API_TOKEN": canaries.job}}}),
        canaries)
    run("deploy-job blocked by policy", *prof, "deploy-job", "--job-config", str(blocked), code=2)
    for number, text in enumerate([
        f"name_prefix: bad\ncontainer:\n  command: [python]\n  env:\n    MY_API_TOKEN: !!int {canaries.job}\n",
        f"name_prefix: bad\ncontainer:\n  command: [python]\n  env:\n    MY_API_TOKEN: {canaries.job}\n  bogus: 1\n",
        f"name_prefix: bad\ncontainer:\n  command: [python]\n  env:\n    MY_API_TOKEN: [{canaries.job}]\n",
    ]):
        bad = _write(cli.root / f"bad-{number}.yaml", text, canaries)
        run(f"render-job of bad config {number}", *prof, "render-job", "--job-config", str(bad), code=2)
    run("render-job into a missing folder", *prof, "render-job", *job, "--output-manifest",
        str(cli.root / "missing" / "x.yaml"), code=2)
    run("job-status of an unknown job", "job-status", "no-such-job-x1", code=2)

    for name, result in results.items():
        canaries.assert_result_clean(result, name)
        assert "Traceback" not in result.stderr, (name, result.stderr)
    # every file written under the test's folders: records, manifests, retrieved results,
    # the local store (bundles, outputs, logs), the local backend's state and temp files
    leaks = canaries.files_holding_them(cli.root)
    # The local backend must hand the values to the job's process: it keeps the Job as
    # submitted (manifest.json) and what its supervisor starts the process with
    # (launch.json), real values, in its state folder, as the API server keeps a Job in
    # etcd. Those files are the user's alone (0600 in a folder only the user may
    # enter), and spikebatch shows them to no one (the outputs above).
    state = cli.state.resolve()
    launch_state = {path for path in leaks if state in path.resolve().parents
                    and path.name in ("manifest.json", "launch.json")}
    assert set(leaks) - launch_state == set(), {str(p): v for p, v in leaks.items() if p not in launch_state}
    for path in launch_state:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0, path.parent
    # the records are masked too, and there is one per submission
    records = cli.records()
    assert {r["run_id"] for r in records} >= {run_id, prepared}
    assert all(MASK in r["manifest_yaml"] for r in records if "MY_API_TOKEN" in r["manifest_yaml"])
    assert ws_job


# --- the same on the test control plane ------------------------------------------------


@pytest.mark.integration
def test_on_a_cluster_the_job_gets_real_values_and_the_user_sees_masked_ones(
        cli: Cli, kube_cluster, kube_namespace: str) -> None:
    canaries = _setup(cli, namespace=kube_namespace, command=["python", "analysis.py"], base=(
        "name: canaryprof\nbackend: kubernetes\nstorage_backend: local\n"
        f"namespace: {kube_namespace}\ndefault_images: {{cpu: '{RUNNER_IMAGE}', gpu: '{RUNNER_IMAGE}-gpu'}}\n"))
    base = ["--kubeconfig", kube_cluster.admin_kubeconfig, "--profile", "canaryprof"]
    manifest_file = cli.root / "deployed.yaml"
    results: Dict[str, Result] = {}

    def run(name: str, *args: str, code: int = 0) -> Result:
        result = cli(*args)
        assert result.returncode == code, (name, result.returncode, result.stderr)
        results[name] = result
        return result

    run("render-job", *base, "render-job", "--job-config", str(cli.job_config))
    run("deploy-job --render-only -o json", *base, "deploy-job", "--render-only", "--job-config",
        str(cli.job_config), "-o", "json")
    deployed = run("deploy-job --output-manifest --wait", *base, "deploy-job", "--job-config", str(cli.job_config),
                   "--output-manifest", str(manifest_file), "--wait", "--max-wait-seconds", "120")
    job_name, run_id = deployed.keys["JOB_NAME"], deployed.keys["RUN_ID"]
    _assert_masked(yaml.safe_load(manifest_file.read_text()))

    # what was submitted carries the real values: the Job in the API server
    from kubernetes import client

    with kube_cluster.admin_api() as api:
        stored = client.BatchV1Api(api).read_namespaced_job(job_name, kube_namespace)
    env = {e.name: e.value for e in stored.spec.template.spec.containers[0].env}
    assert env["MY_API_TOKEN"] == canaries.job and env["DB_PASSWORD"] == canaries.hook

    run("job-status", "job-status", run_id)
    run("job-logs", "job-logs", run_id)
    run("job-logs --follow", "job-logs", run_id, "--follow")
    run("list-jobs -o json", *base, "list-jobs", "-o", "json")
    run("profiles show", "profiles", "show", "canaryprof")
    run("job-delete", "job-delete", run_id)
    for name, result in results.items():
        canaries.assert_result_clean(result, name)
    assert canaries.files_holding_them(cli.root) == {}
