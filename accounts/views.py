"""Sign-up, login, logout, the account page and password reset.

Sign-up and password changes go through ``accounts.services``, the email address's proof
through ``accounts.verification``; password reset is Django's own views with the shop's
templates, its email sent by a worker (``services.password_reset_request``).
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, PasswordResetForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts import selectors, services, verification
from accounts.forms import SignupForm
from core.ratelimits import rate_limited


@rate_limited("register")  # the API's registration limit, one bucket for both
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = settings.LOGIN_REDIRECT_URL
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, _ = services.user_register(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)  # maps {"username": ..., "password": ...} onto the fields
        else:
            # login() keeps the anonymous session's data, so the cart comes along.
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")  # type: ignore[arg-type]
            messages.success(
                request,
                f"Welcome, {user.get_username()}! Your account is ready. We emailed {user.email} a link"
                " to confirm the address: your order emails go there once you follow it.",
            )
            return redirect(next_url)
    return render(request, "accounts/signup.html", {"form": form, "next": next_url})


@method_decorator(rate_limited("login"), name="dispatch")  # the API's token-login limit
class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django's own rule since 5.0): a link or an image cannot sign anyone out."""


@login_required
@require_http_methods(["GET", "POST"])
def account_page(request: HttpRequest) -> HttpResponse:
    """The signed-in customer's details, and the form to change their password."""
    user: User = request.user  # type: ignore[assignment]  # login_required
    form = PasswordChangeForm(user, request.POST or None)
    # Django focuses the old password; on a page that leads with the details it would jump there.
    form.fields["old_password"].widget.attrs.pop("autofocus", None)
    if request.method == "POST" and form.is_valid():
        services.user_password_change(user=user, password=form.cleaned_data["new_password1"])
        update_session_auth_hash(request, user)  # this browser stays signed in; others are not
        messages.success(request, "Your password was changed.")
        return redirect("account")
    context = {
        "password_form": form,
        "summary": selectors.account_summary(user=user),
        "email_verified": verification.email_is_verified(user_id=user.pk, email=user.email),
    }
    return render(request, "accounts/account.html", context)


@rate_limited("register")  # it sends mail: the registration's budget, one bucket for both
@login_required
@require_http_methods(["POST"])
def verify_email_resend(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]  # login_required
    if verification.email_is_verified(user_id=user.pk, email=user.email):
        messages.info(request, "Your email address is confirmed already.")
    else:
        verification.email_verification_send(user=user)
        messages.success(request, f"We sent a new confirmation link to {user.email}.")
    return redirect("account")


@require_http_methods(["GET"])
def verify_email(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """The link of the verification email: no sign-in needed, the token is the proof."""
    user = verification.email_verify(uidb64=uidb64, token=token)
    return render(request, "accounts/verify_email_done.html", {"verified": user}, status=200 if user else 400)


def reset_address(request: HttpRequest) -> str:
    """The address a reset is asked for, as its limit counts it: one address however it is spelled."""
    return str(request.POST.get("email", "")).strip().casefold()


@method_decorator(rate_limited("password_reset"), name="dispatch")  # per client
@method_decorator(rate_limited("password_reset_address", per=reset_address), name="dispatch")
class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset_form.html"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        services.password_reset_request(email=form.cleaned_data["email"])
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
