"""Sign-up, sign-in, MFA and the personal Settings page."""

from __future__ import annotations

import base64

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice

from accounts import services
from accounts.access import SignedInRequest, console_enterprise
from accounts.forms import CodeForm, RegistrationForm, SignInForm, VerifyCodeForm
from accounts.models import User
from asksage_admin.core.health import database_error

BACKUP_CODES_SESSION_KEY = "fresh_backup_codes"


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


def _redirect_with_next(url_name: str, next_url: str) -> HttpResponse:
    return redirect(f"{reverse(url_name)}?{urlencode({'next': next_url})}")


def _home_for(user: User) -> str:
    if console_enterprise(user) is not None:
        return reverse("console:dashboard")
    return reverse("settings")


@never_cache
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    # ?email= prefills the form (an invitation page sends people here); ?next= is honoured.
    initial = {"email": request.GET.get("email", "")[:254]}
    form = RegistrationForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        user = services.register_user(
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
            full_name=form.cleaned_data["full_name"],
        )
        login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
        messages.success(request, "Welcome! Your account is ready.")
        return redirect(_next_url(request, reverse("settings")))
    ctx = {"form": form, "next": request.GET.get("next", "")}
    return render(request, "accounts/register.html", ctx)


@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request, data=request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            user = form.get_user()
            login(request, user)
            services.record_sign_in(user)
            if user.needs_mfa or user_has_device(user, confirmed=True):
                step = "mfa:verify" if user_has_device(user, confirmed=True) else "mfa:setup"
                return _redirect_with_next(step, _next_url(request, _home_for(user)))
            return redirect(_next_url(request, _home_for(user)))
        services.record_failed_sign_in(request.POST.get("username", ""))
    ctx = {"form": form, "next": request.GET.get("next", "")}
    return render(request, "accounts/login.html", ctx)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        services.record_sign_out(request.user)
    logout(request)
    messages.info(request, "You have been signed out.")
    return redirect("accounts:login")


class PasswordReset(auth_views.PasswordResetView):
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")


class PasswordResetDone(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirm(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        # The new password and its audit row are one change: both or neither.
        with transaction.atomic():
            response = super().form_valid(form)
            services.record_password_reset(form.user)
        return response


class PasswordResetComplete(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def mfa_setup(request: SignedInRequest) -> HttpResponse:
    user = request.user
    if services.has_confirmed_totp(user) and not user.is_verified():
        return _redirect_with_next("mfa:verify", _next_url(request, _home_for(user)))
    device = services.pending_totp_device(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result, codes = services.confirm_totp_device(user=user, code=form.cleaned_data["code"])
        if result.ok:
            otp_login(request, result.device)
            request.session.cycle_key()  # a new session id once the second factor is proven
            request.session[BACKUP_CODES_SESSION_KEY] = codes
            messages.success(request, "Two-factor authentication is on.")
            return _redirect_with_next("mfa:backup_codes", _next_url(request, _home_for(user)))
        form.add_error("code", _code_error(result))
    secret = base64.b32encode(device.bin_key).decode()
    # omitsize: a viewBox instead of fixed width/height, so CSS can size the code unclipped.
    qr_svg = segno.make(device.config_url, error="m").svg_inline(
        scale=5, dark="#111a2e", omitsize=True, title="QR code for your authenticator app"
    )
    ctx = {
        "form": form,
        # In groups of four, as authenticator apps accept it, so it can be typed without slips.
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "qr_svg": qr_svg,
        "replacing": services.has_confirmed_totp(user),
        "next": request.GET.get("next", ""),
    }
    return render(request, "mfa/setup.html", ctx)


def _code_error(result: services.OTPResult) -> str:
    if result.throttled_until is not None:
        wait = max(1, int((result.throttled_until - timezone.now()).total_seconds()) + 1)
        return f"Too many wrong codes. Wait {wait} seconds before trying again."
    return "That code is not valid. Codes change every 30 seconds and each works only once."


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def mfa_verify(request: SignedInRequest) -> HttpResponse:
    user = request.user
    if not services.has_confirmed_totp(user):
        return redirect("mfa:setup")
    if user.is_verified():
        return redirect(_next_url(request, _home_for(user)))
    form = VerifyCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = services.verify_second_factor(user=user, code=form.cleaned_data["code"])
        if result.ok:
            otp_login(request, result.device)
            request.session.cycle_key()
            if isinstance(result.device, StaticDevice):
                left = services.backup_codes_left(user)
                messages.warning(request, f"Backup code used. {left} backup codes left.")
            return redirect(_next_url(request, _home_for(user)))
        form.add_error("code", _code_error(result))
    return render(request, "mfa/verify.html", {"form": form, "next": request.GET.get("next", "")})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def backup_codes(request: SignedInRequest) -> HttpResponse:
    user = request.user
    if not user.is_verified():
        return redirect("mfa:verify")
    if request.method == "POST":
        request.session[BACKUP_CODES_SESSION_KEY] = services.regenerate_backup_codes(user=user)
        messages.success(request, "New backup codes issued. The old ones no longer work.")
        return redirect("mfa:backup_codes")
    # Codes are shown once: they leave the session as soon as they are displayed.
    codes = request.session.pop(BACKUP_CODES_SESSION_KEY, None)
    ctx = {
        "codes": codes,
        "left": services.backup_codes_left(user),
        "next": _next_url(request, _home_for(user)),
    }
    return render(request, "mfa/backup_codes.html", ctx)


@never_cache
@login_required
@require_GET
def settings_page(request: SignedInRequest) -> HttpResponse:
    user = request.user
    ctx = {
        "mfa_enabled": services.has_confirmed_totp(user),
        "backup_codes_left": services.backup_codes_left(user),
    }
    return render(request, "accounts/settings.html", ctx)


@never_cache  # a proxy must never answer "healthy" from cache while the database is down
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    error = database_error()  # on a fresh connection, not this request's kept-open one
    if error is not None:
        return JsonResponse({"status": "error", "database": error}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})
