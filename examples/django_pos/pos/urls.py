"""URLs of the POS example."""

from django.contrib import admin
from django.urls import include, path

from pos import views

urlpatterns = [
    path("", views.orders, name="orders"),
    path("orders/<int:pk>/", views.order, name="order"),
    path("payments/", include("paycore_django.urls")),
    path("admin/", admin.site.urls),
]
