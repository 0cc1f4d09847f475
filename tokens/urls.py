from __future__ import annotations

from django.urls import path

from tokens import views

# Mounted under /org/ in the "console" namespace (asksage_admin/urls.py).
console_urlpatterns = [
    path("users/add/", views.user_add, name="user_add"),
    path("users/allocations/", views.allocations_save, name="allocations_save"),
    path("users/<int:user_id>/status/", views.user_status, name="user_status"),
    path("users/<int:user_id>/disable/", views.user_disable_confirm, name="user_disable_confirm"),
    path("users/<int:user_id>/role/", views.user_role, name="user_role"),
    path(
        "invitations/<int:invitation_id>/resend/",
        views.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
]

# Mounted at /invitations/: the emailed link, for people who are not in the console yet.
invitation_patterns = [
    path("<str:token>/", views.invitation, name="invitation"),
]
