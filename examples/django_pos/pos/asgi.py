"""The POS as one ASGI app: Django, with the dummy gateway mounted at ``/gateway``.

One process and one port serve the till, the admin, paycore's webhooks and the
simulated gateway's checkout pages, so ``manage.py demo`` needs nothing else.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pos.settings")

from django.conf import settings
from django.core.asgi import get_asgi_application

from paycore_dummy import DummyGateway

django_app = get_asgi_application()
gateway = DummyGateway(
    api_key=settings.GATEWAY_API_KEY, webhook_secrets=settings.GATEWAY_WEBHOOK_SECRET, customer_delay=0.1
)
GATEWAY_PREFIX = "/gateway"


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Route ``/gateway/...`` (and the lifespan, which starts the gateway) to the gateway, the rest to Django."""
    if scope["type"] == "lifespan":
        await gateway(scope, receive, send)
    elif scope["type"] == "http" and (
        scope["path"] == GATEWAY_PREFIX or scope["path"].startswith(GATEWAY_PREFIX + "/")
    ):
        await gateway({**scope, "root_path": scope.get("root_path", "") + GATEWAY_PREFIX}, receive, send)
    else:
        await django_app(scope, receive, send)
