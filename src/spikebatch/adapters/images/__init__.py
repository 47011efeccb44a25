"""Container images: the runner image's build context and the engines that build it
(the docker and podman command lines)."""
