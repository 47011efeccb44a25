"""Typed models of jobs, profiles and results (pydantic v2).

Field names and defaults follow the spikelab.batch_jobs reference; fields it leaves
undocumented are chosen so that a job config written for it validates here unchanged.
Every model forbids unknown fields, so a typo in a YAML config is an error naming the
field instead of a silently ignored setting.
"""

from __future__ import annotations

import re
import warnings
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from .errors import ConfigError
from .model_base import StrictModel as _Model
from .model_fields import Labels, check_absolute, check_dns_subdomain, check_namespace
from .naming import sanitize_name_prefix
from .quantity import cpu_quantity, memory_quantity
from .storage_paths import StoragePathTemplates
from .volume_models import VolumeMountSpec, check_volume_sources

PullPolicy = Literal["Always", "IfNotPresent", "Never"]
BackendName = Literal["kubernetes", "kubectl", "local"]
#: The backends that run a Job's container image; the local backend runs the command
#: with this machine's interpreter instead, so its jobs need no image.
CONTAINER_BACKENDS = ("kubernetes", "kubectl")
StorageBackendName = Literal["boto3", "minio", "local"]

#: Used with fullmatch: "$" would also match before a trailing newline.
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


class SecretEnvRef(_Model):
    """An environment variable whose value comes from a Kubernetes secret key.

    Rendered as ``valueFrom.secretKeyRef`` so the value itself is never written into a
    manifest, a log or a result.
    """

    secret_name: str
    key: str
    optional: bool = False

    @field_validator("secret_name")
    @classmethod
    def _secret_name(cls, value: str) -> str:
        return check_dns_subdomain(value, "secret name")


EnvValue = Union[str, SecretEnvRef]


def _check_env(env: Dict[str, Any]) -> Dict[str, Any]:
    for name in env:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(
                f"environment variable name {name!r} must match [-._a-zA-Z][-._a-zA-Z0-9]*"
            )
    return env


def _coerce_env_values(env: Any) -> Any:
    # YAML turns `DEBUG: 1` or `FLAG: true` into int/bool; a user means the text.
    if isinstance(env, dict):
        return {
            k: (str(v).lower() if isinstance(v, bool) else str(v) if isinstance(v, (int, float)) else v)
            for k, v in env.items()
        }
    return env


#: A map of environment variables: names checked, YAML scalars read as the text meant.
EnvMap = Annotated[Dict[str, EnvValue], BeforeValidator(_coerce_env_values), AfterValidator(_check_env)]


