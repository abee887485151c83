"""The customers' emails in the admin: read-only, a record of what each customer was told."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "status", "recipient", "subject", "order_id", "sent_at"]
    list_filter = ["kind", "status", "created_at"]
    search_fields = ["=order_id", "=event_id", "recipient"]
    date_hierarchy = "created_at"
