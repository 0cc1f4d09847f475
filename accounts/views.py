"""Sign-up, sign-in, MFA and the personal Settings page."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import rotate_token
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse, reverse_lazy
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import (
    url_has_allowed_host_and_scheme,
    urlencode,
    urlsafe_base64_decode,
    urlsafe_base64_encode,
)
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp import user_has_device

from accounts import services, stepup
from accounts.access import SignedInRequest, console_enterprise
from accounts.forms import CodeForm, ReauthForm, RegistrationForm, SignInForm, VerifyCodeForm
from accounts.models import BackupCodeDevice, User
from asksage_admin.core.health import database_error

EMAIL_BACKEND = "accounts.backends.EmailBackend"
# Set by a confirmed enrolment: the next GET of the backup-codes page issues and shows codes
# once. The plain codes themselves are never put in the session.
BACKUP_CODES_GRANT_KEY = "backup_codes_grant"


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
        next_url = _next_url(request, reverse("settings"))
        email = form.cleaned_data["email"]
        proven = _invitation_proves(email, next_url)
        user = services.register_user(
            email=email,
            password=form.cleaned_data["password1"],
            full_name=form.cleaned_data["full_name"],
            address_proven=proven,
            confirm_link_for=lambda new_user: _confirmation_link(request, new_user, next_url),
        )
        if user is not None and proven:
            login(request, user, backend=EMAIL_BACKEND)
            services.record_sign_in(user)
            messages.success(request, "Welcome! Your account is ready.")
            return redirect(next_url)
        # The same page whether or not the address already had an account.
        return redirect("accounts:register_sent")
    ctx = {"form": form, "next": request.GET.get("next", "")}
    return render(request, "accounts/register.html", ctx)


@require_GET
def register_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/register_sent.html")


def _invitation_proves(email: str, next_url: str) -> bool:
    """Registering from an invitation link, as the invited address, proves the address:
    the link was only ever mailed there. (The lookup is wired in settings, not imported.)"""
    try:
        match = resolve(urlsplit(next_url).path)
    except Resolver404:
        return False
    if match.url_name != "invitation" or "token" not in match.kwargs:
        return False
    invitation = import_string(settings.INVITATION_LOOKUP)(match.kwargs["token"])
    return invitation is not None and invitation.email.lower() == email.lower()


def _confirmation_link(request: HttpRequest, user: User, next_url: str) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = services.email_confirmation_tokens.make_token(user)
    path = reverse("accounts:confirm_email", args=[uid, token])
    return request.build_absolute_uri(f"{path}?{urlencode({'next': next_url})}")


@never_cache
@require_GET
def confirm_email(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """The emailed link: confirms the address and signs the new account in."""
    try:
        user = User.objects.get(pk=int(force_str(urlsafe_base64_decode(uidb64))))
    except (ValueError, TypeError, OverflowError, User.DoesNotExist):
        user = None
    if user is None or not services.email_confirmation_tokens.check_token(user, token):
        return render(request, "accounts/confirm_invalid.html", status=400)
    services.confirm_email(user)
    login(request, user, backend=EMAIL_BACKEND)
    services.record_sign_in(user)
    messages.success(request, "Your email address is confirmed. Welcome!")
    return redirect(_next_url(request, reverse("settings")))


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
        locked = getattr(request, "axes_locked_out", False)
        # Still a failed attempt for the lockout counter; only the words change.
        banned = None if locked else form.banned_user()
        if banned is not None:
            form.errors.clear()
            form.add_error(None, form.error_messages["banned"])
        unconfirmed = None if locked or banned else form.unconfirmed_user()
        if unconfirmed is not None:
            next_url = _next_url(request, reverse("settings"))
            services.send_confirmation_email(
                unconfirmed, lambda u: _confirmation_link(request, u, next_url)
            )
            form.errors.clear()
            form.add_error(None, form.error_messages["unconfirmed"])
    ctx = {"form": form, "next": request.GET.get("next", "")}
    return render(request, "accounts/login.html", ctx)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        services.record_sign_out(request.user)
    logout(request)
    messages.info(request, "You have been signed out.")
    return redirect("accounts:login")


@require_POST
@login_required
def sign_out_everywhere(request: SignedInRequest) -> HttpResponse:
    """End every other session of this user; this one stays signed in."""
    services.end_other_sessions(user=request.user)
    update_session_auth_hash(request, request.user)
    messages.success(request, "You were signed out on every other browser and device.")
    return redirect("settings")


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
            # The reset link was mailed to the address: that proves it, like the confirmation.
            services.confirm_email(form.user)
        return response


class PasswordResetComplete(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


def _second_factor_done(request: HttpRequest, device: Any) -> None:
    """A proven second factor: new session id, new CSRF token, and the step-up clock."""
    otp_login(request, device)
    request.session.cycle_key()
    rotate_token(request)
    stepup.mark_verified(request)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def mfa_setup(request: SignedInRequest) -> HttpResponse:
    user = request.user
    replacing = services.has_confirmed_totp(user)
    if replacing and not user.is_verified():
        return _redirect_with_next("mfa:verify", _next_url(request, _home_for(user)))
    device = services.pending_totp_device(user)
    form = CodeForm(request.POST or None)
    # Replacing the authenticator is an account takeover if anyone can do it from an open
    # session: it needs the password and a code from the current authenticator too.
    reauth = ReauthForm(request.POST or None, prefix="reauth") if replacing else None
    if replacing:
        form.fields["code"].label = "Code from the new app"
    if request.method == "POST" and form.is_valid() and (reauth is None or reauth.is_valid()):
        refusal = None
        if reauth is not None:
            refusal = services.authorise_mfa_change(
                user=user,
                password=reauth.cleaned_data["password"],
                code=reauth.cleaned_data["current_code"],
            )
        if refusal is not None and reauth is not None:
            reauth.add_error(None, refusal)
        else:
            result = services.confirm_totp_device(user=user, code=form.cleaned_data["code"])
            if result.ok:
                _second_factor_done(request, result.device)
                request.session[BACKUP_CODES_GRANT_KEY] = True
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
        "reauth": reauth,
        # In groups of four, as authenticator apps accept it, so it can be typed without slips.
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "qr_svg": qr_svg,
        "replacing": replacing,
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
    """The second step of sign-in, and the "confirm it's you" step before sensitive actions."""
    user = request.user
    if not services.has_confirmed_totp(user):
        return redirect("mfa:setup")
    step_up = (request.POST.get("step_up") or request.GET.get("step_up")) == "1"
    next_url = _next_url(request, _home_for(user))
    if user.is_verified() and not step_up:
        return redirect(next_url)
    form = VerifyCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = services.verify_second_factor(user=user, code=form.cleaned_data["code"])
        if result.ok:
            _second_factor_done(request, result.device)
            if isinstance(result.device, BackupCodeDevice):
                left = services.backup_codes_left(user)
                messages.warning(request, f"Backup code used. {left} backup codes left.")
            pending = stepup.pop_pending(request) if step_up else None
            if pending is not None and pending["path"] == urlsplit(next_url).path:
                return render(request, "mfa/step_up_continue.html", {"pending": pending})
            return redirect(next_url)
        form.add_error("code", _code_error(result))
    ctx = {"form": form, "next": request.GET.get("next", ""), "step_up": step_up}
    return render(request, "mfa/verify.html", ctx)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def backup_codes(request: SignedInRequest) -> HttpResponse:
    """Codes are shown once, in the response that issues them (never_cache: no-store).

    Right after enrolment the grant lets the page issue them; later, new codes need the
    password and a current code, like replacing the authenticator.
    """
    user = request.user
    if not user.is_verified():
        return redirect("mfa:verify")
    next_url = _next_url(request, _home_for(user))
    codes = None
    form = ReauthForm(request.POST or None, prefix="reauth")
    if request.method == "POST" and form.is_valid():
        refusal = services.authorise_mfa_change(
            user=user,
            password=form.cleaned_data["password"],
            code=form.cleaned_data["current_code"],
        )
        if refusal is None:
            codes = services.regenerate_backup_codes(user=user)
            messages.success(request, "New backup codes issued. The old ones no longer work.")
        else:
            form.add_error(None, refusal)
    elif request.method == "GET" and request.session.pop(BACKUP_CODES_GRANT_KEY, False):
        codes = services.issue_backup_codes(user=user)
    ctx: dict[str, Any] = {"codes": codes, "form": form, "left": services.backup_codes_left(user)}
    ctx["next"] = next_url
    status = 400 if request.method == "POST" and codes is None else 200
    return render(request, "mfa/backup_codes.html", ctx, status=status)


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
