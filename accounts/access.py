"""The one access rule of the console.

Every console view is wrapped in `console_view`: the user must be an admin or auditor of an
*active* enterprise and OTP-verified. Read-only roles get 403 on writes. Objects are looked
up through `get_enterprise_user`, so another enterprise's id is a plain 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast, overload

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import get_object_or_404

from accounts.middleware import mfa_redirect_for
from accounts.models import Enterprise, User

View = Callable[..., HttpResponseBase]
# The decorated view keeps its own signature (ConsoleRequest, URL arguments, response type).
ViewT = TypeVar("ViewT", bound=View)


class ConsoleRequest(HttpRequest):
    """A request that passed console_view: a signed-in, verified user and their enterprise."""

    user: User
    enterprise: Enterprise


class SignedInRequest(HttpRequest):
    """A request behind login_required: the user is signed in, never anonymous."""

    user: User


def console_enterprise(user: User) -> Enterprise | None:
    """The enterprise whose console this user may open, or None."""
    if not user.is_authenticated or not user.is_console_role or user.is_banned:
        return None
    enterprise = user.enterprise
    return enterprise if enterprise is not None and enterprise.is_active else None


@overload
def console_view(view: ViewT, *, write: bool = False) -> ViewT: ...
@overload
def console_view(view: None = None, *, write: bool = False) -> Callable[[ViewT], ViewT]: ...
def console_view(view: View | None = None, *, write: bool = False) -> Any:
    """Decorator: sets request.enterprise, or answers login redirect / MFA redirect / 403."""

    def decorator(func: View) -> View:
        @wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            mfa = mfa_redirect_for(request)
            if mfa is not None:
                return mfa
            enterprise = console_enterprise(request.user)
            if enterprise is None:
                raise PermissionDenied(
                    "The console is for admins and auditors of an active enterprise."
                )
            if write and not request.user.can_edit_console:
                raise PermissionDenied("Auditors have read-only access.")
            cast(ConsoleRequest, request).enterprise = enterprise  # it is one from here on
            return func(request, *args, **kwargs)

        return wrapper

    return decorator(view) if view is not None else decorator


def get_enterprise_user(request: ConsoleRequest, user_id: int) -> User:
    """A user of the request's enterprise; anyone else's id is a 404, never a 403."""
    return get_object_or_404(User, pk=user_id, enterprise=request.enterprise)
