"""Start / stop the real servers of the test environment on 127.0.0.1.

* :class:`MinioServer` -- a MinIO server with generated root credentials.
* :class:`KubeCluster` -- etcd + kube-apiserver + kube-controller-manager +
  kube-scheduler + kwok (one simulated node), generated certificates (the CA stays
  available as ``KubeCluster.ca`` so a real kubelet can join, see ``real_node.py``), static
  tokens (an admin in ``system:masters`` and a user limited by RBAC to Jobs,
  Pods and pods/log in one namespace), kwok stages (pods of Jobs succeed; a pod
  labelled with :attr:`KubeCluster.fail_label` fails; a pod labelled with
  :data:`FAIL_CHOSEN_INDEXES_LABEL` fails when its completion index is one of
  :data:`FAIL_INDEXES_EXIT_1` / :data:`FAIL_INDEXES_EXIT_2`) and pod logs served
  through the API server from a CRI-format file.

Binaries come from the cache folder filled by ``build_testenv.py``. Every
address is loopback; every process runs in its own process group and is stopped
on ``stop()``, at exit and on SIGTERM/SIGHUP (see ``processes.py``).

By hand (from the repository root)::

    PYTHONPATH=tests python -m infra.testenv      # start everything, print paths, Ctrl-C stops
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import build_testenv
from .certs import CertificateAuthority, _now, _write_cert, _write_key, service_account_keys
from .processes import ManagedProcess, StartupError, free_port, http_ok, wait_until

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"


def _versions() -> dict[str, str]:
    return build_testenv.load_versions()


def binaries_dir() -> Path:
    return build_testenv.cache_dir() / "bin"


def stages_dir() -> Path:
    return build_testenv.cache_dir() / "stages"


def missing(components: tuple[str, ...]) -> list[str]:
    return [c for c in build_testenv.missing_components() if c in components]


def _run_dir(prefix: str) -> Path:
    base = os.environ.get("SPIKEBATCH_TESTENV_RUNDIR") or None
    return Path(tempfile.mkdtemp(prefix=f"spikebatch-{prefix}-", dir=base))


def _keep() -> bool:
    return os.environ.get("SPIKEBATCH_TESTENV_KEEP", "") not in ("", "0", "false")


# --------------------------------------------------------------------------- MinIO

class MinioServer:
    """A MinIO server: ``endpoint_url``, ``access_key``, ``secret_key``, ``region``."""

    COMPONENTS = ("minio",)

    def __init__(self) -> None:
        self.region = REGION
        self.access_key = "sbadmin-" + secrets.token_hex(4)
        self.secret_key = secrets.token_urlsafe(24)
        self.port = 0
        self.endpoint_url = ""
        self.run_dir: Path | None = None
        self.process: ManagedProcess | None = None
        self.external = False
        self.startup_seconds = 0.0

    @classmethod
    def external_endpoint(cls, endpoint_url: str, access_key: str, secret_key: str,
                          region: str = REGION) -> "MinioServer":
        srv = cls()
        srv.endpoint_url, srv.access_key, srv.secret_key, srv.region = endpoint_url.rstrip("/"), access_key, secret_key, region
        srv.external = True
        return srv

    def start(self, timeout: float = 60) -> "MinioServer":
        t0 = time.monotonic()
        self.run_dir = _run_dir("minio")
        self.port = free_port()
        console = free_port()
        self.endpoint_url = f"http://{LOOPBACK}:{self.port}"
        env = dict(os.environ, MINIO_ROOT_USER=self.access_key, MINIO_ROOT_PASSWORD=self.secret_key,
                   MINIO_BROWSER="off", MINIO_UPDATE="off", MINIO_REGION=self.region,
                   MINIO_PROMETHEUS_AUTH_TYPE="public")
        (self.run_dir / "data").mkdir()
        self.process = ManagedProcess(
            "minio",
            [binaries_dir() / "minio", "server", "--quiet", "--address", f"{LOOPBACK}:{self.port}",
             "--console-address", f"{LOOPBACK}:{console}", "--certs-dir", self.run_dir / "certs",
             self.run_dir / "data"],
            log_path=self.run_dir / "minio.log", env=env, cwd=self.run_dir,
        ).start()
        try:
            wait_until(self.process, lambda: http_ok(f"{self.endpoint_url}/minio/health/ready"),
                       timeout=timeout, what="ready (/minio/health/ready)")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None
        if self.run_dir and not _keep():
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # --- helpers for tests
    def boto3_client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=self.region,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}))

    def make_bucket(self, name: str | None = None) -> str:
        name = name or f"sbtest-{uuid.uuid4().hex[:16]}"
        self.boto3_client().create_bucket(Bucket=name)
        return name

    def remove_bucket(self, name: str) -> None:
        """Delete every object (and version) in ``name``, then the bucket. A bucket a
        test already removed is fine; any other failure is reported."""
        from botocore.exceptions import ClientError

        if not self.external and not (self.process and self.process.alive()):
            return
        s3 = self.boto3_client()
        try:
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
                objs = [{"Key": o["Key"], "VersionId": o["VersionId"]}
                        for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                if objs:
                    s3.delete_objects(Bucket=name, Delete={"Objects": objs, "Quiet": True})
            s3.delete_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
                raise

    def env(self) -> dict[str, str]:
        """Environment variables a child process (e.g. the runner) needs to reach this server."""
        return {"S3_ENDPOINT_URL": self.endpoint_url, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": self.region}

    def __repr__(self) -> str:
        return f"MinioServer({self.endpoint_url!r}, external={self.external})"


# --------------------------------------------------------------------------- Kubernetes

FAIL_LABEL = ("pod-container-running-failed.stage.kwok.x-k8s.io", "true")
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
POD_LOG_LINES = [
    "spikebatch testenv: container started",
    "spikebatch testenv: working on it",
    "spikebatch testenv: done",
]
#: A pod template label: that Job's pods fail at the chosen completion indexes below
#: (kwok stages written by ``KubeCluster._write_kwok_config``) and succeed at every
#: other index, so a batch's per-recording retries and failures can be checked against
#: the real job controller. Indexes are strings, as the pods' completion-index label is.
FAIL_CHOSEN_INDEXES_LABEL = ("spikebatch.test/fail-chosen-indexes", "true")
#: ... these fail every attempt with exit code 1 (reason Error, FAIL_INDEXES_MESSAGE):
#: a crash a retry does not cure, so the index fails after backoffLimitPerIndex + 1 attempts.
FAIL_INDEXES_EXIT_1 = ("3", "17", "150")
FAIL_INDEXES_MESSAGE = "RuntimeError: sorter crashed on purpose"
#: ... these with exit code 2, the runner's "bad input" code (domain.batch
#: BAD_INPUT_EXIT_CODE): a batch's pod failure policy fails the index at the first attempt.
FAIL_INDEXES_EXIT_2 = ("42",)
FAIL_INDEXES_EXIT_2_MESSAGE = "ValueError: recording unreadable on purpose"
#: The completion-index label the job controller puts on an Indexed Job's pods.
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
USER_NAME = "spikebatch-user"
ADMIN_NAME = "spikebatch-admin"


def issue_identity(ca: CertificateAuthority, filename: str, common_name: str, *,
                   organizations: tuple[str, ...] = (), dns: tuple[str, ...] = (),
                   ips: tuple[str, ...] = (), client: bool = True, server: bool = False) -> tuple[Path, Path]:
    """A certificate from ``ca`` with subject CN=common_name, O=organizations (Kubernetes
    reads user name and groups from them) written as ``<ca dir>/<filename>.crt/.key``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    usages = ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else []) + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject)).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(_now()).not_valid_after(_now() + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    cert_path, key_path = ca.dir / f"{filename}.crt", ca.dir / f"{filename}.key"
    _write_cert(cert, cert_path)
    _write_key(key, key_path)
    return cert_path, key_path


def fail_chosen_indexes_stage(name: str, indexes: tuple[str, ...], exit_code: int, message: str) -> dict:
    """A kwok Stage: a Running pod labelled FAIL_CHOSEN_INDEXES_LABEL whose completion
    index is in ``indexes`` terminates with ``exit_code`` (reason Error, ``message``)
    and phase Failed, the way a kubelet reports a crashed container.

    Its weight (the chaos stage's 10000) makes it win over ``pod-complete``, which
    matches the same Running pod with no weight: kwok picks among matching stages by
    weight, and a stage of weight 0 is never picked when another has more."""
    # The message is written as a JSON string: a valid YAML double-quoted scalar, so
    # the template needs no Go string literal (and a ": " in it stays text).
    status_template = f"""\
{{{{ $now := Now }}}}
conditions:
- lastProbeTime: null
  lastTransitionTime: {{{{ $now | Quote }}}}
  status: "True"
  reason: ""
  type: Initialized
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: "False"
  reason: ""
  type: Ready
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: "False"
  reason: ""
  type: ContainersReady
containerStatuses:
{{{{ range $index, $item := .spec.containers }}}}
- image: {{{{ $item.image | Quote }}}}
  name: {{{{ $item.name | Quote }}}}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: {exit_code}
      reason: Error
      message: {json.dumps(message)}
      startedAt: {{{{ $now | Quote }}}}
      finishedAt: {{{{ $now | Quote }}}}
{{{{ end }}}}
phase: Failed
"""
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": [
                {"key": f'.metadata.labels["{FAIL_CHOSEN_INDEXES_LABEL[0]}"]', "operator": "In",
                 "values": [FAIL_CHOSEN_INDEXES_LABEL[1]]},
                {"key": f'.metadata.labels["{COMPLETION_INDEX_LABEL}"]', "operator": "In",
                 "values": list(indexes)},
                {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                {"key": ".status.phase", "operator": "In", "values": ["Running"]},
            ]},
            "weight": 10000,
            "next": {"statusTemplate": status_template},
        },
    }


