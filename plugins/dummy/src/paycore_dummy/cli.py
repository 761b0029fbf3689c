"""``paycore dummy serve``: run the dummy gateway on a port, under uvicorn."""

from __future__ import annotations

import argparse
import os
import sys

from paycore_dummy.delivery import RetryPolicy
from paycore_dummy.gateway import DummyGateway
from paycore_dummy.signing import generate_secret

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``serve`` and its options to ``paycore dummy``."""
    commands = parser.add_subparsers(dest="dummy_command", metavar="COMMAND")
    commands.required = True
    serve = commands.add_parser("serve", help="run the dummy gateway (REST API, checkout page, webhooks)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765)")
    serve.add_argument(
        "--api-key",
        default=os.environ.get("PAYCORE_DUMMY_API_KEY"),
        help="the API key merchants use (default: $PAYCORE_DUMMY_API_KEY, else a fresh one)",
    )
    serve.add_argument(
        "--webhook-secret",
        action="append",
        default=None,
        help="whsec_ secret webhooks are signed with; repeat while rotating "
        "(default: $PAYCORE_DUMMY_WEBHOOK_SECRET, else a fresh one)",
    )
    serve.add_argument("--webhook-url", default=None, help="where webhooks go when a payment names no URL")
    serve.add_argument("--attempts", type=int, default=6, help="webhook delivery attempts (default 6)")
    serve.add_argument("--timeout-delay", type=float, default=40.0, help="stall of the timeout scenario (s)")
    serve.add_argument("--scenario-delay", type=float, default=2.0, help="pace of timed scenarios (s)")


def run(args: argparse.Namespace) -> int:
    """Serve the gateway until interrupted."""
    try:
        import uvicorn
    except ImportError:
        print("paycore dummy serve needs uvicorn: pip install 'paycore-dummy[serve]'", file=sys.stderr)
        return 2
    env_secret = os.environ.get("PAYCORE_DUMMY_WEBHOOK_SECRET")
    made_key = not args.api_key
    made_secret = not (args.webhook_secret or env_secret)
    api_key = args.api_key or "sk_test_" + generate_secret()[len("whsec_") :][:24]
    secrets = args.webhook_secret or [env_secret or generate_secret()]
    gateway = DummyGateway(
        api_key=api_key,
        webhook_secrets=secrets,
        webhook_url=args.webhook_url,
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
