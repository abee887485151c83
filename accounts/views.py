"""Sign-up, login, logout, the account page and password reset.

Sign-up and password changes go through ``accounts.services``; password reset is Django's own
views with the shop's templates (the email goes out through the EMAIL_URL settings).
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, PasswordResetForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts import selectors, services
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
            messages.success(request, f"Welcome, {user.get_username()}! Your account is ready.")
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
    context = {"password_form": form, "summary": selectors.account_summary(user=user)}
    return render(request, "accounts/account.html", context)


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        # The link goes to the host the customer asked from, as without the sites framework
        # (installed for the flatpages, its one configured site would be named instead).
        self.extra_email_context = {"domain": self.request.get_host()}
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
