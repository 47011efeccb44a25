"""The ``image`` command group: ``spikebatch image build`` builds the runner image that
jobs run, with docker or podman, from the Dockerfile shipped inside the package."""

import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, List, Optional

import typer

from .cli_common import STATE, OutputOpt, parse_key_values, report, run_guarded, say

image_app = typer.Typer(help="Build the runner image that jobs run.", no_args_is_help=True)


def _engine_line(line: str) -> None:
    """One line of the engine's build output, for people (stderr)."""
    if not STATE.quiet:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI timeout, ``kill``) ends the build like Ctrl-C: the engine is
    stopped and the temporary build context removed."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@image_app.command(
    "build",
    epilog="Example: spikebatch image build --tag registry.example.org/lab/spikebatch-runner:0.1.0 --push",
)
def image_build(
    gpu: Annotated[bool, typer.Option("--gpu", help="The GPU image: a CUDA base and a -gpu tag.")] = False,
    tag: Annotated[Optional[str], typer.Option(
        "--tag", "-t", help="NAME[:TAG]; default spikebatch-runner:VERSION (-gpu with --gpu); "
                            "a NAME without :TAG gets the version.")] = None,
    base: Annotated[Optional[str], typer.Option(
        "--base", help="Base image; default python:3.11-slim, with --gpu nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04. "
                       "Any image with Python 3.10+ or with apt works.")] = None,
    push: Annotated[bool, typer.Option("--push", help="Push the image once built (the tag must name your registry).")] = False,
    engine: Annotated[Optional[str], typer.Option(
        "--engine", help="docker or podman; default: docker if its daemon answers, else podman.")] = None,
    ca_bundle: Annotated[Optional[Path], typer.Option(
        "--ca-bundle", help="PEM CA bundle that pip and apt trust while building (behind a TLS-intercepting proxy); "
                            "given as a build secret, never stored in the image.")] = None,
    network: Annotated[Optional[str], typer.Option(
        "--network", help="Network of the build's RUN steps, e.g. host.")] = None,
    platform: Annotated[Optional[str], typer.Option(
        "--platform", help="Target platform, e.g. linux/amd64 when the cluster's differs from this machine's.")] = None,
    pull: Annotated[bool, typer.Option("--pull", help="Pull the base image even when a copy is present.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Rebuild every layer.")] = False,
    build_args: Annotated[Optional[List[str]], typer.Option(
        "--build-arg", help="KEY=VALUE for the Dockerfile (repeatable), e.g. PYTHON=python3.12.")] = None,
    output: OutputOpt = None,
) -> None:
    """Build the runner image with docker or podman from the Dockerfile shipped with
    spikebatch (this source checkout's code, or this version from the package index),
    then print the default_images line to put in a profile."""

    def action() -> None:
        from ..application.images import ImageBuildOptions, build_runner_image, plan_runner_image
        from ..container import image_engine, runner_build_context

        options = ImageBuildOptions(
            gpu=gpu, tag=tag, base=base, push=push, ca_bundle=ca_bundle, network=network, platform=platform,
            pull=pull, no_cache=no_cache,
            build_args={key: str(value) for key, value in
                        parse_key_values(build_args, "--build-arg", yaml_values=False).items()},
        )
        context = runner_build_context()
        plan = plan_runner_image(options, context.version)  # every option checked before anything runs
        chosen = image_engine(engine.lower() if engine else None)
        with _terminate_as_interrupt():
            result = build_runner_image(plan, engine=chosen, context=context, progress=say,
                                        engine_output=_engine_line)
        report(
            {"IMAGE": result.tag, "IMAGE_ID": result.image_id, "ENGINE": result.engine,
             "PUSHED": str(result.pushed).lower(), "DEFAULT_IMAGES": f"{{{result.image_profile}: {result.tag}}}"},
            output,
            {"default_images": result.default_images, "pushed": result.pushed, "base": result.base,
             "source": result.origin},
        )
        say(f"put this in your profile: {result.profile_line}")
        if not result.pushed:
            say("a cluster pulls images from a registry: rerun with --tag REGISTRY/NAME:TAG --push "
                f"(or `{result.engine} push {result.tag}` once tagged for your registry)")

    run_guarded(action)


def register(app: typer.Typer) -> None:
    app.add_typer(image_app, name="image")
