"""paycore's URLs; include them under a prefix of your choice:

.. code-block:: python

    urlpatterns = [path("payments/", include("paycore_django.urls"))]

which serves (names in the ``paycore_django`` namespace):

=======================================  ==================  ==========================================
``payments/webhooks/<tenant>/<code>/``   ``webhook``         a tenant's provider ``code`` delivers here
``payments/webhooks/<code>/``            ``webhook``         providers of payments without a tenant
``payments/pay/<order_id>/``             ``pay``             choose a payment method, start paying
``payments/orders/<order_id>/return/``   ``order_return``    where providers send the customer back
``payments/<payment_id>/``               ``payment``         a payment's state (polled first)
``payments/<payment_id>/success/``       ``success``         the same, for providers with a success URL
``payments/<payment_id>/failure/``       ``failure``         the same, for providers with a failure URL
=======================================  ==================  ==========================================

Webhook URLs take the trailing slash or not, so the ``webhook_url`` setting
may be a base URL (``https://shop.example/payments/webhooks``, to which paycore
appends ``/{tenant}/{code}``) or a template.
"""

from __future__ import annotations

from django.urls import URLPattern, path, re_path

from paycore_django import views

__all__ = ["app_name", "urlpatterns"]

app_name = "paycore_django"

_SEGMENT = r"[^/]+"  # a tenant's or a provider's name, as the path decodes it (paycore.config.is_code)

urlpatterns: list[URLPattern] = [
    re_path(rf"^webhooks/(?P<tenant>{_SEGMENT})/(?P<code>{_SEGMENT})/?$", views.webhook, name="webhook"),
    re_path(rf"^webhooks/(?P<code>{_SEGMENT})/?$", views.webhook, name="webhook"),
    path("pay/<str:order_id>/", views.pay, name="pay"),
    path("orders/<str:order_id>/return/", views.order_return, name="order_return"),
    path("<str:payment_id>/", views.payment_status, {"page": "return"}, name="payment"),
    path("<str:payment_id>/success/", views.payment_status, {"page": "success"}, name="success"),
    path("<str:payment_id>/failure/", views.payment_status, {"page": "failure"}, name="failure"),
]
