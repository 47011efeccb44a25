"""Session fixtures that need more than one real service: the runner image built by
``spikebatch image build`` and imported into the real node. A plugin (see
tests/conftest.py), so every suite shares the one image and the one node."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@pytest.fixture(scope="session")
def runner_image(testenv_log):
    """``localhost/spikebatch-runner:test``, built from this checkout by the product's own
    ``spikebatch image build`` (podman), saved as an OCI archive in the test cache; its
    progress lines (debootstrap, the build, the archive) reach the terminal."""
    from infra.runner_image import ensure_runner_image

    return ensure_runner_image(log=testenv_log)


@dataclass(frozen=True)
class RealCluster:
    """The test control plane with a real kubelet node that has the runner image."""

    cluster: object
    node: object
    image: str


@pytest.fixture(scope="session")
def real_cluster(kube_cluster, real_node, runner_image) -> RealCluster:
    real_node.import_image(runner_image.archive)
    return RealCluster(cluster=kube_cluster, node=real_node, image=runner_image.tag)
