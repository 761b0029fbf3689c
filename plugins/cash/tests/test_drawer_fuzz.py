"""Fuzzing the cash drawers: random good and bad operations, checked against a model of every drawer.

A hypothesis ``RuleBasedStateMachine`` opens, fills, empties and closes the drawers of two tenants
(``chez-awa``, whose drawers are fixed to XOF, and ``chez-binta``, whose drawers take the currency of
their float: EUR, KWD or XOF), takes cash sales and refunds through ``PaymentFlow`` and the cash
provider, replays idempotency keys and reads with junk ids. Each request is good, or has one field
broken: negative, zero and huge amounts (past a ``BIGINT``, up to Money's 30 digits), numbers, floats,
booleans and strings where a ``Money`` belongs, foreign currencies, names, notes and tills with control
characters or lone surrogates, bad idempotency keys, closed, unknown and other tenants' tills and
sessions, over-refunds, junk metadata. The model, not the draw, says whether it must be accepted.

After every step:

1. a refused operation raised a :class:`~paycore.errors.PaycoreError` (a bare ``TypeError``,
   ``OverflowError`` or ``UnicodeEncodeError`` fails the test) and changed nothing: sessions,
   movements, totals and payments read exactly as before;
2. every drawer holds what the model says: opening float + pay-ins - pay-outs + sales - refunds, never
   below zero; a closed drawer stores that as ``expected``, and ``variance == counted - expected``
   exactly, in integer minor units;
3. a tenant sees, moves and pays out only its own drawers and payments.

It runs on the memory drawer storage and, with fewer examples, on SQLite (amounts as ``BIGINT``),
under asyncio and trio: one event loop per run, driven through a blocking portal.
"""

from __future__ import annotations

import functools
import itertools
import json
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from paycore.errors import IdempotencyKeyReused, InvalidAmount, PaycoreError, PaymentNotFound
from paycore.flow import PaymentFlow
from paycore.money import MAX_MINOR_UNITS, Money
from paycore.records import Payment
from paycore.status import PaymentStatus, RefundStatus
from paycore_cash.drawers import CashDrawers
from paycore_cash.errors import DrawerNotFound
from paycore_cash.records import CashMovement, DrawerSession, DrawerStatus, MovementKind
from paycore_cash.sales import refund_cash, take_cash
from paycore_cash.totals import DrawerTotals

AWA = "chez-awa"
BINTA = "chez-binta"
TENANTS = (AWA, BINTA)
FIXED: dict[str, str | None] = {AWA: "XOF", BINTA: None}
"""The currency each tenant's cash provider fixes for its drawers (``None``: the float's)."""

TILL_LIMIT = 64
"""The longest till name: the storage keeps tills in 64 characters (``VARCHAR(64)``)."""
NAME_LIMIT = 200
REASON_LIMIT = 500
KEY_LIMIT = 255
INFLOWS = (MovementKind.SALE, MovementKind.PAY_IN)

# -- what goes in ------------------------------------------------------------------------------
#
# Each request is drawn good, or with one of its fields broken (``broken`` names which): a request whose
# every field may be bad is almost never good, and the drawers would never fill. The model, not the
# draw, decides whether a request must be accepted.

VALID_TILLS = ["T1", "T2", " T2 ", "T3", "Caisse é", "X" * TILL_LIMIT]
BAD_TILLS: list[Any] = [
    "",
    "   ",
    "T\x00",
    "T\n1",
    "T\ud800",
    "T\u202e",
    "X" * (TILL_LIMIT + 1),
    "X" * 201,
    1,
    b"T1",
    ["T1"],
    1.5,
    True,
]
VALID_NAMES = ["Awa", " Moussa ", "Binta Diop", "N" * NAME_LIMIT]
BAD_NAMES: list[Any] = ["", " ", "A\x07", "A\ud800", "A\u202e", "\t", "N" * (NAME_LIMIT + 1), 42, None, b"Awa", ["Awa"]]
VALID_REASONS = ["drop to the safe", " coins ", "café ☕", "R" * REASON_LIMIT]
BAD_REASONS: list[Any] = ["", "  ", "r\n", "r\x00", "r\udfff", "R" * (REASON_LIMIT + 1), 7, None]
REFUND_REASONS = ["", "cold soup", "two lines\nof reason", "café ☕"]
"""A refund's reason is the core's to check (it refuses control characters and lone surrogates)."""
GOOD_KEYS: list[Any] = [None, None, None, "k1", "k2", "k3"]
"""No key, or one of three keys every tenant and operation shares."""
BAD_KEYS: list[Any] = ["", "k\ud800", "k\n", 5, "k" * (KEY_LIMIT + 1)]
JUNK_AMOUNTS: list[Any] = [
    1000,
    0,
    -5,
    2**64,
    10.5,
    float("nan"),
    float("inf"),
    True,
    False,
    "1000",
    Decimal("1000"),
    None,
    [1000],
    {"minor_units": 1000, "currency": "XOF"},
]
CURRENCIES = ["XOF", "EUR", "KWD", "USD", "JPY"]
JUNK_SESSION_IDS: list[Any] = ["", "drw_nope", "drw_\ud800", "drw_\x00", "d" * 100, 5, 1.5, True, b"drw", ["drw"], {}]

