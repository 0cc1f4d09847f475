from __future__ import annotations

from django.urls import path

from accounts import views

account_patterns = (
    [
        path("register/", views.register, name="register"),
        path("register/sent/", views.register_sent, name="register_sent"),
        path("confirm/<uidb64>/<token>/", views.confirm_email, name="confirm_email"),
        path("sign-out-everywhere/", views.sign_out_everywhere, name="sign_out_everywhere"),
        path("login/", views.login_view, name="login"),
        path("logout/", views.logout_view, name="logout"),
        path("password-reset/", views.PasswordReset.as_view(), name="password_reset"),
        path("password-reset/sent/", views.PasswordResetDone.as_view(), name="password_reset_done"),
        path(
            "password-reset/<uidb64>/<token>/",
            views.PasswordResetConfirm.as_view(),
            name="password_reset_confirm",
        ),
        path(
            "password-reset/complete/",
            views.PasswordResetComplete.as_view(),
            name="password_reset_complete",
        ),
    ],
    "accounts",
)

mfa_patterns = (
    [
        path("setup/", views.mfa_setup, name="setup"),
        path("verify/", views.mfa_verify, name="verify"),
        path("backup-codes/", views.backup_codes, name="backup_codes"),
    ],
    "mfa",
)
