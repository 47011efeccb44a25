"""The README's porting example runs as written: a script ported from
spikelab.batch_jobs, with the reference's own nrp.yaml beside it, on a machine with no
cluster and no kubeconfig, prints what the README's comments say."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _porting_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Porting from spikelab.batch_jobs"):]
    blocks = re.findall(r"^```python\n(.*?)^```", section, re.M | re.S)
    assert blocks, "the porting section has no python example"
    return blocks[0]


def _shown_output(code: str) -> list[str]:
    """What each print's comment says it prints (a trailing "(...)" is an explanation)."""
    shown = []
    for line in code.splitlines():
        if line.startswith("print(") and "#" in line:
            comment = line.split("#", 1)[1].strip()
            shown.append(re.sub(r"\s*\([^()]*\)$", "", comment))
    return shown


def test_the_porting_example_prints_what_the_readme_says(tmp_path: Path, reference_profile_files) -> None:
    code = _porting_example()
    (tmp_path / "port.py").write_text(code, encoding="utf-8")
    shutil.copy(reference_profile_files["nrp"], tmp_path / "nrp.yaml")
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "SPIKEBATCH_STATE_DIR": str(tmp_path / "state"),
           **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {})}
    done = subprocess.run([sys.executable, "port.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    shown = _shown_output(code)
    assert len(shown) == 4
    assert done.stdout.splitlines() == shown
