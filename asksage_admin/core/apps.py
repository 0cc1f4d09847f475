from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The foundations every app builds on: the activity log, append-only ledgers, errors."""

    name = "asksage_admin.core"
    label = "core"
    verbose_name = "Activity log"
