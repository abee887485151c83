"""Admin pieces shared by the apps, and the admin site every app registers with.

The admin keeps the API's rules (contract §3): the same model permissions grant the same rights
(``core.permissions``), and a search is bounded as the API's is (``core.search``).
"""

from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.text import smart_split, unescape_string_literal

from core.search import SEARCH_MAX_TERM_LENGTH, SEARCH_MAX_TERMS, search_terms_bound


def admin_search_terms(search_term: str) -> list[str]:
    """The words of ``?q=`` as Django's admin reads them: split on spaces, a quoted phrase one word."""
    return [
        unescape_string_literal(bit) if bit.startswith(('"', "'")) and bit[0] == bit[-1] else bit
        for bit in smart_split(search_term)
    ]


def admin_search_string(terms: list[str]) -> str:
    """``terms`` written back as a ``?q=`` that ``admin_search_terms`` reads as the same words."""
    return " ".join(_admin_search_word(term) for term in terms)


def _admin_search_word(term: str) -> str:
    if term and not any(c.isspace() or c in "\"'" for c in term):
        return term
    return '"' + term.replace("\\", "\\\\").replace('"', '\\"') + '"'


class BoundedSearchMixin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The admin's ``?q=`` within the API's bounds: the first ``SEARCH_MAX_TERMS`` words, each cut to
    ``SEARCH_MAX_TERM_LENGTH`` characters, and a message saying so when it left something out.

    ``ShopAdminSite`` adds it to every ModelAdmin, those of Django and third-party apps included.
    """

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        terms, cut = search_terms_bound(admin_search_terms(search_term))
        if cut:
            self.message_user(
                request,
                f"Search looks for at most {SEARCH_MAX_TERMS} words of at most {SEARCH_MAX_TERM_LENGTH} "
                "characters each: the results are for the first words only, the rest was left out.",
                messages.WARNING,
            )
            search_term = admin_search_string(terms)
        return super().get_search_results(request, queryset, search_term)


# The shop's own apps, in the order staff reach for them; the libraries' (Axes, Celery results,
# Knox, users and groups...) follow in Django's alphabetical order.
SHOP_APPS = ["orders", "risk", "shop", "payments", "shipping", "notifications", "outbox", "events", "sagas", "core"]


class ShopAdminSite(admin.AdminSite):
    """Django's admin site (``admin.site``, through ``core.apps.ShopAdminConfig``), whose every
    ModelAdmin searches within bounds: one mechanism for ours and for Django's own (users, groups)
    and the third-party apps' (tokens, login attempts, task results), which register themselves.
    Its index lists the shop's own models first."""

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        apps = super().get_app_list(request, app_label)
        rank = {label: i for i, label in enumerate(SHOP_APPS)}
        return sorted(apps, key=lambda app: rank.get(app["app_label"], len(rank)))

    def register(
        self,
        model_or_iterable: type[Model] | Iterable[type[Model]],
        admin_class: type[admin.ModelAdmin] | None = None,  # type: ignore[type-arg]
        **options: Any,
    ) -> None:
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, BoundedSearchMixin):
            namespace = {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__}
            metaclass: Any = type(admin_class)  # forms.MediaDefiningClass, as for any ModelAdmin
            admin_class = metaclass(admin_class.__name__, (BoundedSearchMixin, admin_class), namespace)
        super().register(model_or_iterable, admin_class, **options)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Records that only services change (money, shipments, orders): staff read them, and act
    through admin actions that call those services.

    Reading needs the model's own ``view_`` permission (Django's admin would also take ``change_``,
    which the API never does: nothing is changed here), and every permission in
    ``view_also_needs``: a payment or a shipment is part of an order, which needs ``view_order``.
    """

    view_also_needs: tuple[str, ...] = ()

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        own = f"{self.opts.app_label}.{get_permission_codename('view', self.opts)}"
        return request.user.has_perm(own) and request.user.has_perms(self.view_also_needs)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
