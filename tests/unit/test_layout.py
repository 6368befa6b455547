"""The dependency rules of docs/architecture.md, read from the imports themselves.

Each rule is a line in the architecture; this test keeps the code to it, so a quick
import of the wrong layer fails here instead of slowly eroding the design.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import unipush_bridge

PACKAGE = Path(unipush_bridge.__file__).parent
STDLIB = sys.stdlib_module_names
#: What the core may not touch: it is given the time and the results of I/O.
IO_MODULES = {
    "asyncio",
    "time",
    "sqlite3",
    "socket",
    "subprocess",
    "threading",
    "webbrowser",
    "dbus_fast",
    "desktop_notifier",
    "websockets",
    "aiohttp",
    "structlog",
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports, relative imports made absolute."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            if node.level:  # `from . import x` may name a submodule
                found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def ours(name: str) -> bool:
    return name == "unipush_bridge" or name.startswith("unipush_bridge.")


def files(sub: str) -> list[Path]:
    return sorted((PACKAGE / sub).glob("*.py"))


def layer_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def existing(name: str) -> bool:
    """A name from `from . import x` that is an attribute, not a module, is skipped."""
    rel = name.split(".")[1:]
    target = PACKAGE.joinpath(*rel)
    return target.with_suffix(".py").exists() or (target / "__init__.py").exists() or not rel


@pytest.mark.parametrize("path", files("wire"), ids=lambda p: p.name)
def test_wire_imports_only_the_standard_library(path: Path) -> None:
    for name in imports(path):
        if ours(name):
            if not existing(name):
                continue
            assert name in ("unipush_bridge.errors", "unipush_bridge.wire") or (
                name.startswith("unipush_bridge.wire.")
            ), f"{path.name} imports {name}"
        else:
            assert name.split(".")[0] in STDLIB or name == "__future__", (
                f"{path.name} imports {name}"
            )


@pytest.mark.parametrize("name", ["core.py", "localpush.py", "session.py"])
def test_the_core_does_no_io(name: str) -> None:
    for imported in imports(PACKAGE / "runtime" / name):
        assert imported.split(".")[0] not in IO_MODULES, f"runtime/{name} imports {imported}"
        if ours(imported) and existing(imported):
            assert layer_of(imported) in ("wire", "errors", "runtime"), imported
            if layer_of(imported) == "runtime":
                assert imported.rsplit(".", 1)[-1] in ("localpush", "session", "core", "runtime")


@pytest.mark.parametrize("path", files("gateway"), ids=lambda p: p.name)
def test_the_gateway_never_imports_the_daemon_runtime(path: Path) -> None:
    for name in imports(path):
        if ours(name) and existing(name):
            assert layer_of(name) in ("gateway", "wire", "errors", "sqlitedb", ""), (
                f"gateway/{path.name} imports {name}"
            )


@pytest.mark.parametrize("path", files("clients"), ids=lambda p: p.name)
def test_clients_import_only_the_wire(path: Path) -> None:
    for name in imports(path):
        if ours(name) and existing(name):
            assert layer_of(name) in ("clients", "wire", "errors", "paths"), (
                f"clients/{path.name} imports {name}"
            )


WARM_ENTRIES = ("cli.py", "launch.py", "testing/zygote.py")


def test_nothing_imports_the_cli_or_the_composition_root() -> None:
    for path in PACKAGE.rglob("*.py"):
        for name in imports(path):
            rel = path.relative_to(PACKAGE).as_posix()
            # launch.py is the entry point: it hands what it does not answer to the CLI;
            # the test zygote (issue 16) imports both once, to fork gateways and daemons warm.
            assert name != "unipush_bridge.cli" or rel in WARM_ENTRIES, rel
            if name == "unipush_bridge.runtime.daemon":
                assert rel in ("cli.py", "testing/zygote.py"), (
                    f"{path} imports the composition root"
                )


def test_every_module_has_a_layer() -> None:
    known = {"wire", "runtime", "gateway", "clients", "service", "tray", "testing"}
    top = {"__init__", "launch", "localcall", "cli", "config", "logs", "paths", "errors"}
    top.add("sqlitedb")
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) == 1:
            assert path.stem in top, f"{rel}: put it in a layer or name it in the architecture"
        else:
            assert rel.parts[0] in known, rel
