"""Build the package as it would be published, and install the built wheel into a fresh virtual environment.

Shared by the packaging tests and the real-deployment e2e tests, so that both exercise the wheel's own files and
a file missing from the wheel fails CI instead of hiding behind the editable install.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "airflow_provider_sage200"
# The project venv has uv as a module; the compat environments (make compat) use the project venv's.
UV = (
    [sys.executable, "-m", "uv"]
    if importlib.util.find_spec("uv")
    else [shutil.which("uv") or str(REPO / ".venv" / "bin" / "uv")]
)


def build(out_dir: Path, *kinds: str, source: Path = REPO) -> dict[str, Path]:
    """Build ``kinds`` (``"wheel"``, ``"sdist"``) of ``source`` into ``out_dir``; returns each archive's path."""
    flags = [f"--{kind}" for kind in kinds]
    subprocess.run(
        [*UV, "build", "--quiet", "--python", sys.executable, "--out-dir", str(out_dir), *flags, str(source)],
        check=True,
        capture_output=True,
    )
    suffix = {"wheel": "*.whl", "sdist": "*.tar.gz"}
    return {kind: next(out_dir.glob(suffix[kind])) for kind in kinds}


def venv_with_wheel(wheel: Path, venv: Path) -> Path:
    """A new venv holding the dev venv's resolved dependencies (no resolution, from uv's cache) and ``wheel``.

    About 30 s on an idle 2-core machine, most of it compiling bytecode.

    Returns the venv's Python. Nothing from the work tree is installed: run it with a working directory outside
    the repository, or ``python -m`` would put the source tree first on ``sys.path``.
    """
    frozen = subprocess.run(
        [*UV, "pip", "freeze", "--python", sys.executable, "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    requirements = venv.with_name(f"{venv.name}-requirements.txt")
    requirements.write_text(frozen)
    python = venv / "bin" / "python"
    subprocess.run([*UV, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    for spec in (["-r", str(requirements)], [str(wheel)]):
        # Bytecode now, not on first import: a fresh API server compiling its execution API on the first task's
        # request took 38 s under load, past the worker's timeouts.
        subprocess.run(
            [
                *UV,
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--compile-bytecode",
                "--python",
                str(python),
                *spec,
            ],
            check=True,
            capture_output=True,
        )
    return python


def imported_from(python: Path, cwd: Path, env: dict[str, str] | None = None) -> Path:
    """Where ``python`` imports the package from, started as the deployment starts it."""
    out = subprocess.run(
        [str(python), "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(out.strip()).parent
