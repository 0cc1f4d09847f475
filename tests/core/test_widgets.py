"""QuickSelect and the quick inputs write what Django's template-rendered widgets write."""

from __future__ import annotations

import re

import pytest
from django import forms

from asksage_admin.core.widgets import QuickDateInput, QuickSelect, QuickTextInput

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


@pytest.mark.parametrize("value", [None, "", "2026-05", 'a"<b>&', 7])
@pytest.mark.parametrize(
    ("plain", "quick"), [(forms.TextInput, QuickTextInput), (forms.DateInput, QuickDateInput)]
)
def test_quick_inputs_match_djangos(plain, quick, value):
    attrs = {"id": "id_q", "type": "search", "placeholder": "Email <or> name", "required": True}
    expected = plain(attrs=attrs).render("q", value, attrs={"maxlength": 7, "readonly": False})
    written = quick(attrs=attrs).render("q", value, attrs={"maxlength": 7, "readonly": False})

    assert _normalised(written) == _normalised(expected)
