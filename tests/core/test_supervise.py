"""``make run``'s process list (config/supervise.py): the Procfile, with Flower only when asked for."""

from pathlib import Path

from django.conf import settings

from config.celery import app
from config.supervise import ROOT, configuration, environment, processes


def programs(conf: str) -> dict[str, str]:
    """supervisord's ``[program:name]`` sections: name → command."""
    found = {}
    for section in conf.split("[program:")[1:]:
        name, _, body = section.partition("]")
        found[name] = body.split("command=", 1)[1].splitlines()[0]
    return found


def test_make_run_starts_web_worker_and_beat_and_not_flower_by_default():
    assert set(programs(configuration(ROOT / "Procfile", environ={}))) == {"web", "worker", "beat"}
    assert "flower" not in programs(configuration(ROOT / "Procfile", environ={"FLOWER_PORT": ""}))


def test_flower_runs_when_asked_for_on_loopback_only_against_the_same_broker():
    commands = programs(configuration(ROOT / "Procfile", environ={"FLOWER_PORT": "5555"}))

    assert set(commands) == {"web", "worker", "beat", "flower"}
    flower = commands["flower"]
    assert flower.startswith("celery -A config flower")  # the app's own broker settings
    assert "--address=127.0.0.1" in flower and "--port=%(ENV_FLOWER_PORT)s" in flower


def test_the_procfile_runs_on_a_platform_as_it_is():
    # a platform runs each line with its own PATH and PORT: no virtualenv path, no loopback web
    procfile = (ROOT / "Procfile").read_text()
    assert ".venv" not in procfile
    commands = dict(processes(ROOT / "Procfile", environ={"FLOWER_PORT": "5555"}))
    assert "--bind 0.0.0.0:$PORT " in commands["web"]
    # and the worker consumes every queue of the shop: those it declares, unless told otherwise
    assert "-Q" not in commands["worker"]
    queues = [(queue.name, queue.exchange.name, queue.routing_key) for queue in app.conf.task_queues]
    assert queues == [(name, name, name) for name in settings.SHOP_QUEUES]  # each its own, as -Q would


def test_make_run_serves_loopback_at_its_port_with_the_virtualenv_first_on_the_path():
    # given the Procfile under make run
    web = programs(configuration(ROOT / "Procfile", environ={}))["web"]
    env = environment({"PATH": "/usr/bin:/bin"}, Path("/shop/.venv/bin"))
    # then the web server listens on loopback only, at PORT (8000 unless set)
    assert "--bind 127.0.0.1:%(ENV_PORT)s " in web
    assert env["PORT"] == "8000"
    assert environment({"PORT": "9000"}, Path("/v"))["PORT"] == "9000"
    # and the virtualenv's gunicorn and celery are found first
    assert env["PATH"] == "/shop/.venv/bin:/usr/bin:/bin"
