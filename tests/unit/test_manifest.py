"""The rendered Job manifest: its shape for plain / GPU / hooked-namespace / volume jobs,
offline schema validation, and the byte-identical YAML round trip of user strings."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikebatch.errors import ConfigError
from spikebatch.domain.manifest import manifest_to_yaml, render_job_manifest
from spikebatch.models import (
    ClusterProfile,
    ContainerSpec,
    JobSpec,
    NamespaceHookSpec,
    ResourceSpec,
    SecretEnvRef,
    VolumeMountSpec,
)
from spikebatch.domain.naming import MANAGED_BY_LABEL, RUN_ID_LABEL
from spikebatch.profiles import load_profile_from_name

K8S_VERSION = "1.37.0"
RUN_ID = "20261126-120000-abcd1234"


def validate_offline(manifest: dict) -> None:
    """kubernetes-validate against the batch/v1 Job schema of the target release."""
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def container_of(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture
def profile() -> ClusterProfile:
    return ClusterProfile(
        name="site",
        namespace="lab",
        default_images={"cpu": "registry.example/runner:1.0", "gpu": "registry.example/runner:1.0-gpu"},
        labels={"team": "ephys"},
        tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]
                }
            }
        },
        image_pull_secrets=["regcred"],
        resources=ResourceSpec(requests_cpu="2", limits_cpu="2", requests_memory="4Gi", limits_memory="4Gi"),
    )


def test_plain_job_shape(profile: ClusterProfile) -> None:
    spec = JobSpec(container=ContainerSpec(command=["python", "run.py"], args=["--fast"]))
    manifest = render_job_manifest("analysis-job-abc123", spec, profile, RUN_ID)
    validate_offline(manifest)

    assert manifest["apiVersion"] == "batch/v1" and manifest["kind"] == "Job"
    meta = manifest["metadata"]
    assert meta["name"] == "analysis-job-abc123"
    # JobSpec did not set a namespace, so the profile's applies
    assert meta["namespace"] == "lab"
    assert meta["labels"][RUN_ID_LABEL] == RUN_ID
    assert meta["labels"][MANAGED_BY_LABEL] == "spikebatch"
    assert meta["labels"]["team"] == "ephys"
    job = manifest["spec"]
    assert job["backoffLimit"] == 0
    assert job["ttlSecondsAfterFinished"] == 3600
    assert "activeDeadlineSeconds" not in job
    pod = job["template"]["spec"]
    assert job["template"]["metadata"]["labels"][RUN_ID_LABEL] == RUN_ID
    assert pod["restartPolicy"] == "Never"
    assert pod["tolerations"] == profile.tolerations
    assert pod["affinity"] == profile.affinity
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    c = container_of(manifest)
    assert c["image"] == "registry.example/runner:1.0"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["command"] == ["python", "run.py"] and c["args"] == ["--fast"]
    # profile default resources apply when the job leaves them unset
    assert c["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}


def test_job_resources_override_profile_field_by_field(profile: ClusterProfile) -> None:
    spec = JobSpec(resources={"limits_memory": "16Gi", "requests_memory": "8Gi"}, active_deadline_seconds=600, backoff_limit=3)
    manifest = render_job_manifest("j-1", spec, profile, RUN_ID)
    validate_offline(manifest)
    res = container_of(manifest)["resources"]
    assert res["requests"] == {"cpu": "2", "memory": "8Gi"}
    assert res["limits"] == {"cpu": "2", "memory": "16Gi"}
    assert manifest["spec"]["activeDeadlineSeconds"] == 600
    assert manifest["spec"]["backoffLimit"] == 3


def test_gpu_job_uses_gpu_image_and_nvidia_resource(profile: ClusterProfile) -> None:
    spec = JobSpec(
        image_profile="gpu",
        resources=ResourceSpec(requests_gpu=2, limits_gpu=2, node_selector={"gpu-type": "a100"}),
    )
    manifest = render_job_manifest("gpu-job-1", spec, profile, RUN_ID)
    validate_offline(manifest)
    c = container_of(manifest)
    assert c["image"] == "registry.example/runner:1.0-gpu"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert c["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert manifest["spec"]["template"]["spec"]["nodeSelector"] == {"gpu-type": "a100"}


def test_cpu_job_has_no_gpu_resource(profile: ClusterProfile) -> None:
    manifest = render_job_manifest("cpu-job-1", JobSpec(), profile, RUN_ID)
    assert "nvidia.com/gpu" not in container_of(manifest)["resources"]["limits"]


def test_hooked_namespace_merges_env_volumes_pull_policy_and_command(profile: ClusterProfile) -> None:
    hooked = profile.model_copy(
        update={
            "namespace_hooks": {
                "lab": NamespaceHookSpec(
                    image_pull_policy="Always",
                    default_command=["python", "-m", "spikebatch.entrypoints.runner", "workspace"],
                    env_defaults={"AWS_SHARED_CREDENTIALS_FILE": "/creds/credentials", "LOG_LEVEL": "info"},
                    required_volumes=[VolumeMountSpec(name="s3-creds", mount_path="/creds", secret_name="s3-creds")],
                )
            }
        }
    )
    spec = JobSpec(container=ContainerSpec(env={"LOG_LEVEL": "debug"}))
    manifest = render_job_manifest("hooked-1", spec, hooked, RUN_ID)
    validate_offline(manifest)
    c = container_of(manifest)
    assert c["imagePullPolicy"] == "Always"
    assert c["command"] == ["python", "-m", "spikebatch.entrypoints.runner", "workspace"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    # hook defaults fill in, the job's own value wins
    assert env == {"AWS_SHARED_CREDENTIALS_FILE": "/creds/credentials", "LOG_LEVEL": "debug"}
    assert c["volumeMounts"] == [{"name": "s3-creds", "mountPath": "/creds", "readOnly": True}]
    assert manifest["spec"]["template"]["spec"]["volumes"] == [{"name": "s3-creds", "secret": {"secretName": "s3-creds"}}]


def test_hook_does_not_override_what_the_job_sets(profile: ClusterProfile) -> None:
    hooked = profile.model_copy(
        update={"namespace_hooks": {"lab": NamespaceHookSpec(image_pull_policy="Always", default_command=["hook"])}}
    )
    spec = JobSpec(container=ContainerSpec(image_pull_policy="Never", command=["mine"]))
    c = container_of(render_job_manifest("own-1", spec, hooked, RUN_ID))
    assert c["imagePullPolicy"] == "Never"
    assert c["command"] == ["mine"]


def test_hook_of_another_namespace_is_ignored(profile: ClusterProfile) -> None:
    hooked = profile.model_copy(update={"namespace_hooks": {"other": NamespaceHookSpec(env_defaults={"X": "1"})}})
    c = container_of(render_job_manifest("nohook-1", JobSpec(), hooked, RUN_ID))
    assert "env" not in c


def test_volume_mounting_job_renders_secret_and_pvc(profile: ClusterProfile) -> None:
    spec = JobSpec(
        volumes=[
            VolumeMountSpec(name="data", mount_path="/data", pvc_name="recordings", read_only=False, sub_path="run1"),
            VolumeMountSpec(name="kube", mount_path="/root/.kube", secret_name="kube-config"),
        ]
    )
    manifest = render_job_manifest("vol-1", spec, profile, RUN_ID)
    validate_offline(manifest)
    assert container_of(manifest)["volumeMounts"] == [
        {"name": "data", "mountPath": "/data", "readOnly": False, "subPath": "run1"},
        {"name": "kube", "mountPath": "/root/.kube", "readOnly": True},
    ]
    assert manifest["spec"]["template"]["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "recordings", "readOnly": False}},
        {"name": "kube", "secret": {"secretName": "kube-config"}},
    ]


def test_two_volumes_at_one_mount_path_are_rejected(profile: ClusterProfile) -> None:
    prof = profile.model_copy(
        update={"default_volumes": [VolumeMountSpec(name="a", mount_path="/x", secret_name="a")]}
    )
    spec = JobSpec(volumes=[VolumeMountSpec(name="b", mount_path="/x", pvc_name="b")])
    with pytest.raises(ConfigError, match="both mount at '/x'"):
        render_job_manifest("vol-2", spec, prof, RUN_ID)


def test_secret_env_is_a_reference_not_a_value(profile: ClusterProfile) -> None:
    spec = JobSpec(container=ContainerSpec(env={"AWS_SECRET_ACCESS_KEY": SecretEnvRef(secret_name="s3", key="secret")}))
    manifest = render_job_manifest("sec-1", spec, profile, RUN_ID)
    validate_offline(manifest)
    assert container_of(manifest)["env"] == [
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "secret"}}}
    ]


def test_explicit_namespace_and_image_win(profile: ClusterProfile) -> None:
    spec = JobSpec(namespace="other", container=ContainerSpec(image="mine:2"))
    manifest = render_job_manifest("ns-1", spec, profile, RUN_ID)
    assert manifest["metadata"]["namespace"] == "other"
    assert container_of(manifest)["image"] == "mine:2"


def test_missing_image_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no container image.*--image"):
        render_job_manifest("noimg-1", JobSpec(), ClusterProfile(name="bare"), RUN_ID)


def test_unknown_image_profile_lists_the_known_ones(profile: ClusterProfile) -> None:
    with pytest.raises(ConfigError, match="image_profile 'tpu'.*cpu, gpu"):
        render_job_manifest("tpu-1", JobSpec(image_profile="tpu"), profile, RUN_ID)


@pytest.mark.parametrize("bad", ["Bad_Name", "x" * 64, "-lead"])
def test_invalid_job_name_is_rejected(profile: ClusterProfile, bad: str) -> None:
    with pytest.raises(ConfigError, match="RFC 1123"):
        render_job_manifest(bad, JobSpec(), profile, RUN_ID)


@pytest.mark.parametrize("name", ["defaults", "local", "nrp"])
def test_builtin_profiles_render_valid_manifests(name: str) -> None:
    prof = load_profile_from_name(name)
    spec = JobSpec(
        namespace=prof.namespace,
        container=ContainerSpec(image="registry.example/runner:1.0-gpu", command=["python", "-c", "print(1)"]),
        resources=ResourceSpec(requests_gpu=1, limits_gpu=1),
        image_profile="gpu",
        active_deadline_seconds=3600,
    )
    validate_offline(render_job_manifest("builtin-1", spec, prof, RUN_ID))


@pytest.mark.parametrize("name", ["defaults", "nrp"])
def test_builtin_cluster_profiles_say_how_to_get_an_image(name: str) -> None:
    prof = load_profile_from_name(name)
    with pytest.raises(ConfigError) as info:
        render_job_manifest("noimg-2", JobSpec(namespace=prof.namespace), prof, RUN_ID)
    assert "spikebatch image build --tag <registry>/spikebatch-runner:<version> --push" in info.value.message
    assert "default_images.cpu" in info.value.message and "--image" in info.value.message


def test_local_profile_renders_a_job_without_an_image() -> None:
    # The local backend runs the command with this interpreter: no image to name.
    prof = load_profile_from_name("local")
    manifest = render_job_manifest("local-1", JobSpec(container=ContainerSpec(command=["python", "x.py"])), prof, RUN_ID)
    validate_offline(manifest)
    assert "image" not in container_of(manifest)
    named = JobSpec(container=ContainerSpec(image="mine:1", command=["python", "x.py"]))
    assert container_of(render_job_manifest("local-2", named, prof, RUN_ID))["image"] == "mine:1"


def test_nrp_job_gets_the_s3_credentials_where_uid_1000_reads_them_and_no_kubeconfig() -> None:
    prof = load_profile_from_name("nrp")
    spec = JobSpec(container=ContainerSpec(image="registry.example/runner:1.0", command=["python", "x.py"]))
    manifest = render_job_manifest("nrp-1", spec, prof, RUN_ID)
    validate_offline(manifest)
    pod = manifest["spec"]["template"]["spec"]
    c = container_of(manifest)
    assert c["volumeMounts"] == [
        {"name": "prp-s3-credentials", "mountPath": "/var/run/secrets/spikebatch/s3", "readOnly": True}
    ]
    assert pod["volumes"] == [{"name": "prp-s3-credentials", "secret": {"secretName": "prp-s3-credentials"}}]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/var/run/secrets/spikebatch/s3/credentials"
    assert "KUBECONFIG" not in env
    assert "/root" not in manifest_to_yaml(manifest)
    assert pod["automountServiceAccountToken"] is False  # no API token either
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000}


def test_kubernetes_validate_really_rejects_a_broken_job(profile: ClusterProfile) -> None:
    # Guards the guard: the offline validation used above must be able to fail.
    manifest = render_job_manifest("broken-1", JobSpec(), profile, RUN_ID)
    manifest["spec"]["backoffLimit"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_offline(manifest)


# --- YAML round trip ------------------------------------------------------------------

any_text = st.text(st.characters(codec="utf-8"), max_size=40)
env_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
label_values = st.from_regex(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?", fullmatch=True)
label_keys = st.from_regex(r"([a-z0-9]{1,8}\.[a-z]{2,5}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?", fullmatch=True)
images = st.from_regex(r"[a-z0-9]{1,10}(\.[a-z]{2,4})?(/[a-z0-9._-]{1,10}){0,2}(:[A-Za-z0-9._-]{1,10})?", fullmatch=True)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    env=st.dictionaries(env_names, any_text, max_size=5),
    args=st.lists(any_text, max_size=4),
    command=st.lists(any_text, min_size=1, max_size=3),
    labels=st.dictionaries(label_keys, label_values, max_size=4),
    image=images,
)
def test_user_strings_survive_the_yaml_round_trip_byte_identical(env, args, command, labels, image) -> None:
    profile = ClusterProfile(name="p", default_images={"cpu": "base:1"})
    spec = JobSpec(labels=labels, container=ContainerSpec(image=image, command=command, args=args, env=env))
    manifest = render_job_manifest("round-trip-1", spec, profile, RUN_ID)
    parsed = yaml.safe_load(manifest_to_yaml(manifest))
    assert parsed == manifest
    c = container_of(parsed)
    assert c["image"] == image
    assert c["command"] == command
    assert c.get("args", []) == args
    assert {e["name"]: e["value"] for e in c.get("env", [])} == env
    for key, value in labels.items():
        assert parsed["metadata"]["labels"][key] == value
    # the encoded form is UTF-8 text a file or the API server takes as is
    assert manifest_to_yaml(manifest).encode("utf-8").decode("utf-8") == manifest_to_yaml(manifest)


@pytest.mark.parametrize(
    "text",
    ["line1\nline2\n", "trailing space \nx", "a\x85b", "a\u2028b\n", "\ufeffbom", "", "null", "yes", "0x1F", "- item", "#c"],
)
def test_tricky_strings_round_trip(text: str) -> None:
    spec = JobSpec(container=ContainerSpec(image="i:1", args=[text], env={"V": text}))
    manifest = render_job_manifest("tricky-1", spec, ClusterProfile(name="p"), RUN_ID)
    parsed = yaml.safe_load(manifest_to_yaml(manifest))
    assert container_of(parsed)["args"] == [text]
    assert container_of(parsed)["env"] == [{"name": "V", "value": text}]


def test_multiline_scripts_are_readable_literal_blocks() -> None:
    spec = JobSpec(container=ContainerSpec(image="i:1", command=["python", "-c"], args=["import os\nprint(os.getcwd())\n"]))
    text = manifest_to_yaml(render_job_manifest("lit-1", spec, ClusterProfile(name="p"), RUN_ID))
    assert "- |\n" in text and "          print(os.getcwd())\n" in text


# --- least privilege ------------------------------------------------------------------

LOCKED_DOWN = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def test_every_container_is_locked_down_and_the_pod_runs_as_uid_1000(profile: ClusterProfile) -> None:
    manifest = render_job_manifest("sec-2", JobSpec(), profile, RUN_ID)
    validate_offline(manifest)
    pod = manifest["spec"]["template"]["spec"]
    assert container_of(manifest)["securityContext"] == LOCKED_DOWN  # a writable root by default
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000}
    assert pod["automountServiceAccountToken"] is False
    assert "hostNetwork" not in pod and "dnsPolicy" not in pod


def test_pod_security_null_leaves_the_user_to_the_image_but_keeps_the_container_locked_down(profile: ClusterProfile) -> None:
    rootful = profile.model_copy(update={"pod_security": None})
    manifest = render_job_manifest("sec-3", JobSpec(), rootful, RUN_ID)
    validate_offline(manifest)
    assert "securityContext" not in manifest["spec"]["template"]["spec"]
    assert container_of(manifest)["securityContext"] == LOCKED_DOWN


def test_pod_security_fields_render_as_given(profile: ClusterProfile) -> None:
    custom = ClusterProfile.model_validate(
        {**profile.model_dump(), "pod_security": {"run_as_user": 2000, "run_as_group": None, "fs_group": None,
                                                   "run_as_non_root": False}}
    )
    manifest = render_job_manifest("sec-4", JobSpec(), custom, RUN_ID)
    validate_offline(manifest)
    assert manifest["spec"]["template"]["spec"]["securityContext"] == {"runAsUser": 2000}


def test_host_network_profile_renders_host_network_with_cluster_dns(profile: ClusterProfile) -> None:
    test_node = profile.model_copy(update={"host_network": True, "automount_service_account_token": True})
    manifest = render_job_manifest("net-1", JobSpec(), test_node, RUN_ID)
    validate_offline(manifest)
    pod = manifest["spec"]["template"]["spec"]
    assert (pod["hostNetwork"], pod["dnsPolicy"]) == (True, "ClusterFirstWithHostNet")
    assert pod["automountServiceAccountToken"] is True


def test_read_only_root_empty_dir_and_working_dir_render(profile: ClusterProfile) -> None:
    spec = JobSpec(
        container=ContainerSpec(working_dir="/tmp", read_only_root_filesystem=True),
        volumes=[
            VolumeMountSpec(name="work", mount_path="/work", empty_dir=True, size_limit="3Gi"),
            VolumeMountSpec(name="tmp", mount_path="/tmp", empty_dir=True),
        ],
    )
    manifest = render_job_manifest("ro-1", spec, profile, RUN_ID)
    validate_offline(manifest)
    c = container_of(manifest)
    assert c["securityContext"] == {**LOCKED_DOWN, "readOnlyRootFilesystem": True}
    assert c["workingDir"] == "/tmp"
    assert c["volumeMounts"] == [
        {"name": "work", "mountPath": "/work", "readOnly": False},
        {"name": "tmp", "mountPath": "/tmp", "readOnly": False},
    ]
    assert manifest["spec"]["template"]["spec"]["volumes"] == [
        {"name": "work", "emptyDir": {"sizeLimit": "3Gi"}},
        {"name": "tmp", "emptyDir": {}},
    ]
    assert yaml.safe_load(manifest_to_yaml(manifest)) == manifest


def test_kubernetes_validate_rejects_a_misspelt_security_field(profile: ClusterProfile) -> None:
    # Guards the guard for the new blocks: strict validation knows securityContext's fields.
    manifest = render_job_manifest("ro-2", JobSpec(), profile, RUN_ID)
    container_of(manifest)["securityContext"]["readOnlyRootFs"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_offline(manifest)


# --- runner jobs: read-only root, scratch on emptyDir ---------------------------------

RUNNER_ENV = {"INPUT_URI": "s3://b/inputs/r/bundle.zip", "OUTPUT_PREFIX": "s3://b/outputs/r/",
              "LOGS_PREFIX": "s3://b/logs/r/"}


def runner_manifest(spec: JobSpec, prof: ClusterProfile, input_bytes=None) -> dict:
    from fakes import MemoryStore
    from spikebatch.application.submission import runner_job_spec

    runner = runner_job_spec(spec, prof, MemoryStore(), "workspace", dict(RUNNER_ENV), input_bytes)
    manifest = render_job_manifest("runner-1", runner, prof, RUN_ID, job_type="workspace")
    validate_offline(manifest)
    assert yaml.safe_load(manifest_to_yaml(manifest)) == manifest
    return manifest


def test_runner_job_has_a_read_only_root_and_sized_scratch(profile: ClusterProfile) -> None:
    from spikebatch.application.submission import TMP_MOUNT, WORK_DIR_MOUNT

    manifest = runner_manifest(JobSpec(), profile, input_bytes=2 * 1024**3)
    c = container_of(manifest)
    assert c["securityContext"] == {**LOCKED_DOWN, "readOnlyRootFilesystem": True}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["SPIKEBATCH_WORK_DIR"] == WORK_DIR_MOUNT and env["HOME"] == TMP_MOUNT == "/tmp"
    assert c["workingDir"] == "/tmp"
    # 3 x 2Gi + 1Gi
    assert manifest["spec"]["template"]["spec"]["volumes"] == [
        {"name": "spikebatch-work", "emptyDir": {"sizeLimit": "7168Mi"}},
        {"name": "spikebatch-tmp", "emptyDir": {"sizeLimit": "7168Mi"}},
    ]
    assert c["volumeMounts"] == [
        {"name": "spikebatch-work", "mountPath": WORK_DIR_MOUNT, "readOnly": False},
        {"name": "spikebatch-tmp", "mountPath": "/tmp", "readOnly": False},
    ]


def test_runner_scratch_without_a_known_size_has_no_limit(profile: ClusterProfile) -> None:
    volumes = runner_manifest(JobSpec(), profile)["spec"]["template"]["spec"]["volumes"]
    assert [v["emptyDir"] for v in volumes] == [{}, {}]


@pytest.mark.parametrize(
    ("input_bytes", "limit"),
    [(0, "1024Mi"), (1, "1025Mi"), (1024**2, "1027Mi"), (10 * 1024**3, "31744Mi")],
)
def test_scratch_size_is_three_times_the_inputs_plus_1gi_rounded_up_to_mi(input_bytes: int, limit: str) -> None:
    from spikebatch.application.submission import scratch_size_limit

    assert scratch_size_limit(input_bytes) == limit


def test_runner_job_keeps_what_the_user_chose(profile: ClusterProfile) -> None:
    spec = JobSpec(
        container=ContainerSpec(env={"SPIKEBATCH_WORK_DIR": "/data/work", "HOME": "/home/me"},
                                working_dir="/data", read_only_root_filesystem=False),
        volumes=[VolumeMountSpec(name="data", mount_path="/data", pvc_name="lab-data", read_only=False)],
    )
    manifest = runner_manifest(spec, profile, input_bytes=0)
    c = container_of(manifest)
    env = {e["name"]: e["value"] for e in c["env"]}
    assert (env["SPIKEBATCH_WORK_DIR"], env["HOME"], c["workingDir"]) == ("/data/work", "/home/me", "/data")
    assert c["securityContext"] == LOCKED_DOWN  # the explicit false is kept
    # the work folder lies on the user's PVC: no emptyDir over it; /tmp still gets one
    assert [v["name"] for v in manifest["spec"]["template"]["spec"]["volumes"]] == ["data", "spikebatch-tmp"]


def test_runner_job_mounts_no_scratch_where_a_hook_already_mounts(profile: ClusterProfile) -> None:
    hooked = profile.model_copy(update={"namespace_hooks": {"lab": NamespaceHookSpec(
        required_volumes=[VolumeMountSpec(name="shared-tmp", mount_path="/tmp", pvc_name="tmp-claim", read_only=False)],
        env_defaults={"HOME": "/home/runner"})}})
    manifest = runner_manifest(JobSpec(), hooked)
    names = [v["name"] for v in manifest["spec"]["template"]["spec"]["volumes"]]
    assert names == ["shared-tmp", "spikebatch-work"]
    env = {e["name"]: e["value"] for e in container_of(manifest)["env"]}
    assert env["HOME"] == "/home/runner"


def test_runner_job_on_the_local_backend_gets_no_container_scratch() -> None:
    # The local backend runs the runner as a process on this machine: its env must not
    # point it at /tmp or a container path.
    local = load_profile_from_name("local")
    manifest = runner_manifest(JobSpec(), local)
    c = container_of(manifest)
    env = {e["name"]: e["value"] for e in c["env"]}
    assert "SPIKEBATCH_WORK_DIR" not in env and "HOME" not in env and "workingDir" not in c
    assert "volumes" not in manifest["spec"]["template"]["spec"]
    assert c["securityContext"] == LOCKED_DOWN and "image" not in c


def test_read_only_root_only_on_runner_jobs_prepared_jobs_keep_a_writable_one(profile: ClusterProfile, tmp_path) -> None:
    from fakes import JsonFileCodec, MemoryStore, ScriptedBackend
    from spikebatch.session import RunSession

    backend = ScriptedBackend(namespace="lab")
    session = RunSession(profile=profile, backend=backend, storage_client=MemoryStore(),
                         workspace_codecs=[JsonFileCodec()])
    script = tmp_path / "analysis.py"
    script.write_text("workspace['answer'] = 42\n")
    session.submit_workspace_job(workspace={"start": 1}, script=str(script), job_spec={})
    session.submit_prepared_job(job_spec={"container": {"command": ["python", "-c", "print(1)"]}})
    runner, prepared = backend.applied
    for job in (runner, prepared):
        validate_offline(job)
        assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    runner_pod, prepared_pod = runner["spec"]["template"]["spec"], prepared["spec"]["template"]["spec"]
    assert runner_pod["containers"][0]["securityContext"] == {**LOCKED_DOWN, "readOnlyRootFilesystem": True}
    assert [v["name"] for v in runner_pod["volumes"]] == ["spikebatch-work", "spikebatch-tmp"]
    assert prepared_pod["containers"][0]["securityContext"] == LOCKED_DOWN
    assert "volumes" not in prepared_pod


# --- the runner on that scratch -------------------------------------------------------


def test_runner_work_root_on_an_empty_scratch_volume_is_used_as_is(tmp_path, monkeypatch) -> None:
    import tempfile

    from spikebatch.application.runner import prepare_work_root

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # the temporary folder lands here
    (tmp_path / "tmp").mkdir()

    scratch = tmp_path / "emptydir"
    scratch.mkdir()  # the kubelet made the mount point; the runner only writes into it
    assert prepare_work_root(str(scratch)) == scratch
    assert prepare_work_root(str(tmp_path / "new" / "work")).is_dir()
    made = prepare_work_root(None)  # a temporary folder (under /tmp in a pod)
    assert made.is_dir() and made.parent == tmp_path / "tmp"


def test_runner_work_root_that_cannot_be_made_is_a_config_error_naming_the_fix(tmp_path) -> None:
    from spikebatch.application.runner import prepare_work_root
    from spikebatch.errors import SpikebatchError

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(SpikebatchError) as info:
        prepare_work_root(str(not_a_folder / "work"))
    assert f"cannot create the work folder {not_a_folder / 'work'}: Not a directory" in info.value.message
    assert "SPIKEBATCH_WORK_DIR" in info.value.message and "read-only root filesystem" in info.value.message


def test_a_failed_container_keeps_its_log_tail_as_its_termination_message() -> None:
    # The kubelet copies the last lines of a failed container's log into its status,
    # where job_report finds the exception line.
    manifest = render_job_manifest("job-a", JobSpec(container={"command": ["python", "x.py"]}),
                                   ClusterProfile(name="p", default_images={"cpu": "img:1"}), "run-1")
    [container] = manifest["spec"]["template"]["spec"]["containers"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
