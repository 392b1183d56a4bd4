"""The tests mirror the package layout (CONTRIBUTING.md, "Where a test goes").

- a test module is ``tests/<folder>/test_*.py``, where ``<folder>`` is a subpackage of
  ``rlfactory_plugins`` (``tests/verl/`` tests ``rlfactory_plugins/verl/``), ``core`` (the top-level
  modules ``rlfactory_plugins/*.py`` and checks of the package as a whole), ``e2e`` (verl's trainer
  end to end) or ``bench`` (``benchmarks/``);
- every folder of tests/ is a package (``__init__.py``), so modules are imported by their full name
  and two folders may hold files of the same name; helpers are modules of ``tests/helpers/``,
  imported by that name, never ``from conftest import ...`` nor from another test module.

The file system is read, not git, so a file nobody has committed yet is checked too.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
PACKAGE = REPO / "rlfactory_plugins"
#: folders that are not about one subpackage, with what each holds
OTHER_FOLDERS = {
    "core": "the top-level modules (rlfactory_plugins/*.py) and checks of the package as a whole",
    "e2e": "verl's real trainer end to end (the CPU GRPO runs, make demo)",
    "bench": "benchmarks/ (its parts and a smoke run)",
}
HELPERS = "helpers"
SKIPPED_DIRS = {"__pycache__"}


def subpackages() -> set[str]:
    return {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def python_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*.py")
        if not any(part in SKIPPED_DIRS or part.startswith(".") for part in p.relative_to(root).parts)
    )


def misplaced_tests(root: Path, packages: set[str]) -> list[str]:
    """Test modules under ``root`` (a tests/ folder) that are not ``<allowed folder>/test_*.py``."""
    allowed = packages | set(OTHER_FOLDERS)
    out = []
    for path in python_files(root):
        rel = path.relative_to(root)
        if rel.name.startswith("test_") and (len(rel.parts) != 2 or rel.parts[0] not in allowed):
            out.append(rel.as_posix())
    return out


def test_the_folder_names_are_unambiguous():
    assert subpackages() >= {"cli", "config", "rewards", "rollout", "testing", "tools", "verl"}
    clash = subpackages() & (set(OTHER_FOLDERS) | {HELPERS})
    assert not clash, f"a subpackage named like a folder of tests/ with another meaning: {clash}; rename one"


def test_every_test_module_lives_in_a_mirrored_folder():
    misplaced = misplaced_tests(TESTS, subpackages())
    assert not misplaced, (
        f"test modules outside the layout: {misplaced}. A test goes to tests/<subpackage>/test_*.py for the "
        f"rlfactory_plugins subpackage it exercises ({sorted(subpackages())}), or to "
        + ", ".join(f"tests/{name}/ ({what})" for name, what in OTHER_FOLDERS.items())
        + "; see CONTRIBUTING.md"
    )


def test_the_check_flags_the_old_folders(tmp_path):
    for rel in ["unit/test_x.py", "kit/test_y.py", "test_top.py", "verl/cpu/test_deep.py", "helpers/test_h.py",
                "verl/test_ok.py", "core/test_ok.py", "e2e/test_ok.py", "bench/test_ok.py", "verl/helper.py"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert misplaced_tests(tmp_path, {"verl", "tools"}) == [
        "helpers/test_h.py", "kit/test_y.py", "test_top.py", "unit/test_x.py", "verl/cpu/test_deep.py"]


def test_only_tests_fixtures_and_package_markers_outside_helpers():
    stray = []
    for path in python_files(TESTS):
        rel = path.relative_to(TESTS)
        if rel.parts[0] == HELPERS or rel.name in {"__init__.py", "conftest.py"} or rel.name.startswith("test_"):
            continue
        stray.append(str(rel))
    assert not stray, f"helper modules outside tests/{HELPERS}/: {stray}; move them there and import them by full name"


def test_every_folder_is_a_package():
    folders = [p for p in [TESTS, *TESTS.iterdir()] if p.is_dir() and p.name not in SKIPPED_DIRS
               and not p.name.startswith(".")]
    missing = [str(p.relative_to(REPO)) for p in folders if not (p / "__init__.py").is_file()]
    assert not missing, f"folders of tests/ without __init__.py (modules must import as tests.<folder>.<name>): {missing}"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .conftest import y
                found += [(node.lineno, "." * node.level + (node.module or alias.name)) for alias in node.names]
            else:
                found.append((node.lineno, node.module or ""))
    return found


def test_no_module_imports_a_conftest_or_a_test_module():
    bad = []
    for path in python_files(TESTS):
        if path.relative_to(TESTS).parts[0] == HELPERS and "servers" in path.relative_to(TESTS).parts:
            continue  # scripts run by path, not imported by the tests
        for lineno, module in imported_modules(path):
            last = module.rsplit(".", 1)[-1]
            if last == "conftest" or last.startswith("test_") or module.startswith("."):
                bad.append(f"{path.relative_to(REPO)}:{lineno}: {module}")
    assert not bad, (
        f"imports of a conftest, a test module or a relative module: {bad}; put what they share in "
        f"tests/{HELPERS}/ and import it as tests.{HELPERS}.<module>"
    )


def test_tests_is_this_checkout():
    """verl and TransferQueue install a top-level ``tests`` package into site-packages; ours must win."""
    tests = importlib.import_module("tests")
    assert Path(tests.__file__).resolve() == TESTS / "__init__.py", tests.__file__
    assert importlib.import_module(f"tests.{HELPERS}").__file__ is not None


def test_the_other_folders_exist():
    missing = [name for name in [*OTHER_FOLDERS, HELPERS] if not (TESTS / name).is_dir()]
    assert not missing, f"folders of tests/ named here and in CONTRIBUTING.md are missing: {missing}; keep them in step"
