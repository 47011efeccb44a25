"""Sorter presets you can see and set, resources from the command line, and --version,
through the CLI as a user runs it (real processes, the local profile; a cluster profile
where only rendering or the refusal before contact is checked).

- `spikebatch sorters` / `sorters show PRESET` (text and JSON), and submit-sorting's help;
- `--set` with dotted keys reaches the sorter in a real sort; mistyped ones are refused
  with one line before anything is uploaded or submitted;
- `--gpus`, `--cpus`, `--memory` on deploy-job, submit-workspace and submit-sorting,
  the gpu image they pick, and the policy's explanation of a GPU / image mismatch;
- `spikebatch --version`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from cli_support import REPO, Cli, assert_one_line_error, cli, closed_port, write_kubeconfig, write_workspace  # noqa: F401

GPU_IMAGE = "registry.example.org/lab/spikebatch-runner:1.0-gpu"
CPU_IMAGE = "registry.example.org/lab/spikebatch-runner:1.0"


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """A 2 s, 4-channel SpikeInterface recording folder (sorts in well under a minute)."""
    import spikeinterface as si

    folder = tmp_path_factory.mktemp("recordings") / "rec1"
    rec, _ = si.generate_ground_truth_recording(durations=[2], num_channels=4, num_units=2, seed=1)
    rec.save(folder=folder, verbose=False)
    return folder


def _profile(cli: Cli, name: str, *, backend: str, gpu_image: bool = True) -> Path:
    """A user's profile naming a cpu (and a gpu) image; a cluster one stores locally, so
    nothing here needs S3."""
    images = f"  cpu: {CPU_IMAGE}\n" + (f"  gpu: {GPU_IMAGE}\n" if gpu_image else "")
    base = "extends: local\npolicy: {max_interactive_gpus: 1}\n" if backend == "local" else \
        "extends: defaults\nstorage_backend: local\n"
    path = cli.root / f"{name}.yaml"
    path.write_text(f"name: {name}\n{base}default_images:\n{images}")
    return path


def _job_config(cli: Cli) -> Path:
    path = cli.root / "job.yaml"
    path.write_text("container:\n  command: [python, -c, 'print(1)']\n")
    return path


def _local_manifests(cli: Cli) -> dict:
    """The Job manifests the local backend was given, by job name."""
    return {p.parent.name: json.loads(p.read_text()) for p in cli.state.rglob("manifest.json")}


def _container(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]["containers"][0]


# --- sorters ---------------------------------------------------------------------------------
def test_sorters_lists_the_presets_with_what_each_needs(cli: Cli) -> None:
    listed = cli("sorters", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    document = listed.json()
    presets = {p["preset"]: p for p in document["presets"]}
    assert list(presets) == ["kilosort4", "mountainsort5", "spykingcircus2", "tridesclous2"]
    assert document["default"] == "spykingcircus2" and presets["spykingcircus2"]["default"] is True
    assert presets["kilosort4"]["gpu"] == "optional" and "--gpus 1" in presets["kilosort4"]["needs"]
    assert presets["kilosort4"]["install"] == "pip install kilosort"
    assert presets["tridesclous2"]["gpu"] == "no" and presets["tridesclous2"]["installed"] is True
    assert presets["tridesclous2"]["install"] is None

    table = cli("sorters")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["PRESET", "DEFAULT", "GPU", "INSTALLED", "NEEDS"]
    by_preset = {row.split()[0]: row.split() for row in rows}
    assert by_preset["spykingcircus2"][1:4] == ["yes", "no", "yes"]
    assert by_preset["kilosort4"][1:3] == ["-", "optional"]
    assert "sorters show PRESET" in table.stderr
    assert cli("sorters", "list").stdout == table.stdout
    quiet = cli("sorters", "--quiet")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, table.stdout, "")

    # submit-sorting --help names the same presets and the default, without SpikeInterface.
    help_text = " ".join(cli("submit-sorting", "--help").stdout.split())
    listed_in_help = re.search(r"Sorter preset: (.*?); default (\w+)\.", help_text)
    assert listed_in_help, help_text
    assert [name.split(" ")[0] for name in listed_in_help.group(1).split(", ")] == list(presets)
    marked_gpu = [name.split(" ")[0] for name in listed_in_help.group(1).split(", ") if name.endswith("(GPU)")]
    assert marked_gpu == [name for name, p in presets.items() if p["gpu"] != "no"]
    assert listed_in_help.group(2) == document["default"] and "kilosort4 (GPU)" in listed_in_help.group(1)


def test_sorters_show_lists_parameters_by_dotted_name(cli: Cli) -> None:
    shown = cli("sorters", "show", "spykingcircus2", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    document = shown.json()
    rows = {row["name"]: row for row in document["parameters"]}
    assert rows["detection.method_kwargs.detect_threshold"]["default"] == 5
    assert rows["apply_motion_correction"]["default"] is True and rows["apply_motion_correction"]["description"]
    assert document["defaults"]["detection"]["method_kwargs"]["detect_threshold"] == 5
    assert document["note"] is None and document["default"] is True

    table = cli("sorters", "show", "spykingcircus2")
    assert table.returncode == 0, table.stderr
    lines = {line.split()[0]: line.split() for line in table.stdout.splitlines()}
    assert lines["PARAMETER"][:2] == ["PARAMETER", "DEFAULT"]
    assert lines["detection.method_kwargs.detect_threshold"][1] == "5"
    assert lines["detection.method"][1] == '"matched_filtering"'  # text quoted: "2" and 2 differ
    assert "--set NAME=VALUE" in table.stderr

    kilosort = cli("sorters", "show", "kilosort4", "-o", "json").json()
    if kilosort["installed"]:
        assert kilosort["note"] is None
    else:  # here SpikeInterface knows only its generic parameters, and the note says why
        assert "pip install kilosort" in kilosort["note"]
        assert "pip install kilosort" in cli("sorters", "show", "kilosort4").stderr

    assert_one_line_error(cli("sorters", "show", "ks4"), 2, "unknown spikeinterface preset 'ks4'",
                          "valid presets: kilosort4, mountainsort5, spykingcircus2, tridesclous2")


# --- --set ------------------------------------------------------------------------------------
@pytest.mark.parametrize("setting, fragments", [
    ("detection=6", ["spykingcircus2 parameter 'detection' takes a dict of parameters", "(default: {",
                     "not the number 6", "detection.method=..."]),
    ("min_firing_rate=fast", ["'min_firing_rate' takes a number (default: 0.1), not the text 'fast'"]),
    ("detection.detect_threshold=6", ["unknown spykingcircus2 parameter 'detection.detect_threshold'",
                                      "did you mean detection.method_kwargs.detect_threshold?"]),
    ("detection.method_kwargs.detect_threshold=high", ["'detection.method_kwargs.detect_threshold' takes a number"]),
    ("detection..method=x", ["--set 'detection..method' has an empty part"]),
])
def test_a_mistyped_set_is_refused_before_anything_is_uploaded(cli: Cli, recording: Path, setting, fragments) -> None:
    result = cli("submit-sorting", "--recording", str(recording), "--set", setting)
    assert_one_line_error(result, 2, *fragments)
    assert cli.data_files() == [] and _local_manifests(cli) == {} and cli.records() == []


def test_dotted_set_reaches_the_sorter(cli: Cli, recording: Path) -> None:
    result = cli("submit-sorting", "--recording", str(recording),
                 "--set", "detection.method_kwargs.detect_threshold=6", "--set", "apply_motion_correction=false",
                 "--set", "job_kwargs.n_jobs=1", "--retrieve-to", "sorted", timeout=900)
    assert result.returncode == 0, result.stderr
    assert result.keys["FINAL_STATUS"] == "Complete"
    metadata = json.loads(next((cli.root / "sorted").rglob("sorting_metadata.json")).read_text())
    assert metadata["overrides"] == {"detection": {"method_kwargs": {"detect_threshold": 6}},
                                     "apply_motion_correction": False, "job_kwargs": {"n_jobs": 1}}
    # The entry set is changed, its siblings keep their defaults.
    assert metadata["params"]["detection"]["method_kwargs"] == {"peak_sign": "neg", "detect_threshold": 6}
    assert metadata["params"]["detection"]["method"] == "matched_filtering"


# --- --gpus / --cpus / --memory ----------------------------------------------------------------
def test_gpus_pick_the_gpu_image_and_resources_are_request_equal_limit(cli: Cli) -> None:
    profile, config = _profile(cli, "lab-gpu", backend="kubernetes"), _job_config(cli)
    rendered = cli("deploy-job", "--profile-file", str(profile), "--job-config", str(config), "--render-only",
                   "--gpus", "1", "--cpus", "2", "--memory", "6Gi", "-o", "json")
    assert rendered.returncode == 0, rendered.stderr
    container = _container(rendered.json()["manifest"])
    assert container["image"] == GPU_IMAGE
    wanted = {"cpu": "2", "memory": "6Gi", "nvidia.com/gpu": "1"}
    assert container["resources"] == {"requests": wanted, "limits": wanted}
    assert f"note: --gpus 1: using the profile's gpu image {GPU_IMAGE}" in rendered.stderr
    assert "gpu_job_on_cpu_image" not in rendered.stderr and "gpu_image_without_gpu" not in rendered.stderr


@pytest.mark.parametrize("options, gpu_image, finding, fix", [
    (["--image-profile", "gpu"], True, "gpu_image_without_gpu", "set requests_gpu and limits_gpu (--gpus N)"),
    (["--gpus", "1", "--image-profile", "cpu"], True, "gpu_job_on_cpu_image",
     "set image_profile: gpu (--image-profile gpu)"),
    (["--gpus", "1"], False, "gpu_job_on_cpu_image", "has no default_images.gpu: build and push one with "
                                                     "`spikebatch image build --gpu"),
])
def test_a_gpu_image_mismatch_is_explained_with_the_fix(cli: Cli, options, gpu_image, finding, fix) -> None:
    profile = _profile(cli, "lab", backend="kubernetes", gpu_image=gpu_image)
    result = cli("deploy-job", "--profile-file", str(profile), "--job-config", str(_job_config(cli)),
                 "--render-only", *options)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if finding in line)
    assert line.startswith(f"policy: [WARN] {finding}: ") and fix in line


@pytest.mark.parametrize("option, value, fragment", [
    ("--gpus", "1.5", "--gpus '1.5' must be a whole number of GPUs"),
    ("--cpus", "two", "--cpus 'two' is not an amount of CPU; use cores ('2', '0.5') or millicores ('500m')"),
    ("--memory", "4", "--memory '4' is only 4 bytes; give a unit, e.g. 4Gi or 4Mi"),
])
def test_bad_resources_are_refused_before_anything_happens(cli: Cli, recording: Path, option, value,
                                                           fragment) -> None:
    for command in (["deploy-job", "--job-config", str(_job_config(cli))],
                    ["submit-sorting", "--recording", str(recording)],
                    ["submit-workspace", "--workspace", str(write_workspace(cli.root / "ws", x=1)),
                     "--script", str(_job_config(cli))]):
        assert_one_line_error(cli(*command, option, value), 2, fragment)
    assert cli.data_files() == [] and _local_manifests(cli) == {} and cli.records() == []


def test_kilosort4_on_a_gpu_profile_needs_no_job_config(cli: Cli, recording: Path) -> None:
    # The local backend keeps the Job's manifest as a cluster would get it: kilosort4 with
    # --gpus 1 runs on the profile's gpu image with one GPU.
    profile = _profile(cli, "local-gpu", backend="local")
    submitted = cli("submit-sorting", "--profile-file", str(profile), "--recording", str(recording),
                    "--preset", "kilosort4", "--gpus", "1")
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.keys["JOB_NAME"]
    assert job.startswith("sort-kilosort4-")
    try:
        container = _container(_local_manifests(cli)[job])
        assert container["image"] == GPU_IMAGE
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    finally:
        assert cli("job-delete", job).returncode == 0

    # On a cluster profile, kilosort4 without --gpus gets a hint before anything is sent
    # (the cluster is unreachable here: the submission stops there, exit 3).
    kubeconfig = write_kubeconfig(cli.root / "kubeconfig", f"https://127.0.0.1:{closed_port()}")
    cluster = _profile(cli, "lab-gpu", backend="kubernetes")
    hinted = cli("--kubeconfig", str(kubeconfig), "submit-sorting", "--profile-file", str(cluster),
                 "--recording", str(recording), "--preset", "kilosort4")
    assert hinted.returncode == 3, hinted.stderr
    assert f"note: kilosort4 runs on an NVIDIA GPU; add --gpus 1 to run it on this profile's gpu image {GPU_IMAGE}" \
        in hinted.stderr


def test_cpus_and_memory_reach_a_workspace_job(cli: Cli) -> None:
    script = cli.root / "analysis.py"
    script.write_text("print('ran')\n")
    submitted = cli("submit-workspace", "--workspace", str(write_workspace(cli.root / "ws", x=1)),
                    "--script", str(script), "--cpus", "500m", "--memory", "1Gi", "--wait")
    assert submitted.returncode == 0, submitted.stderr
    resources = _container(_local_manifests(cli)[submitted.keys["JOB_NAME"]])["resources"]
    assert resources == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "500m", "memory": "1Gi"}}


# --- --version ----------------------------------------------------------------------------------
def test_version_prints_the_version_and_loads_nothing_heavy(cli: Cli) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    result = cli("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"spikebatch {version}\n", "")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "spikebatch", "--version"],
                          capture_output=True, text=True, timeout=60, env=cli.env)
    assert proc.returncode == 0, proc.stderr
    loaded = set(re.findall(r"import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", proc.stderr))
    assert "spikebatch.entrypoints.cli" in loaded
    heavy = sorted(name for name in loaded if name.split(".")[0] in
                   ("pydantic", "rich", "yaml", "boto3", "kubernetes", "minio", "spikeinterface", "dependency_injector"))
    assert heavy == [], heavy
