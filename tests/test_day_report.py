"""The day report of the demo's restaurant: exact totals, on memory, SQLite and PostgreSQL, under asyncio and trio."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

import paycore.testing.fake
from paycore import hookimpl
from paycore.demo import DEMO_TENANT
from paycore.errors import PluginLoadError, ValidationError
from paycore.flow import PaymentFlow
from paycore.hookspecs import ReportSectionRegistrar
from paycore.money import Money
from paycore.records import RefundUpdate, utcnow
from paycore.reports import REFUND_LOOKBACK, DayReport, ReportScope, ReportSection, day_report
from paycore.status import RefundStatus
from paycore.testing.demo_day import check_demo_day_report, demo_config, run_demo_day

from .conftest import SECRET, Clock

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def repository(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The repository of the test's flow: the embedded memory store, a SQLite file, or a PostgreSQL database."""
    if request.param == "memory":
        return "memory"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'day.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def demo_flow(repository: str) -> AsyncIterator[PaymentFlow]:
    """A flow that ran the demo's restaurant day on ``repository``."""
    async with PaymentFlow.from_config(demo_config(repository)) as flow:
        await run_demo_day(flow)
        yield flow


def xof(amount: str) -> Money:
    return Money.of(amount, "XOF")


async def test_the_demo_days_report_has_exact_totals(demo_flow: PaymentFlow) -> None:
    check_demo_day_report(await day_report(demo_flow, tenant=DEMO_TENANT, day=utcnow().date(), timezone="Africa/Dakar"))


async def test_another_day_or_another_tenant_reports_nothing(demo_flow: PaymentFlow) -> None:
    yesterday = utcnow().date() - timedelta(days=1)
    for report in (
        await day_report(demo_flow, tenant=DEMO_TENANT, day=yesterday),
        await day_report(demo_flow, tenant="le-baobab", day=utcnow().date()),
        await day_report(demo_flow, tenant=None, day=utcnow().date()),  # no tenant's day: the demo's are chez-awa's
    ):
        assert (report.payment_count, report.by_provider_status, report.captured) == (0, (), ())
        assert (report.refund_count, report.refunded) == (0, ())
        assert report.sections == ()


async def test_the_report_renders_as_a_table_and_as_json(demo_flow: PaymentFlow) -> None:
    report = await day_report(demo_flow, tenant=DEMO_TENANT, day=utcnow().date())
    text = report.render()
    assert "Captured: 53 500 XOF" in text
    assert "Refunded (2): 5 000 XOF" in text
    assert "cash      succeeded               5  26 500 XOF" in text
    data = json.loads(report.to_json())
    assert data["day"] == utcnow().date().isoformat()
    assert data["captured"] == [{"currency": "XOF", "minor_units": 53500}]
    assert data["sections"][0]["rows"][0][0] == "T1"
    assert isinstance(report, DayReport)


@pytest.mark.parametrize(
    ("day", "zone", "wrong"),
    [
        ("04/12/2026", "UTC", "04/12/2026"),
        ("2026-12-04", "Mars/Base", "Mars/Base"),
        ("2026-12-04", "Africa", "Africa"),  # a folder of the zone database, not a zone
        ("9999-12-31", "Pacific/Kiritimati", "9999-12-31"),
        ("0001-01-01", "Pacific/Pago_Pago", "0001-01-01"),
    ],
)
async def test_a_bad_day_or_time_zone_is_refused_naming_it(
    demo_flow: PaymentFlow, day: str, zone: str, wrong: str
) -> None:
    with pytest.raises(ValidationError, match=wrong):
        await day_report(demo_flow, tenant=DEMO_TENANT, day=day, timezone=zone)


async def test_a_datetime_for_the_day_is_refused_asking_for_the_day_itself(demo_flow: PaymentFlow) -> None:
    # A datetime is a date too: it raised TypeError (a datetime compared with a date), not a PaycoreError.
    with pytest.raises(ValidationError, match="not a datetime"):
        await day_report(demo_flow, tenant=DEMO_TENANT, day=utcnow(), timezone="Africa/Dakar")


async def test_a_time_zone_given_as_a_tzinfo_reports_the_same_day_as_its_name(demo_flow: PaymentFlow) -> None:
    from zoneinfo import ZoneInfo

    by_name = await day_report(demo_flow, tenant=DEMO_TENANT, day=utcnow().date(), timezone="Africa/Dakar")
    by_zone = await day_report(demo_flow, tenant=DEMO_TENANT, day=utcnow().date(), timezone=ZoneInfo("Africa/Dakar"))
    assert by_zone == by_name
    assert "(Africa/Dakar)" in by_zone.render()


