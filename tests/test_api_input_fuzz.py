"""Fuzzed arguments of the public ``PaymentFlow`` API: bad input is refused with a paycore error and changes nothing.

Hypothesis draws the arguments of ``create_payment``, ``refund``, ``capture``,
``cancel``, ``get_payment``, ``list_events`` and ``refresh``: amounts of the
wrong type, zero, negative or past a ``BIGINT``, foreign and unsupported
currencies, over-refunds and over-captures, payments in the wrong state,
unknown providers, wrong tenants, odd payment ids, idempotency keys of the
wrong type or length, with control characters, or reused for another request.

The rule: a bad argument is refused with a :class:`~paycore.errors.PaycoreError`
of the class that names it (never a ``TypeError``, ``KeyError``, ``RecursionError``,
``UnicodeEncodeError``...), and a refused call changes nothing: the stored
payments (``list_payments``) and their histories (``list_events``), the fake
providers' calls, and the idempotency keys (each keyed call of the example
still replays its first result; a fresh key of the refused call stays free).
An accepted call leaves consistent money: captured at most the amount,
succeeded plus pending refunds at most the captured amount, all in the
payment's currency.

Each property runs under asyncio and trio; the ``create_payment`` and
``refund`` properties run on the memory repository and on SQLite, whose adapter
converts what it stores (``BIGINT`` amounts, JSON documents). Every example
works on payments of its own, with keys of its own, in a flow shared by the
examples of one test. ``PAYCORE_API_FUZZ_EXAMPLES`` sets how many examples each
property draws (100 by default).

What the fuzz found is kept at the end of the file, each case with its minimal
input, now refused as the rule says (under asyncio and trio, as everything here).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import string
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import pytest
from attrs import define, field, frozen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paycore_sqlalchemy.plugin
from paycore.currencies import CURRENCY_EXPONENTS
from paycore.errors import (
    CaptureExceedsAuthorized,
    CurrencyMismatch,
    IdempotencyKeyReused,
    InvalidAmount,
    InvalidTransition,
    MoneyError,
    PaycoreError,
    PaymentNotFound,
    ProviderNotEnabled,
    RefundExceedsCaptured,
    UnsupportedCurrency,
    UnsupportedOperation,
    ValidationError,
)
from paycore.flow import PaymentFlow
from paycore.money import MAX_MINOR_UNITS, Money
from paycore.records import Checkout, Customer, LineItem, Payment, PaymentEvent
from paycore.status import PaymentStatus, RefundStatus
from paycore.testing.fake import FakeProvider
from paycore.testing.fuzz import TRICKY_VALUES, json_values

from .conftest import SECRET, base_config

pytestmark = pytest.mark.anyio

S = PaymentStatus
"""Short for :class:`~paycore.status.PaymentStatus`."""

TENANT: Final = "chez-awa"
"""The one tenant with a provider of its own (``fake``)."""
OTHER_TENANT: Final = "chez-fatou"
"""A tenant with no provider and no payment."""
EXAMPLES: Final = int(os.environ.get("PAYCORE_API_FUZZ_EXAMPLES", "100"))
"""How many examples each property draws."""
FUZZ: Final = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""The settings of every property: one flow per test (a function-scoped fixture) serves all its examples."""

# -- the flows the examples run on ---------------------------------------------------------------------


@frozen
class Replay:
    """A keyed call of the example and its first result, which the same call must replay."""

    what: str
    call: Callable[[], Awaitable[object]]
    result: object


@frozen
class Snapshot:
    """What a refused call must leave as it was."""

    payments: tuple[Payment, ...]
    """Every payment stored since the example started, with its refunds, version and event count."""
    events: tuple[tuple[PaymentEvent, ...], ...]
    """The history of each payment the example made."""
    calls: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    """The calls each fake provider received."""


@define(repr=False)
class World:
    """A flow shared by the examples of one test; each example makes its own payments and keys in it."""

    flow: PaymentFlow
    repository: str
    watched: list[str] = field(factory=list)
    """The payments of the current example."""
    replays: list[Replay] = field(factory=list)
    """The keyed calls of the current example."""
    tag: str = ""
    """The current example's prefix of keys (keys of two examples never collide)."""
    started: datetime | None = None
    """When the current example started, by the flow's clock: every payment made since is the example's."""
    _tags: Iterator[int] = field(factory=itertools.count)

    def __repr__(self) -> str:
        return f"<World {self.repository} example {self.tag}>"

    def next_example(self) -> None:
        """Start an example: a new key prefix, no payments or keys of its own yet."""
        self.tag = f"x{next(self._tags)}"
        self.started = self.flow.now()
        self.watched.clear()
        self.replays.clear()

    def key(self, name: str) -> str:
        """A key the example's own setup uses (``<tag>:<name>``): no drawn key is ever one of them."""
        return f"{self.tag}:{name}"

    def fresh_key(self, suffix: str) -> str:
        """A drawn valid key of this example only (``<tag>-<suffix>``)."""
        return f"{self.tag}-{suffix}"

    def fake(self, tenant: str | None = None, code: str = "fake") -> FakeProvider:
        """The fake provider ``code`` of ``tenant``."""
        provider = self.flow.provider(code, tenant=tenant)
        assert isinstance(provider, FakeProvider)
        return provider

    def providers(self) -> list[tuple[str, FakeProvider]]:
        """Every enabled provider, named ``tenant/code``."""
        found = [(f"-/{code}", p) for code, p in self.flow.providers().items()]
        found += [(f"{TENANT}/{code}", p) for code, p in self.flow.providers(tenant=TENANT).items()]
        assert all(isinstance(p, FakeProvider) for _, p in found)
        return sorted(found, key=lambda item: item[0])  # type: ignore[return-value]

    async def snapshot(self) -> Snapshot:
        """The example's payments and any made since it started, their histories, and the providers' calls.

        Payments of earlier examples are left out: no call of this example names them.
        """
        payments = tuple(await self.flow.list_payments(created_from=self.started))
        events = tuple([tuple(await self.flow.list_events(payment_id)) for payment_id in self.watched])
        calls = tuple((name, tuple(provider.calls)) for name, provider in self.providers())
        return Snapshot(payments, events, calls)

    async def create(self, *, key: str | None = None, **request: Any) -> Checkout:
        """Create a payment of this example (keyed: its result must replay)."""
        checkout = await self.flow.create_payment(idempotency_key=key, **request)
        self.watched.append(checkout.payment.id)
        if key is not None:
            self.replays.append(
                Replay(f"create {key}", _call(self.flow.create_payment, idempotency_key=key, **request), checkout)
            )
        return checkout

    async def refund(self, payment_id: str, *, key: str, **request: Any) -> None:
        """Refund part of a payment of this example under ``key`` (its result must replay)."""
        refund = await self.flow.refund(payment_id, idempotency_key=key, **request)
        self.replays.append(
            Replay(f"refund {key}", _call(self.flow.refund, payment_id, idempotency_key=key, **request), refund)
        )

    async def paid(self, amount: Money, *, provider: str = "fake", tenant: str | None = None) -> Payment:
        """A payment of this example, captured at once (created under a key of the example)."""
        checkout = await self.create(
            key=self.key("paid"), amount=amount, provider=provider, order_id=f"{self.tag}-paid", tenant=tenant
        )
        assert checkout.payment.status is S.SUCCEEDED
        return checkout.payment

    async def check_replays(self, before: Snapshot | None = None) -> None:
        """Every keyed call of the example replays its first result and changes nothing (``before``: taken now)."""
        if not self.replays:
            return
        if before is None:
            before = await self.snapshot()
        for replay in self.replays:
            again = await replay.call()
            assert again == replay.result, f"the key of {replay.what} no longer replays its first result"
        assert await self.snapshot() == before, "replaying a keyed call changed something"

    async def refused(
        self, call: Callable[[], Awaitable[object]], expected: type[PaycoreError] | tuple[type[PaycoreError], ...]
    ) -> PaycoreError:
        """Run ``call``: it must raise ``expected`` and change nothing (the keys still replay)."""
        before = await self.snapshot()
        try:
            result = await call()
        except PaycoreError as error:
            refusal = error
        else:
            raise AssertionError(f"accepted: the call returned a {type(result).__name__}")
        assert isinstance(refusal, expected), f"refused with {type(refusal).__name__}: {refusal!s:.300}"
        assert await self.snapshot() == before, "a refused call changed the payments, their events or provider calls"
        await self.check_replays(before)
        return refusal

    async def assert_key_free(self, drawn: object, tenant: object) -> None:
        """A fresh key (``drawn``) of a refused call is still free in its tenant's key space: it makes a payment."""
        if not isinstance(drawn, FreshKey) or tenant not in (None, TENANT):
            return
        key = self.fresh_key(drawn.suffix)
        known = {payment.id for payment in await self.flow.list_payments(created_from=self.started)}
        checkout = await self.flow.create_payment(
            amount=Money.of("100", "XOF"),
            provider="fake",
            order_id=f"{self.tag}-free",
            tenant=tenant,
            idempotency_key=key,
        )
        assert checkout.payment.id not in known, f"key {key!r} was not free after a refused call"


