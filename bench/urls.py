"""The shop's URLs, and under ``/bench/`` the bare DRF endpoints that serve as baselines."""

from django.urls import URLPattern, URLResolver, include, path

from bench.bare import BareReadView, BareWriteView

urlpatterns: list[URLPattern | URLResolver] = [
    path("bench/bare/write/", BareWriteView.as_view()),
    path("bench/bare/read/", BareReadView.as_view()),
    path("", include("config.urls")),
]