async def test_a_time_zone_without_a_name_is_shown_by_its_offset(demo_flow: PaymentFlow) -> None:
    from datetime import timezone

    report = await day_report(demo_flow, tenant=DEMO_TENANT, day=utcnow().date(), timezone=timezone(timedelta(hours=1)))
    assert report.timezone == "UTC+01:00"
    assert json.loads(report.to_json())["timezone"] == "UTC+01:00"


async def test_a_tzinfo_that_gives_no_offset_is_refused(demo_flow: PaymentFlow) -> None:
    from datetime import tzinfo

    with pytest.raises(ValidationError, match="gives no offset from UTC"):
        await day_report(demo_flow, tenant=DEMO_TENANT, day=utcnow().date(), timezone=tzinfo())


@pytest.mark.parametrize("zone", [1, b"UTC", 1.5])
async def test_a_time_zone_neither_a_name_nor_a_tzinfo_is_refused(demo_flow: PaymentFlow, zone: object) -> None:
    with pytest.raises(ValidationError, match="a time zone is an IANA name"):
        await day_report(demo_flow, tenant=DEMO_TENANT, day=utcnow().date(), timezone=zone)  # type: ignore[arg-type]


# -- refunds of earlier days' payments -----------------------------------------------------------

DAY = date(2026, 12, 4)
"""The day the refunds of the look-back tests are made."""


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


async def test_a_refund_made_today_of_an_earlier_days_payment_counts_today_within_the_look_back(
    repository: str, clock: Clock
) -> None:
    fake = {"type": "fake", "webhook_secret": SECRET}
    config = {"repository": repository, "tenants": {DEMO_TENANT: {"providers": {"fake": fake}}}}
    look_back_starts = _at(DAY, 0) - REFUND_LOOKBACK  # a month before the day's first instant
    paid: dict[str, str] = {}
    async with PaymentFlow.from_config(config, plugins=[paycore.testing.fake], clock=clock) as flow:
        for order, moment, amount in [
            ("three days before", _at(DAY - timedelta(days=3), 13), "6000"),
            ("in the look-back's first hour", look_back_starts + timedelta(minutes=30), "4000"),
            ("an hour before the look-back", look_back_starts - timedelta(hours=1), "9000"),
        ]:
            clock.now = moment
            checkout = await flow.create_payment(
                amount=xof(amount), provider="fake", order_id=order, tenant=DEMO_TENANT, idempotency_key=order
            )
            paid[order] = checkout.payment.id
        clock.now = _at(DAY, 19)
        for order, payment_id in paid.items():
            key = f"refund of {order}"
            await flow.refund(payment_id, amount=xof("1000"), reason="cold", tenant=DEMO_TENANT, idempotency_key=key)

        today = await day_report(flow, tenant=DEMO_TENANT, day=DAY)
        # The refunds made today of the look-back's payments count today; the day has no payment
        # of its own; the refund of the payment older than the look-back is not in the report.
        assert (today.payment_count, today.by_provider_status, today.captured) == (0, (), ())
        assert (today.refund_count, today.refunded) == (2, (xof("2000"),))
        assert "Refunded (2): 2 000 XOF" in today.render()

        then = await day_report(flow, tenant=DEMO_TENANT, day=DAY - timedelta(days=3))
        assert then.payment_count == 1
        assert [(t.status, t.amount) for t in then.by_provider_status] == [("partially_refunded", xof("6000"))]
        assert then.captured == (xof("6000"),)
        assert (then.refund_count, then.refunded) == (0, ())  # refunded on another day

        oldest = await day_report(flow, tenant=DEMO_TENANT, day=(look_back_starts - timedelta(hours=1)).date())
        assert (oldest.payment_count, oldest.captured, oldest.refund_count) == (1, (xof("9000"),), 0)