def _call(method: Callable[..., Awaitable[object]], *args: Any, **kwargs: Any) -> Callable[[], Awaitable[object]]:
    """``method(*args, **kwargs)``, to be awaited later."""
    return lambda: method(*args, **kwargs)


def world_config(repository_url: str | None) -> dict[str, Any]:
    """The tests' configuration with a tenant of its own, on the memory repository or at ``repository_url``."""
    extra: dict[str, Any] = {"tenants": {TENANT: {"providers": {"fake": {"type": "fake", "webhook_secret": SECRET}}}}}
    if repository_url is not None:
        extra["repository"] = repository_url
    return base_config(**extra)


@pytest.fixture
async def memory_world(make_flow: Callable[..., PaymentFlow]) -> AsyncIterator[World]:
    """A world on the memory repository."""
    async with make_flow(world_config(None)) as flow:
        yield World(flow, "memory")


@pytest.fixture
async def sqlite_world(make_flow: Callable[..., PaymentFlow], tmp_path: Path) -> AsyncIterator[World]:
    """A world on a SQLite file of this test (the SQL adapter, its schema migrated on first use)."""
    url = f"sqlite:///{tmp_path / 'paycore.db'}"
    async with make_flow(world_config(url), plugins=(paycore_sqlalchemy.plugin,)) as flow:
        yield World(flow, "sqlite")


@pytest.fixture(params=["memory", "sqlite"])
def world(request: pytest.FixtureRequest) -> World:
    """A world on the memory repository, then on SQLite."""
    found = request.getfixturevalue(f"{request.param}_world")
    assert isinstance(found, World)
    return found


# -- what is checked of an accepted call ---------------------------------------------------------------------


def assert_consistent(payment: Payment) -> None:
    """The payment's money adds up: captured <= authorized <= amount, refunds <= captured, one currency."""
    currency = payment.currency
    assert 0 < payment.amount.minor_units <= MAX_MINOR_UNITS
    for held in (payment.authorized_amount, payment.captured_amount):
        if held is not None:
            assert held.currency == currency
            assert 0 <= held.minor_units <= payment.amount.minor_units
    if payment.authorized_amount is not None and payment.captured_amount is not None:
        assert payment.captured_amount <= payment.authorized_amount
    for refund in payment.refunds:
        assert refund.amount.currency == currency
        assert refund.amount.is_positive()
        assert refund.payment_id == payment.id
    held = sum(r.amount.minor_units for r in payment.refunds if r.status is not RefundStatus.FAILED)
    captured = payment.captured_amount.minor_units if payment.captured_amount is not None else 0
    assert held <= captured, f"{held} refunded or pending of {captured} captured"


# -- strategies ---------------------------------------------------------------------------------------------

