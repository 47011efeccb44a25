"""Directory workspaces made from the command line (issue 16 item 7): workspace init /
add / show, the hint for a folder of .npy files, and a script run on the result."""

from __future__ import annotations

import json

import numpy as np
from cli_support import Cli, assert_one_line_error, cli  # noqa: F401  (cli is a fixture)


def test_init_add_show_then_a_job_reads_the_items(cli: Cli) -> None:
    ws = cli.root / "ws"
    np.save(cli.root / "spike_times.npy", np.array([0.1, 0.2, 0.35]))
    (cli.root / "info.json").write_text(json.dumps({"duration_s": 3}))
    (cli.root / "notes.txt").write_bytes(b"raw bytes")

    made = cli("workspace", "init", str(ws))
    assert made.returncode == 0, made.stderr
    assert made.keys == {"WORKSPACE": str(ws.resolve()), "ITEMS": "0"}
    for key, name in (("spike_times", "spike_times.npy"), ("info", "info.json"), ("notes", "notes.txt")):
        added = cli("workspace", "add", str(ws), "rec1", key, str(cli.root / name))
        assert added.returncode == 0, added.stderr
    assert cli("workspace", "init", str(ws)).keys["ITEMS"] == "3"  # kept, not emptied

    shown = cli("workspace", "show", str(ws), "-o", "json").json()["items"]["rec1"]
    assert shown["spike_times"]["type"] == "ndarray" and shown["info"]["type"] == "dict"
    assert shown["notes"]["type"] == "bytes"

    script = cli.root / "rate.py"
    script.write_text(
        'times = workspace.get("rec1", "spike_times")\n'
        'rate = len(times) / workspace.get("rec1", "info")["duration_s"]\n'
        'assert workspace.get("rec1", "missing", None) is None\n'
        'workspace.store("rec1", "rate", rate)\n'
    )
    ran = cli("submit-workspace", "--workspace", str(ws), "--script", str(script),
              "--retrieve-to", str(cli.root / "out"))
    assert ran.returncode == 0, ran.stderr
    index = json.loads((cli.root / "out" / "workspace" / "spikebatch-workspace.json").read_text())
    assert "rate" in index["namespaces"]["rec1"]["items"]


def test_a_folder_of_npy_files_gets_a_hint_how_to_make_it_a_workspace(cli: Cli) -> None:
    loose = cli.root / "loose"
    loose.mkdir()
    np.save(loose / "spike_times.npy", np.arange(3))
    script = cli.root / "a.py"
    script.write_text("pass\n")
    refused = cli("submit-workspace", "--workspace", str(loose), "--script", str(script))
    assert_one_line_error(refused, 2, "spikebatch workspace init", "workspace add", "spike_times.npy")


def test_add_refuses_a_folder_that_is_not_a_workspace_and_a_broken_json(cli: Cli) -> None:
    (cli.root / "bad.json").write_text("{not json")
    assert_one_line_error(cli("workspace", "add", str(cli.root / "nows"), "a", "b", str(cli.root / "bad.json")), 2,
                          "spikebatch workspace init")
    ws = cli.root / "ws"
    assert cli("workspace", "init", str(ws)).returncode == 0
    assert_one_line_error(cli("workspace", "add", str(ws), "a", "b", str(cli.root / "bad.json")), 2,
                          "bad.json", "not valid JSON")
    assert_one_line_error(cli("workspace", "add", str(ws), "a", "b", str(cli.root / "nothing.npy")), 2,
                          "nothing.npy", "not a file")
