"""scripts/setup.sh skips the install when .venv is current: run in a copy of the project with
a fake python, so the test needs no network and no real install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAKE_PYTHON = """#!/usr/bin/env bash
# records each call; `-m venv DIR` creates DIR/bin/{python,activate,rag}
echo "$*" >> "$LOG"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; : > "$3/bin/activate"; : > "$3/bin/rag"; chmod +x "$3/bin/rag"
fi
if [ "$1" = "-V" ]; then echo "Python 3.11.0"; fi
exit 0
"""


def _setup(tmp: Path, **env: str) -> list[str]:
    log = tmp / "calls.log"
    log.unlink(missing_ok=True)
    base = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "EXTRAS", "FORCE")}  # CI exports EXTRAS
    e = {**base, "PYTHON": str(tmp / "fakepy"), "LOG": str(log), "PATH": f"{tmp}/proj/.venv/bin:{os.environ['PATH']}",
         **env}
    subprocess.run(["bash", str(tmp / "proj" / "scripts" / "setup.sh")], env=e, check=True, capture_output=True)
    return log.read_text().splitlines() if log.exists() else []


def test_setup_skips_the_install_while_pyproject_and_extras_are_unchanged(tmp_path: Path):
    proj = tmp_path / "proj"
    (proj / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", proj / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", proj / "pyproject.toml")
    fake = tmp_path / "fakepy"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)

    first = _setup(tmp_path)
    assert any("install -q -e .[dev]" in c for c in first)
    assert not any("install" in c for c in _setup(tmp_path))  # current: no pip at all
    assert any("install -q -e .[dev,llm]" in c for c in _setup(tmp_path, EXTRAS="dev,llm"))  # EXTRAS count
    assert any("install -q -e .[dev]" in c for c in _setup(tmp_path))  # and back
    with open(proj / "pyproject.toml", "a") as f:
        f.write("\n# changed\n")
    assert any("install -q -e .[dev]" in c for c in _setup(tmp_path))  # pyproject.toml changed
    assert any("install" in c for c in _setup(tmp_path, FORCE="1"))