PRINTABLE: Final = st.characters(categories=("L", "M", "N", "P", "S"), codec="utf-8")
"""Printable characters other than spaces (what ``str.isprintable`` accepts, but the space)."""
TEXT_CHARS: Final = st.one_of(PRINTABLE, st.sampled_from(" \t\n"))
"""What free text (a description, a reason) is made of."""
NON_PRINTABLE: Final = st.one_of(
    st.characters(categories=("Cc", "Cf", "Cs", "Co", "Zl", "Zp")),
    st.characters(categories=("Zs",), exclude_characters=" "),
)
"""Control, format and private characters, lone surrogates and separators other than the space."""
CURRENCIES: Final = st.sampled_from(sorted(CURRENCY_EXPONENTS))
UNITS: Final = st.one_of(st.integers(1, 10**6), st.integers(1, MAX_MINOR_UNITS))
"""Positive counts of minor units a store can hold, small ones more often."""
JUNK: Final = st.one_of(
    json_values(),
    st.sampled_from(TRICKY_VALUES),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=8),
    st.builds(object),
)
"""Values that are not a ``Money``: JSON values, numbers, text, bytes, objects."""
SOME_HASHABLE_JUNK: Final = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=8),
    st.tuples(st.text(max_size=3)),
    st.sampled_from([v for v in TRICKY_VALUES if isinstance(v, Hashable) and v is not None]),
)
"""Odd values other than ``None`` a dictionary can still be looked up with (unhashable ones: a case found, below)."""
HASHABLE_JUNK: Final = st.none() | SOME_HASHABLE_JUNK
SOME_ENCODABLE_JUNK: Final = SOME_HASHABLE_JUNK.filter(lambda v: not isinstance(v, str) or _encodable(v))
""":data:`SOME_HASHABLE_JUNK` without lone surrogates (which SQLite could not bind: a case found, below)."""
BINDABLE_JUNK: Final = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.binary(max_size=8),
)
"""Odd payment ids SQLite can bind: no tuple, ``Decimal``, int past 64 bits or lone surrogate (a case found, below)."""
BAD_KEYS: Final = st.one_of(
    st.just(""),
    st.builds(
        lambda text, char, at: text[:at] + char + text[at:],
        st.text(PRINTABLE, max_size=8),
        NON_PRINTABLE,
        st.integers(0, 8),
    ),
    st.builds(lambda char, n: char * n, PRINTABLE, st.integers(256, 2000)),
    st.integers(),
    st.floats(),
    st.binary(max_size=8),
    st.lists(st.text(PRINTABLE, max_size=3), max_size=2),
    st.sampled_from([v for v in TRICKY_VALUES if v is not None and not isinstance(v, str)]),
)
"""Idempotency keys to refuse: empty, with a character that is not printable, longer than 255, not a string."""
KEY_SUFFIXES: Final = st.text(PRINTABLE, min_size=1, max_size=200)
"""What follows an example's prefix in a valid key (a key holds at most 255 characters)."""
ORDER_IDS: Final = st.text(PRINTABLE, min_size=1, max_size=64)
DESCRIPTIONS: Final = st.text(TEXT_CHARS, max_size=80)
JSON_LEAVES: Final = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(TEXT_CHARS, max_size=20),
)
METADATA: Final = st.dictionaries(
    st.text(PRINTABLE, max_size=12),
    st.recursive(
        JSON_LEAVES,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(PRINTABLE, max_size=8), inner, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)
"""Metadata that is JSON: string keys, finite numbers, text without lone surrogates or control characters."""
CUSTOMERS: Final = st.one_of(
    st.none(),
    st.builds(
        Customer,
        email=st.none() | st.from_regex(r"[a-z0-9.]{1,12}@[a-z0-9]{1,10}\.[a-z]{2,4}", fullmatch=True),
        name=st.none() | st.text(TEXT_CHARS.filter(lambda c: c not in "\t\n"), min_size=1, max_size=30),
        phone=st.none() | st.from_regex(r"\+?[0-9]{6,14}", fullmatch=True),
    ),
)
RETURN_URLS: Final = st.none() | st.builds(
    "https://shop.example/return/{}".format, st.text(string.ascii_letters + string.digits + "-_", max_size=20)
)


def _encodable(text: str) -> bool:
    """True when UTF-8 can encode ``text`` (it holds no lone surrogate)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def line_items(currency: str) -> st.SearchStrategy[LineItem]:
    """A valid line item priced in ``currency``."""
    return st.builds(
        LineItem,
        name=st.text(PRINTABLE, min_size=1, max_size=20),
        quantity=st.integers(1, 1000),
        unit_price=st.integers(0, 10**9).map(lambda n: Money.minor(n, currency)),
    )


@frozen
class FreshKey:
    """A valid key of the example: ``World.fresh_key(suffix)``."""

    suffix: str


@frozen
class EarlierKey:
    """The key of the example's earlier keyed call (reused for another request)."""


def resolve_key(world: World, key: object) -> object:
    """The key a call carries: a fresh key of the example, or the drawn (bad) value as it is."""
    return world.fresh_key(key.suffix) if isinstance(key, FreshKey) else key


@st.composite
def valid_creates(draw: st.DrawFn) -> dict[str, Any]:
    """The arguments of a ``create_payment`` every provider it names accepts."""
    provider, tenant = draw(st.sampled_from([("fake", None), ("limited", None), ("fake", TENANT)]))
    currency = "XOF" if provider == "limited" else draw(CURRENCIES)
    return {
        "amount": Money.minor(draw(UNITS), currency),
        "provider": provider,
        "tenant": tenant,
        "order_id": draw(ORDER_IDS),
        "description": draw(DESCRIPTIONS),
        "customer": draw(CUSTOMERS),
        "items": tuple(draw(st.lists(line_items(currency), max_size=3))),
        "metadata": draw(st.none() | METADATA),
        "capture": True if provider == "limited" else draw(st.booleans()),
        "return_url": draw(RETURN_URLS),
    }


@st.composite
def bad_creates(draw: st.DrawFn) -> tuple[dict[str, Any], object, type[PaycoreError]]:
    """A ``create_payment`` with one bad argument, its key, and the error that must refuse it."""
    request = draw(valid_creates())
    currency = request["amount"].currency
    key: object = draw(st.none() | st.builds(FreshKey, KEY_SUFFIXES))
    limited = {"provider": "limited", "tenant": None, "capture": True, "items": ()}
    choice = draw(
        st.sampled_from(
            [
                *("junk_amount", "not_positive", "too_large", "unsupported_currency"),
                *("provider", "provider_of_tenant", "tenant", "order_id", "key", "item_currency", "no_authorize"),
            ]
        )
    )
    bad: dict[str, Any]
    if choice == "junk_amount":
        bad, expected = {"amount": draw(JUNK)}, InvalidAmount
    elif choice == "not_positive":
        bad = {"amount": Money.minor(draw(st.integers(-(10**30) + 1, 0)), currency)}
        expected = InvalidAmount
    elif choice == "too_large":
        bad = {"amount": Money.minor(draw(st.integers(MAX_MINOR_UNITS + 1, 10**30 - 1)), currency)}
        expected = InvalidAmount
    elif choice == "unsupported_currency":
        other = draw(CURRENCIES.filter(lambda c: c != "XOF"))
        bad, expected = {**limited, "amount": Money.minor(draw(UNITS), other)}, UnsupportedCurrency
    elif choice == "provider":
        bad = {"provider": draw(HASHABLE_JUNK.filter(lambda v: v not in ("fake", "limited")))}
        expected = ProviderNotEnabled
    elif choice == "provider_of_tenant":
        bad, expected = {"provider": "limited", "tenant": TENANT}, ProviderNotEnabled
    elif choice == "tenant":
        bad, expected = (
            {"tenant": draw(SOME_HASHABLE_JUNK.filter(lambda v: v != TENANT))},
            ProviderNotEnabled,
        )
    elif choice == "order_id":
        bad = {"order_id": draw(st.just("") | JUNK.filter(lambda v: not isinstance(v, str)))}
        expected = ValidationError
    elif choice == "key":
        key, bad, expected = draw(BAD_KEYS), {}, ValidationError
    elif choice == "item_currency":
        other = draw(CURRENCIES.filter(lambda c: c != currency))
        bad, expected = {"items": (*request["items"], draw(line_items(other)))}, CurrencyMismatch
    else:
        bad = {**limited, "amount": Money.minor(draw(UNITS), "XOF"), "capture": False}
        expected = UnsupportedOperation
    return {**request, **bad}, key, expected


def _mutated(request: dict[str, Any], what: str) -> dict[str, Any]:
    """``request`` with ``what`` changed to another valid value (a different request for the same key)."""
    changed = dict(request)
    if what == "amount":
        amount = request["amount"]
        step = -1 if amount.minor_units == MAX_MINOR_UNITS else 1
        changed["amount"] = Money.minor(amount.minor_units + step, amount.currency)
    elif what == "order_id":
        changed["order_id"] = request["order_id"] + "-2"
    elif what == "description":
        changed["description"] = request["description"] + "!"
    elif what == "metadata":
        metadata = dict(request["metadata"] or {})
        metadata["~changed~"] = "2" if metadata.get("~changed~") == "1" else "1"
        changed["metadata"] = metadata
    elif what == "capture" and request["provider"] == "fake":
        changed["capture"] = not request["capture"]
    elif what == "return_url":
        changed["return_url"] = None if request["return_url"] else "https://shop.example/elsewhere"
    elif what == "customer":
        customer = request["customer"]
        changed["customer"] = (
            Customer(name="someone else") if customer is None or customer.name != "someone else" else None
        )
    else:
        changed["items"] = (*request["items"], LineItem("one more", 1, Money.zero(request["amount"].currency)))
    return changed


# -- create_payment -------------------------------------------------------------------------------------------


@FUZZ
@given(case=bad_creates())
async def test_a_create_payment_with_a_bad_argument_is_refused_and_changes_nothing(
    world: World, case: tuple[dict[str, Any], object, type[PaycoreError]]
) -> None:
    """Bad amounts, currencies, providers, tenants, order ids, keys, items: refused as such, nothing stored."""
    request, key, expected = case
    world.next_example()
    await world.paid(Money.of("5000", "XOF"))  # a keyed payment of the example, whose key must still replay
    call_key = resolve_key(world, key)
    await world.refused(_call(world.flow.create_payment, idempotency_key=call_key, **request), expected)
    await world.assert_key_free(key, request["tenant"])


@FUZZ
@given(request=valid_creates(), key=st.none() | st.builds(FreshKey, KEY_SUFFIXES))
async def test_a_valid_create_payment_is_stored_as_asked_and_replays(
    world: World, request: dict[str, Any], key: FreshKey | None
) -> None:
    """Accepted: stored as asked (whatever the repository converts), money consistent, one provider call, replayed."""
    world.next_example()
    provider = world.fake(request["tenant"], request["provider"])
    calls_before = list(provider.calls)
    checkout = await world.create(key=resolve_key(world, key), **request)  # type: ignore[arg-type]
    payment = checkout.payment
    stored = await world.flow.get_payment(payment.id)
    assert stored == payment
    asked = {name: value for name, value in request.items() if name != "metadata"}
    assert {name: getattr(stored, name) for name in asked} == asked
    assert dict(stored.metadata) == (request["metadata"] or {})
    assert stored.status is (S.SUCCEEDED if request["capture"] else S.AUTHORIZED)
    assert_consistent(stored)
    assert provider.calls == [*calls_before, ("initiate", payment.id)]
    events = await world.flow.list_events(payment.id)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].kind == "created"
    await world.check_replays()


