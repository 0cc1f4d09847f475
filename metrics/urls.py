from __future__ import annotations

from django.urls import path

from metrics import views

console_urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]

api_patterns: tuple[list, str] = ([], "api")
