"""`python -m klaviyo_sandbox`: a program of its own, with no Django and no import cycle."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.sandbox import API_HEADERS, API_KEY

PACKAGE = Path(__file__).resolve().parents[2] / "klaviyo_sandbox"


def test_the_program_refuses_to_start_without_the_key_it_should_accept() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "KLAVIYO_API_KEY"}

    finished = subprocess.run(
        [sys.executable, "-m", "klaviyo_sandbox", "--port", "0"],
        cwd=PACKAGE.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert finished.returncode == 2
    assert "--api-key" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_the_program_accepts_only_the_key_from_its_environment() -> None:
    environment = {**os.environ, "KLAVIYO_API_KEY": API_KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "klaviyo_sandbox", "--port", "0", "--rate-limits", "off"],
        cwd=PACKAGE.parent,
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        wrong = {**API_HEADERS, "Authorization": "Klaviyo-API-Key pk_someone_else"}

        right = requests.get(url + "/api/catalog-items", headers=API_HEADERS, timeout=5)
        refused = requests.get(url + "/api/catalog-items", headers=wrong, timeout=5)

        assert (right.status_code, refused.status_code) == (200, 401)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_package_runs_without_django() -> None:
    code = (
        "import sys, klaviyo_sandbox.__main__; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'klaviyo_sync')))"
    )

    finished = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert finished.stdout.strip() == "[]"


def _imports_within_the_package(module: Path) -> set[str]:
    """The sibling modules `module` imports (`from .x import y`, `from . import x`), at run time
    or only for type checking."""
    names = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                names.add(node.module.split(".")[0])
            else:
                names.update(alias.name for alias in node.names)
    return names


def test_the_modules_of_the_package_import_one_another_without_a_cycle() -> None:
    graph = {
        path.stem: _imports_within_the_package(path)
        for path in PACKAGE.glob("*.py")
        if path.stem not in ("__init__", "__main__")
    }
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