@FUZZ
@given(
    request=valid_creates(),
    suffix=KEY_SUFFIXES,
    what=st.sampled_from(
        ["amount", "order_id", "description", "metadata", "capture", "return_url", "customer", "items"]
    ),
)
async def test_a_key_reused_for_another_create_is_refused_and_keeps_its_first_result(
    world: World, request: dict[str, Any], suffix: str, what: str
) -> None:
    """The same key with another request: ``IdempotencyKeyReused``, nothing changed; another tenant's key is another."""
    world.next_example()
    key = world.fresh_key(suffix)
    await world.create(key=key, **request)
    other = _mutated(request, what)
    await world.refused(_call(world.flow.create_payment, idempotency_key=key, **other), IdempotencyKeyReused)
    elsewhere = {**other, "provider": "fake", "tenant": None if request["tenant"] == TENANT else TENANT}
    checkout = await world.create(key=key, **elsewhere)
    assert checkout.payment.tenant == elsewhere["tenant"]
    await world.check_replays()


# -- refund ----------------------------------------------------------------------------------------------------


@frozen
class NearId:
    """An id close to the real one: ``kind`` says how it differs."""

    kind: str

    def of(self, payment: Payment) -> str:
        """The id this near miss makes of ``payment``'s."""
        real = payment.id
        return {
            "upper": real.upper(),
            "suffix": real + "x",
            "prefix": " " + real,
            "truncated": real[:-1],
            "nul": real + "\x00",
            "order_id": payment.order_id,
            "external_id": payment.external_id or "",
            "refund_id": payment.refunds[0].id if payment.refunds else "re_" + real,
        }[self.kind]


@frozen
class RealId:
    """The payment's own id."""


NEAR_IDS: Final = st.sampled_from(
    ["upper", "suffix", "prefix", "truncated", "nul", "order_id", "external_id", "refund_id"]
).map(NearId)


def target_id(target: object, payment: Payment) -> object:
    """The payment id a call names: the real one, a near miss of it, or a drawn odd value."""
    if isinstance(target, RealId):
        return payment.id
    if isinstance(target, NearId):
        return target.of(payment)
    return target


def _scope(tenant: object) -> str:
    """The key space of ``tenant`` (``paycore.keys.scope_of``)."""
    return "" if tenant is None else f"t:{tenant}"


@frozen
class MoneyPlan:
    """A refund or capture on a fresh payment of the example, with any of its arguments possibly bad."""

    provider: str
    owner: str | None
    """The payment's tenant."""
    units: int
    """The payment's amount, in minor units of ``currency``."""
    currency: str
    earlier: int | None
    """A first refund (or capture) of that many minor units, under a key of the example."""
    amount: object
    key: object
    tenant: object
    """The tenant the call is made for."""
    target: object
    reason: str = ""
    metadata: Mapping[str, Any] | None = None


def _amounts(currency: str, units: int, *, junk: bool) -> st.SearchStrategy[object]:
    """An amount for a refund or capture of a payment of ``units`` minor units of ``currency``, or a bad one
    (``junk``: also values that are not a ``Money``)."""
    strategies = [
        st.none(),
        st.integers(1, units).map(lambda n: Money.minor(n, currency)),
        st.integers(1, units).map(lambda n: Money.minor(n, currency)),
        st.integers(-(10**30) + 1, 0).map(lambda n: Money.minor(n, currency)),
        st.integers(units + 1, 10**30 - 1).map(lambda n: Money.minor(n, currency)),
        st.builds(Money.minor, UNITS, CURRENCIES.filter(lambda c: c != currency)),
    ]
    return st.one_of(*strategies, JUNK.filter(lambda v: v is not None)) if junk else st.one_of(*strategies)


@st.composite
def money_plans(draw: st.DrawFn, *, refunds: bool) -> MoneyPlan:
    """A refund (``refunds``) or a capture of a fresh payment, some of its arguments bad.

    A capture's amount is ``None`` or a ``Money``: anything else is refused (``capture-amount-unchecked``, below).
    """
    provider, owner = draw(
        st.sampled_from([("fake", None), ("fake", TENANT)] + ([("limited", None)] if refunds else []))
    )
    currency = "XOF" if provider == "limited" else draw(CURRENCIES)
    units = draw(UNITS)
    earlier = draw(st.none() | st.integers(1, units))
    wrong_tenants = SOME_ENCODABLE_JUNK.filter(lambda v: v != owner)
    return MoneyPlan(
        provider=provider,
        owner=owner,
        units=units,
        currency=currency,
        earlier=earlier,
        amount=draw(_amounts(currency, units, junk=refunds)),
        key=draw(st.none() | st.builds(FreshKey, KEY_SUFFIXES) | st.just(EarlierKey()) | BAD_KEYS),
        tenant=draw(st.sampled_from([owner, None]) | st.just(OTHER_TENANT) | wrong_tenants),
        target=draw(st.just(RealId()) | st.just(RealId()) | NEAR_IDS | BINDABLE_JUNK),
        reason=draw(DESCRIPTIONS) if refunds else "",
        metadata=draw(st.none() | METADATA) if refunds else None,
    )


def _visible(plan: MoneyPlan) -> bool:
    """Whether the call names the payment, for a tenant that sees it."""
    return isinstance(plan.target, RealId) and (plan.tenant is None or plan.tenant == plan.owner)


def _key_tenant(plan: MoneyPlan) -> str | None:
    """The tenant whose key space the call claims its key in: the one it names, else that of the payment it names
    (a key lives in its payment's tenant's space, whoever calls: ``paycore.actions``)."""
    return plan.tenant if plan.tenant is not None or not isinstance(plan.target, RealId) else plan.owner


