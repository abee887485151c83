from django import forms
from django.core.exceptions import ValidationError


class SignupForm(forms.Form):
    """The sign-up fields; the password rules are applied by ``accounts.services.user_register``."""

    username = forms.RegexField(
        label="Username",
        regex=r"^[\w.@+-]+$",
        max_length=150,
        help_text="Letters, digits and @ . + - _ only.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    email = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        label="Password",
        strip=False,
        help_text="At least 8 characters, not too common, not only digits, not like your username.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password_confirm = forms.CharField(
        label="Password again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self) -> dict[str, object] | None:
        cleaned = super().clean()
        if cleaned and cleaned.get("password") and cleaned.get("password") != cleaned.get("password_confirm"):
            raise ValidationError({"password_confirm": "The two passwords differ."})
        return cleaned
