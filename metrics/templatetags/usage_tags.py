"""Usage panels that pages of lower apps show (a member's own usage on /settings/).

A template tag keeps the arrow pointing down: accounts renders the page, metrics provides
the figures, and accounts never imports metrics.
"""

from __future__ import annotations

from django import template

from accounts.models import User
from metrics.blocking import BlockExplanation, explain
from metrics.quota import UsageSnapshot, usage_snapshot

register = template.Library()


@register.simple_tag
def own_usage(user: User) -> UsageSnapshot | None:
    """The signed-in person's allocation against usage, from the roll-ups."""
    if not user.is_authenticated:
        return None
    return usage_snapshot(user)


@register.simple_tag
def block_explanation(user: User, usage: UsageSnapshot | None) -> BlockExplanation | None:
    """Why the signed-in person cannot use tokens (no reasons: they can); no extra query."""
    if not user.is_authenticated:
        return None
    return explain(user, usage)
