"""``make run``: the processes of the Procfile under supervisord, restarted when one exits.

honcho (foreman) stops every process when one exits; a worker that dies in a broker outage
would take the web server and beat down with it. supervisord restarts what exits and, on
SIGTERM or Ctrl-C, stops every process group it started. The Procfile stays the one list of
processes (platforms that read Procfiles use it as it is: commands found on their ``PATH``, the
web server on every address at the platform's ``PORT``); this writes supervisord's
configuration from it into ``var/`` and runs supervisord in the foreground, with what a
platform would supply: ``.venv/bin`` first on the ``PATH``, ``PORT`` (default 8000), and the
web server on 127.0.0.1 only, since ``make run`` serves this machine.

Some processes of the Procfile are optional: they run only when the variable named in
``OPTIONAL`` is set: ``make run FLOWER=1`` (port 5555) or ``make run FLOWER_PORT=5556`` adds
Flower, on 127.0.0.1 only.
"""

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where supervisord's configuration and pid file go (the fault-injection tests use their own).
RUN_DIR = Path(os.environ.get("RUN_DIR", ROOT / "var"))
# Procfile processes that run only when asked for, and the variable that asks for each.
OPTIONAL = {"flower": "FLOWER_PORT"}


def program(name: str, command: str) -> str:
    return f"""
[program:{name}]
command={command}
directory={ROOT}
autorestart=true
startsecs=1
startretries=1000
stopasgroup=true
killasgroup=true
stopwaitsecs=15
redirect_stderr=true
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
"""


def processes(procfile: Path, environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """The Procfile's ``name: command`` lines, less the optional ones nobody asked for."""
    lines = [line.split(":", 1) for line in procfile.read_text().splitlines() if line and not line.startswith("#")]
    named = [(name.strip(), command.strip()) for name, command in lines]
    return [(name, command) for name, command in named if name not in OPTIONAL or environ.get(OPTIONAL[name])]


def configuration(procfile: Path, environ: Mapping[str, str] = os.environ) -> str:
    # supervisord runs commands without a shell: $NAME becomes its own %(ENV_NAME)s. What the
    # Procfile opens to every address, make run binds to loopback.
    programs = "".join(
        program(name, re.sub(r"\$(\w+)", r"%(ENV_\1)s", command).replace("0.0.0.0:", "127.0.0.1:"))
        for name, command in processes(procfile, environ)
    )
    return f"""[supervisord]
nodaemon=true
umask=077
logfile=/dev/null
logfile_maxbytes=0
pidfile={RUN_DIR / "supervisord.pid"}
{programs}"""


def environment(environ: Mapping[str, str], venv_bin: Path) -> dict[str, str]:
    """What a platform gives the Procfile's processes: the virtualenv's commands first on the
    ``PATH``, and the ``PORT`` to serve on."""
    path = os.pathsep.join([str(venv_bin), environ.get("PATH", os.defpath)])
    return {**environ, "PATH": path, "PORT": environ.get("PORT") or "8000"}


def main() -> None:
    if os.environ.get("FLOWER") == "1":
        os.environ.setdefault("FLOWER_PORT", "5555")
    if os.environ.get("FLOWER_PORT"):
        print(f"Flower (the Celery dashboard) on http://127.0.0.1:{os.environ['FLOWER_PORT']}/", flush=True)
    RUN_DIR.mkdir(mode=0o700, exist_ok=True)
    conf = RUN_DIR / "supervisord.conf"
    conf.write_text(configuration(ROOT / "Procfile"))
    venv_bin = Path(sys.executable).parent
    supervisord = venv_bin / "supervisord"
    os.execve(supervisord, [str(supervisord), "-c", str(conf)], environment(os.environ, venv_bin))


if __name__ == "__main__":
    main()
