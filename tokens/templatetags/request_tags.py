"""Request panels that pages of lower apps show: the console sidebar badge and a person's
own requests on /settings/. A template tag keeps the arrow pointing down: accounts renders
those pages, tokens provides the figures, and accounts never imports tokens.
"""

from __future__ import annotations

from typing import Any

from django import template

from accounts.models import User
from tokens.forms import UsageRequestForm
from tokens.models import UsageRequest
from tokens.queries import open_request_count as count_open_requests

register = template.Library()

OWN_SHOWN = 5


@register.simple_tag(takes_context=True)
def open_request_count(context: template.Context) -> int:
    """Open requests of the console's enterprise: one COUNT, once per page."""
    request = context.get("request")
    enterprise = getattr(request, "enterprise", None)
    if enterprise is None:
        return 0
    cached = getattr(request, "_open_request_count", None)
    if cached is None:
        cached = count_open_requests(enterprise)
        request._open_request_count = cached  # type: ignore[union-attr]
    return cached


@register.simple_tag
def own_requests(user: User) -> dict[str, Any] | None:
    """The person's latest requests and the form to ask again (one query)."""
    if not user.is_authenticated or user.enterprise_id is None:
        return None
    latest = list(UsageRequest.objects.filter(user=user).order_by("-created_at", "-id")[:OWN_SHOWN])
    enterprise = user.enterprise
    can_ask = not user.is_banned and enterprise is not None and enterprise.is_active
    return {"requests": latest, "form": UsageRequestForm(), "can_ask": can_ask}
