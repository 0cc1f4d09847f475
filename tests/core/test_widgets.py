"""QuickSelect writes the <select> Django's template-rendered Select writes."""

from __future__ import annotations

import re

import pytest
from django import forms

from asksage_admin.core.widgets import QuickSelect

CHOICES = [("", "Any"), ("a", "Alpha"), ("b<x>", "B & <b>"), ("Group", [("g1", "One")])]


def _normalised(html: str) -> str:
    return re.sub(r">\s+<", "><", str(html)).strip()


@pytest.mark.parametrize("value", ["", "a", "b<x>", "g1", "missing"])
def test_quick_select_matches_djangos_select(value):
    attrs = {"id": "id_action", "required": True, "data-x": "1", "disabled": False}
    plain = forms.Select(choices=CHOICES).render("action", value, attrs=attrs)
    quick = QuickSelect(choices=CHOICES).render("action", value, attrs=attrs)

    assert _normalised(quick) == _normalised(plain)


def test_the_chosen_option_is_selected_and_values_are_escaped():
    html = str(QuickSelect(choices=CHOICES).render("action", "b<x>"))

    assert '<option value="b&lt;x&gt;" selected>B &amp; &lt;b&gt;</option>' in html
    assert html.count(" selected") == 1
