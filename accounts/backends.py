"""Sign-in by email, case-insensitively; Banned and unconfirmed users cannot sign in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.backends import ModelBackend

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from accounts.models import User


class EmailBackend(ModelBackend):
    def user_can_authenticate(self, user: User | AnonymousUser | None) -> bool:
        return (
            super().user_can_authenticate(user)
            and not getattr(user, "is_banned", False)
            and getattr(user, "email_confirmed", True)
        )
