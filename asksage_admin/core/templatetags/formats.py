"""Template filters for numbers and times: `{% load formats %}`.

{{ purchase.inference_tokens|tokens }}          1,000,000
{{ row.created_at|when:enterprise.time_zone }}  1 Dec 2026, 14:05 CET
{{ person.date_joined|day }}                    1 Dec 2026
"""

from __future__ import annotations

from django import template

from asksage_admin.core import formats

register = template.Library()
register.filter("tokens", formats.tokens, is_safe=True)
register.filter("when", formats.when, expects_localtime=False)
register.filter("day", formats.day, expects_localtime=False)
