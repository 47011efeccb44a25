# The runner image is built by spikebatch itself, from the Dockerfile shipped inside the
# package (src/spikebatch/images/runner.Dockerfile), so a pip install can build it too:
#
#   spikebatch image build                          # CPU image on python:3.11-slim
#   spikebatch image build --gpu                    # GPU image on a CUDA base
#   spikebatch image build --tag registry.example.org/lab/spikebatch-runner:0.1.0 --push
#   spikebatch image build --ca-bundle /etc/ssl/certs/ca-certificates.crt   # behind a TLS-intercepting proxy
#
# See `spikebatch image build --help`. That Dockerfile needs the build context the command
# makes (the dependency list and the source), so it is not built from this folder.
