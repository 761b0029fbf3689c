"""Idempotency keys: their checks, request fingerprints, and the ids a key binds.

A request is identified by a fingerprint: the SHA-256 of its operation and
canonical arguments. The same key with the same fingerprint replays; with
another fingerprint it is refused.

A record created under a key (a payment, a refund, a drawer session) gets an id
derived from the key, so a request resumed after a crash (or retried after
"not sent") finds what its first attempt wrote instead of making a second one.
That binding lasts as long as the key's stored result (``idempotency_ttl``):
afterwards the key is free again, as at Stripe, and the same key names a new
record. :class:`KeyBinding` gives the ids a key may have named within that
window. :mod:`paycore.idempotency` runs requests under keys with them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Protocol, TypeVar

from attrs import define, field, frozen

from paycore import serialization
from paycore.builders import compile_builder
from paycore.errors import IdempotencyKeyReused, ValidationError
from paycore.records import Checkout, Payment
from paycore.storage import IdempotencyClaim, IdempotencyStore, KeyCompletion, PaymentWrite
from paycore.wire import shown

__all__ = [
    "MAX_KEY_LENGTH",
    "KeyBinding",
    "KeyCompleter",
    "call_id_of",
    "call_ids_of",
    "check_key",
    "derived_id",
    "earlier_forms",
    "fingerprint",
    "is_record_id",
    "replayed",
    "scope_of",
    "stored_result",
]

MAX_KEY_LENGTH: Final = 255
"""The longest idempotency key, in characters (a UUID, an order line and its attempt fit many times over)."""


def check_key(key: object) -> str:
    """Return ``key`` if it is a usable idempotency key; refuse it otherwise."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError(
            f"idempotency_key must be a printable string of 1 to {MAX_KEY_LENGTH} characters, not {shown(key)}"
        )
    return key


def scope_of(tenant: str | None) -> str:
    """The key space of a tenant: keys of two tenants never collide."""
    return "" if tenant is None else f"t:{tenant}"


_CANONICAL: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)  # keys sorted, no spaces


def _canonical_chunks() -> Callable[[object, int], Sequence[str]] | None:
    """``_CANONICAL``'s C encoder, built once (``JSONEncoder.encode`` builds one per call); ``None`` without it.

    No check for cycles: what is fingerprinted passed :func:`paycore.inputs.json_document` or is paycore's own.
    """
    try:
        from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]

        made: Callable[[object, int], Sequence[str]] = c_make_encoder(
            None, str, encode_basestring_ascii, None, ":", ",", True, False, True
        )
        sample = {"b": [1, 2.5, None, True, "\u00e9"], "a": {"c": {}}}
        if "".join(made(sample, 0)) == _CANONICAL.encode(sample):
            return made
    except (ImportError, TypeError, ValueError):  # an interpreter without the C accelerator, or another signature
        pass
    return None  # JSONEncoder.encode, then: the same text


_ENCODE_CANONICAL: Final = _canonical_chunks()


def fingerprint(operation: str, arguments: Mapping[str, Any]) -> str:
    """The SHA-256 hex digest of ``operation`` and its canonical JSON ``arguments``.

    The canonical JSON is ``json.dumps(..., sort_keys=True, separators=(",", ":"), default=str)``'s:
    stored fingerprints stay valid from one release to the next, so a retry after an upgrade still replays.
    """
    from hashlib import sha256  # loaded on first use: importing paycore stays cheap

    document = {"operation": operation, "arguments": arguments}
    if _ENCODE_CANONICAL is not None:
        canonical = "".join(_ENCODE_CANONICAL(document, 0))
    else:
        canonical = _CANONICAL.encode(document)
    return sha256(canonical.encode()).hexdigest()


