"""gunicorn settings: ``gunicorn -c config/gunicorn.py config.wsgi`` (the Procfile and ``make bench``).

Four processes of two threads on a two-core machine: a request either waits for the database
or holds its process's GIL, and keep-alive clients spread over four processes instead of
piling onto one of two (measured in ``bench/improvements.md``). ``WEB_CONCURRENCY`` and
``WEB_THREADS`` change it; about two processes per core is a good start elsewhere.
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
threads = int(os.environ.get("WEB_THREADS", "2"))
graceful_timeout = 10