def _key_faults(world: World, plan: MoneyPlan, earlier_key_scope: str) -> list[type[PaycoreError]]:
    """The errors the call's key alone may be refused with."""
    if isinstance(plan.key, EarlierKey):
        return [IdempotencyKeyReused] if _scope(_key_tenant(plan)) == earlier_key_scope else []
    if plan.key is None or isinstance(plan.key, FreshKey):
        return []
    return [ValidationError]


def refund_faults(world: World, plan: MoneyPlan, payment: Payment) -> list[type[PaycoreError]]:
    """Every error the refund may be refused with (none: it must be accepted)."""
    faults = _key_faults(world, plan, _scope(plan.owner))
    if not _visible(plan):
        faults.append(PaymentNotFound)
    if plan.amount is not None and not isinstance(plan.amount, Money):
        faults.append(InvalidAmount)  # refused as it is, before the payment is looked at
    if payment.status not in (S.SUCCEEDED, S.PARTIALLY_REFUNDED):
        return [*faults, InvalidTransition]
    refundable = payment.refundable_amount
    amount = plan.amount
    if amount is None:
        amount = refundable
    if not isinstance(amount, Money):
        faults.append(InvalidAmount)
    elif amount.currency != payment.currency:
        faults.append(CurrencyMismatch)
    elif not amount.is_positive():
        faults.append(RefundExceedsCaptured if plan.amount is None else InvalidAmount)
    elif amount > refundable:
        faults.append(RefundExceedsCaptured)
    elif plan.provider == "limited" and (amount != payment.captured_amount or payment.refunds):
        faults.append(UnsupportedOperation)
    return faults


@FUZZ
@given(plan=money_plans(refunds=True))
async def test_a_refund_is_refused_without_a_change_or_accepted_with_consistent_money(
    world: World, plan: MoneyPlan
) -> None:
    """Over-refunds, foreign or junk amounts, odd ids, wrong tenants, bad or reused keys: refused; the rest adds up."""
    world.next_example()
    payment = await world.paid(Money.minor(plan.units, plan.currency), provider=plan.provider, tenant=plan.owner)
    earlier_key = world.key("paid")
    if plan.earlier is not None and plan.provider == "fake":
        earlier_key = world.key("earlier")
        await world.refund(
            payment.id,
            key=earlier_key,
            amount=Money.minor(plan.earlier, plan.currency),
            reason="\u2603 earlier",
            tenant=plan.owner,
        )
    payment = await world.flow.get_payment(payment.id)
    key = earlier_key if isinstance(plan.key, EarlierKey) else resolve_key(world, plan.key)
    faults = refund_faults(world, plan, payment)
    call = _call(
        world.flow.refund,
        target_id(plan.target, payment),
        amount=plan.amount,
        reason=plan.reason,
        metadata=plan.metadata,
        idempotency_key=key,
        tenant=plan.tenant,
    )
    if faults:
        await world.refused(call, tuple(faults))
        await world.assert_key_free(plan.key, _key_tenant(plan))
        return
    provider = world.fake(plan.owner, plan.provider)
    calls_before = list(provider.calls)
    refund = await call()
    after = await world.flow.get_payment(payment.id)
    wanted = plan.amount if plan.amount is not None else payment.refundable_amount
    assert refund == after.refund(refund.id)
    assert (refund.amount, refund.status, refund.reason) == (wanted, RefundStatus.SUCCEEDED, plan.reason)
    assert dict(refund.metadata) == (plan.metadata or {})
    assert after.refunded_amount == payment.refunded_amount + wanted
    assert after.status is (S.REFUNDED if after.refundable_amount.is_zero() else S.PARTIALLY_REFUNDED)
    assert_consistent(after)
    assert provider.calls == [*calls_before, ("refund", payment.id)]
    if key is not None:
        world.replays.append(Replay("the refund", call, refund))
    await world.check_replays()


# -- capture, cancel and the payment's state ---------------------------------------------------------------------


def capture_faults(world: World, plan: MoneyPlan, payment: Payment) -> list[type[PaycoreError]]:
    """Every error the capture may be refused with (none: it must be accepted)."""
    faults = _key_faults(world, plan, _scope(plan.owner))
    if not _visible(plan):
        faults.append(PaymentNotFound)
    if payment.status is not S.AUTHORIZED:
        return [*faults, InvalidTransition]
    amount = plan.amount
    if amount is None:
        return faults
    assert isinstance(amount, Money)
    assert payment.authorized_amount is not None
    if amount.currency != payment.currency:
        faults.append(CurrencyMismatch)
    elif not amount.is_positive():
        faults.append(InvalidAmount)
    elif amount > payment.authorized_amount:
        faults.append(CaptureExceedsAuthorized)
    return faults


@FUZZ
@given(plan=money_plans(refunds=False))
async def test_a_capture_is_refused_without_a_change_or_captures_at_most_what_was_authorized(
    memory_world: World, plan: MoneyPlan
) -> None:
    """Foreign, non-positive or excessive amounts, captured payments, odd ids, wrong tenants, bad keys: refused."""
    world = memory_world
    world.next_example()
    request = {"amount": Money.minor(plan.units, plan.currency), "provider": "fake", "tenant": plan.owner}
    payment = (
        await world.create(key=world.key("auth"), order_id=f"{world.tag}-auth", capture=False, **request)
    ).payment
    assert payment.status is S.AUTHORIZED
    earlier_key = world.key("auth")
    if plan.earlier is not None:  # captured already
        await world.flow.capture(payment.id, amount=Money.minor(plan.earlier, plan.currency), tenant=plan.owner)
    payment = await world.flow.get_payment(payment.id)
    key = earlier_key if isinstance(plan.key, EarlierKey) else resolve_key(world, plan.key)
    faults = capture_faults(world, plan, payment)
    call = _call(
        world.flow.capture, target_id(plan.target, payment), amount=plan.amount, idempotency_key=key, tenant=plan.tenant
    )
    if faults:
        await world.refused(call, tuple(faults))
        await world.assert_key_free(plan.key, _key_tenant(plan))
        return
    calls_before = list(world.fake(plan.owner).calls)
    captured = await call()
    assert isinstance(captured, Payment)
    assert captured == await world.flow.get_payment(payment.id)
    assert captured.status is S.SUCCEEDED
    assert captured.captured_amount == (plan.amount if plan.amount is not None else payment.authorized_amount)
    assert_consistent(captured)
    assert world.fake(plan.owner).calls == [*calls_before, ("capture", payment.id)]
    if key is not None:
        world.replays.append(Replay("the capture", call, captured))
    await world.check_replays()
    await world.refused(_call(world.flow.cancel, payment.id), InvalidTransition)
    await world.refused(_call(world.flow.capture, payment.id), InvalidTransition)


STATES: Final = ["processing", "authorized", "failed", "canceled", "succeeded", "partially_refunded", "refunded"]
"""The statuses a payment of the example is brought to before an operation is tried on it."""
ALLOWED: Final = {
    "capture": {S.AUTHORIZED},
    "cancel": {S.PROCESSING, S.AUTHORIZED},
    "refund": {S.SUCCEEDED, S.PARTIALLY_REFUNDED},
}
"""Where each operation may start from (``docs/states.md``); anywhere else it is an ``InvalidTransition``."""