ordinary_units = st.integers(min_value=1, max_value=100_000)
huge_units = st.sampled_from([MAX_MINOR_UNITS - 1, MAX_MINOR_UNITS])
"""The largest amounts a drawer takes: two of them overflow a ``BIGINT``."""
bad_units = st.sampled_from([-1, -1_000_000, MAX_MINOR_UNITS + 1, 2**63 + 5, 10**25, 10**30 - 1, -(10**30 - 1)])
any_units = st.integers(min_value=-(10**30) + 1, max_value=10**30 - 1)


def good_amounts(currency: str, *, zero: bool = False) -> st.SearchStrategy[Money]:
    """A Money in ``currency`` a drawer takes: mostly ordinary, sometimes as large as a BIGINT holds."""
    choices = [ordinary_units, ordinary_units, ordinary_units, ordinary_units, huge_units]
    return st.builds(Money.minor, st.one_of(*choices, *([st.just(0)] if zero else [])), st.just(currency))


def bad_amounts(currency: str, *, zero: bool = False) -> st.SearchStrategy[Any]:
    """Not an amount a drawer in ``currency`` takes (mostly): negative, zero, past a BIGINT, foreign, junk."""
    return st.one_of(
        st.builds(Money.minor, bad_units if zero else st.one_of(bad_units, st.just(0)), st.just(currency)),
        st.builds(Money.minor, ordinary_units, st.sampled_from([c for c in CURRENCIES if c != currency])),
        st.builds(Money.minor, any_units, st.sampled_from(CURRENCIES)),
        st.sampled_from(JUNK_AMOUNTS),
    )


def bad_tills() -> st.SearchStrategy[Any]:
    """Not a till name (mostly): blank, control characters, lone surrogates, too long, not a string."""
    return st.one_of(st.sampled_from(BAD_TILLS), st.text(max_size=3))


def field_of(data: st.DataObject, label: str, broken: str | None, good: Any, bad: Any) -> Any:
    """Draw the field ``label`` from ``bad`` if it is the ``broken`` one, else from ``good``."""
    return data.draw(bad if broken == label else good, label=label)


def breaks(*fields: str) -> st.SearchStrategy[str | None]:
    """Which field of a request to break: none, most often."""
    return st.sampled_from([None, None, None, None, *fields])


# -- what should come out ----------------------------------------------------------------------


def name_of(value: Any, limit: int) -> str | None:
    """``value`` stripped, if the cash plugin takes it as a name (a till, a cashier, a note); else None."""
    if isinstance(value, str) and value.strip() and len(value) <= limit and value.isprintable():
        return value.strip()
    return None


def is_amount(value: Any, currency: str | None, *, zero: bool = False) -> bool:
    """True if ``value`` is a Money the drawer takes: positive (or zero), storable, in ``currency`` if given."""
    return (
        isinstance(value, Money)
        and (value.minor_units > 0 or (zero and value.minor_units == 0))
        and value.minor_units <= MAX_MINOR_UNITS
        and (currency is None or value.currency == currency)
    )


def is_key(value: Any) -> bool:
    """True if ``value`` is an idempotency key paycore takes (or no key)."""
    return value is None or (isinstance(value, str) and 0 < len(value) <= KEY_LIMIT and value.isprintable())


def is_session_id(value: Any) -> bool:
    """True if ``value`` can name a drawer session: printable text of 1 to 64 characters."""
    return isinstance(value, str) and 0 < len(value) <= 64 and value.isprintable()


def is_json(value: Any) -> bool:
    """True if ``value`` can be written as strict JSON in UTF-8 (no NaN, no bytes, no lone surrogate)."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode()
    except (TypeError, ValueError):
        return False
    return True


def money_of(value: Money) -> tuple[int, str]:
    """How an amount is part of a request's identity."""
    return value.minor_units, value.currency


@dataclass
class ModelSession:
    """What a drawer session should be."""

    id: str
    tenant: str
    till: str
    currency: str
    opening: int
    movements: list[tuple[MovementKind, int, str | None]] = field(default_factory=list)
    """(kind, minor units, payment id) in order."""
    closed: tuple[int, int, int] | None = None
    """(counted, expected, variance) once closed."""

    @property
    def expected(self) -> int:
        """Opening float + sales + pay-ins - refunds - pay-outs."""
        return self.opening + sum(units if kind in INFLOWS else -units for kind, units, _ in self.movements)


@dataclass
class ModelSale:
    """What a cash payment should be."""

    id: str
    tenant: str
    till: str
    currency: str
    amount: int
    refunded: int = 0


@dataclass(frozen=True)
class Keyed:
    """A drawer request that succeeded under an idempotency key: a retry must replay ``result``."""

    method: str
    request: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any


