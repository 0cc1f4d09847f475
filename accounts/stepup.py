"""Step-up verification: actions that move tokens or access need a recent second factor.

A verified session is not enough for them: the code must have been entered within
STEP_UP_MAX_AGE_SECONDS. Otherwise the user is sent to /mfa/verify/ ("confirm it's you")
and the original action completes afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

VERIFIED_AT_KEY = "mfa_verified_at"
PENDING_KEY = "step_up_pending"

View = Callable[..., HttpResponse]


def mark_verified(request: HttpRequest) -> None:
    """Called whenever the user proves the second factor in this session."""
    request.session[VERIFIED_AT_KEY] = timezone.now().timestamp()


def is_recent(request: HttpRequest) -> bool:
    verified_at = request.session.get(VERIFIED_AT_KEY)
    if not isinstance(verified_at, int | float):
        return False
    age = timezone.now().timestamp() - verified_at
    return 0 <= age <= settings.STEP_UP_MAX_AGE_SECONDS


def verify_url(next_url: str) -> str:
    return f"{reverse('mfa:verify')}?{urlencode({'next': next_url, 'step_up': '1'})}"


def _page_to_return_to(request: HttpRequest) -> str:
    """Where a JSON caller's user lands after verifying: the page the call came from."""
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, {request.get_host()}, request.is_secure()
    ):
        return referer.split(request.get_host(), 1)[-1] or "/"
    return "/"  # the JSON endpoint itself has no page to come back to


def step_up_required(view: View) -> View:
    """Decorator for write views: POSTs need a second-factor check within the window.

    JSON calls get 401 {"error": {"code": "step_up_required", "url": ...}}; the page stashes
    its own edits and comes back. A form POST is kept in the session (its fields, never a
    password), the user verifies, and a confirmation page re-submits it to the same URL.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST" or is_recent(request):
            return view(request, *args, **kwargs)
        message = "Confirm it's you: enter a fresh code from your authenticator app."
        if request.content_type == "application/json":
            url = verify_url(_page_to_return_to(request))
            body = {"error": {"code": "step_up_required", "message": message, "url": url}}
            return JsonResponse(body, status=401)
        fields = {
            key: request.POST.getlist(key) for key in request.POST if key != "csrfmiddlewaretoken"
        }
        request.session[PENDING_KEY] = {"path": request.path, "fields": fields}
        return redirect(verify_url(request.path))

    return wrapper


def pop_pending(request: HttpRequest) -> dict[str, Any] | None:
    """The stashed form POST, once, if it targets a path on this site."""
    pending = request.session.pop(PENDING_KEY, None)
    if not isinstance(pending, dict) or not str(pending.get("path", "")).startswith("/"):
        return None
    return pending
