"""Sign-up, login and logout pages. Sign-up creates the account through ``accounts.services``."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts import services
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
