"""Standard Webhooks signatures: what verifies, what is refused and why."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from paycore.errors import ConfigurationError, InvalidSignature
from paycore_dummy.signing import WebhookSecret, generate_secret, sign, signature_headers, verify

BODY = b'{"type":"payment.succeeded","data":{"id":"gpay_1"}}'


def test_a_signature_verifies_with_the_secret_it_was_made_with() -> None:
    secret = WebhookSecret(generate_secret())
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[secret])
    assert verify(BODY, headers, secrets=[secret]) == "evt_1"


def test_signatures_verify_with_the_reference_standardwebhooks_library() -> None:
    raw = generate_secret()
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[WebhookSecret(raw)])
    assert Webhook(raw).verify(BODY, headers) == {"type": "payment.succeeded", "data": {"id": "gpay_1"}}


def test_signatures_of_the_reference_library_verify_here() -> None:
    raw = generate_secret()
    now = int(time.time())
    from datetime import UTC, datetime

    signature = Webhook(raw).sign("evt_9", datetime.fromtimestamp(now, UTC), BODY.decode())
    headers = {"webhook-id": "evt_9", "webhook-timestamp": str(now), "webhook-signature": signature}
    assert verify(BODY, headers, secrets=[WebhookSecret(raw)]) == "evt_9"


@pytest.mark.parametrize("msg_id", ["evt_\u00e9", "evt_\u20ac", "evt_\u65e5\u672c"])
def test_a_utf8_webhook_id_read_as_latin1_by_an_asgi_server_verifies(msg_id: str) -> None:
    raw = generate_secret()
    now = int(time.time())
    signature = Webhook(raw).sign(msg_id, datetime.fromtimestamp(now, UTC), BODY.decode())
    # The header's UTF-8 bytes, decoded as latin-1: what uvicorn, hypercorn and Django hand over.
    as_served = msg_id.encode("utf-8").decode("latin-1")
    headers = {"webhook-id": as_served, "webhook-timestamp": str(now), "webhook-signature": signature}
    assert verify(BODY, headers, secrets=[WebhookSecret(raw)]) == msg_id
    # The same id given as the text it is (a framework decoding headers as UTF-8) verifies too.
    assert verify(BODY, headers | {"webhook-id": msg_id}, secrets=[WebhookSecret(raw)]) == msg_id


def test_a_tampered_body_is_refused() -> None:
    secret = WebhookSecret(generate_secret())
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[secret])
    with pytest.raises(InvalidSignature, match="no signature matches"):
        verify(BODY.replace(b"succeeded", b"failed"), headers, secrets=[secret])


def test_a_signature_made_with_another_secret_is_refused() -> None:
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[WebhookSecret(generate_secret())])
    with pytest.raises(InvalidSignature, match="no signature matches"):
        verify(BODY, headers, secrets=[WebhookSecret(generate_secret())])


def test_a_changed_webhook_id_is_refused() -> None:
    secret = WebhookSecret(generate_secret())
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[secret])
    headers["webhook-id"] = "evt_2"
    with pytest.raises(InvalidSignature, match="no signature matches"):
        verify(BODY, headers, secrets=[secret])


def test_a_stale_timestamp_is_refused_even_when_correctly_signed() -> None:
    secret = WebhookSecret(generate_secret())
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[secret], timestamp=int(time.time()) - 301)
    with pytest.raises(InvalidSignature, match="outside the tolerance of 300s"):
        verify(BODY, headers, secrets=[secret])


@pytest.mark.parametrize("around", ["\x1c", "\x1f", "\n", "\u00a0"])
def test_a_timestamp_with_anything_but_spaces_around_it_is_refused_as_a_bad_signature(around: str) -> None:
    secret = WebhookSecret(generate_secret())
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[secret])
    headers["webhook-timestamp"] = around + headers["webhook-timestamp"]
    with pytest.raises(InvalidSignature, match="must be whole Unix seconds"):
        verify(BODY, headers, secrets=[secret])


def test_a_timestamp_with_spaces_around_it_still_verifies() -> None:
    secret = WebhookSecret(generate_secret())
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[secret])
    headers["webhook-timestamp"] = f" {headers['webhook-timestamp']}\t"
    assert verify(BODY, headers, secrets=[secret]) == "evt_1"


def test_a_timestamp_from_the_future_is_refused() -> None:
    secret = WebhookSecret(generate_secret())
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[secret], timestamp=int(time.time()) + 3600)
    with pytest.raises(InvalidSignature, match="outside the tolerance"):
        verify(BODY, headers, secrets=[secret])


@pytest.mark.parametrize(("skew", "said"), [(301, "301s ahead"), (-301, "302s old")])  # 300.5s, 301.5s: rounded up
def test_a_refused_timestamp_says_how_far_off_it_is_and_which_way(skew: int, said: str) -> None:
    secret, now = WebhookSecret(generate_secret()), 1_800_000_000.5  # a clock between two whole seconds
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[secret], timestamp=int(now) + skew)
    with pytest.raises(InvalidSignature, match=f"its timestamp is {said}, outside the tolerance of 300s"):
        verify(BODY, headers, secrets=[secret], now=now)


def test_the_tolerance_window_is_configurable() -> None:
    secret = WebhookSecret(generate_secret())
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[secret], timestamp=int(time.time()) - 30)
    with pytest.raises(InvalidSignature, match="tolerance of 10s"):
        verify(BODY, headers, secrets=[secret], tolerance=10)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_named_in_the_refusal(missing: str) -> None:
    secret = WebhookSecret(generate_secret())
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[secret])
    del headers[missing]
    with pytest.raises(InvalidSignature, match=f"'{missing}' header is missing"):
        verify(BODY, headers, secrets=[secret])


def test_a_non_numeric_timestamp_is_refused() -> None:
    secret = WebhookSecret(generate_secret())
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[secret])
    headers["webhook-timestamp"] = "yesterday"
    with pytest.raises(InvalidSignature, match="whole Unix seconds"):
        verify(BODY, headers, secrets=[secret])


def test_a_signature_of_an_unknown_version_is_ignored() -> None:
    secret = WebhookSecret(generate_secret())
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[secret])
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v1a,")
    with pytest.raises(InvalidSignature, match="no 'v1,<base64>' signature"):
        verify(BODY, headers, secrets=[secret])


def test_during_rotation_every_secret_signs_and_either_verifies() -> None:
    old, new = WebhookSecret(generate_secret()), WebhookSecret(generate_secret())
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[old, new])
    assert len(headers["webhook-signature"].split()) == 2
    assert verify(BODY, headers, secrets=[old]) == "evt_1"
    assert verify(BODY, headers, secrets=[new]) == "evt_1"


@pytest.mark.parametrize("joined_with", [", ", ","], ids=["asgi", "django"])
@pytest.mark.parametrize("valid_first", [True, False], ids=["valid-first", "valid-second"])
@pytest.mark.parametrize("other_version", ["v1", "v1a"])
def test_two_signature_headers_joined_by_the_server_verify_in_either_order(
    joined_with: str, valid_first: bool, other_version: str
) -> None:
    # A sender writing one header per secret (or per scheme: "v1a" is the asymmetric one): a server joins
    # repeated headers with a comma, so the valid signature first read "v1,<base64>," and was refused, and
    # a "v1a" header joined after it with a bare comma still was.
    ours, theirs = WebhookSecret(generate_secret()), WebhookSecret(generate_secret())
    valid = signature_headers(BODY, msg_id="evt_1", secrets=[ours])
    other = signature_headers(BODY, msg_id="evt_1", secrets=[theirs], timestamp=int(valid["webhook-timestamp"]))
    other["webhook-signature"] = other["webhook-signature"].replace("v1,", f"{other_version},")
    both = [valid["webhook-signature"], other["webhook-signature"]]
    valid["webhook-signature"] = joined_with.join(both if valid_first else both[::-1])
    assert verify(BODY, valid, secrets=[ours]) == "evt_1"


def test_a_receiver_holding_both_secrets_accepts_a_sender_still_on_the_old_one() -> None:
    old, new = WebhookSecret(generate_secret()), WebhookSecret(generate_secret())
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[old])
    assert verify(BODY, headers, secrets=[new, old]) == "evt_1"


def test_the_signature_is_the_documented_hmac_of_id_timestamp_and_body() -> None:
    import base64
    import hashlib
    import hmac

    raw = "whsec_" + base64.b64encode(b"k" * 24).decode()
    expected = hmac.new(b"k" * 24, b"evt_1.1700000000." + BODY, hashlib.sha256).digest()
    assert sign(BODY, msg_id="evt_1", timestamp=1700000000, secrets=[WebhookSecret(raw)]) == (
        "v1," + base64.b64encode(expected).decode()
    )


@pytest.mark.parametrize("bad", ["sk_live_123", "whsec_not base64!", "whsec_" + "QUJD"])
def test_a_malformed_secret_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        WebhookSecret(bad)
    assert bad not in str(caught.value)


def test_a_secret_never_shows_in_its_repr() -> None:
    raw = generate_secret()
    assert raw[6:] not in repr(WebhookSecret(raw))