def earlier_forms(operation: str, arguments: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """The forms earlier releases gave the same request's ``arguments`` when they fingerprinted it, newest first:
    a retry of a request an earlier release ran still replays it after an upgrade. Before December 2026 a
    refund's had no ``metadata``; the same request now carries it empty."""
    if operation == "refund" and arguments.get("metadata") == {}:
        return ({name: value for name, value in arguments.items() if name != "metadata"},)
    return ()


_BASE32: Final = "abcdefghijklmnopqrstuvwxyz234567"
_URL_SAFE: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
"""The characters of URL-safe base64 (RFC 4648 section 5)."""
_BASE32_PAIRS: Final = tuple(a + b for a in _BASE32 for b in _BASE32)
"""Every 10-bit value as two base32 letters (RFC 4648 alphabet, lower case)."""


def derived_id(prefix: str, scope: str, key: str) -> str:
    """A record id determined by ``(scope, key)``: the same inputs always name the same record.

    The id is the prefix and 120 bits of SHA-256, in lower-case RFC 4648 base32
    (what ``base64.b32encode`` gives, ten bits at a time from a table).
    """
    from hashlib import sha256  # loaded on first use: importing paycore stays cheap

    bits = int.from_bytes(sha256(f"{prefix}\x00{scope}\x00{key}".encode()).digest()[:15], "big")
    pair = _BASE32_PAIRS  # the 120 bits as twelve pairs of letters, the highest ten bits first
    return (
        f"{prefix}_{pair[bits >> 110]}{pair[bits >> 100 & 1023]}{pair[bits >> 90 & 1023]}{pair[bits >> 80 & 1023]}"
        f"{pair[bits >> 70 & 1023]}{pair[bits >> 60 & 1023]}{pair[bits >> 50 & 1023]}{pair[bits >> 40 & 1023]}"
        f"{pair[bits >> 30 & 1023]}{pair[bits >> 20 & 1023]}{pair[bits >> 10 & 1023]}{pair[bits & 1023]}"
    )


def is_record_id(prefix: str, text: str) -> bool:
    """Whether ``text`` has the shape of an id paycore makes for a ``prefix`` record (``pay``): :func:`derived_id`'s
    (24 base32 letters) or a random one's (20 URL-safe base64 characters: :func:`paycore.records.new_id`). Another
    system's reference that only begins as one does (``pay_8812``) is not."""
    head, underscore, rest = text.partition("_")
    if head != prefix or not underscore:
        return False
    if len(rest) == 24:
        return all(character in _BASE32 for character in rest)
    return len(rest) == 20 and all(character in _URL_SAFE for character in rest)


@define(eq=False)
class KeyCompleter:
    """Completes an operation's idempotency key with the operation's last payment write.

    The runner hands one to the operation (:attr:`KeyBinding.completer`) when
    the repository can complete keys of the store in its own writes
    (:class:`~paycore.storage.CompletingRepository`). The operation asks it for
    a :class:`~paycore.storage.KeyCompletion` of its result as it makes its last
    write, and returns that very result; the runner then has nothing left to do.
    """

    store: IdempotencyStore
    scope: str
    key: str
    token: str
    ttl_seconds: float
    result: object = None
    """The result of the last completion asked for."""
    completion: KeyCompletion | None = None
    """The last completion asked for; its ``completed`` says whether its write committed it."""

    def completing(self, result: object) -> KeyCompletion:
        """The completion that stores ``result`` for the key (the operation's last write carries it)."""
        self.result = result
        self.completion = KeyCompletion(
            self.store, self.scope, self.key, self.token, stored_result(result), self.ttl_seconds
        )
        return self.completion

    def completed(self, result: object) -> bool | None:
        """Whether a write completed the key with ``result`` itself (``None``: no write did)."""
        if self.completion is None or self.result is not result:
            return None
        return self.completion.completed


def stored_result(result: object) -> Mapping[str, Any]:
    """``result`` as an idempotency store keeps it (read back with :func:`paycore.serialization.structure`)."""
    return {"value": serialization.unstructure_compact(result)}


class _Created(Protocol):
    """A record a key may have named: a payment, a refund."""

    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...


C = TypeVar("C", bound=_Created)
R = TypeVar("R")


@frozen
class KeyBinding:
    """The ids a key names while it is bound (for ``ttl`` after its record was created).

    Time is cut into windows of ``ttl``; a record created under the key in the
    current window gets :meth:`new_id`. A retry looks in :meth:`candidate_ids`
    (this window and the one before) and keeps a record only if :meth:`binds`
    says it is younger than ``ttl``; an older one belongs to an expired use of
    the key, which now names a new record.
    """

    scope: str
    key: str
    now: datetime
    ttl: timedelta
    completer: KeyCompleter | None = field(default=None, eq=False, repr=False)
    """Completes the key with the operation's last write, when the repository can (else ``None``)."""
    prefetched: Mapping[str, Payment] | None = field(default=None, eq=False, repr=False)
    """The payments the operation asked to read with the claim, by id (``None``: nothing was read;
    an id missing from it names no payment)."""
    added: PaymentWrite | None = field(default=None, eq=False, repr=False)
    """The new payment (with its first events) stored with the claim, when the runner could
    (:meth:`~paycore.storage.ClaimingRepository.claim_and_add`); else ``None``."""
    updated: PaymentWrite | None = field(default=None, eq=False, repr=False)
    """The operation's first write on the payment it works on, stored with the claim when the
    runner could (:meth:`~paycore.storage.ClaimingRepository.claim_and_update`); else ``None``."""
    _concluded: list[object] = field(factory=list, eq=False, repr=False)
    """The operation's result once its provider's answer was recorded (:meth:`conclude`)."""
    _ids: dict[tuple[str, int | None, str, bool], str] = field(factory=dict, eq=False, repr=False)
    """The ids worked out so far (an operation asks for the same one more than once)."""
    _window: int = field(eq=False, repr=False)
    """The number of the window of ``ttl`` that ``now`` falls in (worked out from them unless given)."""

    @_window.default
    def _window_of_now(self) -> int:
        return _window_of(self.now, self.ttl)

    @classmethod
    def at(cls, scope: str, key: str, now: datetime, ttl: timedelta) -> KeyBinding:
        """The binding of ``key`` in ``scope`` at ``now``: ``KeyBinding(scope, key, now, ttl)``, built faster."""
        window = _window_of(now, ttl)
        return _build_binding(scope=scope, key=key, now=now, ttl=ttl, _concluded=[], _ids={}, _window=window)

    def with_claim(
        self,
        *,
        completer: KeyCompleter | None,
        prefetched: Mapping[str, Payment] | None,
        added: PaymentWrite | None = None,
        updated: PaymentWrite | None = None,
    ) -> KeyBinding:
        """This binding once its key is claimed, with what the claim gave (the ids worked out so far are kept)."""
        return _build_binding(
            scope=self.scope,
            key=self.key,
            now=self.now,
            ttl=self.ttl,
            completer=completer,
            prefetched=prefetched,
            added=added,
            updated=updated,
            _concluded=self._concluded,
            _ids=self._ids,
            _window=self._window,
        )

    def conclude(self, result: object) -> None:
        """Note ``result``, the operation's, once the write recording its provider's answer ran: should its caller be
        cancelled before the key keeps it (asyncio's own cancellation goes through anyio's shields), the key keeps
        it all the same, so a retry replays it."""
        self._concluded[:] = [result]

    @property
    def concluded(self) -> tuple[object, ...]:
        """``(result,)`` once :meth:`conclude` noted one, else ``()``."""
        return tuple(self._concluded)

    def _id(self, prefix: str, window: int | None, within: str = "", *, unscoped: bool = False) -> str:
        cached = (prefix, window, within, unscoped)
        found = self._ids.get(cached)
        if found is None:
            if window is None:  # the id a record got before ids named their window (November 2026)
                name = self.key
            else:
                name = f"{self.key}\x00{window}\x00{within}" if within else f"{self.key}\x00{window}"
            found = self._ids[cached] = derived_id(prefix, "" if unscoped else self.scope, name)
        return found

    def new_id(self, prefix: str, *, within: str = "") -> str:
        """The id a record created now under this key gets. ``within`` names what the record belongs to (a
        refund's payment): a key used again for another payment's refund, once released, names another refund."""
        return self._id(prefix, self._window, within)

    def next_window_id(self, prefix: str) -> str:
        """The id a retry under this key in the next window of ``ttl`` gives its record: the key's retry once this
        attempt stalled past its lease, taken over after the window turned. Looked up before a record of its own is
        stored without a record written ahead of it, so that the stalled attempt stores no second one."""
        return self._id(prefix, self._window + 1)

    def candidate_ids(self, prefix: str, *, within: str = "") -> tuple[str, ...]:
        """The ids an earlier attempt under this key may have used, newest first; with ``within``, then the ids
        such records got before their ids named what they belong to; last, the one a record got before ids
        named their window. So a retry after an upgrade finds the record its first attempt made.

        With ``within`` (a refund, within its payment) in a tenant's key space, then each of those ids as derived
        in no tenant's: before December 2026 a refund asked without ``tenant=`` was keyed there.
        """
        window = self._window
        if not within:
            return self._id(prefix, window), self._id(prefix, window - 1), self._id(prefix, None)
        forms = ((window, within), (window - 1, within), (window, ""), (window - 1, ""), (None, ""))
        ids = tuple(self._id(prefix, number, named) for number, named in forms)
        if not self.scope:
            return ids
        return ids + tuple(self._id(prefix, number, named, unscoped=True) for number, named in forms)

    def binds(self, created_at: datetime) -> bool:
        """True when a record created at ``created_at`` under this key is still the key's record."""
        return self.now - created_at < self.ttl

    def earlier(self, prefix: str, records: Collection[C], *, within: str = "") -> C | None:
        """The record among ``records`` an earlier attempt under this key created, while the key binds it.

        ``prefix`` is the kind of record's id prefix (``"pay"``, ``"re"``); ``within`` as for :meth:`new_id`.
        """
        if not records:
            return None
        for candidate in self.candidate_ids(prefix, within=within):  # the newest window first
            for record in records:
                if record.id == candidate and self.binds(record.created_at):
                    return record
        return None


def _window_of(now: datetime, ttl: timedelta) -> int:
    """The number of the window of ``ttl`` that ``now`` falls in."""
    return int(now.timestamp() // max(ttl.total_seconds(), 1e-6))


_build_binding = compile_builder(KeyBinding)
"""``KeyBinding(**fields)``, without running ``__init__`` (the ids and the window are given)."""


def call_id_of(binding: KeyBinding | None) -> str | None:
    """The id of the provider call a keyed operation writes down: the key's, so a retry knows its own call."""
    return binding.new_id("call") if binding is not None else None


def call_ids_of(binding: KeyBinding | None) -> tuple[str, ...]:
    """The ids an earlier attempt under the binding's key may have given its provider call."""
    return binding.candidate_ids("call") if binding is not None else ()


def replayed(claim: IdempotencyClaim, result_type: type[R], scope: str) -> R:
    """The result a claim that did not take the key (it has no token) replays; :class:`IdempotencyKeyReused` for a
    payment of another tenant than ``scope``'s, which only a store mixing key spaces could give (a third party's: the
    conformance suite checks it), never handed to the caller."""
    if claim.record is not None and type(claim.record) is result_type:
        replayed: R = claim.record  # narrowed by the type check above
    else:
        assert claim.result is not None, "a claim without a token carries a result or a record"
        replayed = serialization.structure(claim.result["value"], result_type)
    payment = replayed.payment if isinstance(replayed, Checkout) else replayed
    if isinstance(payment, Payment) and "|" not in scope and scope_of(payment.tenant) != scope:
        raise IdempotencyKeyReused(
            f"the idempotency store answered this key with a payment of another tenant ({payment.tenant!r}): it "
            "mixes tenants' key spaces, and nothing is replayed from it"
        )
    return replayed
