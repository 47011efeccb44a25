"""Sorter overrides: dotted --set keys, every override type-checked against the default it
replaces (both sorter adapters, against the real SpikeInterface and SpikeLab defaults),
the README's library example, and --gpus / --cpus / --memory applied to a JobSpec."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from spikebatch.adapters.sorting.parameter_checks import check_override, flatten_parameters, merge_overrides
from spikebatch.adapters.sorting.spikeinterface import SpikeInterfaceSorter
from spikebatch.adapters.sorting.spikelab import SpikeLabSorter
from spikebatch.application.job_config import apply_resource_choice
from spikebatch.domain.errors import ConfigError
from spikebatch.domain.models import ClusterProfile, JobSpec
from spikebatch.entrypoints.cli_common import parse_key_values
from spikebatch.entrypoints.cli_resources import resource_options

README = Path(__file__).resolve().parents[2] / "README.md"


# --- dotted --set keys ------------------------------------------------------------------
def test_dotted_keys_nest_and_merge() -> None:
    parsed = parse_key_values(
        ["detection.method_kwargs.detect_threshold=6", "detection.method=locally_exclusive", "seed=7",
         "job_kwargs={n_jobs: 2}", "job_kwargs.chunk_duration=2s"], "--set", yaml_values=True, dotted=True)
    assert parsed == {"detection": {"method_kwargs": {"detect_threshold": 6}, "method": "locally_exclusive"},
                      "seed": 7, "job_kwargs": {"n_jobs": 2, "chunk_duration": "2s"}}
    # Without dotted (--metadata, --build-arg) a dot is part of the key.
    assert parse_key_values(["a.b=1"], "--metadata", yaml_values=False) == {"a.b": "1"}
    # A later value of the same key wins, as before.
    assert parse_key_values(["seed=1", "seed=2"], "--set", yaml_values=True, dotted=True) == {"seed": 2}


@pytest.mark.parametrize("items, fragment", [
    (["detection..x=1"], "has an empty part"),
    ([".seed=1"], "has an empty part"),
    (["seed.=1"], "has an empty part"),
    (["seed=1", "seed.x=2"], "seed is also given a single value (seed=1); drop one of the two"),
    (["noequals"], "must look like key=value"),
])
def test_malformed_dotted_keys_are_one_line_naming_the_option(items, fragment) -> None:
    with pytest.raises(ConfigError) as info:
        parse_key_values(items, "--set", yaml_values=True, dotted=True)
    assert fragment in info.value.message and info.value.message.startswith("--set ")
    assert "\n" not in info.value.message


# --- the type rules, on their own -------------------------------------------------------
@pytest.mark.parametrize("default, value", [
    (0.1, 1), (5, 5.5), (True, False), ("neg", "pos"), ([1, 2], [3]), ({"a": 1}, {"a": 2}),
    (None, "anything"), (None, {"x": 1}), (0.1, None), ("1s", 0.5),
])
def test_accepted(default, value) -> None:
    key = "chunk_duration" if default == "1s" else "p"  # SpikeInterface's number-or-text parameter
    check_override(key, value, default, sorter_name="s")


@pytest.mark.parametrize("default, value, fragments", [
    ({"method": "x"}, 6, ["takes a dict of parameters", '(default: {"method": "x"})', "not the number 6",
                          "e.g. p.method=..."]),
    ({"method": "x"}, None, ["takes a dict of parameters", "not null"]),
    (0.1, "fast", ["takes a number (default: 0.1)", "not the text 'fast'"]),
    (0.1, True, ["takes a number", "not the value true"]),
    (True, 1, ["takes true or false (default: true)", "not the number 1"]),
    ("2", 3, ["takes text (default: \"2\")", "not the number 3", "quote it"]),
    ([1], "x", ["takes a list"]),
])
def test_refused_with_key_type_and_default(default, value, fragments) -> None:
    with pytest.raises(ConfigError) as info:
        check_override("p", value, default, sorter_name="s")
    message = info.value.message
    assert message.startswith("s parameter 'p' takes ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_open_ended_dicts_take_new_keys_and_still_check_known_ones() -> None:
    defaults = {"detection": {"method": "m", "method_kwargs": {"threshold": 5}}, "job_kwargs": {}}
    merged = merge_overrides(defaults, {"detection": {"method_kwargs": {"threshold": 6.5, "extra": [1]}},
                                        "job_kwargs": {"n_jobs": 2}}, sorter_name="s")
    assert merged == {"detection": {"method": "m", "method_kwargs": {"threshold": 6.5, "extra": [1]}},
                      "job_kwargs": {"n_jobs": 2}}
    with pytest.raises(ConfigError, match="'detection.method_kwargs.threshold' takes a number"):
        merge_overrides(defaults, {"detection": {"method_kwargs": {"threshold": "high"}}}, sorter_name="s")
    with pytest.raises(ConfigError, match=r"unknown s parameter 'detection.threshold'; valid keys under "
                                          r"detection: method, method_kwargs; did you mean "
                                          r"detection.method_kwargs.threshold\?"):
        merge_overrides(defaults, {"detection": {"threshold": 6}}, sorter_name="s")
    assert defaults["job_kwargs"] == {}  # the defaults given are never changed


def test_flatten_names_nested_parameters_by_dotted_name() -> None:
    assert flatten_parameters({"a": {"b": 1, "c": {"d": None}}, "e": {}, "f": [1]}) == [
        ("a.b", 1), ("a.c.d", None), ("e", {}), ("f", [1])]


# --- against the real sorters' defaults -------------------------------------------------
@pytest.mark.parametrize("overrides, fragments", [
    ({"detection": 6}, ["spykingcircus2 parameter 'detection' takes a dict of parameters", "not the number 6"]),
    ({"min_firing_rate": "fast"}, ["'min_firing_rate' takes a number (default: 0.1)", "not the text 'fast'"]),
    ({"detection": {"method_kwargs": {"detect_threshold": "six"}}},
     ["'detection.method_kwargs.detect_threshold' takes a number (default: 5)"]),
    ({"apply_motion_correction": "no way"}, ["'apply_motion_correction' takes true or false"]),
])
def test_spikeinterface_refuses_mistyped_overrides(overrides, fragments) -> None:
    with pytest.raises(ConfigError) as info:
        SpikeInterfaceSorter().resolve_config("spykingcircus2", overrides)
    for fragment in fragments:
        assert fragment in info.value.message, (fragment, info.value.message)


def test_spikeinterface_accepts_well_typed_overrides() -> None:
    resolved = SpikeInterfaceSorter().resolve_config("spykingcircus2", {
        "detection": {"method_kwargs": {"detect_threshold": 6.5}}, "min_firing_rate": 1, "seed": None,
        "job_kwargs": {"n_jobs": 2, "chunk_duration": 0.5}})
    assert resolved["params"]["detection"]["method_kwargs"] == {"peak_sign": "neg", "detect_threshold": 6.5}
    assert resolved["params"]["min_firing_rate"] == 1 and resolved["params"]["seed"] is None


def test_spikelab_overrides_are_type_checked_too() -> None:
    sorter = SpikeLabSorter()
    with pytest.raises(ConfigError, match=r"SpikeLab parameter 'fr_min' takes a number \(default: 0.05\), "
                                          r"not the text 'fast'"):
        sorter.resolve_config("kilosort4", {"fr_min": "fast"})
    with pytest.raises(ConfigError, match="SpikeLab parameter 'use_docker' takes true or false"):
        sorter.resolve_config("kilosort4", {"use_docker": "yes please"})
    assert sorter.resolve_config("kilosort4", {"fr_min": 1, "kilosort_params": {"Th": 9}})["curation"]["fr_min"] == 1


def test_the_readme_library_example_resolves_as_written() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r'config="(\w+)",\s*config_overrides=(\{.*?\}), job_spec=', text)
    assert match, "the README's submit_sorting_job example with config_overrides is gone"
    preset, overrides = match.group(1), ast.literal_eval(match.group(2))
    resolved = SpikeInterfaceSorter().resolve_config(preset, overrides)
    assert resolved["overrides"] == overrides


def test_preset_parameters_list_nested_defaults_by_dotted_name() -> None:
    found = SpikeInterfaceSorter().preset_parameters("spykingcircus2")
    rows = {row["name"]: row for row in found["parameters"]}
    assert rows["detection.method_kwargs.detect_threshold"]["default"] == 5
    assert rows["apply_motion_correction"]["default"] is True and rows["apply_motion_correction"]["description"]
    assert found["default"] is True and found["gpu"] == "no" and found["installed"] is True
    with pytest.raises(ConfigError, match="unknown spikeinterface preset 'ks4'; valid presets: kilosort4"):
        SpikeInterfaceSorter().preset_parameters("ks4")


# --- --gpus / --cpus / --memory -----------------------------------------------------------
def _profile(**images: str) -> ClusterProfile:
    return ClusterProfile(name="lab", backend="kubernetes", default_images=images)


def test_resources_set_request_equal_to_limit() -> None:
    spec = apply_resource_choice(JobSpec(), _profile(cpu="r:1"), **resource_options("2", "1500m", "6Gi"))
    r = spec.resources
    assert (r.requests_cpu, r.limits_cpu, r.requests_memory, r.limits_memory) == ("1500m", "1500m", "6Gi", "6Gi")
    assert (r.requests_gpu, r.limits_gpu) == (2, 2)
    # What was set is marked as chosen, so the profile's defaults do not replace it.
    assert {"requests_cpu", "limits_memory", "limits_gpu"} <= r.model_fields_set


@pytest.mark.parametrize("spec, gpus, images, expected", [
    (JobSpec(), 1, {"cpu": "r:1", "gpu": "r:1-gpu"}, "gpu"),
    (JobSpec(), 0, {"cpu": "r:1", "gpu": "r:1-gpu"}, "cpu"),
    (JobSpec(), 1, {"cpu": "r:1"}, None),  # no gpu image: the policy explains
    (JobSpec(image_profile="cpu"), 1, {"cpu": "r:1", "gpu": "r:1-gpu"}, "cpu"),  # the user's choice stays
    (JobSpec(container={"image": "mine:2"}), 1, {"cpu": "r:1", "gpu": "r:1-gpu"}, None),
])
def test_gpus_pick_the_image_only_when_the_job_leaves_it_open(spec, gpus, images, expected) -> None:
    assert apply_resource_choice(spec, _profile(**images), gpus=gpus).image_profile == expected


@pytest.mark.parametrize("args, fragment", [
    (("1.5", None, None), "--gpus '1.5' must be a whole number of GPUs"),
    (("-1", None, None), "--gpus '-1' must be a whole number"),
    ((None, "two", None), "--cpus 'two' is not an amount of CPU; use cores ('2', '0.5') or millicores ('500m')"),
    ((None, "0", None), "--cpus: CPU '0' must be greater than zero"),
    ((None, None, "4"), "--memory '4' is only 4 bytes; give a unit, e.g. 4Gi or 4Mi"),
    ((None, None, "8GB"), "--memory '8GB' is not an amount of memory"),
    ((None, None, "500m"), "--memory: memory '500m' uses a milli/micro/nano suffix"),
])
def test_bad_resource_options_name_the_option_and_the_fix(args, fragment) -> None:
    with pytest.raises(ConfigError) as info:
        resource_options(*args)
    assert fragment in info.value.message, info.value.message
