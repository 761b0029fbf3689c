"""The documentation site builds without a warning and covers what users look for.

``mkdocs build --strict`` turns every warning into a failure: a broken link, a
page missing from the navigation's targets, a docstring the API reference
cannot render. The reference pages, the events page and the errors page are
checked against the code they describe.
"""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import paycore.errors
from paycore.asgi import classify_webhook_error

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

PUBLIC_MODULES = {
    "paycore": "paycore",
    "flow": "paycore.flow",
    "blocking": "paycore.blocking",
    "money": "paycore.money",
    "records": "paycore.records",
    "status": "paycore.status",
    "errors": "paycore.errors",
    "providers": "paycore.providers",
    "storage": "paycore.storage",
    "hookspecs": "paycore.hookspecs",
    "config": "paycore.config",
    "idempotency": "paycore.idempotency",
    "calls": "paycore.calls",
    "asgi": "paycore.asgi",
    "testing": "paycore.testing",
    "observability": "paycore.observability",
}

PLUGIN_PACKAGES = {
    "paycore_memory": ROOT / "adapters" / "memory",
    "paycore_sqlalchemy": ROOT / "adapters" / "sqlalchemy",
    "paycore_redis": ROOT / "adapters" / "redis",
    "paycore_django": ROOT / "adapters" / "django",
    "paycore_cash": ROOT / "plugins" / "cash",
    "paycore_dummy": ROOT / "plugins" / "dummy",
    "paycore_stripe": ROOT / "plugins" / "stripe",
    "paycore_wave": ROOT / "plugins" / "wave",
}
"""The adapter and plugin packages of the workspace, each with its reference page ``api/<package>.md``."""
PUBLIC_MODULES.update({package: package for package in PLUGIN_PACKAGES})

