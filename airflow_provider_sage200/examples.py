"""Where the example DAGs are, and copying them into a DAGs folder (``sage200 examples``).

The wheel ships them as data in ``airflow_provider_sage200/example_dags/`` (a folder without ``__init__.py``:
nothing imports them, and Airflow parses only its DAGs folder, so the installed copies never register a DAG);
a source checkout has them in ``example_dags/`` at the top of the repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from airflow_provider_sage200.exceptions import Sage200ConfigError

_PACKAGE = Path(__file__).resolve().parent


def examples_dir() -> Path:
    """The folder holding the example DAG files (installed wheel, else the source checkout)."""
    for folder in (_PACKAGE / "example_dags", _PACKAGE.parent / "example_dags"):
        if any(folder.glob("sage200_*.py")):
            return folder
    raise Sage200ConfigError(
        f"No example DAGs next to {_PACKAGE}: reinstall airflow-provider-sage200 from its wheel, or take them from "
        "the example_dags/ folder of the source distribution."
    )


def example_files() -> list[Path]:
    return sorted(examples_dir().glob("sage200_*.py"))


def copy_examples(destination: Path, *, overwrite: bool = False) -> list[Path]:
    """Copy every example DAG file into ``destination`` (created if missing); returns the files written.

    Refuses, before copying anything, when a file of the same name is there already (unless ``overwrite``): two
    copies of one DAG id in the DAGs folder would make Airflow report a duplicate.
    """
    sources = example_files()
    clashes = [destination / s.name for s in sources if (destination / s.name).exists()]
    if clashes and not overwrite:
        raise Sage200ConfigError(
            f"{', '.join(str(c) for c in clashes)} already exist; pass --overwrite to replace them."
        )
    destination.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(source, destination / source.name)) for source in sources]
