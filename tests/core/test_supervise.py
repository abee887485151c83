"""``make run``'s process list (config/supervise.py): the Procfile, with Flower only when asked for."""

from config.supervise import ROOT, configuration


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
    assert flower.startswith(".venv/bin/celery -A config flower")  # the app's own broker settings
    assert "--address=127.0.0.1" in flower and "--port=%(ENV_FLOWER_PORT)s" in flower
