"""The house's figures (issue 25): modules and lines, functions over 60 lines, lines over 120 characters and
imports inside functions, for the package under ``src/`` (or a tree named on the command line).

    python benchmarks/code_health.py [SRC]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def figures(root: Path) -> dict[str, int | list[str]]:
    """Counts over every ``*.py`` below ``root``."""
    modules = sorted(root.rglob("*.py"))
    lines = long_lines = 0
    late_imports: set[tuple[str, int]] = set()
    long_functions: list[str] = []
    for path in modules:
        text = path.read_text(encoding="utf-8")
        lines += text.count("\n")
        long_lines += sum(len(line) > 120 for line in text.splitlines())
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long_functions.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length})")
                late_imports.update(
                    (str(path), inner.lineno)
                    for inner in ast.walk(node)
                    if isinstance(inner, (ast.Import, ast.ImportFrom))
                )
    return {
        "modules": len(modules),
        "lines": lines,
        "functions_over_60_lines": len(long_functions),
        "lines_over_120": long_lines,
        "imports_inside_functions": len(late_imports),
        "long_functions": long_functions,
    }


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "src")
    found = figures(root)
    for name, value in found.items():
        if name != "long_functions":
            print(f"{name:26} {value}")
    print("functions over 60 lines:", *found["long_functions"], sep="\n  ")  # type: ignore[misc]


if __name__ == "__main__":
    main()