@dataclass(frozen=True)
class TenantState:
    """Everything a tenant reads of its drawers and payments."""

    sessions: tuple[DrawerSession, ...]
    movements: dict[str, tuple[CashMovement, ...]]
    totals: dict[str, DrawerTotals]
    current: dict[str, DrawerSession | None]
    payments: tuple[Payment, ...]


class DrawerMachine(RuleBasedStateMachine):
    """Random operations on the drawers and cash payments of two tenants, checked against a model."""

    def __init__(self, repository: str, backend: str) -> None:
        super().__init__()
        self._portal_cm = start_blocking_portal(backend)
        self.portal: BlockingPortal = self._portal_cm.__enter__()
        self.flow: PaymentFlow = self.portal.call(self._open_flow, repository)
        self.drawers = {tenant: CashDrawers(self.flow, tenant=tenant) for tenant in TENANTS}
        # Ids are random: draws pick sessions and sales in the order they were made, never sorted by id.
        self.sessions: dict[str, ModelSession] = {}
        self.open: dict[tuple[str, str], str] = {}
        self.tills: set[tuple[str, str]] = set()
        self.sales: dict[str, ModelSale] = {}
        self.keyed: dict[tuple[str, str], Keyed] = {}
        self.refused_keyed: dict[tuple[str, str], tuple[Any, ...]] = {}
        """Keys a refusal keeps (a keyed close of a session someone else closed): the request each is bound to."""
        self.orders = itertools.count(1)
        self.unchanged = False
        self.last: dict[str, TenantState] | None = None

    @staticmethod
    async def _open_flow(repository: str) -> PaymentFlow:
        tenants = {
            AWA: {"providers": {"cash": {"type": "cash", "currency": FIXED[AWA]}}},
            BINTA: {"providers": {"cash": {"type": "cash"}}},
        }
        config = {"repository": repository, "idempotency": "memory", "tenants": tenants}
        return await PaymentFlow.from_config(config).__aenter__()

    def teardown(self) -> None:
        """Close the flow, then the event loop."""
        try:
            self.portal.call(self.flow.aclose)
        finally:
            self._portal_cm.__exit__(None, None, None)

    # -- running requests ----------------------------------------------------------------------

    def call(self, function: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        """``await function(**kwargs)`` in the machine's event loop."""
        return self.portal.call(functools.partial(function, **kwargs))

    def expect(
        self,
        accepted: bool,
        function: Callable[..., Awaitable[Any]],
        refusal: type[PaycoreError] = PaycoreError,
        **kwargs: Any,
    ) -> Any:
        """Run the request; it must succeed if ``accepted``, else be refused with ``refusal`` and change nothing.

        Any error that is not a PaycoreError propagates and fails the test.
        """
        what = getattr(function, "__name__", "call")
        try:
            result = self.call(function, **kwargs)
        except PaycoreError as error:
            refused: PaycoreError | None = error
        else:
            refused = None
        if refused is None:
            event(f"{what}: done")
            assert accepted, f"a bad request was accepted: {kwargs!r} -> {result!r}"
            return result
        event(f"{what}: refused with {type(refused).__name__}")
        assert not accepted, f"a good request was refused: {type(refused).__name__}: {refused}"
        assert isinstance(refused, refusal), f"refused with {type(refused).__name__}, not {refusal.__name__}: {refused}"
        self.unchanged = True
        return None

    def run_keyed(
        self,
        tenant: str,
        key: Any,
        method: str,
        kwargs: dict[str, Any],
        *,
        valid: bool,
        request: tuple[Any, ...],
        accepted: Callable[[], bool],
        apply: Callable[[Any], None],
        keeps_key: Callable[[], bool] = lambda: False,
    ) -> None:
        """A drawer mutation: ``valid`` is whether it passes the checks made before its key is looked at,
        ``accepted()`` whether the drawers let it through; ``apply`` records its result in the model.
        ``keeps_key()``: a refusal of it that its key keeps as its answer (refused again on a retry)."""
        function = getattr(self.drawers[tenant], method)
        if not (valid and is_key(key)):
            self.expect(False, function, **kwargs)
            return
        refused = None if key is None else self.refused_keyed.get((tenant, key))
        if refused is not None:
            self.expect(False, function, **({} if refused == request else {"refusal": IdempotencyKeyReused}), **kwargs)
            return
        earlier = None if key is None else self.keyed.get((tenant, key))
        if earlier is not None:
            if earlier.request == request:
                assert self.expect(True, function, **kwargs) == earlier.result, "a keyed retry did not replay"
                self.unchanged = True
            else:
                self.expect(False, function, IdempotencyKeyReused, **kwargs)
            return
        ok = accepted()
        result = self.expect(ok, function, **kwargs)
        if ok:
            apply(result)
            if key is not None:
                self.keyed[(tenant, key)] = Keyed(method, request, kwargs, result)
        elif key is not None and keeps_key():
            self.refused_keyed[(tenant, key)] = request

    def _currency_at(self, tenant: str, till: str | None) -> str:
        session = self._session_at(tenant, till)
        return session.currency if session is not None else FIXED[tenant] or "EUR"

    def _session_at(self, tenant: str, till: str | None) -> ModelSession | None:
        session_id = self.open.get((tenant, till)) if till is not None else None
        return None if session_id is None else self.sessions[session_id]

    def _good_tills(self, tenant: str) -> st.SearchStrategy[str]:
        """A good till name: an open till of ``tenant``, or another."""
        opened = sorted(till for t, till in self.open if t == tenant)
        return (
            st.one_of(st.sampled_from(opened), st.sampled_from(VALID_TILLS)) if opened else st.sampled_from(VALID_TILLS)
        )

    # -- drawer rules --------------------------------------------------------------------------

    @initialize(
        data=st.data(),
        currencies=st.sampled_from([("EUR", "KWD"), ("KWD", "XOF"), ("XOF", "EUR"), ("EUR", "EUR")]),
    )
    def open_the_first_drawers(self, data: st.DataObject, currencies: tuple[str, str]) -> None:
        """Start with T1 open in each tenant, and T2 of ``chez-binta`` in another currency: cash has somewhere to go."""
        for tenant, till, currency in ((AWA, "T1", "XOF"), (BINTA, "T1", currencies[0]), (BINTA, "T2", currencies[1])):
            opening = data.draw(good_amounts(currency, zero=True), label=f"{tenant} {till} float")
            session = self.expect(True, self.drawers[tenant].open, till=till, opening_float=opening, opened_by="Awa")
            self.sessions[session.id] = ModelSession(session.id, tenant, till, currency, opening.minor_units)
            self.open[(tenant, till)] = session.id
            self.tills.add((tenant, till))

    @rule(data=st.data(), tenant=st.sampled_from(TENANTS), broken=breaks("till", "opening_float", "opened_by", "key"))
    def open_a_drawer(self, data: st.DataObject, tenant: str, broken: str | None) -> None:
        """Open a till with a float (bad floats, names, tills and keys; a second open of a till)."""
        till = field_of(data, "till", broken, st.sampled_from(VALID_TILLS), bad_tills())
        currency = FIXED[tenant] or data.draw(st.sampled_from(["EUR", "KWD", "XOF"]), label="currency")
        opening = field_of(data, "opening_float", broken, good_amounts(currency, zero=True), bad_amounts(currency))
        opened_by = field_of(data, "opened_by", broken, st.sampled_from(VALID_NAMES), st.sampled_from(BAD_NAMES))
        key = field_of(data, "key", broken, st.sampled_from(GOOD_KEYS), st.sampled_from(BAD_KEYS))
        till_name, by = name_of(till, TILL_LIMIT), name_of(opened_by, NAME_LIMIT)
        valid = till_name is not None and by is not None and is_amount(opening, FIXED[tenant], zero=True)

        def apply(session: DrawerSession) -> None:
            assert till_name is not None
            assert (session.tenant, session.till, session.status) == (tenant, till_name, DrawerStatus.OPEN)
            assert (session.opening_float, session.opened_by, session.currency) == (opening, by, opening.currency)
            self.sessions[session.id] = ModelSession(
                session.id, tenant, till_name, opening.currency, opening.minor_units
            )
            self.open[(tenant, till_name)] = session.id
            self.tills.add((tenant, till_name))

        self.run_keyed(
            tenant,
            key,
            "open",
            {"till": till, "opening_float": opening, "opened_by": opened_by, "idempotency_key": key},
            valid=valid,
            request=("open", till_name, valid and money_of(opening), by),
            accepted=lambda: (tenant, till_name) not in self.open,
            apply=apply,
        )

    @rule(
        data=st.data(),
        tenant=st.sampled_from(TENANTS),
        kind=st.sampled_from([MovementKind.PAY_IN, MovementKind.PAY_OUT]),
        broken=breaks("till", "amount", "reason", "actor", "key"),
    )
    def pay_in_or_out(self, data: st.DataObject, tenant: str, kind: MovementKind, broken: str | None) -> None:
        """Pay cash in or out of a till (more than it holds, closed tills, bad notes included)."""
        till = field_of(data, "till", broken, self._good_tills(tenant), bad_tills())
        till_name = name_of(till, TILL_LIMIT)
        session = self._session_at(tenant, till_name)
        currency = self._currency_at(tenant, till_name)
        good = good_amounts(currency)
        if session is not None and kind is MovementKind.PAY_OUT:
            held = max(1, session.expected)
            good = st.one_of(good, st.builds(Money.minor, st.integers(1, held) | st.just(held), st.just(currency)))
        amount = field_of(data, "amount", broken, good, bad_amounts(currency))
        reason = field_of(data, "reason", broken, st.sampled_from(VALID_REASONS), st.sampled_from(BAD_REASONS))
        actor = field_of(data, "actor", broken, st.sampled_from(VALID_NAMES), st.sampled_from(BAD_NAMES))
        key = field_of(data, "key", broken, st.sampled_from(GOOD_KEYS), st.sampled_from(BAD_KEYS))
        note, by = name_of(reason, REASON_LIMIT), name_of(actor, NAME_LIMIT)
        valid = None not in (till_name, note, by) and is_amount(amount, FIXED[tenant])

        def accepted() -> bool:
            if session is None or amount.currency != session.currency:
                return False
            return kind is MovementKind.PAY_IN or amount.minor_units <= session.expected

        def apply(movement: CashMovement) -> None:
            assert session is not None
            assert (movement.session_id, movement.kind, movement.amount) == (session.id, kind, amount)
            assert (movement.reason, movement.actor) == (note, by)
            session.movements.append((kind, amount.minor_units, None))

        self.run_keyed(
            tenant,
            key,
            kind.value,
            {"till": till, "amount": amount, "reason": reason, "actor": actor, "idempotency_key": key},
            valid=valid,
            request=(kind.value, till_name, valid and money_of(amount), note, by),
            accepted=accepted,
            apply=apply,
        )

    @rule(
        data=st.data(),
        tenant=st.sampled_from(TENANTS),
        by=st.sampled_from(["till", "till", "session", "session", "both", "neither"]),
        broken=breaks("till", "session_id", "counted", "closed_by", "key"),
    )
    def close_a_drawer(self, data: st.DataObject, tenant: str, by: str, broken: str | None) -> None:
        """Close by till or by session id (closed, unknown and other tenants' sessions; bad counts)."""
        till = field_of(data, "till", broken, self._good_tills(tenant), bad_tills()) if by != "session" else None
        session_id = None
        if by in ("session", "both"):
            known = list(self.sessions)
            good = st.sampled_from(known) if known else st.just("drw_none")
            session_id = field_of(data, "session_id", broken, good, st.sampled_from(JUNK_SESSION_IDS))
        if by == "neither":
            till = None
        till_name = name_of(till, TILL_LIMIT)
        target = self._session_at(tenant, till_name) if till is not None else None
        if isinstance(session_id, str) and session_id in self.sessions and self.sessions[session_id].tenant == tenant:
            target = self.sessions[session_id]
        currency = target.currency if target is not None else FIXED[tenant] or "EUR"
        good = good_amounts(currency, zero=True)
        if target is not None and 0 <= target.expected <= MAX_MINOR_UNITS:
            held = target.expected
            near = st.integers(max(0, held - 1000), min(MAX_MINOR_UNITS, held + 1000))
            good = st.one_of(good, st.builds(Money.minor, st.just(held) | near, st.just(currency)))
        counted = field_of(data, "counted", broken, good, bad_amounts(currency, zero=True))
        closed_by = field_of(data, "closed_by", broken, st.sampled_from(VALID_NAMES), st.sampled_from(BAD_NAMES))
        key = field_of(data, "key", broken, st.sampled_from(GOOD_KEYS), st.sampled_from(BAD_KEYS))
        who = name_of(closed_by, NAME_LIMIT)
        valid = (
            by in ("till", "session")
            and who is not None
            and is_amount(counted, FIXED[tenant], zero=True)
            and (till is None or till_name is not None)
            and (session_id is None or is_session_id(session_id))
        )

        def accepted() -> bool:
            if target is not None and target.expected > MAX_MINOR_UNITS:
                event("close: the drawer holds more than a BIGINT")
            return (
                target is not None
                and target.closed is None
                and counted.currency == target.currency
                and target.expected <= MAX_MINOR_UNITS
            )

        def apply(closed: DrawerSession) -> None:
            assert target is not None
            expected = target.expected
            variance = counted.minor_units - expected
            assert (closed.id, closed.status, closed.closed_by) == (target.id, DrawerStatus.CLOSED, who)
            assert closed.counted == counted
            assert closed.expected == Money.minor(expected, target.currency)
            assert closed.variance == Money.minor(variance, target.currency)
            target.closed = (counted.minor_units, expected, variance)
            del self.open[(tenant, target.till)]

        self.run_keyed(
            tenant,
            key,
            "close",
            {
                "till": till,
                "session_id": session_id,
                "counted": counted,
                "closed_by": closed_by,
                "idempotency_key": key,
            },
            valid=valid,
            request=("close", till_name, session_id, valid and money_of(counted), who),
            accepted=accepted,
            apply=apply,
            # A keyed close of a session someone else closed keeps that answer: a retry is refused again.
            keeps_key=lambda: by == "session" and target is not None and target.closed is not None,
        )

    @precondition(lambda self: self.keyed)
    @rule(data=st.data())
    def retry_a_keyed_request(self, data: st.DataObject) -> None:
        """Send a request that succeeded under a key again: its first answer, and nothing changes."""
        (tenant, _), earlier = data.draw(st.sampled_from(list(self.keyed.items())), label="keyed")
        replayed = self.expect(True, getattr(self.drawers[tenant], earlier.method), **earlier.kwargs)
        assert replayed == earlier.result
        self.unchanged = True

    # -- cash payments and refunds ---------------------------------------------------------------

    def _record_sale(self, payment: Payment, tenant: str, session: ModelSession, paid: Money) -> None:
        assert payment.status is PaymentStatus.SUCCEEDED
        assert (payment.tenant, payment.amount, payment.captured_amount) == (tenant, paid, paid)
        self.sales[payment.id] = ModelSale(payment.id, tenant, session.till, paid.currency, paid.minor_units)
        session.movements.append((MovementKind.SALE, paid.minor_units, payment.id))

    @rule(
        data=st.data(),
        tenant=st.sampled_from(TENANTS),
        split_tender=st.booleans(),
        broken=breaks("till", "amount", "tendered", "cashier"),
    )
    def take_cash_at_a_till(self, data: st.DataObject, tenant: str, split_tender: bool, broken: str | None) -> None:
        """``take_cash`` at a till: any amounts and tenders, foreign currencies, closed tills."""
        till = field_of(data, "till", broken, self._good_tills(tenant), bad_tills())
        till_name = name_of(till, TILL_LIMIT)
        currency = self._currency_at(tenant, till_name)
        amount = field_of(data, "amount", broken, good_amounts(currency), bad_amounts(currency))
        if isinstance(amount, Money) and 0 < amount.minor_units <= MAX_MINOR_UNITS:
            more = amount.minor_units + data.draw(st.integers(0, 5000), label="change")
            less = data.draw(st.integers(1, amount.minor_units), label="less")
            good = st.sampled_from([amount.minor_units, more, more, less]).map(
                lambda u: Money.minor(u, amount.currency)
            )
        else:
            good = good_amounts(currency)
        tendered = field_of(data, "tendered", broken, good, bad_amounts(currency))
        cashier = field_of(data, "cashier", broken, st.sampled_from(["", *VALID_NAMES]), st.sampled_from(BAD_NAMES))
        session = self._session_at(tenant, till_name)
        valid = (
            is_amount(amount, None)
            and is_amount(tendered, amount.currency)
            and till_name is not None
            and (not cashier or name_of(cashier, NAME_LIMIT) is not None)
            and (tendered >= amount or split_tender)
        )
        paid = (amount if tendered >= amount else tendered) if valid else None
        accepted = valid and session is not None and session.currency == amount.currency
        sale = self.expect(
            accepted,
            take_cash,
            flow=self.flow,
            amount=amount,
            tendered=tendered,
            till=till,
            order_id=f"order-{next(self.orders)}",
            tenant=tenant,
            cashier=cashier,
            split_tender=split_tender,
        )
        if accepted:
            assert session is not None
            assert paid is not None
            assert (sale.tendered, sale.change, sale.balance_due) == (tendered, tendered - paid, amount - paid)
            self._record_sale(sale.payment, tenant, session, paid)

    @rule(data=st.data(), tenant=st.sampled_from(TENANTS), broken=breaks("till", "amount", "tendered", "cashier"))
    def create_a_cash_payment(self, data: st.DataObject, tenant: str, broken: str | None) -> None:
        """``flow.create_payment`` with the cash provider and metadata as a client sends it (junk included)."""
        till = field_of(data, "till", broken, self._good_tills(tenant), st.one_of(bad_tills(), st.just(None)))
        till_name = name_of(till, TILL_LIMIT)
        currency = self._currency_at(tenant, till_name)
        amount = field_of(data, "amount", broken, good_amounts(currency), bad_amounts(currency))
        metadata: dict[str, Any] = {"till": till}
        good_tender = st.one_of(
            st.none(),
            st.sampled_from(
                ["100000", " 100000 ", "1e6", "1000000.0", "\u0661" + "\u0660" * 6, 100_000, "9223372036854775807"]
            ),
        )
        bad_tender = st.sampled_from(
            ["-1", "0", "1", "1e25", "1e40", "abc", "", "0x10", "12.3456", 10**25, -1, 1.5, True, [1], {"a": 1}]
        )
        tendered_raw = field_of(data, "tendered", broken, good_tender, bad_tender)
        if tendered_raw is not None:
            metadata["tendered"] = tendered_raw
        bad_cashiers = st.sampled_from([name for name in BAD_NAMES if not isinstance(name, bytes)])
        cashier = field_of(data, "cashier", broken, st.sampled_from([None, 5, "", *VALID_NAMES]), bad_cashiers)
        if cashier is not None:
            metadata["cashier"] = cashier
        session = self._session_at(tenant, till_name)
        accepted = is_amount(amount, None) and till_name is not None and session is not None
        if accepted and tendered_raw is not None:
            try:
                tendered = Money.of(tendered_raw, amount.currency)
            except InvalidAmount:
                accepted = False
            else:
                accepted = amount <= tendered and tendered.minor_units <= MAX_MINOR_UNITS
        if cashier is not None and name_of(cashier, NAME_LIMIT) is None:
            accepted = False  # a cashier named is a name, as a refund's is: never recorded as no one, or cut
        if not is_json(metadata):
            accepted = False  # what no store keeps as JSON (a lone surrogate), whoever refuses it
        accepted = accepted and session is not None and session.currency == amount.currency
        checkout = self.expect(
            accepted,
            self.flow.create_payment,
            amount=amount,
            provider="cash",
            order_id=f"order-{next(self.orders)}",
            tenant=tenant,
            metadata=metadata,
        )
        if accepted:
            assert session is not None
            self._record_sale(checkout.payment, tenant, session, amount)

    @precondition(lambda self: self.sales)
    @rule(
        data=st.data(),
        helper=st.booleans(),
        goodwill=st.booleans(),
        broken=breaks("tenant", "amount", "till", "cashier"),
    )
    def refund_a_cash_payment(self, data: st.DataObject, helper: bool, goodwill: bool, broken: str | None) -> None:
        """Refund a cash payment: in part or whole, too much, in another currency, out of another till
        (open, closed, unknown), or as the other tenant."""
        sale = self.sales[data.draw(st.sampled_from(list(self.sales)), label="payment")]
        other = BINTA if sale.tenant == AWA else AWA
        tenant = field_of(data, "tenant", broken, st.just(sale.tenant), st.just(other))
        left = sale.amount - sale.refunded
        good = st.one_of(st.none(), st.builds(Money.minor, st.integers(1, max(1, left)), st.just(sale.currency)))
        amount = field_of(
            data,
            "amount",
            broken,
            good,
            st.one_of(st.just(Money.minor(left + 1, sale.currency)), bad_amounts(sale.currency)),
        )
        till = field_of(data, "till", broken, st.one_of(st.none(), self._good_tills(sale.tenant)), bad_tills())
        cashier = field_of(data, "cashier", broken, st.sampled_from([None, *VALID_NAMES]), st.sampled_from(BAD_NAMES))
        reason = data.draw(st.sampled_from(REFUND_REASONS), label="reason")

        units = left if amount is None else amount.minor_units if isinstance(amount, Money) else None
        ok = tenant == sale.tenant and left > 0 and units is not None and 0 < units <= left
        ok = ok and (amount is None or amount.currency == sale.currency)
        if helper:  # refund_cash checks what it is given, then puts it in the metadata
            ok = ok and (till is None or name_of(till, TILL_LIMIT) is not None)
            ok = ok and (not cashier or name_of(cashier, NAME_LIMIT) is not None)
        else:
            ok = ok and (cashier is None or name_of(cashier, NAME_LIMIT) is not None)
        till_name = sale.till if till is None else name_of(till, TILL_LIMIT)
        paying = self._session_at(sale.tenant, till_name)
        ok = ok and paying is not None and paying.currency == sale.currency and units is not None
        ok = ok and paying is not None and units is not None and units <= paying.expected
        if helper:
            refund = self.expect(
                ok,
                refund_cash,
                flow=self.flow,
                payment_id=sale.id,
                amount=amount,
                till=till,
                cashier=cashier or "",
                reason=reason,
                goodwill=goodwill,
                tenant=tenant,
            )
        else:
            metadata = {name: value for name, value in (("till", till), ("cashier", cashier)) if value is not None}
            refund = self.expect(
                ok,
                self.flow.refund,
                PaymentNotFound if tenant != sale.tenant else PaycoreError,
                payment_id=sale.id,
                amount=amount,
                reason=reason,
                metadata=metadata,
                tenant=tenant,
            )
        if ok:
            assert paying is not None
            assert units is not None
            assert (refund.status, refund.amount) == (RefundStatus.SUCCEEDED, Money.minor(units, sale.currency))
            sale.refunded += units
            paying.movements.append((MovementKind.REFUND, units, sale.id))

    # -- reading ---------------------------------------------------------------------------------

    @rule(
        data=st.data(),
        tenant=st.sampled_from(TENANTS),
        read=st.sampled_from(["get", "movements", "totals", "report", "current", "sessions"]),
    )
    def read_with_a_bad_or_foreign_id(self, data: st.DataObject, tenant: str, read: str) -> None:
        """Reads with junk, and with the other tenant's session ids, are refused."""
        drawers = self.drawers[tenant]
        if read in ("current", "sessions"):
            till = data.draw(st.sampled_from(BAD_TILLS), label="till")
            self.expect(False, getattr(drawers, read), till=till)
            return
        foreign = [s.id for s in self.sessions.values() if s.tenant != tenant]
        junk = st.sampled_from(JUNK_SESSION_IDS)
        session_id = data.draw(st.one_of(junk, st.sampled_from(foreign)) if foreign else junk, label="session")
        refusal = DrawerNotFound if isinstance(session_id, str) and session_id in self.sessions else PaycoreError
        self.expect(False, getattr(drawers, read), refusal, session_id=session_id)

    @precondition(lambda self: self.sessions)
    @rule(data=st.data())
    def render_a_report(self, data: st.DataObject) -> None:
        """A session's report renders, as text and as JSON, with the model's figures."""
        session = self.sessions[data.draw(st.sampled_from(list(self.sessions)), label="session")]
        report = self.call(self.drawers[session.tenant].report, session_id=session.id)
        assert isinstance(report.render(), str)
        json.dumps(report.as_dict())
        expected = session.closed[1] if session.closed is not None else session.expected
        assert report.expected == Money.minor(expected, session.currency)
        if session.closed is not None:
            assert report.variance == Money.minor(session.closed[2], session.currency)
        self.unchanged = True

    # -- what must always hold -------------------------------------------------------------------

    async def _read(self) -> dict[str, TenantState]:
        state = {}
        for tenant, drawers in self.drawers.items():
            sessions = tuple(sorted(await drawers.sessions(), key=lambda s: s.id))
            movements = {s.id: tuple(await drawers.movements(s.id)) for s in sessions}
            totals = {s.id: await drawers.totals(s.id) for s in sessions}
            current = {till: await drawers.current(till) for t, till in sorted(self.tills) if t == tenant}
            payments = tuple(sorted(await self.flow.list_payments(tenant=tenant), key=lambda p: p.id))
            state[tenant] = TenantState(sessions, movements, totals, current, payments)
        return state

    @invariant()
    def every_drawer_holds_what_the_model_says(self) -> None:
        """Compare what each tenant reads with the model; after a refusal, with what it read before."""
        state = self.portal.call(self._read)
        if self.unchanged and self.last is not None:
            for tenant in TENANTS:
                assert state[tenant] == self.last[tenant], f"a refused request changed what {tenant} reads"
        self.unchanged = False
        self.last = state
        for tenant, read in state.items():
            self._check_drawers(tenant, read)
            self._check_payments(tenant, read)

    def _check_drawers(self, tenant: str, read: TenantState) -> None:
        mine = {s.id for s in self.sessions.values() if s.tenant == tenant}
        assert {s.id for s in read.sessions} == mine, f"{tenant} sees other sessions than its own"
        for stored in read.sessions:
            model = self.sessions[stored.id]
            currency = model.currency
            assert (stored.tenant, stored.till, stored.currency) == (tenant, model.till, currency)
            assert stored.opening_float == Money.minor(model.opening, currency)
            moved = [(m.kind, m.amount, m.payment_id) for m in read.movements[stored.id]]
            assert moved == [(kind, Money.minor(u, currency), pid) for kind, u, pid in model.movements]
            for _, _, payment_id in model.movements:
                assert payment_id is None or self.sales[payment_id].tenant == tenant, "cash moved across tenants"
            totals = read.totals[stored.id]
            assert totals.expected == Money.minor(model.expected, currency)
            assert totals.expected == (
                totals.opening_float + totals.sales + totals.pay_ins - totals.refunds - totals.pay_outs
            )
            assert not totals.expected.is_negative(), f"drawer {stored.id} holds less than nothing"
            if model.closed is None:
                assert stored.status is DrawerStatus.OPEN
                assert (stored.counted, stored.expected, stored.variance) == (None, None, None)
            else:
                counted, expected, variance = model.closed
                assert stored.status is DrawerStatus.CLOSED
                assert stored.counted == Money.minor(counted, currency)
                assert stored.expected == Money.minor(expected, currency)
                assert stored.variance == Money.minor(variance, currency)
                assert stored.expected is not None
                assert stored.variance == stored.counted - stored.expected
        for till, current in read.current.items():
            assert (None if current is None else current.id) == self.open.get((tenant, till))

    def _check_payments(self, tenant: str, read: TenantState) -> None:
        mine = {s.id for s in self.sales.values() if s.tenant == tenant}
        assert {p.id for p in read.payments} == mine, f"{tenant} sees other payments than its own"
        for payment in read.payments:
            sale = self.sales[payment.id]
            assert payment.tenant == tenant
            assert payment.captured_amount == Money.minor(sale.amount, sale.currency)
            assert payment.refunded_amount == Money.minor(sale.refunded, sale.currency)
            if sale.refunded == sale.amount:
                assert payment.status is PaymentStatus.REFUNDED
            elif sale.refunded:
                assert payment.status is PaymentStatus.PARTIALLY_REFUNDED
            else:
                assert payment.status is PaymentStatus.SUCCEEDED


MEMORY_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
SQLITE_SETTINGS = settings(MEMORY_SETTINGS, max_examples=25, stateful_step_count=20)


def test_drawers_on_memory_storage_balance_and_refuse_bad_input(anyio_backend: str) -> None:
    """The fuzz on the memory drawer storage."""
    run_state_machine_as_test(lambda: DrawerMachine("memory", anyio_backend), settings=MEMORY_SETTINGS)


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database at every schema's head (the cash plugin's included), copied for each run."""
    from paycore_sqlalchemy import migrate

    path = tmp_path_factory.mktemp("drawer-fuzz") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_copies(migrated_sqlite: Path, tmp_path: Path) -> Callable[[], str]:
    """Make a fresh copy of the migrated database for each run; give its URL."""
    numbers = itertools.count()

    def make() -> str:
        path = tmp_path / f"run-{next(numbers)}.db"
        shutil.copyfile(migrated_sqlite, path)
        return f"sqlite:///{path}"

    return make


def test_drawers_on_sqlite_storage_balance_and_refuse_bad_input(
    anyio_backend: str, sqlite_copies: Callable[[], str]
) -> None:
    """The fuzz on the SQL drawer storage (SQLite), which keeps amounts as ``BIGINT``."""
    run_state_machine_as_test(lambda: DrawerMachine(sqlite_copies(), anyio_backend), settings=SQLITE_SETTINGS)
