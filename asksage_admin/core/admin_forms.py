"""Staff-admin forms whose save is one service call, so every rule runs once, under its lock.

Django's admin validates a form, then saves the object. Here validation ends by calling the
service (which takes its lock and checks its rules); a refusal becomes a form error on the
page, and the admin's own save steps only hand back what the service saved.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models, transaction
from django.http import HttpRequest

from asksage_admin.core.errors import Refused


class ServiceForm(forms.ModelForm):
    """Subclasses implement `apply()`: call the service with `self.actor` and cleaned_data."""

    actor: Any = None  # set per request by ServiceAdminMixin.get_form
    saved: models.Model | None = None

    def apply(self) -> models.Model:
        raise NotImplementedError

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # Django's private hook, absent from the stubs
        if self.errors:
            return
        try:
            # A savepoint: when one of several service calls refuses, none of them stays.
            with transaction.atomic():
                self.saved = self.apply()
        except Refused as exc:
            if not exc.rows:
                self.add_error(None, exc.message)
            for name, reason in exc.rows.items():
                self.add_error(name if name in self.fields else None, reason or exc.message)


class ServiceAdminMixin:
    """For a ModelAdmin whose form is a ServiceForm: the form's service call is the save."""

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        # `change` by keyword: django.contrib.auth's UserAdmin.get_form takes it in **kwargs.
        form = super().get_form(request, obj, change=change, **kwargs)  # type: ignore[misc]
        # modelform_factory makes a new class per call: this is per request, not shared.
        form.actor = request.user
        return form

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        return form.saved

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Already saved by the form's service call."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Inlines here are read-only: saving them writes nothing, but the admin's change
        # message reads what each formset saved.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)  # type: ignore[attr-defined]