async def payment_in(world: World, state: str, amount: Money, tenant: str | None) -> Payment:
    """A payment of the example in ``state`` (created under a key of the example)."""
    fake = world.fake(tenant)
    if state == "processing":
        fake.script("initiate", "pending")
    elif state == "failed":
        fake.script("initiate", "decline")
    capture = state not in ("authorized", "canceled")
    checkout = await world.create(
        key=world.key("state"),
        amount=amount,
        provider="fake",
        order_id=f"{world.tag}-state",
        tenant=tenant,
        capture=capture,
    )
    payment = checkout.payment
    if state == "canceled":
        await world.flow.cancel(payment.id)
    elif state in ("partially_refunded", "refunded"):
        part = Money.minor(1, amount.currency) if state == "partially_refunded" else None
        await world.refund(payment.id, key=world.key("state-refund"), amount=part)
    payment = await world.flow.get_payment(payment.id)
    assert payment.status.value == state, (state, payment.status)
    return payment


@FUZZ
@given(
    state=st.sampled_from(STATES),
    operation=st.sampled_from(sorted(ALLOWED)),
    units=st.integers(2, MAX_MINOR_UNITS),
    currency=CURRENCIES,
    tenant=st.sampled_from([None, TENANT]),
    key=st.none() | st.builds(FreshKey, KEY_SUFFIXES),
)
async def test_capture_cancel_and_refund_are_refused_in_a_state_that_does_not_allow_them(
    memory_world: World, state: str, operation: str, units: int, currency: str, tenant: str | None, key: FreshKey | None
) -> None:
    """From the wrong status: ``InvalidTransition`` and nothing changed; from the right one: the status it leads to."""
    world = memory_world
    world.next_example()
    payment = await payment_in(world, state, Money.minor(units, currency), tenant)
    call_key = resolve_key(world, key)
    call = _call(getattr(world.flow, operation), payment.id, idempotency_key=call_key, tenant=tenant)
    if payment.status not in ALLOWED[operation]:
        await world.refused(call, InvalidTransition)
        await world.assert_key_free(key, tenant)
        return
    await call()
    after = await world.flow.get_payment(payment.id)
    assert after.status is {"capture": S.SUCCEEDED, "cancel": S.CANCELED, "refund": S.REFUNDED}[operation]
    assert_consistent(after)
    if operation == "cancel":
        assert after.captured_amount is None
    await world.check_replays()


# -- reading, and operations on payments that are not there ----------------------------------------------------


@FUZZ
@given(
    operation=st.sampled_from(["get_payment", "list_events", "refresh", "capture", "cancel", "refund"]),
    target=NEAR_IDS | HASHABLE_JUNK | st.just(RealId()),
    tenant=st.none() | st.just(OTHER_TENANT) | HASHABLE_JUNK,
    owner=st.sampled_from([None, TENANT]),
)
async def test_an_odd_payment_id_or_a_wrong_tenant_is_payment_not_found(
    memory_world: World, operation: str, target: object, tenant: object, owner: str | None
) -> None:
    """Ids of every type and near misses of real ids, or a real id for another tenant: ``PaymentNotFound``."""
    world = memory_world
    world.next_example()
    payment = await world.paid(Money.of("5000", "XOF"), tenant=owner)
    await world.refund(payment.id, key=world.key("refund"), amount=Money.of("1000", "XOF"))
    payment = await world.flow.get_payment(payment.id)
    if isinstance(target, RealId) and (tenant is None or tenant == owner):
        tenant = OTHER_TENANT  # the real id, asked for by a tenant that does not see it
    payment_id = target_id(target, payment)
    await world.refused(_call(getattr(world.flow, operation), payment_id, tenant=tenant), PaymentNotFound)


# -- what the fuzz found, each with its minimal input: now refused as the rule says ---------------------


def _deep(depth: int = 5000) -> list[Any]:
    """A list nested ``depth`` deep: deeper than Python's recursion limit."""
    nested: list[Any] = []
    for _ in range(depth):
        nested = [nested]
    return nested


DEEP: Final = _deep()


def _forged_deep_cursor(depth: int = 100_000) -> str:
    """A cursor whose checksum is right (it is not keyed) and whose body is JSON nested ``depth`` deep."""
    body = base64.urlsafe_b64encode(("[" * depth).encode()).decode().rstrip("=")
    return f"{body}.{hashlib.sha256(body.encode()).hexdigest()[:16]}"


FORGED_DEEP_CURSOR: Final = _forged_deep_cursor()
XOF_5000: Final = Money.of("5000", "XOF")
REFUSALS: Final = (ValidationError, MoneyError, PaymentNotFound)
"""What the rule says each case below must be refused with (not ``DuplicatePayment`` or ``ConcurrentUpdate``)."""

FOUND: Final = {
    "unhashable-lookup": "FlowParts.provider looks an unhashable provider or tenant up in a dict: TypeError",
    "metadata-not-a-mapping": "actions.create_payment/refund: dict(metadata) of a non-mapping: TypeError/ValueError",
    "fingerprint-mixed-keys": "keys.fingerprint sorts metadata keys of mixed types (int and str): TypeError",
    "deep-nesting": "nesting past the recursion limit: RecursionError (keys.fingerprint, serialization.unstructure "
    "of a refund's or capture's amount in actions, the SQL adapter's JSON encoder)",
    "metadata-not-json": "metadata that is not JSON (NaN, sets, objects, int keys, lone surrogates) is accepted and "
    "stored as is (the SQL adapter turns int keys into strings, refuses NaN/sets/objects with ValidationError)",
    "text-unchecked": "order_id, description and a refund's reason are not checked (not a str, control characters, "
    "lone surrogates, huge): accepted and stored",
    "customer-unchecked": "customer is not checked (not a Customer, fields that are not text): accepted and stored",
    "return-url-unchecked": "return_url is not checked (not an http(s) URL, not a str): accepted and stored",
    "items-unchecked": "operations.check_new_payment reads item.unit_price.currency of anything: TypeError/"
    "AttributeError; a quantity that is not a positive int is accepted",
    "capture-amount-unchecked": "operations.capture_amount reads amount.currency of a non-Money: AttributeError "
    "(after the key's claim, which is then not released)",
    "capture-flag-unchecked": "capture is not checked to be a bool: 'no' captures, None only authorizes (memory); "
    "SQLAlchemy's Boolean raises TypeError (SQLite)",
    "odd-ids-reach-the-store": "PaymentWriter.load hands any payment id to the repository: the memory one raises "
    "TypeError (unhashable), SQLite's driver ProgrammingError (list, tuple, Decimal) or OverflowError (int > 64 bits)",
    "sql-surrogates": "SQLite's driver cannot encode a lone surrogate (in text, an id, a tenant's key scope): "
    "UnicodeEncodeError",
    "sql-not-null-misreported": "a None the schema's NOT NULL refuses is reported as DuplicatePayment (create, "
    "SqlPaymentRepository._adding) or ConcurrentUpdate (refund)",
    "operator-text-unchecked": "set_fraud_status's message and resolve_review's note were not checked: stored as "
    "given (memory); SQLite's driver raised ProgrammingError (a list) or UnicodeEncodeError (a lone surrogate)",
    "listing-unchecked": "list_payments/page_payments filters and cursors of the wrong type reached the listing: "
    "TypeError (after=123), AttributeError (a created_from that is not a datetime), UnicodeEncodeError (a cursor "
    "with a lone surrogate), RecursionError (a forged cursor nested deep); an order_id list matched nothing",
    "expire-limit-unchecked": "expire_stale's limit was not checked: TypeError ('<' not supported between int and "
    "None or str), a float slice index (memory); a negative one listed nothing without a word",
}
"""What each case did before it was refused: where, and how it broke the rule."""