async def test_a_refund_confirmed_after_midnight_counts_once_on_the_day_it_succeeded(
    repository: str, clock: Clock
) -> None:
    """Asked at 23:50, pending at the day's close, confirmed at 00:10: the next day's report has it, and the first
    day's, printed again, still does not: no day is told of it twice, none never."""
    fake = {"type": "fake", "webhook_secret": SECRET}
    config = {"repository": repository, "tenants": {DEMO_TENANT: {"providers": {"fake": fake}}}}
    async with PaymentFlow.from_config(config, plugins=[paycore.testing.fake], clock=clock) as flow:
        provider = flow.provider("fake", tenant=DEMO_TENANT)
        assert isinstance(provider, paycore.testing.fake.FakeProvider)
        clock.now = _at(DAY, 20)
        checkout = await flow.create_payment(amount=xof("8000"), provider="fake", order_id="T1-9", tenant=DEMO_TENANT)
        clock.now = _at(DAY, 23, 50)
        provider.script("refund", "pending")
        refund = await flow.refund(checkout.payment.id, amount=xof("3000"), tenant=DEMO_TENANT)
        closing = await day_report(flow, tenant=DEMO_TENANT, day=DAY)
        assert (closing.refund_count, closing.pending_refund_count) == (0, 1)
        clock.now = _at(DAY + timedelta(days=1), 0, 10)
        confirmed = RefundUpdate(RefundStatus.SUCCEEDED, refund.id, amount=xof("3000"))
        delivery = provider.webhook(checkout.payment.id, refunds=[confirmed])
        await flow.handle_webhook("fake", *delivery, tenant=DEMO_TENANT)
        next_day = await day_report(flow, tenant=DEMO_TENANT, day=DAY + timedelta(days=1))
        assert (next_day.refund_count, next_day.refunded, next_day.pending_refund_count) == (1, (xof("3000"),), 0)
        again = await day_report(flow, tenant=DEMO_TENANT, day=DAY)
        assert (again.refund_count, again.refunded, again.pending_refund_count) == (0, (), 0)


async def test_a_refund_a_gateway_holds_pending_for_days_counts_on_the_day_it_is_confirmed(
    repository: str, clock: Clock
) -> None:
    """Paid on the 1st, refunded on the 7th, confirmed by the bank on the 9th: the 9th's report has it."""
    fake = {"type": "fake", "webhook_secret": SECRET}
    config = {"repository": repository, "tenants": {DEMO_TENANT: {"providers": {"fake": fake}}}}
    async with PaymentFlow.from_config(config, plugins=[paycore.testing.fake], clock=clock) as flow:
        provider = flow.provider("fake", tenant=DEMO_TENANT)
        assert isinstance(provider, paycore.testing.fake.FakeProvider)
        clock.now = _at(DAY - timedelta(days=8), 12)
        checkout = await flow.create_payment(amount=xof("8000"), provider="fake", order_id="T1-2", tenant=DEMO_TENANT)
        clock.now = _at(DAY - timedelta(days=2), 12)
        provider.script("refund", "pending")
        refund = await flow.refund(checkout.payment.id, amount=xof("3000"), tenant=DEMO_TENANT)
        clock.now = _at(DAY, 9)
        confirmed = RefundUpdate(RefundStatus.SUCCEEDED, refund.id, amount=xof("3000"))
        await flow.handle_webhook(
            "fake", *provider.webhook(checkout.payment.id, refunds=[confirmed]), tenant=DEMO_TENANT
        )
        reports = [await day_report(flow, tenant=DEMO_TENANT, day=DAY - timedelta(days=n)) for n in range(9)]
        assert [report.refund_count for report in reports] == [1, 0, 0, 0, 0, 0, 0, 0, 0]
        assert reports[0].refunded == (xof("3000"),)


