"""Invitations: an admin invites by email, the person consents by link and joins.

The console never attaches anyone directly; acceptance goes through membership.join, whose
conditional UPDATE also refuses staff accounts and people of another organization.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection, send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Enterprise, User
from asksage_admin.core.audit import Action, log_activities, log_activity
from asksage_admin.core.errors import Refused
from tokens.membership import change_role, join
from tokens.models import Invitation
from tokens.pool import MIN_PAID_INFERENCE, AllocationChange, refuse_short_pool, set_allocations

INVITATION_LIFETIME = dt.timedelta(days=7)
logger = logging.getLogger(__name__)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class InviteOutcome:
    email: str
    invitation: Invitation | None


def _invitation_text(enterprise_name: str, inviter: str, link: str) -> tuple[str, str]:
    """Subject and body of the invitation mail."""
    # One line whatever the name holds: a line break in a header is refused (BadHeaderError).
    subject = f"You are invited to {' '.join(enterprise_name.split())} on AskSage"
    body = (
        f"{inviter} invited you to join {enterprise_name} on AskSage.\n\n"
        f"Open this link to accept (valid for {INVITATION_LIFETIME.days} days). If you have "
        f"no account yet, you can create one from there:\n{link}\n"
    )
    return subject, body


def _send_invitation(email: str, enterprise_name: str, inviter: str, link: str) -> None:
    subject, body = _invitation_text(enterprise_name, inviter, link)
    send_mail(subject=subject, message=body, from_email=None, recipient_list=[email])


# Above this many, a bulk import's mails leave from a thread after the response: thousands
# of SMTP sends would outlast the worker timeout, and the import itself is already committed.
INLINE_MAILS = 50


def _send_invitations(mails: list[tuple[str, str]], enterprise_name: str, inviter: str) -> None:
    """Many invitation mails over one connection (a bulk import sends thousands)."""
    messages = [
        EmailMessage(*_invitation_text(enterprise_name, inviter, link), to=[email])
        for email, link in mails
    ]
    with get_connection() as connection:
        connection.send_messages(messages)


def _send_in_background(mails: list[tuple[str, str]], enterprise_name: str, inviter: str) -> None:
    def send() -> None:
        try:
            _send_invitations(mails, enterprise_name, inviter)
        except Exception:
            # The invitations exist; the admin can resend any from the Users page.
            logger.exception("Sending %d invitation mails failed", len(mails))

    threading.Thread(target=send, name="invitation-mails").start()


def _deliver(mails: list[tuple[str, str]], enterprise_name: str, inviter: str) -> None:
    send = _send_invitations if len(mails) <= INLINE_MAILS else _send_in_background
    send(mails, enterprise_name, inviter)


@transaction.atomic
def add_user(
    *, actor: User, enterprise: Enterprise, email: str, link_for: Callable[[str], str]
) -> InviteOutcome:
    """Invite a person by email; they join when they accept through the emailed link.

    The outcome reads the same whether or not the address has an account, belongs to
    another organization or is staff, so the console reveals nothing about other people;
    only an address that can join gets a working invitation. `link_for(token)` builds the
    absolute URL of the acceptance page. The email leaves after commit, outside the lock.
    """
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise Refused("Enter a valid email address.", rows={"email": "Not an email."}) from None
    locked = Enterprise.objects.lock(enterprise)
    user = User.objects.filter(email__iexact=email).first()
    if user is not None and user.enterprise_id == locked.pk:
        raise Refused(f"{email} is already a user of {locked.name}.", code="state")
    if locked.is_active:
        # Checked now too, so the admin hears about a full pool before the person accepts.
        refuse_short_pool(locked, MIN_PAID_INFERENCE, "A new user")
    if user is not None and (user.enterprise_id or user.is_staff or user.is_superuser):
        return InviteOutcome(email, None)
    now = timezone.now()
    # A new link replaces any earlier open one for this address.
    Invitation.objects.filter(
        enterprise=locked, email__iexact=email, accepted_at__isnull=True, expires_at__gt=now
    ).update(expires_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        enterprise=locked,
        email=email,
        token_digest=_digest(token),
        invited_by=actor,
        expires_at=now + INVITATION_LIFETIME,
    )
    log_activity(
        actor=actor,
        action=Action.USER_INVITED,
        enterprise=locked,
        target=email,
        new={"expires_at": invitation.expires_at.isoformat()},
    )
    link = link_for(token)
    transaction.on_commit(lambda: _send_invitation(email, locked.name, actor.email, link))
    return InviteOutcome(email, invitation)


@dataclass(frozen=True)
class Invitee:
    """One address of a bulk import, with what the import asks for once they accept."""

    email: str
    role: str = ""
    max_inference_tokens: int | None = None
    max_embedding_tokens: int | None = None


def invite_many(
    *,
    actor: User,
    locked: Enterprise,
    invitees: list[Invitee],
    link_for: Callable[[str], str],
) -> int:
    """add_user for many valid, lower-cased addresses that are not members of `locked`.

    Runs inside the caller's transaction, which holds the enterprise lock and has checked
    the pool. A fixed number of queries whatever the count. As with add_user, an address
    that cannot join (another organization, staff) gets no working link, yet its log row
    and the admin's summary read the same as anyone else's.
    """
    if not invitees:
        return 0
    emails = [i.email for i in invitees]
    blocked = set(
        User.objects.annotate(address=Lower("email"))
        .filter(address__in=emails)
        .filter(Q(enterprise__isnull=False) | Q(is_staff=True) | Q(is_superuser=True))
        .values_list("address", flat=True)
    )
    now = timezone.now()
    expires = now + INVITATION_LIFETIME
    # New links replace earlier open ones for the same addresses (invitation_email_idx).
    Invitation.objects.annotate(address=Lower("email")).filter(
        enterprise=locked, address__in=emails, accepted_at__isnull=True, expires_at__gt=now
    ).update(expires_at=now)
    rows, mails = [], []
    for invitee in invitees:
        if invitee.email in blocked:
            continue
        token = secrets.token_urlsafe(32)
        rows.append(
            Invitation(
                enterprise=locked,
                email=invitee.email,
                token_digest=_digest(token),
                invited_by=actor,
                expires_at=expires,
                role=invitee.role,
                max_inference_tokens=invitee.max_inference_tokens,
                max_embedding_tokens=invitee.max_embedding_tokens,
            )
        )
        mails.append((invitee.email, link_for(token)))
    Invitation.objects.bulk_create(rows)
    new = {"expires_at": expires.isoformat(), "via": "bulk import"}
    log_activities(
        [
            {
                "actor": actor,
                "action": Action.USER_INVITED,
                "enterprise": locked,
                "target": e,
                "new": new,
            }
            for e in emails
        ]
    )
    name, inviter = locked.name, actor.email
    transaction.on_commit(lambda: _deliver(mails, name, inviter))
    return len(invitees)


def _locked_pending(invitation: Invitation) -> tuple[Enterprise, Invitation]:
    """The enterprise lock first (the order every writer uses), then the invitation's row."""
    locked = Enterprise.objects.lock(invitation.enterprise)
    current = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if current.accepted_at is not None:
        raise Refused(f"{current.email} already accepted this invitation.", code="state")
    if current.expires_at <= timezone.now():
        raise Refused(
            f"The invitation to {current.email} has expired or was revoked. Add the user again "
            "to send a new one.",
            code="state",
        )
    return locked, current