def _rfc3339nano(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond * 1000:09d}Z"


def write_kubeconfig(path: Path, *, server: str, ca_file: Path, user: str, token: str,
                     namespace: str = "default") -> Path:
    cfg = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "spikebatch-testenv",
                      "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": f"{user}@spikebatch-testenv",
                      "context": {"cluster": "spikebatch-testenv", "user": user, "namespace": namespace}}],
        "current-context": f"{user}@spikebatch-testenv",
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    path.chmod(0o600)
    return path


class KubeCluster:
    """A real control plane with one kwok node. See the module docstring."""

    COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "stages")

    def __init__(self) -> None:
        self.server: str | None = None
        self.admin_kubeconfig: str | None = None
        self.user_kubeconfig: str | None = None
        self.user_namespace: str | None = "spikebatch-user"
        self.user_name: str | None = USER_NAME
        self.node_name: str | None = "kwok-node-0"
        self.fail_label: tuple[str, str] | None = FAIL_LABEL
        self.pod_log_lines: list[str] | None = list(POD_LOG_LINES)
        self.pending_node_selector: dict[str, str] | None = {"spikebatch.test/no-such-node": "true"}
        self.version: str | None = _versions()["KUBERNETES_VERSION"]
        self.ca_file: str | None = None
        self.ca: CertificateAuthority | None = None  # the cluster CA (None for an external cluster)
        self.admin_token: str | None = None
        self.user_token: str | None = None
        self.external = False
        self.run_dir: Path | None = None
        self.processes: dict[str, ManagedProcess] = {}
        self.timings: dict[str, float] = {}
        self._apiserver_argv: list[str] = []

    # ---------------------------------------------------------------- external
    @classmethod
    def from_kubeconfig(cls, kubeconfig: str, *, user_kubeconfig: str | None = None,
                        user_namespace: str | None = None) -> "KubeCluster":
        """Wrap an existing cluster. Fields that cannot be known are None."""
        c = cls()
        c.external = True
        c.admin_kubeconfig = kubeconfig
        cfg = yaml.safe_load(Path(kubeconfig).read_text())
        ctx_name = cfg.get("current-context")
        ctx = next((x["context"] for x in cfg.get("contexts", []) if x["name"] == ctx_name), {})
        cluster = next((x["cluster"] for x in cfg.get("clusters", []) if x["name"] == ctx.get("cluster")), {})
        c.server = cluster.get("server")
        c.user_kubeconfig = user_kubeconfig
        c.user_namespace = user_namespace if user_kubeconfig else None
        c.user_name = None
        c.node_name = None
        c.fail_label = None  # only kwok's chaos stage fails pods by label
        c.pod_log_lines = None
        c.restart_apiserver = None  # type: ignore[assignment]
        from kubernetes import client
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            with c.admin_api() as api:
                c.version = client.VersionApi(api).get_code().git_version
        except (ApiException, HTTPError, OSError):
            # An external cluster that hides /version is still usable for the tests.
            c.version = None
        return c

    # ---------------------------------------------------------------- start/stop
    def start(self, timeout: float = 90) -> "KubeCluster":
        t_all = time.monotonic()
        try:
            self._start(timeout)
        except BaseException:
            self.stop(keep_logs=True)
            raise
        self.timings["total"] = time.monotonic() - t_all
        return self

    def _start(self, timeout: float) -> None:
        bins = binaries_dir()
        run = self.run_dir = _run_dir("kube")
        pki = run / "pki"
        ca = self.ca = CertificateAuthority(pki)
        self.ca_file = str(ca.cert_path)
        api_crt, api_key = ca.issue("kube-apiserver", ips=[LOOPBACK, "10.96.0.1"],
                                    dns=["localhost", "kubernetes", "kubernetes.default",
                                         "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"])
        kwok_crt, kwok_key = ca.issue("kwok-node", ips=[LOOPBACK], dns=["localhost", self.node_name])
        # kube-apiserver -> kubelet (logs, exec): a client the kubelets' webhook authorizer
        # lets through (system:masters); the kubelets' serving certs are checked against our CA.
        kubelet_client_crt, kubelet_client_key = issue_identity(
            ca, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", organizations=("system:masters",))
        sa_key, sa_pub = service_account_keys(pki)

        self.admin_token, self.user_token = secrets.token_hex(24), secrets.token_hex(24)
        tokens = run / "tokens.csv"
        tokens.write_text(f'{self.admin_token},{ADMIN_NAME},uid-admin,"system:masters"\n'
                          f"{self.user_token},{USER_NAME},uid-user\n")
        tokens.chmod(0o600)

        etcd_port, etcd_peer = free_port(), free_port()
        api_port = free_port()
        self.server = f"https://{LOOPBACK}:{api_port}"
        self.admin_kubeconfig = str(write_kubeconfig(run / "admin.kubeconfig", server=self.server,
                                                     ca_file=ca.cert_path, user=ADMIN_NAME, token=self.admin_token))
        self.user_kubeconfig = str(write_kubeconfig(run / "user.kubeconfig", server=self.server,
                                                    ca_file=ca.cert_path, user=USER_NAME, token=self.user_token,
                                                    namespace=self.user_namespace))

        # etcd
        t = time.monotonic()
        etcd = self._proc("etcd", [
            bins / "etcd", "--name", "default", "--data-dir", run / "etcd-data",
            "--listen-client-urls", f"http://{LOOPBACK}:{etcd_port}",
            "--advertise-client-urls", f"http://{LOOPBACK}:{etcd_port}",
            "--listen-peer-urls", f"http://{LOOPBACK}:{etcd_peer}",
            "--initial-advertise-peer-urls", f"http://{LOOPBACK}:{etcd_peer}",
            "--initial-cluster", f"default=http://{LOOPBACK}:{etcd_peer}",
            "--unsafe-no-fsync", "--log-level", "warn",
        ])
        wait_until(etcd, lambda: http_ok(f"http://{LOOPBACK}:{etcd_port}/health", expect=b'"health":"true"'),
                   timeout=timeout, what="healthy (/health)")
        self.timings["etcd"] = time.monotonic() - t

        # kube-apiserver
        t = time.monotonic()
        self._apiserver_argv = [
            str(bins / "kube-apiserver"),
            f"--etcd-servers=http://{LOOPBACK}:{etcd_port}",
            f"--bind-address={LOOPBACK}", f"--advertise-address={LOOPBACK}", f"--secure-port={api_port}",
            "--endpoint-reconciler-type=none",
            f"--cert-dir={run / 'apiserver'}",
            f"--tls-cert-file={api_crt}", f"--tls-private-key-file={api_key}",
            f"--client-ca-file={ca.cert_path}",
            f"--token-auth-file={tokens}",
            # Node: a real kubelet (CN=system:node:<name>, O=system:nodes, see real_node.py)
            # gets exactly its pods' secrets/configmaps/tokens; NodeRestriction keeps it to its
            # own Node object. Nothing changes for kwok (it uses the admin kubeconfig).
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={kubelet_client_crt}", f"--kubelet-client-key={kubelet_client_key}",
            f"--kubelet-certificate-authority={ca.cert_path}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa_pub}", f"--service-account-signing-key-file={sa_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--kubelet-preferred-address-types=InternalIP",
            "--allow-privileged=true", "--profiling=false",
            "--v=1",
        ]
        self._start_apiserver(timeout)
        self.timings["kube-apiserver"] = time.monotonic() - t

        # objects the rest needs: the kwok node, the limited user's namespace and RBAC
        t = time.monotonic()
        self._bootstrap_objects()
        self.timings["bootstrap objects"] = time.monotonic() - t

        # controller-manager, scheduler, kwok: start all three, then wait for each
        t = time.monotonic()
        kcm_port, sched_port, kwok_port = free_port(), free_port(), free_port()
        kc = self.admin_kubeconfig
        kcm = self._proc("kube-controller-manager", [
            bins / "kube-controller-manager", f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--leader-elect=false", "--controllers=*,-serviceaccount-token",
            f"--bind-address={LOOPBACK}", f"--secure-port={kcm_port}", f"--cert-dir={run / 'kcm'}",
            f"--root-ca-file={ca.cert_path}",
            f"--cluster-signing-cert-file={ca.cert_path}", f"--cluster-signing-key-file={ca.key_path}",
            "--use-service-account-credentials=false", "--profiling=false", "--v=1",
            # The default client rate (20 requests/s) makes the job controller create a
            # 200-index batch's pods over ~10 s; one machine's API server takes more.
            "--kube-api-qps=200", "--kube-api-burst=400",
        ])
        sched = self._proc("kube-scheduler", [
            bins / "kube-scheduler", f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--leader-elect=false", f"--bind-address={LOOPBACK}", f"--secure-port={sched_port}",
            f"--cert-dir={run / 'scheduler'}", "--profiling=false", "--v=1",
            "--kube-api-qps=200", "--kube-api-burst=400",
        ])
        kwok_cfg = self._write_kwok_config(run)
        kwok = self._proc("kwok", [
            bins / "kwok", f"--kubeconfig={kc}", "-c", kwok_cfg,
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION[0]}={KWOK_NODE_ANNOTATION[1]}",
            f"--node-ip={LOOPBACK}", f"--node-port={kwok_port}", f"--server-address={LOOPBACK}:{kwok_port}",
            f"--tls-cert-file={kwok_crt}", f"--tls-private-key-file={kwok_key}",
            "--cidr=10.244.0.1/24", "--v=INFO",
        ], env=dict(os.environ, HOME=str(run)))  # no ~/.kwok config of the user's leaks in
        wait_until(kcm, lambda: http_ok(f"https://{LOOPBACK}:{kcm_port}/healthz", insecure=True),
                   timeout=timeout, what="healthy (/healthz)")
        wait_until(sched, lambda: http_ok(f"https://{LOOPBACK}:{sched_port}/healthz", insecure=True),
                   timeout=timeout, what="healthy (/healthz)")
        wait_until(kwok, lambda: http_ok(f"https://{LOOPBACK}:{kwok_port}/healthz", insecure=True),
                   timeout=timeout, what="healthy (/healthz)")
        self.timings["controllers+scheduler+kwok"] = time.monotonic() - t

        # the node is Ready and the namespaces have their default ServiceAccount
        t = time.monotonic()
        wait_until(kwok, self._node_ready, timeout=timeout, what=f"reporting node {self.node_name} Ready")
        for ns in ("default", self.user_namespace):
            wait_until(kcm, lambda ns=ns: self.service_account_ready(ns), timeout=timeout,
                       what=f"creating ServiceAccount default in {ns}")
        self.timings["node ready"] = time.monotonic() - t

    def _proc(self, name: str, argv: list, env: dict | None = None) -> ManagedProcess:
        p = ManagedProcess(name, argv, log_path=self.run_dir / "logs" / f"{name}.log", env=env,
                           cwd=self.run_dir).start()
        self.processes[name] = p
        return p

    def _start_apiserver(self, timeout: float) -> None:
        api = self._proc("kube-apiserver", self._apiserver_argv)
        wait_until(api, lambda: http_ok(f"{self.server}/readyz", ca_file=self.ca_file, token=self.admin_token),
                   timeout=timeout, what="ready (/readyz)")

    def restart_apiserver(self, timeout: float = 90) -> float:
        """Stop kube-apiserver and start it again (same port, certs, etcd); wait for /readyz.

        Returns the seconds it was unavailable. Clients keep their kubeconfigs."""
        t = time.monotonic()
        old = self.processes.pop("kube-apiserver")
        old.stop()
        self._start_apiserver(timeout)
        return time.monotonic() - t

    def running(self) -> bool:
        """True for an external cluster, else whether our kube-apiserver process is up."""
        if self.external:
            return True
        api = self.processes.get("kube-apiserver")
        return api is not None and api.alive()

    def stop(self, keep_logs: bool = False) -> None:
        order = ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]
        for name in order + [n for n in self.processes if n not in order]:
            p = self.processes.pop(name, None)
            if p:
                p.stop()
        if self.run_dir and not (keep_logs or _keep()):
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # ---------------------------------------------------------------- pieces
    def _write_kwok_config(self, run: Path) -> Path:
        docs: list[dict] = []
        for rel in build_testenv.KWOK_STAGE_FILES:
            docs += [d for d in yaml.safe_load_all((stages_dir() / rel).read_text()) if d]
        log_file = run / "pod.log"
        now = dt.datetime.now(dt.timezone.utc)
        log_file.write_text("".join(f"{_rfc3339nano(now + dt.timedelta(milliseconds=i))} stdout F {line}\n"
                                    for i, line in enumerate(self.pod_log_lines)))
        docs.append(fail_chosen_indexes_stage("spikebatch-fail-chosen-indexes-exit-1", FAIL_INDEXES_EXIT_1,
                                              1, FAIL_INDEXES_MESSAGE))
        docs.append(fail_chosen_indexes_stage("spikebatch-fail-chosen-indexes-exit-2", FAIL_INDEXES_EXIT_2,
                                              2, FAIL_INDEXES_EXIT_2_MESSAGE))
        docs.append({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs",
                     "metadata": {"name": "spikebatch-pod-logs"},
                     "spec": {"logs": [{"containers": [], "logsFile": str(log_file), "follow": True}]}})
        path = run / "kwok.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return path

    def admin_api(self):
        """A kubernetes.client.ApiClient for the admin."""
        return self._api(self.admin_kubeconfig)

    def user_api(self):
        """A kubernetes.client.ApiClient for the limited user."""
        return self._api(self.user_kubeconfig)

    @staticmethod
    def _api(kubeconfig: str | None):
        from kubernetes import client, config

        if kubeconfig is None:
            raise ValueError("no kubeconfig for this user in this environment")
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        return client.ApiClient(cfg)

    def _bootstrap_objects(self) -> None:
        from kubernetes import client

        with self.admin_api() as api:
            core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
            core.create_node({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {
                    "name": self.node_name,
                    "annotations": {KWOK_NODE_ANNOTATION[0]: KWOK_NODE_ANNOTATION[1],
                                    "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                               "kubernetes.io/arch": "amd64", "type": "kwok"},
                },
                "spec": {},
            })
            core.create_namespace({"metadata": {"name": self.user_namespace}})
            rbac.create_namespaced_role(self.user_namespace, {
                "metadata": {"name": "spikebatch-user"},
                "rules": [
                    {"apiGroups": ["batch"], "resources": ["jobs", "jobs/status"],
                     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]},
                    {"apiGroups": [""], "resources": ["pods"],
                     "verbs": ["get", "list", "watch", "create", "delete", "deletecollection"]},
                    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list", "watch"]},
                ],
            })
            rbac.create_namespaced_role_binding(self.user_namespace, {
                "metadata": {"name": "spikebatch-user"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "spikebatch-user"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER_NAME}],
            })

    def _node_ready(self) -> bool:
        from kubernetes import client

        with self.admin_api() as api:
            node = client.CoreV1Api(api).read_node(self.node_name)
        return any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))

    def service_account_ready(self, namespace: str) -> bool:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        with self.admin_api() as api:
            try:
                client.CoreV1Api(api).read_namespaced_service_account("default", namespace)
                return True
            except ApiException as e:
                if e.status == 404:
                    return False
                raise

    def create_namespace(self, name: str | None = None, timeout: float = 30) -> str:
        """Create a fresh namespace (admin) and wait for its default ServiceAccount."""
        from kubernetes import client

        name = name or f"sbtest-{uuid.uuid4().hex[:10]}"
        with self.admin_api() as api:
            client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
        deadline = time.monotonic() + timeout
        while not self.service_account_ready(name):
            if time.monotonic() > deadline:
                raise TimeoutError(f"namespace {name}: no default ServiceAccount after {timeout} s")
            time.sleep(0.1)
        return name

    def delete_namespace(self, name: str) -> None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        if not self.running():
            return  # stopped already (e.g. on Ctrl-C): nothing to clean, nobody to ask
        with self.admin_api() as api:
            try:
                client.CoreV1Api(api).delete_namespace(name, propagation_policy="Background")
            except ApiException as e:
                if e.status != 404:
                    raise

    def require(self, *fields: str) -> None:
        """pytest.skip unless every named field is available in this environment."""
        import pytest

        absent = [f for f in fields if getattr(self, f, None) is None]
        if absent:
            pytest.skip(f"the Kubernetes environment given by SPIKEBATCH_TEST_KUBECONFIG has no "
                        f"{', '.join(absent)} (the user fields come from SPIKEBATCH_TEST_USER_KUBECONFIG + "
                        f"SPIKEBATCH_TEST_USER_NAMESPACE; the rest only the built-in kwok cluster has: unset "
                        f"SPIKEBATCH_TEST_KUBECONFIG and run `python tests/infra/build_testenv.py`)")

    def __repr__(self) -> str:
        return f"KubeCluster({self.server!r}, external={self.external})"


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - manual bring-up
    import argparse
    import signal as _signal

    ap = argparse.ArgumentParser(description="start MinIO and the test control plane by hand; Ctrl-C stops")
    ap.add_argument("--real-node", action="store_true", help="also start the real kubelet node (needs root)")
    args = ap.parse_args(argv)
    wanted = MinioServer.COMPONENTS + KubeCluster.COMPONENTS + (build_testenv.NODE_COMPONENTS if args.real_node else ())
    miss = build_testenv.missing_components(components=wanted)
    if miss:
        print(f"missing: {', '.join(miss)}; run `python tests/infra/build_testenv.py` first")
        return 1
    t = time.monotonic()
    minio = MinioServer().start()
    kube = KubeCluster().start()
    node = None
    try:
        if args.real_node:
            from .real_node import RealNode

            node = RealNode(kube).start()
        print(f"started in {time.monotonic() - t:.1f} s  {kube.timings}")
        print(f"MinIO  {minio.endpoint_url}  access={minio.access_key} secret={minio.secret_key}")
        print(f"kube   {kube.server}\n  admin: {kube.admin_kubeconfig}\n  user:  {kube.user_kubeconfig} "
              f"(namespace {kube.user_namespace})")
        if node is not None:
            print(f"node   {node.name} (kubelet log {node.kubelet_log}; containerd socket {node.containerd_socket}) "
                  f"{node.timings}")
        print("Ctrl-C to stop.")
        _signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.stop()
        kube.stop()
        minio.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
