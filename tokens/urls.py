from __future__ import annotations

from django.urls import path

from tokens import request_views, views

# Mounted under /org/ in the "console" namespace (asksage_admin/urls.py).
console_urlpatterns = [
    path("users/add/", views.user_add, name="user_add"),
    path("users/allocations/", views.allocations_save, name="allocations_save"),
    path("users/<int:user_id>/status/", views.user_status, name="user_status"),
    path("users/<int:user_id>/disable/", views.user_disable_confirm, name="user_disable_confirm"),
    path("users/<int:user_id>/role/", views.user_role, name="user_role"),
    path(
        "users/<int:user_id>/temporary/",
        request_views.temporary_grant,
        name="temporary_grant",
    ),
    path(
        "users/<int:user_id>/temporary/end/",
        request_views.temporary_end,
        name="temporary_end",
    ),
    path("requests/", request_views.requests_page, name="usage_requests"),
    path(
        "requests/<int:request_id>/approve/",
        request_views.approve,
        name="usage_request_approve",
    ),
    path(
        "requests/<int:request_id>/decline/",
        request_views.decline,
        name="usage_request_decline",
    ),
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
