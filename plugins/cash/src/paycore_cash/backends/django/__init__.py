"""Cash drawers in the Django ORM: a Django app of the cash plugin (app label ``paycore_cash``).

Add it to ``INSTALLED_APPS`` beside ``paycore_django`` and run ``migrate``::

    INSTALLED_APPS = [..., "paycore_django", "paycore_cash.backends.django"]

The cash plugin then keeps drawer sessions and cash movements in the database
of the flow's Django repository (its ``using`` alias), through
:class:`~paycore_cash.backends.django.storage.DjangoDrawerStorage`. Importing
this package imports nothing of Django; its modules do.
"""
