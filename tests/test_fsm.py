"""The payment state machine: one shared ``transitions`` machine, statuses only move forward."""

from __future__ import annotations

import attrs
import pytest
from transitions import Machine

from paycore import fsm
from paycore.changes import Change
from paycore.errors import InvalidTransition
from paycore.status import PaymentStatus as S
from paycore.testing.records import BASE_TIME, make_payment


def _edges() -> list[tuple[str, S, S]]:
    edges = []
    for trigger, sources, destination in fsm.TRANSITIONS:
        for source in sources if isinstance(sources, list) else [sources]:
            edges.append((trigger, source, destination))
    return edges


@pytest.mark.parametrize(("trigger", "source", "destination"), _edges())
def test_every_transition_moves_forward(trigger: str, source: S, destination: S) -> None:
    if trigger == "refund_partially" and source is S.PARTIALLY_REFUNDED:
        assert fsm.RANK[destination] == fsm.RANK[source]
    else:
        assert fsm.RANK[destination] > fsm.RANK[source]


@pytest.mark.parametrize(("trigger", "source", "destination"), _edges())
def test_every_transition_fires_to_its_destination(trigger: str, source: S, destination: S) -> None:
    assert fsm.fire(source, trigger) is destination
    assert fsm.next_status(source, trigger) is destination
    assert fsm.allowed(source, trigger)


def test_every_status_has_a_rank() -> None:
    assert set(fsm.RANK) == set(S)


def test_the_table_is_compiled_from_the_one_shared_machine() -> None:
    assert isinstance(fsm.MACHINE, Machine)
    assert fsm.MACHINE.models == []
    assert set(fsm.MACHINE.events) == fsm.TRIGGERS
    for status in S:
        for trigger, event in fsm.MACHINE.events.items():
            expected = event.transitions.get(status.value)
            assert fsm.next_status(status, trigger) == (S(expected[0].dest) if expected else None)


def test_an_invalid_trigger_is_refused_naming_where_it_may_fire_from() -> None:
    with pytest.raises(
        InvalidTransition, match="cannot authorize a payment that is succeeded; only from pending, processing"
    ):
        fsm.fire(S.SUCCEEDED, "authorize")


def test_an_unknown_trigger_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(InvalidTransition, match=r"unknown trigger 'teleport'; known: \['authorize'"):
        fsm.fire(S.PENDING, "teleport")


def test_a_refunded_payment_can_go_nowhere() -> None:
    assert not any(fsm.allowed(S.REFUNDED, trigger) for trigger in fsm.TRIGGERS)


@pytest.mark.parametrize("closed", [S.EXPIRED, S.CANCELED, S.FAILED])
def test_a_late_confirmation_is_the_only_way_out_of_a_closed_status(closed: S) -> None:
    assert {t for t in fsm.TRIGGERS if fsm.allowed(closed, t)} == {"confirm_late"}
    assert fsm.fire(closed, "confirm_late") is S.SUCCEEDED


@pytest.mark.parametrize("status", list(S))
def test_no_trigger_leads_back_to_pending(status: S) -> None:
    assert all(fsm.next_status(status, t) is not S.PENDING for t in fsm.TRIGGERS)


def test_the_mermaid_diagram_shows_every_transition() -> None:
    diagram = fsm.mermaid()
    assert diagram.startswith("stateDiagram-v2\n    [*] --> pending\n")
    for trigger, source, destination in _edges():
        assert f"    {source.value} --> {destination.value}: {trigger}\n" in diagram
    for status in S:
        if status.is_final:
            assert f"    {status.value} --> [*]\n" in diagram


# -- Change: the only way a status changes ----------------------------------------------


def test_status_cannot_be_set_directly_on_a_change() -> None:
    change = Change(make_payment(), cause="api", now=BASE_TIME)
    with pytest.raises(TypeError, match="status is changed only by fire"):
        change.set(status=S.SUCCEEDED)
    assert change.result() is None


def test_a_stored_payment_cannot_be_assigned_a_status() -> None:
    payment = make_payment()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        payment.status = S.SUCCEEDED  # type: ignore[misc]


def test_firing_appends_a_status_changed_event_and_bumps_the_version_once() -> None:
    payment = make_payment(version=3, event_count=4)
    change = Change(payment, cause="webhook", now=BASE_TIME, provider_event_id="evt_9")
    change.fire("send")
    change.fire("succeed", message="paid")
    result = change.result()
    assert result is not None
    assert result.status is S.SUCCEEDED
    assert result.version == 4
    assert result.event_count == 6
    assert [(e.sequence, e.from_status, e.to_status) for e in change.events] == [
        (5, "pending", "processing"),
        (6, "processing", "succeeded"),
    ]
    assert all(e.cause == "webhook" and e.provider_event_id == "evt_9" for e in change.events)


def test_an_invalid_fire_on_a_change_changes_nothing() -> None:
    change = Change(make_payment(status=S.SUCCEEDED), cause="api", now=BASE_TIME)
    with pytest.raises(InvalidTransition):
        change.fire("authorize")
    assert change.result() is None
    assert change.events == []


def test_a_change_that_sets_a_field_to_its_current_value_changes_nothing() -> None:
    payment = make_payment(description="table 4")
    change = Change(payment, cause="api", now=BASE_TIME)
    change.set(description="table 4")
    assert not change.changed
    assert change.result() is None