async def test_a_late_confirmation_stays_in_its_days_report_resolved_or_not_beside_a_more_pressing_review(
    repository: str, clock: Clock
) -> None:
    fake_settings = {"type": "fake", "webhook_secret": SECRET}
    config = {
        "repository": repository,
        "payment_ttl": 1800,
        "tenants": {DEMO_TENANT: {"providers": {"fake": fake_settings}}},
    }
    clock.now = _at(DAY, 12)
    async with PaymentFlow.from_config(config, plugins=[paycore.testing.fake], clock=clock) as flow:
        fake = flow.provider("fake", tenant=DEMO_TENANT)
        assert isinstance(fake, paycore.testing.fake.FakeProvider)
        late, plain = [], []
        for order in ("T4-17", "T4-18"):
            fake.script("initiate", "pending")
            checkout = await flow.create_payment(
                amount=xof("7500"), provider="fake", order_id=order, tenant=DEMO_TENANT, idempotency_key=order
            )
            late.append(checkout.payment.id)
        fake.script("initiate", "pending")
        checkout = await flow.create_payment(amount=xof("2000"), provider="fake", order_id="T4-19", tenant=DEMO_TENANT)
        plain.append(checkout.payment.id)
        clock.advance(hours=1)
        await flow.expire_stale()
        for payment_id in late:  # the customer paid after all: confirmed after the payment expired here
            fake.settle(payment_id, paycore.testing.fake.Outcome.SUCCEEDED)
            body, headers = fake.webhook(payment_id)
            await flow.handle_webhook("fake", body, headers, tenant=DEMO_TENANT)
        await flow.resolve_review(late[0], note="customer served; payment kept", tenant=DEMO_TENANT)
        await flow.set_fraud_status(late[0], "review", message="refund asked at another till", tenant=DEMO_TENANT)
        await flow.set_fraud_status(late[1], "review", message="card seen at two tills", tenant=DEMO_TENANT)

        report = await day_report(flow, tenant=DEMO_TENANT, day=DAY)
        items = {item.payment_id: item for item in report.late_confirmations}
        assert list(items) == late
        assert [(item.reason, item.resolved) for item in items.values()] == [
            ("late_confirmation", True),
            ("late_confirmation", False),
        ]
        assert "provider confirmed 7500 XOF after the payment was expired here" in items[late[0]].message
        assert "late_confirmation (resolved)" in report.render()


# -- sections from plugins -----------------------------------------------------------------------


class TipsPlugin:
    """A plugin adding a "Tips" section to the report (before the cash drawers), or failing to."""

    __name__ = "tips"

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail

    @hookimpl
    def paycore_report_sections(self, register: ReportSectionRegistrar) -> None:
        if self.fail:
            raise RuntimeError("the tips table is missing")

        async def tips(scope: ReportScope) -> ReportSection:
            return ReportSection(title="Tips", columns=("day",), rows=((scope.day.isoformat(),),))

        register("tips", build=tips, order=5)


async def test_a_plugins_section_is_shown_in_order_under_its_plugins_name() -> None:
    async with PaymentFlow.from_config(demo_config(), plugins=[TipsPlugin()]) as flow:
        await run_demo_day(flow)
        report = await day_report(flow, tenant=DEMO_TENANT, day=utcnow().date())
    assert [(s.title, s.plugin) for s in report.sections] == [("Tips", "tips"), ("Cash drawers", "cash")]
    assert report.sections[0].rows == ((utcnow().date().isoformat(),),)
    assert "Tips (tips)" in report.render()


async def test_a_plugin_failing_to_register_its_section_stops_the_report_naming_it() -> None:
    async with PaymentFlow.from_config(demo_config(), plugins=[TipsPlugin(fail=True)]) as flow:
        with pytest.raises(PluginLoadError, match=r"plugin 'tips' failed .*the tips table is missing"):
            await day_report(flow, tenant=DEMO_TENANT, day=utcnow().date())


async def test_a_tenants_day_runs_in_its_own_time_zone_unless_the_report_names_another(
    repository: str, clock: Clock
) -> None:
    """Without a time-zone setting every day ran midnight to midnight UTC: a Bogotá restaurant's 20:00 sale
    was in the next day's report unless the operator gave ``--timezone`` every time."""
    fake = {"type": "fake", "webhook_secret": SECRET}
    config = {
        "repository": repository,
        "timezone": "Europe/Paris",
        "tenants": {
            "bogota": {"timezone": "America/Bogota", "providers": {"fake": fake}},
            "paris": {"providers": {"fake": fake}},
        },
    }
    evening = _at(DAY + timedelta(days=1), 1)  # 20:00 the day before in Bogotá, 02:00 in Paris
    async with PaymentFlow.from_config(config, plugins=[paycore.testing.fake], clock=clock) as flow:
        clock.now = evening
        for tenant in ("bogota", "paris"):
            await flow.create_payment(amount=xof("5000"), provider="fake", order_id="late", tenant=tenant)
        clock.now = evening + timedelta(days=1)
        bogota = await day_report(flow, tenant="bogota", day=DAY)
        assert (bogota.timezone, bogota.payment_count, bogota.captured) == ("America/Bogota", 1, (xof("5000"),))
        paris = await day_report(flow, tenant="paris", day=DAY + timedelta(days=1))
        assert (paris.timezone, paris.payment_count) == ("Europe/Paris", 1)
        named = await day_report(flow, tenant="bogota", day=DAY, timezone="UTC")
        assert (named.timezone, named.payment_count) == ("UTC", 0)
