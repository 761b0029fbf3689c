"""``paycore demo``: a restaurant's day, assembled from the steps installed plugins contribute.

Each plugin registers steps through ``paycore_demo_steps`` (the cash plugin
opens the till's drawer, takes cash and closes the drawer; the dummy gateway
takes mobile-money payments confirmed by signed webhooks). The demo enables
the providers the steps ask for for one tenant, runs the steps in order on one
flow, and prints a summary of every payment of the day.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from attrs import define, field, frozen

from paycore.config import PaycoreConfig
from paycore.flow import PaymentFlow
from paycore.hookcalls import call_registration_hook, current_plugin
from paycore.money import Money
from paycore.plugins import collect_registry, create_plugin_manager
from paycore.secrets import redact_url
from paycore.status import PaymentStatus

__all__ = ["DEMO_TENANT", "DemoContext", "DemoStep", "collect_demo_steps", "run_demo"]

DEMO_TENANT = "chez-awa"
"""The demo's restaurant."""


@frozen
class DemoStep:
    """One step of the demo, contributed by a plugin."""

    name: str
    order: int
    run: Callable[[DemoContext], Awaitable[None]]
    providers: Mapping[str, Mapping[str, Any]]
    plugin: str


@define
class DemoContext:
    """What a demo step works with: the flow, the tenant, a printer and a shared scratchpad."""

    flow: PaymentFlow
    tenant: str
    echo: Callable[[str], None]
    shared: dict[str, Any] = field(factory=dict)


def collect_demo_steps(plugins: Iterable[object] = ()) -> list[DemoStep]:
    """Every step installed plugins (and ``plugins``) contribute, in order."""
    manager = create_plugin_manager(plugins)
    steps: list[DemoStep] = []

    def register(
        name: str,
        *,
        order: int,
        run: Callable[[DemoContext], Awaitable[None]],
        providers: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        steps.append(DemoStep(name, order, run, dict(providers or {}), current_plugin()))

    call_registration_hook(manager, "paycore_demo_steps", register)
    return sorted(steps, key=lambda step: (step.order, step.name))


_DEMO_DATABASE_SCHEME: Final = "sqlite"
"""When an installed repository serves this URL scheme, the demo keeps its day in a file."""


def _storage(config: Mapping[str, Any] | None, workdir: Path) -> dict[str, Any]:
    if config:
        return dict(config)
    registry = collect_registry(create_plugin_manager())
    if any(_DEMO_DATABASE_SCHEME in adapter.url_schemes for adapter in registry.repository_types.values()):
        return {"repository": f"{_DEMO_DATABASE_SCHEME}:///{workdir / 'paycore-demo.db'}"}
    return {}


async def run_demo(
    config: Mapping[str, Any] | None = None,
    *,
    echo: Callable[[str], None] = print,
    plugins: Iterable[object] = (),
) -> int:
    """Run the demo day; return the process exit status (0 when every step ran)."""
    plugins = list(plugins)
    steps = collect_demo_steps(plugins)
    if not steps:
        echo("No demo steps are installed. Install paycore-cash and paycore-dummy to see a restaurant's day.")
        return 1
    with tempfile.TemporaryDirectory(prefix="paycore-demo-") as workdir:
        mapping = _storage(config, Path(workdir))
        providers: dict[str, Any] = {}
        for step in steps:
            providers.update({code: dict(table) for code, table in step.providers.items()})
        tenants = dict(mapping.get("tenants", {}))
        tenants[DEMO_TENANT] = {"providers": {**tenants.get(DEMO_TENANT, {}).get("providers", {}), **providers}}
        mapping["tenants"] = tenants
        flow = PaymentFlow.from_config(mapping, plugins=plugins, environ={})  # never PAYCORE_REPOSITORY's database
        echo(f"paycore demo: a day at restaurant {DEMO_TENANT!r}")
        echo(f"storage: {_describe(flow.config)}")
        async with flow:
            context = DemoContext(flow=flow, tenant=DEMO_TENANT, echo=echo)
            for step in steps:
                echo("")
                echo(f"== {step.name}  ({step.plugin})")
                await step.run(context)
            echo("")
            await _summary(flow, echo)
    return 0


def _describe(config: PaycoreConfig) -> str:
    """The flow's storage in one line; ``config`` is resolved, so every adapter has its type."""
    stores = " + ".join(f"{store.type}" for store in config.idempotency)
    url = config.repository.settings.get("url")
    where = f" at {redact_url(str(url))}" if url else ""
    return f"repository {config.repository.type}{where}; idempotency {stores}"


async def _summary(flow: PaymentFlow, echo: Callable[[str], None]) -> None:
    payments = await flow.list_payments(tenant=DEMO_TENANT)
    echo(f"== summary: {len(payments)} payments")
    echo(f"{'order':<14} {'provider':<8} {'amount':>12} {'status':<19} {'refunded':>12}  review")
    totals: dict[tuple[str, str], Money] = {}
    for payment in payments:
        refunded = payment.refunded_amount
        echo(
            f"{payment.order_id:<14} {payment.provider:<8} {payment.amount.display():>12} "
            f"{payment.status.value:<19} {refunded.display():>12}  "
            f"{payment.review_reason.value if payment.review_reason else ''}"
        )
        if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED):
            net = (payment.captured_amount or payment.amount) - refunded
            key = (payment.provider, payment.currency)
            totals[key] = totals.get(key, Money.zero(payment.currency)) + net
    for (provider, _currency), total in sorted(totals.items()):
        echo(f"net taken by {provider}: {total.display()}")
