"""The product's own error pages and /favicon.ico, with DEBUG at its default (off)."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from asksage_admin.urls import urlpatterns as site_patterns


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug in a view")


# This module doubles as a URL conf: the site's URLs plus one view that fails.
urlpatterns = [*site_patterns, path("boom/", _boom)]
handler500 = "asksage_admin.core.views.server_error"


def test_favicon_ico_redirects_to_the_svg_icon(db):
    response = Client().get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/img/favicon.svg"
    assert "max-age=86400" in response["Cache-Control"]


def test_favicon_svg_is_served_as_svg(db):
    response = Client().get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")


def test_unknown_page_is_the_products_404(db):
    response = Client().get("/no-such-page/")
    body = response.content.decode()
    assert response.status_code == 404
    assert "There is nothing here" in body
    assert "Using the URLconf" not in body  # Django's debug 404


@pytest.mark.urls(__name__)
def test_a_bug_in_a_view_is_the_products_500(db):
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in body
    assert "RuntimeError" not in body and "Traceback" not in body
    assert 'href="/static/css/app.css"' in body
