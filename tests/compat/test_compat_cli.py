"""``spikebatch.cli`` as a user of ``spikelab.batch_jobs.cli`` calls it: the same
parser (commands, flags, defaults), ``main(argv) -> int``, and the program
``spikebatch-batch-jobs`` (``python -m spikebatch.cli``) run as a real process --
render-job offline, deploy-job / job-status / job-logs / job-delete against the test
control plane with MinIO as the profile's storage.

The installed reference is the oracle for the parser's names only; nothing of it runs
a job here.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, Dict, List

import kubernetes_validate
import pytest
import yaml

from e2e.cli_support import Cli, Result, assert_one_line_error, cli  # noqa: F401  (cli: a fixture)

REPO = Path(__file__).resolve().parents[2]
PROGRAM = [sys.executable, "-m", "spikebatch.cli"]
IMAGE = "registry.example.org/lab/runner:1.0"


def run(cli: Cli, *args: str, env: Dict[str, str] | None = None, timeout: float = 180) -> Result:
    """``spikebatch-batch-jobs ARGS`` as a process (its environment isolated by ``cli``)."""
    return cli(*args, env=env, timeout=timeout, program=PROGRAM)


def stdout_keys(result: Result) -> List[str]:
    return [line.partition("=")[0] for line in result.stdout.splitlines()]


def job_config(cli: Cli, name: str = "Organoid Analysis", extra: str = "", suffix: str = ".yaml",
               env: Dict[str, str] | None = None) -> Path:
    container: Dict[str, Any] = {"command": ["python", "analysis.py"], **({"env": env} if env else {})}
    payload = {"name_prefix": name, "container": container, "backoff_limit": 0}
    path = cli.root / f"{name.replace(' ', '_')}{suffix}"
    text = json.dumps(payload) if suffix == ".json" else yaml.safe_dump(payload) + extra
    path.write_text(text)
    return path


# --- the module's public names ----------------------------------------------------------------
def _shape(parser: Any) -> Dict[str, Any]:
    """Every option and positional of ``parser`` and of each sub-command: what a script
    can pass (flags, dest, default, choices, required, type of action)."""
    import argparse

    def actions(p: argparse.ArgumentParser) -> Dict[str, Any]:
        out = {}
        for action in p._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            out[action.dest] = (tuple(action.option_strings), action.default, tuple(action.choices or ()),
                                action.required, type(action).__name__, action.nargs)
        return out

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"": actions(parser), **{name: actions(p) for name, p in sub.choices.items()},
            "required": sub.required}


def test_parser_has_the_reference_commands_flags_and_defaults() -> None:
    from spikelab.batch_jobs.cli import build_parser as reference_parser

    from spikebatch.cli import build_parser

    ours, theirs = _shape(build_parser()), _shape(reference_parser())
    assert ours.keys() == theirs.keys()
    for command in theirs:
        assert ours[command] == theirs[command], command


def test_parse_args_gives_the_reference_namespace() -> None:
    from spikebatch.cli import build_parser

    args = build_parser().parse_args(["deploy-job", "--job-config", "job.yaml", "--wait", "--image-profile", "gpu"])
    assert (args.profile, args.profile_file, args.kubeconfig) == ("defaults", None, None)
    assert (args.command, args.job_config, args.wait, args.max_wait_seconds) == ("deploy-job", "job.yaml", True, 3600)
    assert (args.image_profile, args.image, args.follow_logs, args.render_only) == ("gpu", None, False, False)
    assert callable(args.func)


def test_module_names_and_main_signature() -> None:
    import spikebatch.cli as cli_module

    assert cli_module.DEFAULT_IMAGE_PROFILE == "cpu"
    parameters = inspect.signature(cli_module.main).parameters
    assert list(parameters) == ["argv"] and parameters["argv"].default is None


def test_main_returns_exit_codes_instead_of_raising(capsys: pytest.CaptureFixture[str]) -> None:
    from spikebatch.cli import main

    assert main(["--help"]) == 0
    assert "deploy-job" in capsys.readouterr().out
    assert main(["render-job"]) == 2  # --job-config missing
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "--job-config" in line and "spikebatch-batch-jobs render-job --help" in line


# --- the console script --------------------------------------------------------------------------
def test_the_compatible_program_is_spikebatch_batch_jobs_not_spikelabs_name() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["spikebatch-batch-jobs"] == "spikebatch.cli:main"
    assert scripts["spikebatch"] == "spikebatch.entrypoints.cli:main"
    assert "spikelab-batch-jobs" not in scripts


def test_installed_scripts_are_those_of_the_checkout_they_come_from() -> None:
    # The installed metadata follows pyproject.toml only after `pip install -e .`: a stale
    # install would still declare (and on uninstall remove) SpikeLab's program name.
    from importlib.metadata import distribution

    dist = distribution("spikebatch")
    source = Path(json.loads(dist.read_text("direct_url.json") or "{}").get("url", "file://").removeprefix("file://"))
    installed = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    declared = tomllib.loads((source / "pyproject.toml").read_text())["project"]["scripts"]
    assert installed == declared, f"installed console scripts are stale; run: pip install -e {source} --no-deps"
    if source.resolve() == REPO:
        assert "spikelab-batch-jobs" not in installed


# --- render-job, offline ------------------------------------------------------------------------
@pytest.fixture
def offline(cli: Cli) -> Cli:
    return cli


def test_render_job_names_the_job_prefix_dry_run_and_prints_the_yaml(offline: Cli) -> None:
    result = run(offline, "--profile", "nrp", "render-job", "--job-config", str(job_config(offline)),
                 "--image", IMAGE)
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    kubernetes_validate.validate(manifest, "1.37.0", strict=True)
    assert manifest["metadata"]["name"] == "organoid-analysis-dry-run"
    assert manifest["metadata"]["namespace"] == "braingeneers"
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE and container["command"] == ["python", "analysis.py"]
    assert "dry-run" in manifest["metadata"]["labels"].values()
    assert offline.local_jobs() == [] and offline.records() == []  # nothing submitted, nothing recorded


def test_deploy_job_render_only_is_render_job(offline: Cli) -> None:
    config = str(job_config(offline, env={"MODE": "fast"}))
    rendered = run(offline, "render-job", "--job-config", config, "--image", IMAGE)
    deployed = run(offline, "deploy-job", "--job-config", config, "--image", IMAGE, "--render-only")
    assert rendered.returncode == deployed.returncode == 0, (rendered.stderr, deployed.stderr)
    assert yaml.safe_load(deployed.stdout) == yaml.safe_load(rendered.stdout)


def test_render_job_output_manifest_creates_its_folder_and_prints_the_path_as_given(offline: Cli) -> None:
    result = run(offline, "render-job", "--job-config", str(job_config(offline)), "--image", IMAGE,
                 "--output-manifest", "out/dry-run/job.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["MANIFEST_PATH=out/dry-run/job.yaml"]
    written = yaml.safe_load((offline.root / "out" / "dry-run" / "job.yaml").read_text())
    assert written["metadata"]["name"] == "organoid-analysis-dry-run"


def test_render_job_reads_a_json_job_config_and_picks_the_profiles_image(offline: Cli) -> None:
    profile = offline.root / "site.yaml"
    profile.write_text(f"name: site\nnamespace: lab\ndefault_images: {{cpu: '{IMAGE}', gpu: '{IMAGE}-gpu'}}\n")
    config = str(job_config(offline, suffix=".json"))
    cpu = run(offline, "--profile-file", str(profile), "render-job", "--job-config", config)
    gpu = run(offline, "--profile-file", str(profile), "render-job", "--job-config", config, "--image-profile", "gpu")
    assert cpu.returncode == gpu.returncode == 0, (cpu.stderr, gpu.stderr)
    images = [yaml.safe_load(r.stdout)["spec"]["template"]["spec"]["containers"][0]["image"] for r in (cpu, gpu)]
    assert images == [IMAGE, f"{IMAGE}-gpu"]


def test_render_job_masks_a_plain_secret_value(offline: Cli) -> None:
    config = job_config(offline, env={"DB_PASSWORD": "hunter2-correct-horse"})
    result = run(offline, "render-job", "--job-config", str(config), "--image", IMAGE)
    assert result.returncode == 0, result.stderr
    assert "hunter2-correct-horse" not in result.stdout + result.stderr
    (env,) = yaml.safe_load(result.stdout)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env["name"] == "DB_PASSWORD"


def test_an_unknown_profile_is_an_error_not_the_defaults(offline: Cli) -> None:
    result = run(offline, "--profile", "no-such-site", "render-job", "--job-config", str(job_config(offline)),
                 "--image", IMAGE)
    assert_one_line_error(result, 2, "no-such-site")
    assert result.stdout == ""


def test_a_job_without_any_image_is_one_line_naming_the_fix(offline: Cli) -> None:
    result = run(offline, "render-job", "--job-config", str(job_config(offline)))
    assert_one_line_error(result, 2, "default_images.cpu", "--image")


def test_an_invalid_job_config_is_one_line_naming_the_field(offline: Cli) -> None:
    config = job_config(offline, extra="backoff_limit: many\n")
    result = run(offline, "deploy-job", "--job-config", str(config), "--image", IMAGE)
    assert_one_line_error(result, 2, "backoff_limit")


@pytest.mark.parametrize("argv", [["render-job"], ["deploy-job", "--job-config", "x.yaml", "--image-profile", "tpu"],
                                  ["deploy-job", "--job-config", "x.yaml", "--max-wait-seconds", "-1"],
                                  ["no-such-command"]])
def test_usage_errors_are_one_line_exit_2(offline: Cli, argv: List[str]) -> None:
    result = run(offline, *argv)
    assert_one_line_error(result, 2, "spikebatch-batch-jobs")


# --- the reference's own profile files (needs the models area: they load) -----------------------
def test_render_job_with_the_reference_nrp_profile_file(offline: Cli, reference_profile_files: Dict[str, Path]) -> None:
    nrp = str(reference_profile_files["nrp"])
    result = run(offline, "--profile-file", nrp, "render-job", "--job-config", str(job_config(offline)))
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    kubernetes_validate.validate(manifest, "1.37.0", strict=True)
    pod = manifest["spec"]["template"]["spec"]
    assert manifest["metadata"] == {**manifest["metadata"], "name": "organoid-analysis-dry-run",
                                    "namespace": "braingeneers"}
    assert pod["containers"][0]["image"] == "ghcr.io/braingeneers/spikelab-analysis-base:cpu"
    mounts = {m["mountPath"]: m.get("subPath") for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/etc/spikelab/aws/credentials"] == "credentials" and mounts["/etc/spikelab/aws/.s3cfg"] == ".s3cfg"
    gpu = run(offline, "--profile-file", nrp, "render-job", "--job-config", str(job_config(offline)),
              "--image-profile", "gpu")
    assert gpu.returncode == 0, gpu.stderr
    assert yaml.safe_load(gpu.stdout)["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":gpu")


def test_render_job_with_the_reference_defaults_profile_file(offline: Cli,
                                                             reference_profile_files: Dict[str, Path]) -> None:
    defaults = str(reference_profile_files["defaults"])
    result = run(offline, "--profile-file", defaults, "render-job", "--job-config", str(job_config(offline)),
                 "--image", IMAGE)
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    assert manifest["metadata"]["namespace"] == "default"
    assert manifest["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    no_image = run(offline, "--profile-file", defaults, "render-job", "--job-config", str(job_config(offline)))
    assert_one_line_error(no_image, 2, "--image")


def test_profile_name_aliases(offline: Cli) -> None:
    # needs the models area: `default` and `nautilus` name the built-in defaults and nrp
    config = str(job_config(offline))
    namespaces = {}
    for alias in ("default", " Nautilus "):
        result = run(offline, "--profile", alias, "render-job", "--job-config", config, "--image", IMAGE)
        assert result.returncode == 0, result.stderr
        namespaces[alias] = yaml.safe_load(result.stdout)["metadata"]["namespace"]
    assert namespaces == {"default": "default", " Nautilus ": "braingeneers"}


# --- against the test control plane, MinIO as the profile's storage ---------------------------------
@pytest.fixture
def cluster(cli: Cli, kube_cluster, kube_namespace: str, minio_server, s3_bucket: str) -> Cli:
    """``cli`` with a profile file for the test namespace (storage: the MinIO bucket) and
    the admin kubeconfig; the MinIO credentials in the environment as a user has them."""
    kube_cluster.require("pod_log_lines", "fail_label")
    profile = cli.root / "testcluster.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "testcluster", "backend": "kubernetes", "storage_backend": "boto3", "namespace": kube_namespace,
        "endpoint_url": minio_server.endpoint_url, "region_name": minio_server.region,
        "default_s3_prefix": f"s3://{s3_bucket}/runs/", "default_images": {"cpu": IMAGE, "gpu": f"{IMAGE}-gpu"},
    }))
    cli.global_args = ["--profile-file", str(profile), "--kubeconfig", kube_cluster.admin_kubeconfig]
    cli.env.update(minio_server.env())
    cli.cluster, cli.namespace, cli.bucket = kube_cluster, kube_namespace, s3_bucket
    return cli


def _job(cluster: Cli, name: str):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    with cluster.cluster.admin_api() as api:
        try:
            return client.BatchV1Api(api).read_namespaced_job(name, cluster.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise


def _jobs(cluster: Cli) -> List[str]:
    from kubernetes import client

    with cluster.cluster.admin_api() as api:
        return [j.metadata.name for j in client.BatchV1Api(api).list_namespaced_job(cluster.namespace).items]


@pytest.mark.integration
def test_deploy_wait_status_logs_delete(cluster: Cli) -> None:
    deployed = run(cluster, *cluster.global_args, "deploy-job", "--job-config", str(job_config(cluster)), "--wait",
                   "--max-wait-seconds", "120")
    assert deployed.returncode == 0, deployed.stderr
    assert stdout_keys(deployed) == ["JOB_NAME", "OUTPUT_PREFIX", "LOGS_PREFIX", "FINAL_STATUS"]
    job = deployed.keys["JOB_NAME"]
    assert job.startswith("organoid-analysis-") and deployed.keys["FINAL_STATUS"] == "Complete"
    submitted = _job(cluster, job)
    run_id = submitted.metadata.labels["spikebatch.io/run-id"]
    assert deployed.keys["OUTPUT_PREFIX"] == f"s3://{cluster.bucket}/runs/outputs/{run_id}/"
    assert deployed.keys["LOGS_PREFIX"] == f"s3://{cluster.bucket}/runs/logs/{run_id}/"
    assert submitted.spec.template.spec.containers[0].image == IMAGE

    status = run(cluster, *cluster.global_args, "job-status", job)
    assert (status.returncode, status.stdout) == (0, "JOB_STATUS=Complete\n"), status.stderr
    logs = run(cluster, *cluster.global_args, "job-logs", job)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == cluster.cluster.pod_log_lines
    followed = run(cluster, *cluster.global_args, "job-logs", job, "--follow")
    assert followed.returncode == 0 and followed.stdout.splitlines() == cluster.cluster.pod_log_lines

    # recorded like spikebatch's own submissions: its CLI finds the job by run id
    found = cluster("job-status", run_id)
    assert found.returncode == 0 and found.keys["JOB_STATUS"] == "Complete", found.stderr

    deleted = run(cluster, *cluster.global_args, "job-delete", job)
    assert (deleted.returncode, deleted.stdout) == (0, f"DELETED_JOB={job}\n"), deleted.stderr
    deadline = time.monotonic() + 30
    while _job(cluster, job) is not None:
        assert time.monotonic() < deadline, f"job {job} still exists after job-delete"
        time.sleep(0.2)
    again = run(cluster, *cluster.global_args, "job-delete", job)  # a missing job is not an error
    assert (again.returncode, again.stdout) == (0, f"DELETED_JOB={job}\n"), again.stderr
    assert_one_line_error(run(cluster, *cluster.global_args, "job-status", job), 2, job)


@pytest.mark.integration
def test_deploy_without_wait_prints_three_lines_and_returns(cluster: Cli) -> None:
    deployed = run(cluster, *cluster.global_args, "deploy-job", "--job-config", str(job_config(cluster, "quick")))
    assert deployed.returncode == 0, deployed.stderr
    assert stdout_keys(deployed) == ["JOB_NAME", "OUTPUT_PREFIX", "LOGS_PREFIX"]
    assert deployed.keys["JOB_NAME"] in _jobs(cluster)


@pytest.mark.integration
def test_deploy_follow_logs_prints_the_final_status_then_the_log(cluster: Cli) -> None:
    result = run(cluster, *cluster.global_args, "deploy-job", "--job-config", str(job_config(cluster, "follow me")),
                 "--wait", "--follow-logs", "--max-wait-seconds", "120")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[3] == "FINAL_STATUS=Complete" and lines[4:] == cluster.cluster.pod_log_lines


@pytest.mark.integration
def test_a_failed_job_exits_1_with_one_error_line(cluster: Cli) -> None:
    key, value = cluster.cluster.fail_label
    config = job_config(cluster, "doomed", extra=yaml.safe_dump({"labels": {key: value}}))
    result = run(cluster, *cluster.global_args, "deploy-job", "--job-config", str(config), "--wait",
                 "--max-wait-seconds", "120")
    assert result.returncode == 1, result.stderr
    assert result.keys["FINAL_STATUS"] == "Failed"
    errors = [line for line in result.error_lines if line.startswith("error:")]
    assert len(errors) == 1 and result.keys["JOB_NAME"] in errors[0] and "failed" in errors[0]
    status = run(cluster, *cluster.global_args, "job-status", result.keys["JOB_NAME"])
    assert status.stdout == "JOB_STATUS=Failed\n", status.stderr


@pytest.mark.integration
def test_a_policy_block_submits_nothing_unless_the_risk_is_allowed(cluster: Cli) -> None:
    config = job_config(cluster, "idle", extra="")
    config.write_text(yaml.safe_dump({"name_prefix": "idle", "backoff_limit": 0,
                                      "container": {"command": ["sleep", "infinity"]}}))
    blocked = run(cluster, *cluster.global_args, "deploy-job", "--job-config", str(config))
    assert blocked.returncode == 2 and blocked.stdout == "", blocked.stderr
    (error,) = [line for line in blocked.error_lines if line.startswith("error:")]
    assert "--allow-policy-risk" in error
    assert _jobs(cluster) == []
    allowed = run(cluster, *cluster.global_args, "deploy-job", "--job-config", str(config), "--allow-policy-risk")
    assert allowed.returncode == 0, allowed.stderr
    assert _jobs(cluster) == [allowed.keys["JOB_NAME"]]
