# The real-service fixtures (MinIO, a Kubernetes control plane with kwok) live in
# tests/infra and are shared by every suite.
pytest_plugins = ["infra.pytest_plugin"]