@transaction.atomic
def resend_invitation(
    *, actor: User, invitation: Invitation, link_for: Callable[[str], str]
) -> Invitation:
    """A new link for a pending invitation, valid for a full lifetime; the old link stops working.

    Only the digest of the new token is stored, so replacing it is the only way to email a
    link again. The email leaves after commit, outside the lock.
    """
    locked, current = _locked_pending(invitation)
    old_expiry = current.expires_at
    token = secrets.token_urlsafe(32)
    current.token_digest = _digest(token)
    current.expires_at = timezone.now() + INVITATION_LIFETIME
    current.save(update_fields=["token_digest", "expires_at"])
    log_activity(
        actor=actor,
        action=Action.INVITATION_RESENT,
        enterprise=locked,
        target=current.email,
        old={"expires_at": old_expiry.isoformat()},
        new={"expires_at": current.expires_at.isoformat()},
    )
    email, link = current.email, link_for(token)
    transaction.on_commit(lambda: _send_invitation(email, locked.name, actor.email, link))
    return current


@transaction.atomic
def revoke_invitation(*, actor: User, invitation: Invitation) -> Invitation:
    """Withdraw a pending invitation: its link stops working at once."""
    locked, current = _locked_pending(invitation)
    old_expiry = current.expires_at
    current.expires_at = timezone.now()
    current.save(update_fields=["expires_at"])
    log_activity(
        actor=actor,
        action=Action.INVITATION_REVOKED,
        enterprise=locked,
        target=current.email,
        old={"expires_at": old_expiry.isoformat()},
        new={"expires_at": current.expires_at.isoformat()},
    )
    return current


