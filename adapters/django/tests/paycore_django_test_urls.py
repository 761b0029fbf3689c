"""URLs of the test project: the admin and, when present, paycore_django's own URLs."""

from __future__ import annotations

import importlib.util

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [path("admin/", admin.site.urls)]

if importlib.util.find_spec("paycore_django.urls") is not None:
    urlpatterns.append(path("paycore/", include("paycore_django.urls")))
