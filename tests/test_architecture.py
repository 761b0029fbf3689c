"""The import rules of docs/architecture.md, checked on the source (no module is imported to check it).

* the core's modules sit in layers and import only from their own layer or a lower one;
* the rules layer does no I/O (no anyio, no storage, no providers' calls);
* the core imports no plugin or adapter; an adapter imports no plugin; a plugin imports no other plugin.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "src" / "paycore"

LAYERS: dict[str, int] = {
    # 0 values: what everything else is made of
    **dict.fromkeys(
        [
            "errors",
            "clock",
            "currencies",
            "status",
            "money",
            "secrets",
            "frozen",
            "wire",
            "calls",
            "disputes",
            "records",
            "builders",
            "serialization",
            "awaiting",
            "logs",
        ],
        0,
    ),
    # 1 contracts: what plugins implement and how they are configured
    **dict.fromkeys(
        [
            "providers",
            "storage",
            "disposal",
            "hookspecs",
            "keys",
            "idempotency",
            "tiered",
            "config",
            "config_sources",
            "rows",
            "row_changes",
            "key_rows",
            "sqlstates",
            "listing",
        ],
        1,
    ),
    # 2 rules: pure decisions on payments
    **dict.fromkeys(["fsm", "changes", "reviews", "updates", "refund_reports", "settling", "operations", "inputs"], 2),
    # 3 machinery: plugins, storage writes, provider calls
    **dict.fromkeys(
        [
            "plugins",
            "installed",
            "hookcalls",
            "adapters",
            "unit_of_work",
            "provider_calls",
            "webhooks",
            "reaper",
            "reaper_run",
            "refunding",
            "actions",
            "assembly",
            "flow_parts",
            "observability",
            "telemetry",
            "in_flight",
        ],
        3,
    ),
    # 4 the façade
    "flow": 4,
    # 5 doors: ways into the flow
    **dict.fromkeys(
        ["blocking", "asgi", "cli", "cli_payments", "reports", "demo", "__init__", "__main__", "testing"], 5
    ),
}

NAME_OF_LAYER = {0: "values", 1: "contracts", 2: "rules", 3: "machinery", 4: "façade", 5: "doors"}

PLUGIN_PACKAGES = {"paycore_cash", "paycore_dummy", "paycore_stripe", "paycore_wave"}


def _imports(path: Path) -> set[str]:
    """Every module name ``path`` imports (absolute names), at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _core_module(path: Path) -> str:
    relative = path.relative_to(CORE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_every_core_module_has_a_layer() -> None:
    missing = sorted({_core_module(p) for p in _core_files()} - set(LAYERS))
    assert not missing, f"give these modules a layer in docs/architecture.md and here: {missing}"


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(CORE)))
def test_a_core_module_imports_only_its_own_layer_or_lower(path: Path) -> None:
    layer = LAYERS[_core_module(path)]
    wrong = []
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] != "paycore" or len(parts) < 2 or parts[1] not in LAYERS:
            continue
        if LAYERS[parts[1]] > layer:
            wrong.append(f"{name} ({NAME_OF_LAYER[LAYERS[parts[1]]]})")
    assert not wrong, f"{path.name} ({NAME_OF_LAYER[layer]}) imports a higher layer: {sorted(wrong)}"


@pytest.mark.parametrize("module", sorted(m for m, layer in LAYERS.items() if layer == 2))
def test_the_rules_do_no_io(module: str) -> None:
    imported = {name.split(".")[0] for name in _imports(CORE / f"{module}.py")}
    assert not imported & {"anyio", "asyncio", "trio", "socket", "httpx"}, f"{module} must stay pure"


def test_the_core_imports_no_plugin_or_adapter() -> None:
    for path in _core_files():
        foreign = {n.split(".")[0] for n in _imports(path) if n.startswith("paycore_")}
        assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"


@pytest.mark.parametrize("adapter", sorted(p.name for p in (ROOT / "adapters").iterdir() if (p / "src").is_dir()))
def test_an_adapter_imports_no_plugin(adapter: str) -> None:
    for path in sorted((ROOT / "adapters" / adapter / "src").rglob("*.py")):
        plugins = {n.split(".")[0] for n in _imports(path)} & PLUGIN_PACKAGES
        assert not plugins, f"{path.relative_to(ROOT)} imports {sorted(plugins)}: a plugin owns its own storage"


@pytest.mark.parametrize("plugin", sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "src").is_dir()))
def test_a_plugin_imports_no_other_plugin(plugin: str) -> None:
    own = f"paycore_{plugin}"
    for path in sorted((ROOT / "plugins" / plugin / "src").rglob("*.py")):
        others = ({n.split(".")[0] for n in _imports(path)} & PLUGIN_PACKAGES) - {own}
        assert not others, f"{path.relative_to(ROOT)} imports {sorted(others)}"


MAX_MODULE_LINES = 400
"""A core module longer than this does more than one job: split it by concept."""


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(CORE)))
def test_no_core_module_is_longer_than_its_limit(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.name} has {lines} lines (at most {MAX_MODULE_LINES}): split it by concept"