def open_invitation(token: str) -> Invitation | None:
    """The unexpired, unused invitation behind a link token, or None."""
    if not token:
        return None
    return (
        Invitation.objects.select_related("enterprise")
        .filter(token_digest=_digest(token), accepted_at__isnull=True)
        .filter(expires_at__gt=timezone.now())
        .first()
    )


def _open_for(user: User, token: str) -> Invitation:
    invitation = open_invitation(token)
    if invitation is None:
        raise Refused(
            "This invitation link is not valid or has expired. Ask the administrator for a new "
            "one.",
            code="invalid",
        )
    if invitation.email.lower() != user.email.lower():
        raise Refused(
            f"This invitation was sent to {invitation.email}, not to {user.email}. Sign in as "
            f"{invitation.email} to accept it.",
            code="invalid",
        )
    return invitation


@transaction.atomic
def accept_invitation(*, user: User, token: str) -> Enterprise:
    """The invited person, signed in as the invited address, consents and joins."""
    invitation = _open_for(user, token)
    enterprise = Enterprise.objects.lock(invitation.enterprise)
    # Locked after the enterprise (same order everywhere) so a link is spent only once.
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None or invitation.expires_at <= timezone.now():
        raise Refused("This invitation was already used or withdrawn.", code="state")
    join(
        user,
        enterprise,
        User.objects.get(pk=user.pk),
        role=User.Role.MEMBER,
        action=Action.USER_ADDED,
        via="invitation",
    )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    _apply_requested(enterprise, User.objects.get(pk=user.pk), invitation)
    return enterprise


def _apply_requested(enterprise: Enterprise, user: User, invitation: Invitation) -> None:
    """The role and allocations a bulk import asked for, applied by the inviting admin's
    authority once the person has consented (and only while that admin still is one). The
    pool may have shrunk since the import: then the person keeps the defaults and the log
    shows no allocation change."""
    actor = invitation.invited_by
    if actor is None or actor.enterprise_id != enterprise.pk or not actor.can_edit_console:
        return  # the inviter is no longer an admin here: their choices lapse with them
    if invitation.role and invitation.role != user.role:
        user = change_role(actor=actor, user=user, role=invitation.role)
    wanted = (
        ("inference", invitation.max_inference_tokens, user.max_inference_tokens),
        ("embedding", invitation.max_embedding_tokens, user.max_embedding_tokens),
    )
    changes = [
        AllocationChange(user.pk, c, v, now) for c, v, now in wanted if v is not None and v != now
    ]
    if not changes:
        return
    try:
        with transaction.atomic():  # a savepoint: a refusal leaves the join in place
            set_allocations(actor=actor, enterprise=enterprise, changes=changes)
    except Refused:
        pass


@transaction.atomic
def decline_invitation(*, user: User, token: str) -> Enterprise:
    """The invited person says no: the link stops working and the admins see it logged."""
    invitation = _open_for(user, token)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())
    log_activity(
        actor=user,
        action=Action.INVITATION_DECLINED,
        enterprise=invitation.enterprise,
        target=user.email,
    )
    return invitation.enterprise
