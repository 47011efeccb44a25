"""Kubernetes backend for batch job submission and monitoring (the reference's module
``spikelab.batch_jobs.backend_k8s``): a thin public re-export.

``KubernetesBatchJobBackend(namespace="default", kubeconfig=None,
use_kubectl_fallback=True)`` builds without a cluster; the configuration loads at the
first call (then an unusable one raises one line naming the kubeconfig). Its calls:
``apply_manifest(path | YAML text | dict) -> name``, ``job_status(name)`` ("Pending",
"Running", "Complete", "Failed", "Unknown"; a str enum), ``pods_for_job(name)``,
``stream_logs(pod_name, follow=True)`` (one pod), ``stream_job_logs(job_name,
follow=False)`` (every pod of the job, oldest first), ``delete_job(name)`` (a job
already gone is not an error), and spikebatch's ``job_report``, ``list_jobs``, ``watch``.
"""

from __future__ import annotations

from .adapters.kubernetes.backend import KubernetesBatchJobBackend

__all__ = ["KubernetesBatchJobBackend"]
