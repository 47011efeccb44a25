# The real-service fixtures (MinIO, a Kubernetes control plane with kwok) live in
# tests/infra and are shared by every suite.
from hypothesis import settings

pytest_plugins = ["infra.pytest_plugin", "infra.container_fixtures"]

# Property tests judge results, not speed: on a loaded 2-core machine a single example
# can exceed hypothesis' default 200 ms deadline without anything being wrong.
settings.register_profile("spikebatch", deadline=None)
settings.load_profile("spikebatch")
