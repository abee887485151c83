import os

from django.core.wsgi import get_wsgi_application

from telemetry.tracing import tracing_setup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Each gunicorn process (and `manage.py runserver`, through WSGI_APPLICATION) imports this module
# once: traces, when OTEL_* asks for them, are set up once per process (telemetry/tracing.py),
# before the handler loads the middleware, to which the instrumentation adds its own.
tracing_setup(service_name="shop-web")

application = get_wsgi_application()
