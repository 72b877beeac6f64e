"""The size rule of docs/architecture.md: in the runtime and the app (`captioner/` outside the scene world
and the bench) a module is one idea a newcomer reads in one sitting, and a function fits on a screen."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 50
# A function over MAX_FUNCTION_LINES says why in its docstring, with a line starting with this.
LONG_BECAUSE = "Long because"


def runtime_modules() -> list[Path]:
    return sorted(
        p for p in (ROOT / "captioner").rglob("*.py") if p.relative_to(ROOT / "captioner").parts[0] not in ("world", "bench")
    )


def long_functions(source: str, most: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """(name, lines) of each function over `most` lines whose docstring does not say why it is long."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            reason = any(line.strip().startswith(LONG_BECAUSE) for line in (ast.get_docstring(node) or "").splitlines())
            if lines > most and not reason:
                found.append((node.name, lines))
    return found


def test_the_rule_sees_a_long_function_and_its_reason():
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def f():\n{body}") == [("f", MAX_FUNCTION_LINES + 1)]
    assert long_functions(f'def f():\n    """Does a thing.\n\n    {LONG_BECAUSE} it is a table."""\n{body}') == []
    short = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES - 1))
    assert long_functions(f"def f():\n{short}") == []


def test_every_module_is_at_most_350_lines_and_its_functions_at_most_50():
    offenders = {}
    for path in runtime_modules():
        source = path.read_text(encoding="utf-8")
        lines = len(source.splitlines())
        problems = [f"{lines} lines"] if lines > MAX_MODULE_LINES else []
        problems += [f"{name}() is {n} lines" for name, n in long_functions(source)]
        if problems:
            offenders[str(path.relative_to(ROOT))] = problems
    assert offenders == {}
