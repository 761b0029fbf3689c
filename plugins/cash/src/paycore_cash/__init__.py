"""paycore-cash: cash payments at a till and the cash-drawer sessions they belong to.

* :class:`CashProvider` (provider type ``cash``): a cash payment succeeds at
  once and is recorded, with the cash tendered and the change given, in the
  open drawer session of its till; cash refunds pay out of that drawer.
* :class:`CashDrawers`: open a till's drawer with a float, pay cash in and out,
  close it with the counted cash (expected and variance computed exactly), and
  read a :class:`DrawerReport`.
* :func:`take_cash`: take a cash payment through a :class:`~paycore.flow.PaymentFlow`;
  :func:`refund_cash`: give cash back from the sale's till or another open one;
  :func:`order_balance`: what an order still owes.
* ``paycore drawer ...`` on the command line.

Drawer sessions are stored beside the flow's repository by the cash plugin's
own implementation for the repository's ``storage_backend`` (memory,
SQLAlchemy, Django: :mod:`paycore_cash.backends`); no storage adapter imports
this plugin. :class:`paycore_cash.testing.DrawerStorageConformance` is the contract.
"""

from paycore_cash.blocking import BlockingCashDrawers
from paycore_cash.drawers import CashDrawers
from paycore_cash.errors import (
    CashError,
    CashNotEnabled,
    CashSaleFailed,
    CashSaleUnsettled,
    DrawerAlreadyOpen,
    DrawerClosed,
    DrawerNotFound,
    ForeignCurrency,
    InsufficientDrawerCash,
    InsufficientTender,
    InvalidCashRequest,
    NoOpenDrawer,
    RefundGivenUp,
    RefundIdTaken,
)
from paycore_cash.provider import CashProvider
from paycore_cash.records import CashMovement, DrawerSession, DrawerStatus, MovementKind
from paycore_cash.report import DrawerReport, format_money
from paycore_cash.sales import CashSale, order_balance, refund_cash, take_cash
from paycore_cash.storage import DrawerStorage
from paycore_cash.totals import DrawerTotals

__all__ = [
    "BlockingCashDrawers",
    "CashDrawers",
    "CashError",
    "CashMovement",
    "CashNotEnabled",
    "CashProvider",
    "CashSale",
    "CashSaleFailed",
    "CashSaleUnsettled",
    "DrawerAlreadyOpen",
    "DrawerClosed",
    "DrawerNotFound",
    "DrawerReport",
    "DrawerSession",
    "DrawerStatus",
    "DrawerStorage",
    "DrawerTotals",
    "ForeignCurrency",
    "InsufficientDrawerCash",
    "InsufficientTender",
    "InvalidCashRequest",
    "MovementKind",
    "NoOpenDrawer",
    "RefundGivenUp",
    "RefundIdTaken",
    "format_money",
    "order_balance",
    "refund_cash",
    "take_cash",
]
