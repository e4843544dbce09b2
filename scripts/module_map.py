"""Print genoml's module map: each module's lines and one-line job (its docstring's first line), and the
longest functions. Used for the restructuring notes (run it at two commits and compare).

    python scripts/module_map.py [ROOT]       # ROOT defaults to the checkout holding this script
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def functions(tree: ast.AST, prefix: str = ""):
    """(qualified name, lines) of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, node.end_lineno - node.lineno + 1
            yield from functions(node, prefix + node.name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, prefix + node.name + ".")


def main(root: Path) -> None:
    rows, funcs = [], []
    for path in sorted((root / "genoml").rglob("*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        doc = (ast.get_docstring(tree) or "").strip().splitlines()
        name = path.relative_to(root).as_posix()
        rows.append((name, len(text.splitlines()), doc[0] if doc else "(no docstring)"))
        funcs += [(n, f"{name}:{f}") for f, n in functions(tree)]
    print("| module | lines | job |\n|---|---:|---|")
    for name, n, doc in rows:
        print(f"| {name} | {n} | {doc} |")
    print(f"\n{len(rows)} modules, {sum(n for _, n, _ in rows)} lines\n\nlongest functions:")
    for n, f in sorted(funcs, reverse=True)[:8]:
        print(f"  {n:4d}  {f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
