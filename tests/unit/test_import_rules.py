"""The import rules of docs/architecture.md: Streamlit only in the app's part and the pages; the runtime
runs without Streamlit, the scene world and the bench."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP_PART = ROOT / "captioner" / "app"


def imported_modules(path: Path) -> set[str]:
    """Every module a Python file imports, at any depth of the file (top-level names)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_streamlit_is_imported_only_by_the_app_part_and_the_pages():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "captioner").rglob("*.py")
        if APP_PART not in path.parents and any(m.split(".")[0] == "streamlit" for m in imported_modules(path))
    ]
    assert offenders == []


def test_the_runtime_imports_neither_streamlit_nor_the_world_nor_the_bench():
    code = (
        "import sys\n"
        "import captioner, captioner.decoding, captioner.loading, captioner.batch.rows, captioner.batch.items, "
        "captioner.batch.outputs, captioner.explain, captioner.metrics, captioner.__main__\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit' "
        "or m.startswith(('captioner.world', 'captioner.bench', 'captioner.app')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
