"""Every Python block in README.md and docs/ runs as printed (against the emulator), unless marked as a fragment.

A block is skipped only when the line before it is an HTML comment starting ``<!-- not-a-dag`` (a fragment: a
task to put inside your own DAG, a snippet needing names from around it); every other block must run:

* a block defining a DAG (``with DAG(`` or ``@dag``) is written to a DAGs folder of its own and each of its DAGs
  runs once with ``dag.test()`` (in a fresh process, as tests/dag_runner.py does), every task succeeding;
* any other block runs as a plain ``python`` script.

Both run with the consented emulator connection as ``sage200_default``. One substitution is made: ``s3://``
becomes ``file://<tmp>/s3/`` (the bucket a folder), since the test has no S3; the docs say what ``s3://`` needs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
MARKER = "<!-- not-a-dag"


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    code: str
    marked: bool

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def defines_dag(self) -> bool:
        return "with DAG(" in self.code or "@dag" in self.code


def python_blocks() -> list[Block]:
    blocks = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        text = path.read_text()
        for match in FENCE.finditer(text):
            before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
            line = text.count("\n", 0, match.start()) + 1
            blocks.append(Block(path, line, match.group(1), before.startswith(MARKER)))
    return blocks


BLOCKS = python_blocks()
RUNNABLE = [block for block in BLOCKS if not block.marked]


def test_the_docs_have_runnable_blocks_and_mark_the_rest():
    names = {block.name.split(":")[0] for block in RUNNABLE if block.defines_dag}
    assert {"README.md", "docs/index.md"} <= names
    assert len(BLOCKS) > len(RUNNABLE)  # the fragments are marked, not dropped


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.name for block in RUNNABLE])
def test_block_runs_as_printed(block, consented, emulator, tmp_path):
    bucket_root = tmp_path / "s3"
    code = re.sub(r"\bs3://", f"file://{bucket_root}/", block.code)
    if not block.defines_dag:
        script = tmp_path / "block.py"
        script.write_text(code)
        result = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"{block.name}:\n{result.stderr[-3000:]}"
        return

    from tests.compat import dagbag
    from tests.dag_runner import run_dag_in_process

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "docs_block.py").write_text(code)
    bag = dagbag(str(dags))
    assert bag.import_errors == {}, f"{block.name}: {bag.import_errors}"
    assert bag.dag_ids, f"{block.name} defines no DAG"
    for dag_id in bag.dag_ids:
        results = run_dag_in_process(dags, dag_id)
        assert results and {state for state, _ in results.values()} == {"success"}, (block.name, results)
    if "s3://" in block.code:
        assert list(bucket_root.rglob("*.jsonl")), f"{block.name} wrote nothing to its bucket"
