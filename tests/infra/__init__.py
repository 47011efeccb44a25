"""Test environment: real MinIO and Kubernetes control plane on 127.0.0.1 (see README.md)."""
