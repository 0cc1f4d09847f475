"""Why is this user blocked? Every reason that applies, as a code and in words.

One pure function (`block_reasons`) serves the user page, the member's /settings/ and the
`/api/v1/quota/check` response, so the three never disagree. It reads only figures the
caller already has (the quota check's one statement, a UsageSnapshot): no query of its own,
because the quota check is asked before every model call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from accounts.models import Enterprise, User
from asksage_admin.core.formats import day, tokens

if TYPE_CHECKING:
    from metrics.quota import UsageSnapshot

# Reason codes (stable: integrations switch on them; docs/integrator.md lists them).
ACCOUNT_DISABLED = "account_disabled"
ENTERPRISE_PENDING = "enterprise_pending"
ENTERPRISE_SUSPENDED = "enterprise_suspended"
INFERENCE_CAP_REACHED = "inference_cap_reached"
EMBEDDING_USED_UP = "embedding_allocation_used_up"
WOULD_EXCEED = "would_exceed"
UNKNOWN_USER = "unknown_user"
NO_ENTERPRISE = "no_enterprise"

# What would unblock each reason: who can act, and on what. Pages turn these into a link
# (admins) or a sentence / request button (members); see metrics/includes/block_explainer.html.
REMEDY_ACTIVATE = "activate_user"
REMEDY_RAISE_INFERENCE = "raise_inference"
REMEDY_RAISE_EMBEDDING = "raise_embedding"
REMEDY_WAIT_OR_RAISE = "wait_or_raise"
REMEDY_CONTACT_SALES = "contact_sales"


@dataclass(frozen=True)
class BlockReason:
    code: str
    message: str
    remedy: str = ""
    # The kind of tokens the reason blocks; "" for a reason that blocks everything.
    kind: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def _status_reasons(user_status: str, enterprise_status: str) -> list[BlockReason]:
    reasons = []
    if user_status == User.Status.BANNED:
        reasons.append(
            BlockReason(
                ACCOUNT_DISABLED,
                "The account is disabled (Banned): it gets no tokens until an admin activates it.",
                REMEDY_ACTIVATE,
            )
        )
    if enterprise_status == Enterprise.Status.PENDING:
        reasons.append(
            BlockReason(
                ENTERPRISE_PENDING,
                "The organization is not activated yet: nobody in it can use tokens.",
                REMEDY_CONTACT_SALES,
            )
        )
    elif enterprise_status == Enterprise.Status.SUSPENDED:
        reasons.append(
            BlockReason(
                ENTERPRISE_SUSPENDED,
                "The organization is suspended: nobody in it can use tokens.",
                REMEDY_CONTACT_SALES,
            )
        )
    return reasons


def block_reasons(
    *,
    user_status: str,
    enterprise_status: str,
    time_zone: str,
    resets_on: date,
    inference_allocation: int,
    inference_used: int,
    embedding_allocation: int,
    embedding_used: int,
    kind: str | None = None,
    tokens_requested: int | None = None,
) -> list[BlockReason]:
    """Every reason that applies, most fundamental first (account, organization, quotas).

    `kind` limits the quota reasons to one kind (a quota check asks about one); None gives
    both (the pages). `tokens_requested` adds `would_exceed` when some is left but not enough.
    """
    reasons = _status_reasons(user_status, enterprise_status)
    if kind in (None, "inference"):
        left = inference_allocation - inference_used
        if left <= 0:
            reasons.append(
                BlockReason(
                    INFERENCE_CAP_REACHED,
                    (
                        "No monthly inference allocation (0 tokens)."
                        if not inference_allocation
                        else f"Monthly inference cap reached: used {tokens(inference_used)} of"
                        f" {tokens(inference_allocation)}. It resets on {day(resets_on)} at"
                        f" midnight ({time_zone})."
                    ),
                    REMEDY_WAIT_OR_RAISE,
                    "inference",
                )
            )
        elif tokens_requested is not None and kind == "inference" and tokens_requested > left:
            reasons.append(_would_exceed(tokens_requested, left, "inference", "this month"))
    if kind in (None, "embedding"):
        left = embedding_allocation - embedding_used
        if left <= 0:
            reasons.append(
                BlockReason(
                    EMBEDDING_USED_UP,
                    (
                        "No embedding (training) allocation (0 tokens)."
                        if not embedding_allocation
                        else f"Embedding (training) allocation used up: used"
                        f" {tokens(embedding_used)} of {tokens(embedding_allocation)}. It is a"
                        " lifetime allocation: it never resets."
                    ),
                    REMEDY_RAISE_EMBEDDING,
                    "embedding",
                )
            )
        elif tokens_requested is not None and kind == "embedding" and tokens_requested > left:
            reasons.append(_would_exceed(tokens_requested, left, "embedding", "of the allocation"))
    return reasons


def _would_exceed(requested: int, left: int, kind: str, scope: str) -> BlockReason:
    remedy = REMEDY_RAISE_INFERENCE if kind == "inference" else REMEDY_RAISE_EMBEDDING
    return BlockReason(
        WOULD_EXCEED,
        f"This request of {tokens(requested)} {kind} tokens would exceed the allocation:"
        f" {tokens(left)} left {scope}.",
        remedy,
        kind,
    )


@dataclass(frozen=True)
class BlockExplanation:
    """A user's position for the pages: blocked or not, why, and per kind."""

    reasons: list[BlockReason] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return bool(self.reasons)

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    @property
    def blocks_everything(self) -> bool:
        return any(not r.kind for r in self.reasons)

    @property
    def remedies(self) -> set[str]:
        return {r.remedy for r in self.reasons}


def explain(user: User, snapshot: UsageSnapshot | None) -> BlockExplanation:
    """Why `user` cannot use tokens now (no reasons: they can), from figures already read.

    `snapshot` is metrics.quota.usage_snapshot(user); None means no enterprise.
    `user.enterprise` is read (cached on the instance after usage_snapshot).
    """
    if snapshot is None or user.enterprise is None:
        return BlockExplanation(
            [
                BlockReason(
                    NO_ENTERPRISE,
                    "Not part of an organization, so there is no token allocation.",
                    REMEDY_CONTACT_SALES,
                )
            ]
        )
    return BlockExplanation(
        block_reasons(
            user_status=user.status,
            enterprise_status=user.enterprise.status,
            time_zone=snapshot.time_zone,
            resets_on=snapshot.resets_on,
            inference_allocation=snapshot.inference_allocation,
            inference_used=snapshot.inference_used,
            embedding_allocation=snapshot.embedding_allocation,
            embedding_used=snapshot.embedding_used,
        )
    )
