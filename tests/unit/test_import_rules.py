"""The import rules of docs/architecture.md: Streamlit only in the app's Streamlit part (`captioner/app/ui/`)
and the pages; the runtime runs without Streamlit, the scene world and the bench. And the app's names rule:
session keys and page names are declared once, in `captioner/app/ui/keys.py`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UI_PART = ROOT / "captioner" / "app" / "ui"
PAGES = [ROOT / "streamlit_app.py", *(ROOT / "app_pages").glob("*.py")]
APP_CODE = [*(ROOT / "captioner" / "app").rglob("*.py"), *PAGES]


def imported_modules(path: Path) -> set[str]:
    """Every module a Python file imports, at any depth of the file (top-level names)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def imports_streamlit(path: Path) -> bool:
    return any(m.split(".")[0] == "streamlit" for m in imported_modules(path))


def test_streamlit_is_imported_only_by_the_ui_part_and_the_pages():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "captioner").rglob("*.py")
        if UI_PART not in path.parents and imports_streamlit(path)
    ]
    assert offenders == []


def test_the_rule_sees_streamlit_where_it_is_imported():
    """The check above finds the imports it forbids elsewhere (a rule that sees nothing would pass anyway)."""
    assert imports_streamlit(UI_PART / "model.py") and all(imports_streamlit(page) for page in PAGES)
    assert not imports_streamlit(ROOT / "captioner" / "app" / "settings.py")


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def bare_names(path: Path) -> list[str]:
    """Session keys and page names written as string literals: `st.session_state["x"]`, `session_state.get("x")`
    (also pop, setdefault), a widget's `key="x"` (containers' CSS keys aside), and `== "Caption"`."""
    from captioner.app.ui import keys

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("session_state") and _literal(node.slice):
            found.append(ast.unparse(node))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner, method = ast.unparse(node.func.value), node.func.attr
            if (
                owner.endswith("session_state")
                and method in ("get", "pop", "setdefault")
                and node.args
                and _literal(node.args[0])
            ):
                found.append(ast.unparse(node))
            if method != "container" and any(k.arg == "key" and _literal(k.value) for k in node.keywords):
                found.append(ast.unparse(node)[:80])
        elif isinstance(node, ast.Compare) and any(_literal(c) in keys.PAGES for c in [node.left, *node.comparators]):
            found.append(ast.unparse(node))
    return found


def test_session_keys_and_page_names_are_declared_once_in_keys():
    offenders = {str(p.relative_to(ROOT)): bare_names(p) for p in APP_CODE if p.name != "keys.py"}
    assert {p: names for p, names in offenders.items() if names} == {}


def test_the_names_rule_sees_bare_names(tmp_path):
    code = (
        'st.session_state["model_spec"] = 1\nst.session_state.get("image")\nst.button("Go", key="go")\n'
        'st.container(key="css-hook")\nif page == "Batch":\n    pass\n'
    )
    (tmp_path / "page.py").write_text(code)
    assert len(bare_names(tmp_path / "page.py")) == 4


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