@frozen
class Case:
    """A call with one bad argument that the rule says must be refused without a change."""

    operation: str
    """``create`` (of 5 000 XOF, order ``T-1``, on ``fake``), ``refund`` (of a captured payment),
    ``capture`` (of an authorized one), ``get`` (``get_payment``), ``refund-id`` (``refund`` of an odd id),
    ``fraud`` (``set_fraud_status`` of the captured one to ``review``), ``resolve`` (``resolve_review`` of it),
    ``list`` (``list_payments``), ``page`` (``page_payments``) or ``expire`` (``expire_stale``)."""
    arguments: Mapping[str, Any]
    """The call's arguments; an ``idempotency_key`` is made a key of the example."""


def found(case_id: str, operation: str, arguments: Mapping[str, Any], name: str) -> Any:
    """A case the fuzz found, now refused as the rule says: what it did before is :data:`FOUND`'s ``name``."""
    return pytest.param(Case(operation, arguments), id=case_id)


# fmt: off
IN_THE_CORE: Final = [
    found("create-provider-unhashable", "create", {"provider": ["fake"]}, "unhashable-lookup"),
    found("create-tenant-unhashable", "create", {"tenant": [TENANT]}, "unhashable-lookup"),
    found("create-metadata-int", "create", {"metadata": 1}, "metadata-not-a-mapping"),
    found("refund-metadata-str", "refund", {"metadata": "ab"}, "metadata-not-a-mapping"),
    found("create-metadata-mixed-keys", "create", {"metadata": {1: "a", "b": 2}, "idempotency_key": "k"},
        "fingerprint-mixed-keys"),
    found("refund-metadata-mixed-keys", "refund", {"metadata": {1: "a", "b": 2}, "idempotency_key": "k"},
        "fingerprint-mixed-keys"),
    found("create-metadata-deep-keyed", "create", {"metadata": {"a": DEEP}, "idempotency_key": "k"},
        "deep-nesting"),
    found("refund-amount-deep", "refund", {"amount": DEEP}, "deep-nesting"),
    found("capture-amount-deep", "capture", {"amount": DEEP}, "deep-nesting"),
    found("create-items-not-a-sequence", "create", {"items": 5}, "items-unchecked"),
    found("create-items-not-line-items", "create", {"items": ["x"]}, "items-unchecked"),
    found("create-item-price-not-money", "create", {"items": [LineItem("a", 1, 5)]},  # type: ignore[arg-type]
        "items-unchecked"),
    found("capture-amount-int", "capture", {"amount": 5, "idempotency_key": "k"},
        "capture-amount-unchecked"),
]
"""What the core hit before any repository was asked: the same on every repository (run on memory)."""

ACCEPTED: Final = [
    found("create-metadata-surrogate", "create", {"metadata": {"a": "\ud800"}}, "metadata-not-json"),
    found("create-metadata-int-key", "create", {"metadata": {1: "a"}}, "metadata-not-json"),
    found("refund-metadata-surrogate", "refund", {"metadata": {"a": "\ud800"}}, "metadata-not-json"),
    found("create-order-id-control", "create", {"order_id": "T-1\x00"}, "text-unchecked"),
    found("create-order-id-huge", "create", {"order_id": "x" * 5000}, "text-unchecked"),
    found("create-description-not-str", "create", {"description": 5}, "text-unchecked"),
    found("create-description-control", "create", {"description": "\x00"}, "text-unchecked"),
    found("refund-reason-not-str", "refund", {"reason": 5}, "text-unchecked"),
    found("create-customer-not-customer", "create", {"customer": "bob"}, "customer-unchecked"),
    found("create-customer-email-int", "create", {"customer": Customer(email=5)},  # type: ignore[arg-type]
        "customer-unchecked"),
    found("create-return-url-javascript", "create", {"return_url": "javascript:alert(1)"},
        "return-url-unchecked"),
    found("create-return-url-not-str", "create", {"return_url": 5}, "return-url-unchecked"),
    found("create-item-quantity-negative", "create", {"items": [LineItem("a", -1, XOF_5000)]},
        "items-unchecked"),
]
"""Bad arguments every repository accepted and stored (run on memory and on SQLite)."""

OPERATOR_AND_LISTING: Final = [
    found("fraud-message-int", "fraud", {"message": 123}, "operator-text-unchecked"),
    found("fraud-message-bytes", "fraud", {"message": b"raw"}, "operator-text-unchecked"),
    found("fraud-message-list", "fraud", {"message": ["x"]}, "operator-text-unchecked"),
    found("fraud-message-control", "fraud", {"message": "a\x00b\x1b[31m"}, "operator-text-unchecked"),
    found("fraud-message-surrogate", "fraud", {"message": "\ud800"}, "operator-text-unchecked"),
    found("resolve-note-escape", "resolve", {"note": "\x1b[31m"}, "operator-text-unchecked"),
    found("resolve-note-int", "resolve", {"note": 5}, "operator-text-unchecked"),
    found("list-after-int", "list", {"after": 123}, "listing-unchecked"),
    found("page-after-surrogate", "page", {"after": "\udcff"}, "listing-unchecked"),
    found("page-after-forged-deep", "page", {"after": FORGED_DEEP_CURSOR}, "listing-unchecked"),
    found("list-created-from-text", "list", {"created_from": "2026-01-01"}, "listing-unchecked"),
    found("list-created-before-int", "list", {"created_before": 1700000000}, "listing-unchecked"),
    found("list-order-id-list", "list", {"order_id": ["o1"]}, "listing-unchecked"),
    found("list-order-id-surrogate", "list", {"order_id": "\ud800"}, "listing-unchecked"),
    found("expire-limit-none", "expire", {"limit": None}, "expire-limit-unchecked"),
    found("expire-limit-text", "expire", {"limit": "10"}, "expire-limit-unchecked"),
    found("expire-limit-float", "expire", {"limit": 1.5}, "expire-limit-unchecked"),
    found("expire-limit-negative", "expire", {"limit": -1}, "expire-limit-unchecked"),
    found("expire-limit-bool", "expire", {"limit": True}, "expire-limit-unchecked"),
]
"""Operator actions, listings and the reaper's run with a bad argument (run on memory and on SQLite)."""