class ContainerSpec(_Model):
    """Container runtime details for a single-job pod."""

    #: Image reference; when None the profile's default image for the job's
    #: image profile (cpu | gpu) is used.
    image: Optional[str] = None
    image_pull_policy: PullPolicy = "IfNotPresent"
    command: List[str] = Field(default_factory=list)
    args: List[str] = Field(default_factory=list)
    env: EnvMap = Field(default_factory=dict)
    #: The container's working directory (``workingDir``); None: the image's.
    working_dir: Optional[str] = None
    #: Mount the image's filesystem read-only (``readOnlyRootFilesystem``): the job then
    #: writes only into its volumes. spikebatch sets it for its runner jobs, whose
    #: writable places are emptyDir volumes; a prepared job keeps a writable root
    #: unless its config asks otherwise.
    read_only_root_filesystem: bool = False

    @field_validator("image")
    @classmethod
    def _image(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError(f"image {value!r} must be a non-empty reference without spaces")
        return value

    @field_validator("working_dir")
    @classmethod
    def _working_dir(cls, value: Optional[str]) -> Optional[str]:
        return check_absolute(value, "working_dir")



class ResourceSpec(_Model):
    """Resource requests/limits for a job container."""

    requests_cpu: str = "1"
    requests_memory: str = "2Gi"
    limits_cpu: str = "1"
    limits_memory: str = "2Gi"
    #: GPUs (nvidia.com/gpu). Kubernetes requires requests == limits for GPUs.
    requests_gpu: int = Field(default=0, ge=0)
    limits_gpu: int = Field(default=0, ge=0)
    node_selector: Dict[str, str] = Field(default_factory=dict)

    @field_validator("requests_cpu", "limits_cpu", mode="before")
    @classmethod
    def _cpu(cls, value: Any) -> str:
        return cpu_quantity(str(value))

    @field_validator("requests_memory", "limits_memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> str:
        return memory_quantity(str(value))

    @model_validator(mode="after")
    def _gpus_match(self) -> "ResourceSpec":
        if self.requests_gpu != self.limits_gpu:
            raise ValueError(
                f"requests_gpu ({self.requests_gpu}) and limits_gpu ({self.limits_gpu}) "
                "must be equal: Kubernetes does not overcommit GPUs"
            )
        return self

    @property
    def gpus(self) -> int:
        return self.limits_gpu


class PodSecuritySpec(_Model):
    """The pod-level ``securityContext`` of a profile's jobs: who the job runs as.

    The defaults match the runner image's unprivileged user (uid/gid 1000); ``fs_group``
    makes mounted volumes group-accessible to it. A profile whose images need root sets
    ``pod_security: null``; every container still runs without privilege escalation and
    with all capabilities dropped.
    """

    run_as_user: Optional[int] = Field(default=1000, ge=0)
    run_as_group: Optional[int] = Field(default=1000, ge=0)
    fs_group: Optional[int] = Field(default=1000, ge=0)
    run_as_non_root: bool = True

    @model_validator(mode="after")
    def _non_root_is_not_root(self) -> "PodSecuritySpec":
        if self.run_as_non_root and self.run_as_user == 0:
            raise ValueError(
                "run_as_user 0 is root but run_as_non_root is true, so no pod could start; "
                "for an image that needs root set pod_security: null"
            )
        return self


class NamespaceHookSpec(_Model):
    """Per-namespace overrides applied when a job targets a specific namespace."""

    image_pull_policy: Optional[PullPolicy] = None
    default_command: List[str] = Field(default_factory=list)
    required_volumes: List[VolumeMountSpec] = Field(default_factory=list)
    env_defaults: EnvMap = Field(default_factory=dict)

    @field_validator("required_volumes")
    @classmethod
    def _required_volumes(cls, value: List[VolumeMountSpec]) -> List[VolumeMountSpec]:
        return check_volume_sources(value, "required_volumes")



class PolicyConfig(_Model):
    """Configurable thresholds for the cluster policy engine.

    The first five fields are spikelab.batch_jobs' own, with its defaults; the rest are
    spikebatch's extra checks, off or lenient by default."""

    max_interactive_gpus: int = Field(default=2, ge=0)
    #: An activeDeadlineSeconds above this WARNs (BLOCKs with ``block_long_runtime``).
    #: None: no limit. Default 1,209,600 s (14 days).
    max_runtime_seconds: Optional[int] = Field(default=1_209_600, gt=0)
    block_sleep_infinity: bool = True
    warn_request_limit_mismatch: bool = True
    #: A literal ``sleep N`` with N at least this many seconds is an idle placeholder.
    sleep_duration_threshold_s: int = Field(default=86_400, ge=1)
    #: When true, GPUs over the interactive limit BLOCK; otherwise they WARN.
    block_gpus_over_interactive_limit: bool = False
    #: When true, a deadline over ``max_runtime_seconds`` BLOCKs instead of WARNing.
    block_long_runtime: bool = False
    #: When true, a job without active_deadline_seconds WARNs (``no_active_deadline``).
    warn_missing_deadline: bool = False
    #: A limit more than this many times its request WARNs (cpu and memory).
    max_limit_request_ratio: float = Field(default=4.0, ge=1.0)
    #: A batch running more pods at once than this must request exactly its limits
    #: (NRP's rule for large batches); more pods with requests below limits BLOCK.
    #: None: no such rule.
    max_pods_with_unequal_requests: Optional[int] = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _renamed_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and "sleep_threshold_seconds" in data:
            raise ValueError("sleep_threshold_seconds was renamed sleep_duration_threshold_s (a sleep of at "
                             "least that many seconds is idle); rename the key in the profile's policy block")
        return data


class JobSpec(_Model):
    """High-level description of a Kubernetes batch job."""

    #: The start of the Job's name: sanitised to at most 40 RFC 1123 characters (a
    #: longer one is cut, with a UserWarning), as the reference does.
    name_prefix: str = "analysis-job"
    #: Where the Job runs. Unset or "" means the profile's namespace.
    namespace: str = "default"
    labels: Labels = Field(default_factory=dict)
    container: ContainerSpec = Field(default_factory=ContainerSpec)
    resources: ResourceSpec = Field(default_factory=ResourceSpec)
    volumes: List[VolumeMountSpec] = Field(default_factory=list)
    #: Which of the profile's default_images to use when container.image is None.
    image_profile: Optional[str] = None
    #: Seconds the finished Job and its pods' logs are kept before Kubernetes removes
    #: them (the reference's default, one hour; results in storage are kept anyway).
    #: None: kept until deleted.
    ttl_seconds_after_finished: Optional[int] = Field(default=3600, ge=0)
    #: Retries before the Job is Failed. Analysis scripts are deterministic, so a
    #: retry mostly burns node hours: none by default.
    backoff_limit: int = Field(default=0, ge=0)
    active_deadline_seconds: Optional[int] = Field(default=None, gt=0)

    @field_validator("name_prefix")
    @classmethod
    def _name_prefix(cls, value: str) -> str:
        try:
            safe, cut = sanitize_name_prefix(value)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        if cut:
            warnings.warn(
                f"name_prefix {value!r} was cut to {safe!r} to fit the 40-character name "
                "prefix budget; give a shorter name_prefix to keep it whole",
                UserWarning,
                stacklevel=2,
            )
        return safe

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return value if value == "" else check_namespace(value)

    @model_validator(mode="after")
    def _volume_sources(self) -> "JobSpec":
        check_volume_sources(self.volumes, "volumes")
        return self


def _none_as_empty(value: Any) -> Any:
    # `affinity:` with nothing after it (YAML null) means no affinity, as {} does.
    return {} if value is None else value


class ClusterProfile(_Model):
    """Cluster defaults that can be merged with a JobSpec.

    All organisation-specific configuration (images, secrets, S3 buckets, namespace
    hooks) belongs in profile YAML files, not in Python source.
    """

    name: str
    description: str = ""
    namespace: str = "default"
    default_s3_prefix: Optional[str] = None
    endpoint_url: Optional[str] = None
    region_name: Optional[str] = None
    #: Which JobBackend adapter runs jobs.
    backend: BackendName = "kubernetes"
    #: Which ArtifactStore adapter stages inputs and outputs.
    storage_backend: StorageBackendName = "boto3"
    #: Root folder of the local backend's job state (None: the user's state folder).
    local_state_dir: Optional[str] = None
    labels: Labels = Field(default_factory=dict)
    #: The pods' Kubernetes ``affinity``; {} (or null) for none.
    affinity: Annotated[Dict[str, Any], BeforeValidator(_none_as_empty)] = Field(default_factory=dict)
    tolerations: List[Dict[str, Any]] = Field(default_factory=list)
    #: Names of the cluster's secrets by role (e.g. ``s3_credentials_secret:
    #: prp-s3-credentials``), as the reference's profiles carry them. Informational:
    #: volumes and env refer to secrets by name themselves.
    default_secrets_mapping: Dict[str, str] = Field(default_factory=dict)
    #: Image per image profile, e.g. {"cpu": "...", "gpu": "..."}.
    default_images: Dict[str, str] = Field(default_factory=dict)
    default_image_profile: str = "cpu"
    default_volumes: List[VolumeMountSpec] = Field(default_factory=list)
    namespace_hooks: Dict[str, NamespaceHookSpec] = Field(default_factory=dict)
    storage: StoragePathTemplates = Field(default_factory=StoragePathTemplates)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    #: Default resources; fields a JobSpec sets explicitly take precedence.
    resources: ResourceSpec = Field(default_factory=ResourceSpec)
    image_pull_secrets: List[str] = Field(default_factory=list)
    #: Run job pods in the node's network namespace (``hostNetwork``, with
    #: ``dnsPolicy: ClusterFirstWithHostNet``). For test clusters whose services
    #: listen on the node's loopback; a shared cluster rarely allows it.
    host_network: bool = False
    #: Who job pods run as; None (``pod_security: null``) leaves it to the image, for
    #: images that need root.
    pod_security: Optional[PodSecuritySpec] = Field(default_factory=PodSecuritySpec)
    #: Mount the namespace's service account token into job pods. A job talks to S3,
    #: not to the Kubernetes API, so by default it gets no API credentials.
    automount_service_account_token: bool = False

    @property
    def runs_containers(self) -> bool:
        """Whether this profile's backend runs the job's image (the local backend runs
        the command with this machine's interpreter and needs none)."""
        return self.backend in CONTAINER_BACKENDS

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check_namespace(value)

    @field_validator("default_volumes")
    @classmethod
    def _default_volumes(cls, value: List[VolumeMountSpec]) -> List[VolumeMountSpec]:
        return check_volume_sources(value, "default_volumes")

    @field_validator("namespace_hooks")
    @classmethod
    def _namespace_hooks(cls, value: Dict[str, NamespaceHookSpec]) -> Dict[str, NamespaceHookSpec]:
        for namespace in value:
            check_namespace(namespace, "namespace_hooks key")
        return value

    @field_validator("default_s3_prefix")
    @classmethod
    def _prefix(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        if not re.match(r"^(s3://[^/\s]+/|file:///)", value if value.endswith("/") else value + "/"):
            raise ValueError(
                f"default_s3_prefix {value!r} must be 's3://bucket/path/' or 'file:///abs/path/'"
            )
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _default_image_profile_known(self) -> "ClusterProfile":
        if self.default_images and self.default_image_profile not in self.default_images:
            raise ValueError(
                f"default_image_profile {self.default_image_profile!r} is not a key of "
                f"default_images ({', '.join(sorted(self.default_images))})"
            )
        return self


class SubmitResult(_Model):
    """Result returned by job submission methods."""

    job_name: str
    manifest_yaml: str
    run_id: str
    uploaded_input_uri: str
    output_prefix: str
    logs_prefix: str
    job_type: Literal["workspace", "sorting", "prepared"]
    #: Namespace and profile the job was submitted with (lets wait/logs find it later).
    namespace: str = "default"
    profile_name: Optional[str] = None


class RunConfig(_Model):
    """User-facing run config consumed by CLI/session."""

    profile_name: str = "defaults"
    input_path: str
    output_prefix: Optional[str] = None
    workspace_id: Optional[str] = None
    namespace: Optional[str] = None
    allow_policy_risk: bool = False
    wait_for_completion: bool = False
    follow_logs: bool = False
