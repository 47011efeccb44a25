"""A real node beside kwok: containerd + kubelet joined to the test control plane.

:class:`RealNode` starts, in a private mount namespace held by ``node_namespace.py``:

* containerd v2 (binary from the test cache) with Debian's ``runc``, the overlayfs
  snapshotter, a loopback-only CNI config (Debian's ``/usr/lib/cni/loopback``: enough for
  the node to be Ready and for ``hostNetwork`` pods, which is what the tests use; pods on
  the pod network would stay ContainerCreating, containerd wants an ``eth0``), and the
  pause image built by ``build_testenv.py``;
* kubelet, registered as node ``127.0.0.1`` (``--hostname-override`` with an IP also
  makes it the InternalIP, so kube-apiserver reaches the kubelet on loopback;
  ``--node-ip=127.0.0.1`` is refused by kubelet), labelled
  ``spikebatch.test/real-node=true`` and tainted ``spikebatch.test/real-node=true:NoSchedule``
  so pods of the kwok tests never land on it.

Pods are placed on it with :attr:`RealNode.node_selector` + :attr:`RealNode.tolerations`;
images come from OCI archives (:meth:`RealNode.import_image`, no registry needed).

Nothing is left on the host: /run, /var/log, /var/lib/kubelet and three sysctl files are
shadowed inside the namespace only (see ``node_namespace.py``); ``makeIPTablesUtilChains:
false`` keeps kubelet out of iptables; the pods' cgroups live under a cgroup root of their
own (``/spikebatch-node-<id>`` in each hierarchy, so two test sessions on one machine do not
share ``kubepods``) that :meth:`RealNode.stop` empties and removes; leftover shims are
killed. :meth:`RealNode.leftovers` lists anything that is still there.

Needs root with CAP_SYS_ADMIN, ``unshare``/``nsenter``/``mount`` (util-linux), ``runc`` and
``containernetworking-plugins`` (Debian packages).
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import yaml

from . import build_testenv
from .processes import ManagedProcess, StartupError, free_port, http_ok, wait_until
from .testenv import LOOPBACK, KubeCluster, _keep, _run_dir, binaries_dir, issue_identity

NODE_NAME = LOOPBACK
LABEL = ("spikebatch.test/real-node", "true")
TAINT = {"key": "spikebatch.test/real-node", "value": "true", "effect": "NoSchedule"}
RUNC = Path("/usr/sbin/runc")
CNI_BIN_DIR = Path("/usr/lib/cni")
CGROUP_FS = Path("/sys/fs/cgroup")
# Paths the node would touch on the host without the private mount namespace.
HOST_PATHS = ("/run/containerd", "/var/lib/kubelet", "/var/log/containers", "/var/log/pods")
NAMESPACE_SCRIPT = Path(__file__).resolve().with_name("node_namespace.py")

# host tool -> the Debian package that has it
HOST_TOOLS = {"unshare": "util-linux", "nsenter": "util-linux", "mount": "mount",
              str(RUNC): "runc", str(CNI_BIN_DIR / "loopback"): "containernetworking-plugins"}


def missing_host_tools() -> list[str]:
    """Debian packages whose programs the node needs and that are not installed."""
    absent = [pkg for tool, pkg in HOST_TOOLS.items()
              if not (Path(tool).exists() if tool.startswith("/") else shutil.which(tool))]
    return sorted(set(absent))


def unavailable_reason() -> str | None:
    """Why a real node cannot start on this machine (None: it can)."""
    if os.geteuid() != 0:
        return "a real kubelet node needs root (mount namespaces, cgroups)"
    tools = missing_host_tools()
    if tools:
        return f"missing Debian packages {', '.join(tools)} (`apt-get install {' '.join(tools)}`)"
    if not (CGROUP_FS / "memory").is_dir() and not (CGROUP_FS / "cgroup.controllers").is_file():
        return f"no cgroup hierarchy under {CGROUP_FS}"
    return None


def cgroup_hierarchies() -> list[Path]:
    """Mount points of every cgroup (v1) and cgroup2 hierarchy, from /proc/self/mountinfo."""
    out: list[Path] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype = right.split()[0]
        if fstype in ("cgroup", "cgroup2"):
            out.append(Path(left.split()[4]))
    return out


def _v1_hierarchies() -> list[Path]:
    return [h for h in cgroup_hierarchies() if not (h / "cgroup.controllers").exists()]


CGROUP_PREFIX = "spikebatch-node-"  # + <owner pid>-<owner start time>-<random>


def _process_identity(pid: int) -> str:
    """``"<pid> <start time>"``: a process, not just a (reusable) pid."""
    stat = Path("/proc", str(pid), "stat").read_text()
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}"


def _alive(identity: str) -> bool:
    pid = int(identity.split()[0])
    try:
        return _process_identity(pid) == identity
    except (OSError, IndexError):
        return False


def _kill_cgroup_tree(top: Path, timeout: float = 20) -> None:
    """SIGKILL every process in the cgroup ``top`` and below, then remove the cgroups
    bottom-up (an rmdir fails with EBUSY until the killed tasks are gone)."""
    deadline = time.monotonic() + timeout
    dirs = sorted((p for p in [top, *top.rglob("*")] if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
    for d in dirs:
        while True:
            try:
                pids = [int(x) for x in (d / "cgroup.procs").read_text().split()]
            except FileNotFoundError:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def reap_stale_nodes() -> list[str]:
    """End what real nodes of dead test sessions left (a SIGKILLed pytest: kubelet,
    containerd and the namespace holder die with it, the shims and their containers do
    not): their cgroup roots (named after the owning process) and shims (whose run dir's
    ``owner`` file names a dead process, or whose run dir is gone). Returns what it ended."""
    ended: list[str] = []
    for h in cgroup_hierarchies():
        for d in h.glob(CGROUP_PREFIX + "*"):
            parts = d.name[len(CGROUP_PREFIX):].split("-")
            if len(parts) == 3 and parts[0].isdigit() and not _alive(f"{parts[0]} {parts[1]}"):
                _kill_cgroup_tree(d)
                ended.append(f"cgroup {d}")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path("/proc", entry, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0].endswith(b"containerd-shim-runc-v2") or b"-address" not in argv:
            continue
        sock = Path(os.fsdecode(argv[argv.index(b"-address") + 1]))
        run = sock.parent.parent  # <run>/containerd/containerd.sock
        if not run.name.startswith("spikebatch-node-"):
            continue
        owner = run / "owner"
        if owner.is_file() and _alive(owner.read_text().strip()):
            continue
        try:
            os.kill(int(entry), signal.SIGKILL)
            ended.append(f"shim {entry} of {run}")
        except ProcessLookupError:
            pass
    return ended


def podman_oci_archive(image: str, log=build_testenv.log) -> Path:
    """``image`` (in the test podman storage) as an OCI archive in the test cache, saved
    again only when the image id changed. Feed it to :meth:`RealNode.import_image`."""
    from .podman import image_id, save_oci_archive

    iid = image_id(image)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in image)
    dest = build_testenv.cache_dir() / "images" / f"{safe}.oci.tar"
    id_file = dest.with_name(dest.name + ".id")
    if dest.is_file() and id_file.is_file() and id_file.read_text().strip() == iid:
        return dest
    t = time.monotonic()
    log(f"saving {image} ({iid[:12]}) as OCI archive {dest}")
    save_oci_archive(image, dest)
    id_file.write_text(iid + "\n")
    log(f"saved {image} in {time.monotonic() - t:.1f} s")
    return dest


def archive_image_names(archive: Path) -> list[str]:
    """The image names an OCI archive's index.json gives (what ``ctr images import`` uses)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise ValueError(f"{archive}: no index.json (not an OCI archive)")
        index = json.load(member)
    names = []
    for m in index.get("manifests", []):
        ann = m.get("annotations") or {}
        name = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")
        if name:
            names.append(name)
    return names


