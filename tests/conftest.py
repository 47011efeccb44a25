# The real-service fixtures (MinIO, a Kubernetes control plane with kwok) live in
# tests/infra and are shared by every suite.
from hypothesis import settings

pytest_plugins = ["infra.pytest_plugin", "infra.container_fixtures", "infra.runner_fixtures"]

# Property tests judge results, not speed: on a loaded 2-core machine a single example
# can exceed hypothesis' default 200 ms deadline without anything being wrong.
settings.register_profile("spikebatch", deadline=None)
settings.load_profile("spikebatch")


import os  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def submission_records_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory):
    """Library sessions record their submissions as the CLI does (list-jobs --offline
    shows them); in tests they go to a temporary state folder, never the user's. Set
    once for the session: the records adapter is a process-wide singleton."""
    before = os.environ.get("SPIKEBATCH_STATE_DIR")
    if before is None:
        os.environ["SPIKEBATCH_STATE_DIR"] = str(tmp_path_factory.mktemp("spikebatch-state"))
    yield
    if before is None:
        os.environ.pop("SPIKEBATCH_STATE_DIR", None)
