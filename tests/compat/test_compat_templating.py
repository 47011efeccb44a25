"""spikebatch.templating as code written for spikelab.batch_jobs.templating calls it."""

from __future__ import annotations

import yaml
import pytest

from spikebatch.errors import ConfigError
from spikebatch.models import ClusterProfile, JobSpec
from spikebatch.templating import build_template_context, render_job_manifest

PROFILE = ClusterProfile(name="compat", namespace="lab", default_images={"cpu": "runner:1"},
                         tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                         affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                             "nodeSelectorTerms": [{"matchExpressions": [
                                 {"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
                         image_pull_secrets=["regcred"])


def spec(**extra) -> JobSpec:
    return JobSpec.model_validate({"name_prefix": "compat", "container": {"command": ["python", "-c", "print(1)"],
                                                                          "env": {"MODE": "fast"}}, **extra})


def test_the_context_has_the_reference_keys(reference_package_dir) -> None:
    from spikelab.batch_jobs.models import ClusterProfile as RefProfile, JobSpec as RefSpec
    from spikelab.batch_jobs.templating import build_template_context as reference_context

    ref = reference_context(job_name="job-1", job_spec=RefSpec.model_validate(
        {"container": {"image": "runner:1"}, "resources": {}}), profile=RefProfile(name="x"), extra_labels={"run_id": "r"})
    ours = build_template_context(job_name="job-1", job_spec=spec(), profile=PROFILE, extra_labels={"run_id": "r"})
    assert set(ref) <= set(ours)
    assert set(ref["container"]) <= set(ours["container"])
    assert set(ref["resources"]) <= set(ours["resources"])
    assert ours["labels"]["run_id"] == "r" and ours["namespace"] == "lab"
    assert ours["tolerations"] == PROFILE.tolerations and yaml.safe_load(ours["tolerations_yaml"]) == PROFILE.tolerations
    assert ours["image_pull_secrets"] == ["regcred"]


def test_rendering_the_context_gives_what_the_session_renders() -> None:
    from spikebatch.domain.naming import RUN_ID_LABEL
    from spikebatch.session import RunSession

    session = RunSession.from_profile(PROFILE.model_copy(update={"backend": "local", "storage_backend": "local"}))
    job = spec(ttl_seconds_after_finished=60, active_deadline_seconds=600)
    text = render_job_manifest(build_template_context(job_name="job-1", job_spec=job, profile=session.profile,
                                                      extra_labels={RUN_ID_LABEL: "run-1"}))
    assert isinstance(text, str)
    assert yaml.safe_load(text) == yaml.safe_load(session.render_manifest(job_name="job-1", job_spec=job, run_id="run-1"))


def test_an_edited_context_is_rendered_as_edited_and_any_value_survives() -> None:
    context = build_template_context(job_name="job-1", job_spec=spec(), profile=PROFILE)
    hostile = 'a "quoted"\nsecond line: {x}\t# not a comment \\'
    context["container"]["image"] = "other:2"
    context["container"]["env"]["NOTE"] = hostile
    context["container"]["args"] = [hostile]
    context["labels"]["team"] = "ephys"
    context["backoff_limit"] = 3
    context["tolerations"] = []
    job = yaml.safe_load(render_job_manifest(context))
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "other:2"
    assert {"name": "NOTE", "value": hostile} in container["env"]
    assert container["args"] == [hostile]
    assert job["metadata"]["labels"]["team"] == "ephys" == job["spec"]["template"]["metadata"]["labels"]["team"]
    assert job["spec"]["backoffLimit"] == 3
    assert "tolerations" not in job["spec"]["template"]["spec"]
    assert job["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


def test_the_reference_profile_files_render(reference_profile_files) -> None:
    from spikebatch.profiles import load_cluster_profile

    for path in reference_profile_files.values():
        profile = load_cluster_profile(str(path))  # (loads once the models area's change is in)
        job = yaml.safe_load(render_job_manifest(build_template_context(
            job_name="job-1", job_spec=spec(container={"image": "runner:1", "command": ["true"]}), profile=profile)))
        assert job["kind"] == "Job" and job["metadata"]["name"] == "job-1"


@pytest.mark.parametrize("broken, field", [({"job_name": None}, "job_name"), ({"namespace": None}, "namespace"),
                                          ({"labels": ["a"]}, "labels")])
def test_a_context_missing_what_a_job_needs_is_refused_naming_it(broken, field) -> None:
    context = build_template_context(job_name="job-1", job_spec=spec(), profile=PROFILE)
    context.update(broken)
    with pytest.raises(ConfigError, match=field):
        render_job_manifest(context)


def test_a_bad_job_name_or_label_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match="job_name"):
        build_template_context(job_name="Not A Name", job_spec=spec(), profile=PROFILE)
    with pytest.raises(ConfigError, match="extra_labels"):
        build_template_context(job_name="job-1", job_spec=spec(), profile=PROFILE, extra_labels={"run id": "x"})
