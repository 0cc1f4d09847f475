from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo and benchmark data (seed_demo, seed_large): above every app, used by none."""

    name = "asksage_admin.demo"
    label = "demo"
    verbose_name = "Demo data"