MEMORY_ONLY: Final = [
    found("create-order-id-surrogate", "create", {"order_id": "T-\ud800"}, "text-unchecked"),
    found("create-description-none", "create", {"description": None}, "text-unchecked"),
    found("refund-reason-surrogate", "refund", {"reason": "\ud800"}, "text-unchecked"),
    found("create-metadata-nan", "create", {"metadata": {"a": float("nan")}}, "metadata-not-json"),
    found("create-metadata-set", "create", {"metadata": {"a": {1}}}, "metadata-not-json"),
    found("refund-metadata-object", "refund", {"metadata": {"a": object()}}, "metadata-not-json"),
    found("create-capture-not-bool", "create", {"capture": "no"}, "capture-flag-unchecked"),
    found("create-capture-none", "create", {"capture": None}, "capture-flag-unchecked"),
    found("get-id-unhashable", "get", {"payment_id": ["pay_x"]}, "odd-ids-reach-the-store"),
]
"""What the memory repository, which stores what it is given as it is, accepted."""

SQLITE_ONLY: Final = [
    found("create-order-id-surrogate", "create", {"order_id": "T-\ud800"}, "sql-surrogates"),
    found("create-description-surrogate", "create", {"description": "\ud800"}, "sql-surrogates"),
    found("create-return-url-surrogate", "create", {"return_url": "https://shop.example/\ud800"},
        "sql-surrogates"),
    found("refund-reason-surrogate", "refund", {"reason": "\ud800"}, "sql-surrogates"),
    found("refund-tenant-surrogate-keyed", "refund", {"tenant": "\ud800", "idempotency_key": "k"},
        "sql-surrogates"),
    found("get-id-surrogate", "get", {"payment_id": "\ud800"}, "sql-surrogates"),
    found("create-description-none", "create", {"description": None}, "sql-not-null-misreported"),
    found("create-capture-none", "create", {"capture": None}, "sql-not-null-misreported"),
    found("refund-reason-none", "refund", {"reason": None}, "sql-not-null-misreported"),
    found("create-capture-not-bool", "create", {"capture": "no"}, "capture-flag-unchecked"),
    found("create-metadata-deep", "create", {"metadata": {"a": DEEP}}, "deep-nesting"),
    found("get-id-list", "get", {"payment_id": ["pay_x"]}, "odd-ids-reach-the-store"),
    found("get-id-tuple", "get", {"payment_id": ()}, "odd-ids-reach-the-store"),
    found("get-id-decimal", "get", {"payment_id": Decimal("1.5")},
        "odd-ids-reach-the-store"),
    found("refund-id-huge-int", "refund-id", {"payment_id": 2**64}, "odd-ids-reach-the-store"),
]
"""What escaped from SQLite: what its driver cannot bind, or its constraints refuse."""
# fmt: on


async def run_case(world: World, case: Case) -> None:
    """Run ``case`` beside a captured and an authorized payment of the example: refused, nothing changed."""
    world.next_example()
    paid = await world.paid(XOF_5000)
    authorized = await world.create(
        key=world.key("auth"), amount=XOF_5000, provider="fake", order_id="T-auth", capture=False
    )
    arguments = dict(case.arguments)
    if "idempotency_key" in arguments:
        arguments["idempotency_key"] = world.key(arguments["idempotency_key"])
    flow = world.flow
    calls = {
        "create": _call(
            flow.create_payment, **{"amount": XOF_5000, "provider": "fake", "order_id": "T-1", **arguments}
        ),
        "refund": _call(flow.refund, paid.id, **arguments),
        "capture": _call(flow.capture, authorized.payment.id, **arguments),
        "get": _call(flow.get_payment, **arguments),
        "refund-id": _call(flow.refund, **arguments),
        "fraud": _call(flow.set_fraud_status, paid.id, "review", **arguments),
        "resolve": _call(flow.resolve_review, paid.id, **arguments),
        "list": _call(flow.list_payments, **arguments),
        "page": _call(flow.page_payments, **arguments),
        "expire": _call(flow.expire_stale, 0, **arguments),
    }
    try:
        await world.refused(calls[case.operation], REFUSALS)
    except (AssertionError, PaycoreError):
        raise
    except Exception as error:
        raise _innermost(error) from None


def _innermost(error: Exception, frames: int = 12) -> Exception:
    """``error`` with only the innermost ``frames`` of its traceback: where the bug is.

    pytest formats an xfailed test's traceback too; thousands of frames of a ``RecursionError``
    (and the event loop's own) would cost a second each.
    """
    tracebacks = []
    traceback = error.__traceback__
    while traceback is not None:
        tracebacks.append(traceback)
        traceback = traceback.tb_next
    return error.with_traceback(tracebacks[-frames] if len(tracebacks) > frames else error.__traceback__)


@pytest.mark.parametrize("case", IN_THE_CORE + ACCEPTED + OPERATOR_AND_LISTING + MEMORY_ONLY)
async def test_a_bad_argument_the_fuzz_found_is_refused_on_memory(memory_world: World, case: Case) -> None:
    """A bad argument the fuzz found is refused on the memory repository, and nothing changes."""
    await run_case(memory_world, case)


@pytest.mark.parametrize("case", ACCEPTED + OPERATOR_AND_LISTING + SQLITE_ONLY)
async def test_a_bad_argument_the_fuzz_found_is_refused_on_sqlite(sqlite_world: World, case: Case) -> None:
    """A bad argument the fuzz found is refused on SQLite, and nothing changes."""
    await run_case(sqlite_world, case)


@pytest.mark.parametrize(
    ("operation", "amount"),
    [("refund", Money.of("0", "XOF")), ("refund", Money.of("1", "EUR")), ("capture", Money.minor(-1, "XOF"))],
    ids=["refund-zero", "refund-foreign-currency", "capture-negative"],
)
async def test_a_refusal_for_a_bad_amount_frees_its_key(world: World, operation: str, amount: Money) -> None:
    """A refund or capture refused for its amount (``InvalidAmount``, ``CurrencyMismatch``) frees its key."""
    world.next_example()
    payment = (
        await world.create(amount=XOF_5000, provider="fake", order_id="T-1", capture=operation == "refund")
    ).payment
    key = world.key(operation)
    method = getattr(world.flow, operation)
    await world.refused(_call(method, payment.id, amount=amount, idempotency_key=key), MoneyError)
    corrected = Money.of("100", "XOF")
    done = await method(payment.id, amount=corrected, idempotency_key=key)
    assert (done.amount if operation == "refund" else done.captured_amount) == corrected


async def test_a_capture_refused_for_a_junk_amount_frees_its_key(memory_world: World) -> None:
    """After ``capture(amount=5, idempotency_key=k)`` failed, a valid capture under ``k`` runs."""
    world = memory_world
    world.next_example()
    payment = (await world.create(amount=XOF_5000, provider="fake", order_id="T-1", capture=False)).payment
    key = world.key("capture")
    await world.refused(_call(world.flow.capture, payment.id, amount=5, idempotency_key=key), InvalidAmount)
    captured = await world.flow.capture(payment.id, idempotency_key=key)
    assert captured.status is S.SUCCEEDED


async def test_the_callers_metadata_changed_afterwards_changes_nothing_stored(
    memory_world: World,
) -> None:
    """Metadata is copied when the payment is made: the caller changing its own dict afterwards changes nothing."""
    metadata: dict[str, Any] = {"basket": ["tea"]}
    checkout = await memory_world.flow.create_payment(
        amount=XOF_5000, provider="fake", order_id="T-1", metadata=metadata
    )
    metadata["basket"].append("sugar")
    assert (await memory_world.flow.get_payment(checkout.payment.id)).metadata == {"basket": ["tea"]}
