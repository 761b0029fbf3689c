"""Settings of the restaurant POS example (development only: fixed keys, DEBUG on)."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("POS_PORT", "8000"))
SITE = f"http://127.0.0.1:{PORT}"

SECRET_KEY = "django-pos-example-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
TIME_ZONE = "Africa/Dakar"
ROOT_URLCONF = "pos.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "paycore_django",
    "paycore_cash.backends.django",  # the cash plugin's drawers, in this database beside the payments
    "pos",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("POS_DATABASE", str(BASE_DIR / "pos.sqlite3")),
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
    }
}

# The dummy gateway is served by this same process under /gateway (see pos/asgi.py).
GATEWAY_API_KEY = "sk_test_django_pos_example"
GATEWAY_WEBHOOK_SECRET = "whsec_/dDBmsGHRzhnNg950OX4BCiZrb1mhLZM7sdaNa2ydWs="

PAYCORE = {
    # repository: "django" (the default in a Django project)
    "webhook_url": f"{SITE}/payments/webhooks",
    "tenants": {
        "chez-awa": {
            "providers": {
                "card": {
                    "type": "dummy",
                    "label": "Card (hosted page)",
                    "base_url": f"{SITE}/gateway",
                    "api_key": GATEWAY_API_KEY,
                    "webhook_secret": GATEWAY_WEBHOOK_SECRET,
                    "method": "card",
                },
                "momo": {
                    "type": "dummy",
                    "label": "Mobile money",
                    "base_url": f"{SITE}/gateway",
                    "api_key": GATEWAY_API_KEY,
                    "webhook_secret": GATEWAY_WEBHOOK_SECRET,
                    "method": "mobile_money",
                },
                # Cash at the restaurant's till: succeeds at once, into the till's open drawer
                # (PAYMENT_METADATA names the till; `manage.py demo` opens its drawer). Only staff
                # are offered it (PROVIDER_FILTER): a customer's browser cannot say cash was paid.
                "cash": {"type": "cash", "label": "Cash", "currency": "XOF"},
            }
        }
    },
}
PAYCORE_DJANGO = {
    "ORDER_RESOLVER": "pos.views.resolve_order",
    "TENANT_RESOLVER": "pos.views.tenant_of",
    "PAYMENT_METADATA": "pos.views.payment_metadata",
    "PROVIDER_FILTER": "pos.views.provider_filter",  # cash (in person) is offered to staff only
}
