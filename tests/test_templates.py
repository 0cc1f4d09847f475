"""Every template the code names exists, so a renamed template cannot leave a dangling name."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.template import TemplateDoesNotExist
from django.template.loader import get_template

APPS = ["accounts", "tokens", "metrics", "asksage_admin"]
# A template path as code and comments write it: "app/name.html", "includes/x.html".
NAMED = re.compile(r"""(?<![\w./])((?:[\w-]+/)+[\w-]+\.(?:html|txt))\b""")
INCLUDED = re.compile(r"""{%\s*(?:include|extends)\s+["']([^"']+)["']""")


def _names() -> set[str]:
    names = set()
    for app in APPS:
        for path in (settings.BASE_DIR / app).rglob("*.py"):
            names |= set(NAMED.findall(path.read_text()))
    for path in (settings.BASE_DIR / "templates").rglob("*.html"):
        names |= set(INCLUDED.findall(path.read_text()))
    return names


def test_templates_are_found_at_all():
    assert {"metrics/dashboard.html", "tokens/pool_summary.html"} <= _names()


@pytest.mark.parametrize("name", sorted(_names()))
def test_every_template_named_in_code_or_templates_exists(name):
    try:
        get_template(name)
    except TemplateDoesNotExist:
        pytest.fail(f"{name} is named but does not exist")
