import uuid
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django_countries import countries

from orders.addresses import shipping_postal_code_clean
from payments.validators import validate_no_card_number

# The simulated payment provider's test tokens (contract §4), as a shopper would pick a test card.
TEST_TOKENS = [
    ("tok_visa", "Visa test card: the charge succeeds."),
    ("tok_decline", "Declined card: the order is cancelled, nothing is charged."),
    ("tok_flaky", "Flaky provider: fails twice, then the charge succeeds."),
    ("tok_timeout", "Lost reply: charged once, found again by its idempotency key."),
    ("tok_down", "Provider down: every attempt fails; the order is cancelled."),
    ("tok_refund_fails", "Charges work, refunds never do: a cancelled order needs staff attention."),
    ("tok_slow", "Slow provider: each charge takes a while to answer, then succeeds."),
]
# Stripe's test PaymentMethods (PAYMENT_PROVIDER=stripe, docs/stripe.md).
STRIPE_TEST_TOKENS = [
    ("pm_card_visa", "Stripe's test Visa: the charge succeeds."),
    ("pm_card_chargeCustomerFail", "Stripe's test card declined when charged: the order is cancelled."),
]


def test_tokens() -> list[tuple[str, str]]:
    return STRIPE_TEST_TOKENS if settings.PAYMENT_PROVIDER == "stripe" else TEST_TOKENS


class CheckoutForm(forms.Form):
    name = forms.CharField(label="Full name", max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    line1 = forms.CharField(
        label="Address", max_length=200, widget=forms.TextInput(attrs={"autocomplete": "address-line1"})
    )
    line2 = forms.CharField(
        label="Address line 2 (optional)",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "address-line2"}),
    )
    city = forms.CharField(
        label="City", max_length=100, widget=forms.TextInput(attrs={"autocomplete": "address-level2"})
    )
    postal_code = forms.CharField(
        label="Postal code",
        max_length=20,
        help_text=(
            "Test values, in any country: 00000, the carrier rejects the address; 99999, the carrier "
            "fails twice, then accepts; 88888, the carrier is slow to answer, then accepts; 66666, the "
            "screening rejects the order; 77777, the order waits for a person's review."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "postal-code"}),
    )
    country = forms.ChoiceField(
        label="Country",
        choices=[("", "Choose a country"), *countries],
        widget=forms.Select(attrs={"autocomplete": "country"}),
    )
    payment_token = forms.ChoiceField(
        label="Payment (test values)",
        choices=[(token, f"{token}: {explanation}") for token, explanation in TEST_TOKENS],
        initial="tok_visa",
        widget=forms.RadioSelect,
        validators=[validate_no_card_number],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tokens = test_tokens()
        field = self.fields["payment_token"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(token, f"{token}: {explanation}") for token, explanation in tokens]
        field.initial = tokens[0][0]

    # One key per rendered form: submitting it twice (double click, refresh, back and resubmit)
    # places one order; a new checkout page gets a new key.
    checkout_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("postal_code") and cleaned.get("country"):  # else the field says what is missing
            try:
                cleaned["postal_code"] = shipping_postal_code_clean(
                    country=cleaned["country"], postal_code=cleaned["postal_code"]
                )
            except ValidationError as error:
                self.add_error("postal_code", error)
        return cleaned

    def address(self) -> dict[str, Any]:
        fields = ("name", "line1", "line2", "city", "postal_code", "country")
        return {field: self.cleaned_data[field] for field in fields}