ERRORS = sorted(
    (
        cls
        for _, cls in inspect.getmembers(paycore.errors, inspect.isclass)
        if issubclass(cls, paycore.errors.PaycoreError)
    ),
    key=lambda cls: cls.__name__,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built with ``mkdocs build --strict`` into a temporary directory."""
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin", "HOME": str(target)},
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return target


@pytest.mark.parametrize("page", sorted(PUBLIC_MODULES))
def test_every_public_module_has_a_reference_page(site: Path, page: str) -> None:
    html = (site / "api" / page / "index.html").read_text(encoding="utf-8")
    assert f'id="{PUBLIC_MODULES[page]}"' in html


def _exported(package: str) -> list[str]:
    """The names in ``package``'s ``__all__``, read from its source as the API reference reads it.

    Nothing of the package is imported (the reference is built from the source too): a Django
    package's modules may need Django set up to import.
    """
    source = PLUGIN_PACKAGES[package] / "src" / package / "__init__.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"{package} has no __all__")


@pytest.mark.parametrize("package", sorted(PLUGIN_PACKAGES))
def test_every_public_name_of_the_plugins_and_adapters_is_in_the_reference(site: Path, package: str) -> None:
    html = (site / "api" / package / "index.html").read_text(encoding="utf-8")
    names = _exported(package)
    assert names, f"{package}'s __all__ is empty"
    missing = [name for name in names if f'id="{package}.{name}"' not in html]
    assert missing == [], f"{package}'s reference page does not document {missing}"


@pytest.mark.parametrize(
    "method", ["create_payment", "capture", "cancel", "refund", "list_payments", "list_events", "expire_stale",
               "resolve_review", "get_payment", "handle_webhook", "refresh"]
)  # fmt: skip
def test_the_flow_reference_shows_each_method_with_its_signature(site: Path, method: str) -> None:
    html = (site / "api" / "flow" / "index.html").read_text(encoding="utf-8")
    anchor = re.search(rf'id="paycore\.(flow\.PaymentFlow|actions\.PaymentActions)\.{method}"', html)
    assert anchor is not None, f"{method} is not in the API reference"
    assert "idempotency_key" in html


def test_docstring_roles_become_links_not_raw_markup(site: Path) -> None:
    html = (site / "api" / "flow" / "index.html").read_text(encoding="utf-8")
    assert ":class:`" not in html
    assert 'href="../errors/#paycore.errors.ConfigurationError"' in html


@pytest.mark.parametrize("page", ["events", "errors", "webhooks", "operations", "observability"])
def test_the_guides_are_in_the_site(site: Path, page: str) -> None:
    assert (site / page / "index.html").is_file()


@pytest.mark.parametrize("package", ["memory", "dummy", "stripe", "wave"])
def test_the_workspace_readmes_are_pages_of_the_site(site: Path, package: str) -> None:
    assert (site / "workspace" / package / "index.html").is_file()


def _event_kinds() -> set[str]:
    kinds: set[str] = set()
    for source in (ROOT / "src" / "paycore").rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        kinds.update(re.findall(r"\.event\(\s*\"(\w+)\"", text))
        kinds.update(re.findall(r"flag_once\(\s*\w+,\s*[\w.]+,\s*\"(\w+)\"", text))  # an event and its flag
    return kinds


def test_every_event_kind_written_by_the_code_is_documented() -> None:
    kinds = _event_kinds()
    assert {"created", "status_changed", "refund_created", "provider_call_unknown"} <= kinds
    page = (DOCS / "events.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `(\w+)`$", page, flags=re.MULTILINE))
    assert kinds - documented == set(), "document these event kinds in docs/events.md"
    assert documented - kinds == set(), "docs/events.md documents kinds the code no longer writes"


def _documented_statuses() -> dict[str, int]:
    page = (DOCS / "errors.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \|.*\| (\d{3}) \|$", page, flags=re.MULTILINE)
    return {name: int(status) for name, status in rows}


@pytest.mark.parametrize("error", ERRORS, ids=[error.__name__ for error in ERRORS])
def test_every_error_is_on_the_errors_page_with_its_http_status(error: type[paycore.errors.PaycoreError]) -> None:
    documented = _documented_statuses()
    assert error.__name__ in documented, f"add {error.__name__} to docs/errors.md"
    status, _, _ = classify_webhook_error(error("example"), "wave")
    assert documented[error.__name__] == status


def test_the_errors_page_names_no_error_that_does_not_exist() -> None:
    assert set(_documented_statuses()) == {error.__name__ for error in ERRORS}


def _plugin_errors() -> dict[str, list[str]]:
    """Every ``PaycoreError`` subclass the plugins and adapters define (name -> its bases' names), found in
    their source: a class whose base is a core error, or one of theirs found so (private ones left out)."""
    classes: dict[str, list[str]] = {}
    for root in PLUGIN_PACKAGES.values():
        for source in sorted((root / "src").rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    bases = [
                        base.id if isinstance(base, ast.Name) else getattr(base, "attr", "") for base in node.bases
                    ]
                    classes[node.name] = bases
    errors = {cls.__name__ for cls in ERRORS}
    found: dict[str, list[str]] = {}
    while True:
        more = {
            name: bases
            for name, bases in classes.items()
            if name not in found and any(base in errors or base in found for base in bases)
        }
        if not more:
            return found
        found.update(more)


def _documented_plugin_errors() -> dict[str, tuple[list[str], int]]:
    """The plugins' errors on the errors page: dotted name -> (bases' names, HTTP status)."""
    page = (DOCS / "errors.md").read_text(encoding="utf-8")
    section = page.split("\n## Plugins and adapters\n", 1)[1]
    rows = re.findall(r"^\| `(paycore_\w+(?:\.\w+)+)` \| ([^|]+) \|.*\| (\d{3}) \|$", section, flags=re.MULTILINE)
    return {name: (re.findall(r"`(\w+)`", bases), int(status)) for name, bases, status in rows}


def test_every_error_of_the_plugins_and_adapters_is_on_the_errors_page() -> None:
    defined = _plugin_errors()
    assert {"CashError", "DrawerClosed", "GatewayRefused", "SchemaOutOfDate", "WaveRefused"} <= set(defined)
    documented = {name.rsplit(".", 1)[1]: bases for name, (bases, _) in _documented_plugin_errors().items()}
    assert set(defined) - set(documented) == set(), "add these errors to docs/errors.md (Plugins and adapters)"
    assert set(documented) - set(defined) == set(), "docs/errors.md names plugin errors that no longer exist"
    for name, bases in defined.items():
        assert documented[name] == bases, f"docs/errors.md gives {name} the bases {documented[name]}, not {bases}"


@pytest.mark.parametrize("name", sorted(_documented_plugin_errors()))
def test_each_plugin_error_on_the_errors_page_is_importable_with_its_http_status(name: str) -> None:
    module, _, attribute = name.rpartition(".")
    error = getattr(
        pytest.importorskip(module, reason=f"{module} is not installed (a session of one package)"), attribute
    )
    assert issubclass(error, paycore.errors.PaycoreError)
    _, status = _documented_plugin_errors()[name]
    assert classify_webhook_error(Exception.__new__(error), "wave")[0] == status
