"""The project's URLs plus the three layers `bench floor` measures (served by that process
only, never by the application)."""

from django.urls import path

from asksage_admin.urls import urlpatterns as project
from bench import floor

urlpatterns = [
    path("_floor/anonymous/", floor.anonymous),
    path("org/_floor/signed-in/", floor.signed_in),
    path("org/_floor/layout/", floor.layout),
    *project,
]
