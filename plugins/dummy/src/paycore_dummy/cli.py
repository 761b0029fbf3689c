"""``paycore dummy serve``: run the dummy gateway on a port, under uvicorn.

Arguments the gateway cannot run with (no delivery attempt, a delay that is not a
number of seconds, a port beyond 65535, a host that resolves to no address, a
webhook URL that is not one) are refused with a
:class:`~paycore.errors.ConfigurationError` before anything starts: ``paycore``
prints it on one line (``paycore: error: ...``) and exits with status 1.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
from typing import Final

from paycore.config_sources import read_webhook_url
from paycore.errors import ConfigurationError
from paycore.secrets import redact_url
from paycore.wire import shown
from paycore_dummy.delivery import RetryPolicy
from paycore_dummy.gateway import DummyGateway
from paycore_dummy.signing import generate_secret, secret_texts

__all__ = ["configure", "run"]

MOST_PORT: Final = 65535
"""The highest TCP port; ``--port`` is 1 to this (0, any free port, would not be the one printed)."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``serve`` and its options to ``paycore dummy``."""
    commands = parser.add_subparsers(dest="dummy_command", metavar="COMMAND")
    commands.required = True
    serve = commands.add_parser("serve", help="run the dummy gateway (REST API, checkout page, webhooks)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port to listen on, 1 to 65535 (default 8765)")
    serve.add_argument(
        "--api-key",
        default=os.environ.get("PAYCORE_DUMMY_API_KEY"),
        help="the API key merchants use (default: $PAYCORE_DUMMY_API_KEY, else a fresh one)",
    )
    serve.add_argument(
        "--webhook-secret",
        action="append",
        default=None,
        help="whsec_ secret webhooks are signed with; while rotating, repeat it or give several separated by "
        "spaces or commas, as the provider's webhook_secret (default: $PAYCORE_DUMMY_WEBHOOK_SECRET, same form, "
        "else a fresh one)",
    )
    serve.add_argument("--webhook-url", default=None, help="where webhooks go when a payment names no URL")
    serve.add_argument("--attempts", type=int, default=6, help="webhook delivery attempts (default 6)")
    serve.add_argument("--timeout-delay", type=float, default=40.0, help="stall of the timeout scenario (s)")
    serve.add_argument("--scenario-delay", type=float, default=2.0, help="pace of timed scenarios (s)")


def run(args: argparse.Namespace) -> int:
    """Serve the gateway until interrupted, once :func:`check_arguments` found nothing to refuse."""
    webhook_url = check_arguments(args)
    try:
        import uvicorn
    except ImportError:
        print("paycore dummy serve needs uvicorn: pip install 'paycore-dummy[serve]'", file=sys.stderr)
        return 2
    env_secret = os.environ.get("PAYCORE_DUMMY_WEBHOOK_SECRET")
    made_key = not args.api_key
    api_key = args.api_key or "sk_test_" + generate_secret()[len("whsec_") :][:24]
    # The option and the variable take the provider's webhook_secret form: several secrets, spaces or commas between.
    values = args.webhook_secret if args.webhook_secret is not None else [] if env_secret is None else [env_secret]
    given = [secret for value in values for secret in secret_texts(value)]
    if values and not given:  # an unset shell variable, say: refused, never replaced by a secret made up
        raise ConfigurationError("--webhook-secret (or $PAYCORE_DUMMY_WEBHOOK_SECRET) was given but holds no secret")
    made_secret = not values
    secrets = given or [generate_secret()]
    gateway = DummyGateway(
        api_key=api_key,
        webhook_secrets=secrets,
        webhook_url=webhook_url,
        retry=RetryPolicy(attempts=args.attempts),
        timeout_delay=args.timeout_delay,
        scenario_delay=args.scenario_delay,
    )
    base_url = f"http://{args.host}:{args.port}"
    print(f"dummy gateway on {base_url}")
    print(f'provider settings: type = "dummy", base_url = "{base_url}"')
    # Test credentials made up just now are shown once, so the developer can configure the provider.
    if made_key:
        print(f'  api_key = "{api_key}"  (made up for this run)')
    if made_secret:
        print(f'  webhook_secret = "{secrets[0]}"  (made up for this run)')
    sys.stdout.flush()
    uvicorn.run(gateway, host=args.host, port=args.port, lifespan="on", log_level="info")
    return 0


def check_arguments(args: argparse.Namespace) -> str | None:
    """Refuse ``serve`` arguments the gateway cannot run with; the checked webhook URL (``None``: unset).

    Each refusal is a :class:`~paycore.errors.ConfigurationError` naming the option.
    """
    if args.attempts < 1:
        raise ConfigurationError(
            f"--attempts must be at least 1 (delivery attempts in all), not {shown(args.attempts)}"
        )
    _check_delay("--timeout-delay", args.timeout_delay)
    _check_delay("--scenario-delay", args.scenario_delay)
    if not 1 <= args.port <= MOST_PORT:
        raise ConfigurationError(f"--port must be 1 to {MOST_PORT}, not {shown(args.port)}")
    _check_host(args.host, args.port)
    return _webhook_url(args.webhook_url)


def _check_delay(option: str, seconds: float) -> None:
    """Refuse a delay that is not a number of seconds: NaN, infinite or negative."""
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ConfigurationError(f"{option} must be a number of seconds, 0 or more, not {shown(seconds)}")


def _check_host(host: str, port: int) -> None:
    """Refuse a host that resolves to no address to listen on (``999.1.1.1``, ``nohost.invalid``)."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else None
        raise ConfigurationError(
            f"--host must be an address or a name to listen on, not {shown(host)}: {reason or 'not a host name'}"
        ) from None


def _webhook_url(raw: str | None) -> str | None:
    """``--webhook-url`` checked as the configuration's ``webhook_url`` is; the gateway posts to it as given."""
    try:
        url = read_webhook_url(raw)
    except ConfigurationError as error:
        raise ConfigurationError(f"--webhook-url: {error}") from None
    if url is not None and "{" in url:
        raise ConfigurationError(
            "--webhook-url is where the gateway posts webhooks as given: a URL, not a template, "
            f"not {shown(redact_url(url))}"
        )
    return url