class RealNode:
    """containerd + kubelet on the test control plane. See the module docstring."""

    COMPONENTS = build_testenv.NODE_COMPONENTS
    name = NODE_NAME
    label = LABEL
    taint = TAINT

    def __init__(self, cluster: KubeCluster) -> None:
        if cluster.external or cluster.ca is None:
            raise ValueError("a real node joins the built-in test control plane only (it needs its CA)")
        self.cluster = cluster
        self.node_selector = {"kubernetes.io/hostname": NODE_NAME}
        self.tolerations = [{"key": TAINT["key"], "operator": "Equal", "value": TAINT["value"],
                             "effect": TAINT["effect"]}]
        self.run_dir: Path | None = None
        self.processes: dict[str, ManagedProcess] = {}
        self.timings: dict[str, float] = {}
        self.images: dict[Path, list[str]] = {}  # imported archives -> their image names
        self.cgroup_root = ""
        self.kubelet_port = 0
        self._host_before: dict[str, bool] = {}
        self._sysctls_before: dict[str, str] = {}
        self._host_mount_ns = os.readlink("/proc/self/ns/mnt")
        self._started = False  # start() ran and stop() has not

    # ---------------------------------------------------------------- paths
    @property
    def kubelet_log(self) -> Path:
        return self._dir / "logs" / "kubelet.log"

    @property
    def containerd_log(self) -> Path:
        return self._dir / "logs" / "containerd.log"

    @property
    def containerd_socket(self) -> Path:
        return self._dir / "containerd" / "containerd.sock"

    @property
    def _dir(self) -> Path:
        if self.run_dir is None:
            raise RuntimeError("the node has not been started")
        return self.run_dir

    def log_tail(self, name: str = "kubelet", lines: int = 40) -> str:
        """The last lines of a node process' log (``kubelet``, ``containerd``, ``namespace``)."""
        try:
            text = (self._dir / "logs" / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def running(self) -> bool:
        k = self.processes.get("kubelet")
        return k is not None and k.alive()

    # ---------------------------------------------------------------- start
    def start(self, timeout: float = 120) -> "RealNode":
        reason = unavailable_reason()
        if reason:
            raise StartupError(reason)
        absent = build_testenv.missing_components(components=self.COMPONENTS)
        if absent:
            raise StartupError(f"missing {', '.join(absent)}: run `python tests/infra/build_testenv.py node`")
        if self._started:
            raise RuntimeError(f"{self!r} is running already: stop() it first")
        t_all = time.monotonic()
        self.timings = {}
        self._started = True
        self._host_before = self._host_state()
        self._sysctls_before = self._sysctls()
        try:
            self._start(timeout)
        except BaseException:
            self.stop(keep_logs=True)
            raise
        atexit.register(self.stop)
        self.timings["total"] = time.monotonic() - t_all
        return self

    def _start(self, timeout: float) -> None:
        run = self.run_dir = _run_dir("node")
        (run / "logs").mkdir()
        reap_stale_nodes()
        owner = _process_identity(os.getpid())
        (run / "owner").write_text(owner + "\n")
        self.cgroup_root = f"/{CGROUP_PREFIX}{owner.replace(' ', '-')}-{uuid.uuid4().hex[:6]}"
        self._delete_node_object()  # a stale Node 127.0.0.1 (previous start) would keep its cordon

        t = time.monotonic()
        self._make_cgroup_root()
        holder = self._start_namespace(timeout)
        self.timings["namespace"] = time.monotonic() - t

        t = time.monotonic()
        containerd = self._start_containerd(holder, timeout)
        self.timings["containerd"] = time.monotonic() - t

        t = time.monotonic()
        self._ctr_import(build_testenv.pause_archive())
        for archive in list(self.images):
            self._ctr_import(archive)
        self.timings["images"] = time.monotonic() - t

        t = time.monotonic()
        kubelet = self._start_kubelet(holder, timeout)
        wait_until(kubelet, self._node_ready, timeout=timeout, what=f"reporting node {NODE_NAME} Ready (and untainted "
                   "by the node lifecycle controller)", interval=0.1)
        self.timings["kubelet ready"] = time.monotonic() - t
        if not containerd.alive():
            raise containerd.fail("exited while kubelet started")

    def _nsenter(self, holder: ManagedProcess) -> list[str]:
        return ["nsenter", f"--mount=/proc/{holder.pid}/ns/mnt", "--"]

    def _proc(self, name: str, argv: list, env: dict | None = None) -> ManagedProcess:
        p = ManagedProcess(name, argv, log_path=self._dir / "logs" / f"{name}.log", env=env,
                           cwd=self._dir).start()
        self.processes[name] = p
        return p

    def _start_namespace(self, timeout: float) -> ManagedProcess:
        run = self._dir
        ready = run / "namespace.ready"
        spec = {"host_mount_ns": self._host_mount_ns, "work_dir": str(run / "namespace"), "ready_file": str(ready),
                "tmpfs_dirs": [str(run / "containerd" / "root")]}
        (run / "namespace.json").write_text(json.dumps(spec, indent=1))
        holder = self._proc("namespace", ["unshare", "--mount", "--propagation", "private", "--",
                                          sys.executable, NAMESPACE_SCRIPT, run / "namespace.json"])
        wait_until(holder, ready.is_file, timeout=timeout, what="mount namespace prepared", interval=0.05)
        ns = ready.read_text().strip()
        if ns == self._host_mount_ns or os.readlink(f"/proc/{holder.pid}/ns/mnt") != ns:
            raise holder.fail(f"namespace holder is not in a private mount namespace ({ns})")
        return holder

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "CONTAINERD_"))}
        env["PATH"] = os.pathsep.join([str(binaries_dir()), "/usr/local/sbin", "/usr/local/bin",
                                       "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        return env

    def _start_containerd(self, holder: ManagedProcess, timeout: float) -> ManagedProcess:
        run = self._dir
        c = run / "containerd"
        (run / "cni" / "net.d").mkdir(parents=True)
        (run / "cni" / "net.d" / "10-loopback.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0", "name": "spikebatch-loopback", "plugins": [{"type": "loopback"}]}, indent=1))
        pause_image = build_testenv.load_versions()["PAUSE_IMAGE"]
        cfg = c / "config.toml"
        c.mkdir(exist_ok=True)  # root/ (a tmpfs in the namespace) is made by the namespace holder
        cfg.write_text(f'''version = 3
root = "{c / 'root'}"
state = "{c / 'state'}"
disabled_plugins = ["io.containerd.nri.v1.nri"]
[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = ""
[debug]
  level = "info"
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{c / 'opt'}"
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = "{pause_image}"
  [plugins."io.containerd.cri.v1.runtime"]
    restrict_oom_score_adj = true
    tolerate_missing_hugetlb_controller = true
    netns_mounts_under_state_dir = true
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
          BinaryName = "{RUNC}"
          SystemdCgroup = false
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = ["{CNI_BIN_DIR}"]
      conf_dir = "{run / 'cni' / 'net.d'}"
  [plugins."io.containerd.grpc.v1.cri"]
    stream_server_address = "{LOOPBACK}"
    stream_server_port = "0"
''')
        p = self._proc("containerd", [*self._nsenter(holder), binaries_dir() / "containerd", "--config", cfg],
                       env=self._env())
        wait_until(p, lambda: self._ctr("version", check=False).returncode == 0, timeout=timeout,
                   what="answering (ctr version)", interval=0.05)
        return p

    def _ctr(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(binaries_dir() / "ctr"), "--address", str(self.containerd_socket),
                               "--namespace", "k8s.io", *args], capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        return proc

    def _ctr_import(self, archive: Path) -> list[str]:
        t = time.monotonic()
        # The pinned label keeps kubelet's image garbage collection away from it.
        self._ctr("images", "import", "--label", "io.cri-containerd.pinned=pinned", str(archive))
        names = archive_image_names(archive)
        listed = set(self._ctr("images", "list", "--quiet").stdout.split())
        absent = [n for n in names if n not in listed]
        if absent:
            raise RuntimeError(f"ctr images import {archive}: {absent} not in containerd's image list {sorted(listed)}")
        self.timings[f"import {archive.name}"] = time.monotonic() - t
        return names

    def import_image(self, archive: str | os.PathLike) -> list[str]:
        """Import an OCI archive into the node's containerd (namespace k8s.io); it is
        imported again whenever the node is restarted. Returns the image names (use them
        with ``imagePullPolicy: Never`` or ``IfNotPresent``)."""
        path = Path(archive).resolve()
        if path in self.images and self.running():
            return self.images[path]
        names = self._ctr_import(path) if self.running() else archive_image_names(path)
        self.images[path] = names
        return names

    def list_images(self) -> list[str]:
        """The image names in the node's containerd (namespace k8s.io), digests left out."""
        return [n for n in self._ctr("images", "list", "--quiet").stdout.split() if not n.startswith("sha256:")]

    def _start_kubelet(self, holder: ManagedProcess, timeout: float) -> ManagedProcess:
        run = self._dir
        ca = self.cluster.ca
        assert ca is not None
        pki = run / "pki"
        pki.mkdir()
        # Identity (Node authorizer: its own pods' secrets, configmaps, tokens) and serving cert
        # (kube-apiserver checks it against the CA when it fetches logs).
        client_crt, client_key = issue_identity(ca, "kubelet-127.0.0.1-client", f"system:node:{NODE_NAME}",
                                                organizations=("system:nodes",))
        serving_crt, serving_key = issue_identity(ca, "kubelet-127.0.0.1-serving", NODE_NAME, dns=("localhost",),
                                                  ips=(LOOPBACK,), client=False, server=True)
        kubeconfig = run / "kubelet.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "testenv", "cluster": {"server": self.cluster.server,
                                                         "certificate-authority": str(ca.cert_path)}}],
            "users": [{"name": "kubelet", "user": {"client-certificate": str(client_crt),
                                                  "client-key": str(client_key)}}],
            "contexts": [{"name": "kubelet", "context": {"cluster": "testenv", "user": "kubelet"}}],
            "current-context": "kubelet"}, sort_keys=False))
        kubeconfig.chmod(0o600)
        self.kubelet_port, healthz = free_port(), free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": LOOPBACK, "port": self.kubelet_port, "readOnlyPort": 0,
            "healthzBindAddress": LOOPBACK, "healthzPort": healthz,
            "tlsCertFile": str(serving_crt), "tlsPrivateKeyFile": str(serving_key),
            "rotateCertificates": False, "serverTLSBootstrap": False,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(ca.cert_path)}},
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,             # kubelet 1.37 refuses cgroup v1 (this machine) by default
            "cgroupsPerQOS": True,
            "cgroupRoot": self.cgroup_root,    # <root>/kubepods/...: ours alone, removed at stop
            "enforceNodeAllocatable": ["pods"],
            "podLogsDir": str(run / "pod-logs"),
            "volumePluginDir": str(run / "volume-plugins"),
            "clusterDomain": "cluster.local",
            "resolvConf": "",
            "makeIPTablesUtilChains": False,   # else KUBE-FIREWALL etc. in the host's iptables
            "protectKernelDefaults": False,    # the sysctls it would set are fakes in the namespace
            "failSwapOn": False,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "2%",
                             "imagefs.available": "2%", "nodefs.inodesFree": "2%"},
            "imageGCHighThresholdPercent": 100,
            "serializeImagePulls": False,
            "nodeStatusUpdateFrequency": "10s",
            "logging": {"verbosity": 2},
        }
        cfg = run / "kubelet-config.yaml"
        cfg.write_text(yaml.safe_dump(config, sort_keys=False))
        kubelet_dir = run / "kubelet"
        argv = [*self._nsenter(holder), binaries_dir() / "kubelet", f"--config={cfg}", f"--kubeconfig={kubeconfig}",
                f"--root-dir={kubelet_dir}", f"--cert-dir={kubelet_dir / 'pki'}",
                f"--hostname-override={NODE_NAME}", f"--node-labels={LABEL[0]}={LABEL[1]}",
                f"--register-with-taints={TAINT['key']}={TAINT['value']}:{TAINT['effect']}"]
        p = self._proc("kubelet", argv, env=self._env())
        wait_until(p, lambda: http_ok(f"http://{LOOPBACK}:{healthz}/healthz"), timeout=timeout,
                   what="healthy (/healthz)", interval=0.1)
        return p

    def _node_ready(self) -> bool:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        with self.cluster.admin_api() as api:
            try:
                node = client.CoreV1Api(api).read_node(NODE_NAME)
            except ApiException as e:
                if e.status == 404:
                    return False
                raise
        ready = any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))
        blocking = [t.key for t in (node.spec.taints or []) if t.key.startswith("node.kubernetes.io/")]
        return ready and not blocking and not node.spec.unschedulable

    # ---------------------------------------------------------------- cgroups
    def _make_cgroup_root(self) -> None:
        """Create the pods' cgroup root in every v1 hierarchy (kubelet checks that it
        exists); cpuset needs its cpus/mems filled in before anything can join."""
        for h in _v1_hierarchies():
            d = h / self.cgroup_root.lstrip("/")
            d.mkdir(exist_ok=True)
            for f in ("cpuset.cpus", "cpuset.mems"):
                if (d / f).exists() and not (d / f).read_text().strip():
                    (d / f).write_text((h / f).read_text())

    def _cgroup_dirs(self) -> list[Path]:
        if not self.cgroup_root:
            return []
        return [h / self.cgroup_root.lstrip("/") for h in cgroup_hierarchies()
                if (h / self.cgroup_root.lstrip("/")).is_dir()]

    def _remove_cgroup_root(self) -> None:
        """Kill whatever still runs in our cgroups, then remove them."""
        for top in self._cgroup_dirs():
            _kill_cgroup_tree(top)

    # ---------------------------------------------------------------- stop
    def _api_reachable(self) -> bool:
        return self.cluster.running()

    def _cordon(self) -> None:
        """No new pod is bound to the node while it stops."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        with self.cluster.admin_api() as api:
            try:
                client.CoreV1Api(api).patch_node(NODE_NAME, {"spec": {"unschedulable": True}})
            except ApiException as e:
                if e.status != 404:
                    raise

    def _forget_pods(self) -> None:
        """Delete the pod objects still bound to the node (their containers are gone:
        nothing is left to wait for, so no grace period)."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        with self.cluster.admin_api() as api:
            core = client.CoreV1Api(api)
            for pod in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={NODE_NAME}").items:
                try:
                    core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0)
                except ApiException as e:
                    if e.status != 404:
                        raise

    def _delete_node_object(self) -> None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        if not self._api_reachable():
            return
        with self.cluster.admin_api() as api:
            try:
                client.CoreV1Api(api).delete_node(NODE_NAME)
            except ApiException as e:
                if e.status != 404:
                    raise

    def _our_processes(self) -> list[int]:
        """Processes whose command line names our run dir (shims: ``-address <sock>``)."""
        if self.run_dir is None:
            return []
        needle = str(self.run_dir).encode()
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                cmdline = Path("/proc", entry, "cmdline").read_bytes()
            except OSError:
                continue
            if needle in cmdline:
                pids.append(int(entry))
        return pids

    def stop(self, keep_logs: bool = False) -> None:
        """Stop kubelet and containerd, kill what they left (shims, containers: everything
        in the node's cgroups), leave the namespace (its mounts go with it), remove the
        cgroups, the node's pods and Node object and (unless kept) the run dir.

        Containers are killed, not stopped gracefully: a test node has nothing to save,
        and this takes well under a second instead of a drain's seconds."""
        atexit.unregister(self.stop)
        if not self._started or self.run_dir is None:
            return
        self._started = False
        t = time.monotonic()
        api = self._api_reachable()
        if api and self.running():
            self._cordon()
        for name in ("kubelet", "containerd"):
            p = self.processes.pop(name, None)
            if p:
                p.stop()
        managed = {p.pid for p in self.processes.values()}
        for pid in set(self._our_processes()) - managed:  # containerd-shim-runc-v2 -address <run>/...sock
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._remove_cgroup_root()
        for p in self.processes.values():  # the namespace holder: its mounts go with it
            p.stop()
        self.processes.clear()
        if api:
            self._forget_pods()
            self._delete_node_object()
        self.timings["stop"] = time.monotonic() - t
        if not (keep_logs or _keep()):
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.timings["stop incl. run dir removal"] = time.monotonic() - t

    # ---------------------------------------------------------------- checks
    def _host_state(self) -> dict[str, bool]:
        state = {p: os.path.lexists(p) for p in HOST_PATHS}
        for h in cgroup_hierarchies():
            state[str(h / "kubepods")] = (h / "kubepods").exists()
        return state

    @staticmethod
    def _sysctls() -> dict[str, str]:
        from .node_namespace import SYSCTL_FILES

        return {f: Path(f).read_text().strip() for f in SYSCTL_FILES}

    def leftovers(self) -> list[str]:
        """What the node left on the host after :meth:`stop` (empty: nothing)."""
        found: list[str] = []
        for p in self.processes.values():
            if p.alive():
                found.append(f"process {p.name} (pid {p.pid}) still running")
        for pid in self._our_processes():
            try:
                cmd = Path("/proc", str(pid), "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue  # gone meanwhile
            found.append(f"process {pid}: {cmd}")
        found += [f"cgroup {d}" for d in self._cgroup_dirs()]
        for path, existed in self._host_state().items():
            if existed and not self._host_before.get(path, False):
                found.append(f"host path {path} (absent before the node started)")
        for f, value in self._sysctls().items():
            if self._sysctls_before and value != self._sysctls_before[f]:
                found.append(f"host sysctl {f} changed from {self._sysctls_before[f]} to {value}")
        if self.run_dir is not None:
            needle = str(self.run_dir)
            found += [f"mount {line.split()[4]}" for line in Path("/proc/self/mountinfo").read_text().splitlines()
                      if needle in line]
        return found

    def __repr__(self) -> str:
        return f"RealNode({NODE_NAME!r}, run_dir={self.run_dir}, running={self.running()})"
