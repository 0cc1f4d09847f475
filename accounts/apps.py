from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and enterprises"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from accounts.middleware import stamp_sign_in

        def _on_sign_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
            if request is not None and hasattr(request, "session"):
                stamp_sign_in(request)

        # weak=False: _on_sign_in is a local function; a weak reference dies when ready()
        # returns (DEBUG's signature check kept it alive by accident, hiding the bug).
        user_logged_in.connect(_on_sign_in, weak=False, dispatch_uid="accounts.stamp_sign_in")
