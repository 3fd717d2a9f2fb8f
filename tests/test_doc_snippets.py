"""Every Python code block of the user documentation runs as written.

The ```python blocks of ``README.md`` and ``benchmarks/README.md`` are written
to a file in a fresh temporary directory and run there by a fresh interpreter
(``python snippet.py``), one block at a time, so that no block can lean on
another one's variables or files and the ``if __name__ == "__main__":`` blocks
(Dask) run as they would for a user. The blocks need the ``ci`` extra
(Dask, dask-ml, skl2onnx, onnxruntime): a missing package is a failure.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "benchmarks/README.md")
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
LANGUAGES = {"python", "bash", "text"}
TIMEOUT_S = 300


def _blocks(doc):
    """``(language, first line number, code)`` of every fenced block in ``doc``."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        yield match.group(1).strip(), line, match.group(2)


def _snippets():
    params = []
    for doc in DOCS:
        for language, line, code in _blocks(doc):
            if language == "python":
                params.append(pytest.param(code, id=f"{doc}:{line}"))
    return params


SNIPPETS = _snippets()


def test_docs_have_snippets():
    assert len(SNIPPETS) >= 5, [p.id for p in SNIPPETS]


@pytest.mark.parametrize("doc", DOCS)
def test_every_block_names_its_language(doc):
    # A Python block fenced as ``` or ```py would silently escape this test.
    languages = {language for language, _, _ in _blocks(doc)}
    assert languages <= LANGUAGES, languages - LANGUAGES


@pytest.mark.parametrize("code", SNIPPETS)
def test_snippet_runs(code, tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, (
        f"snippet failed (exit {proc.returncode}):\n{code}\n"
        f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
