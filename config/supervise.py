"""``make run``: the processes of the Procfile under supervisord, restarted when one exits.

honcho (foreman) stops every process when one exits; a worker that dies in a broker outage
would take the web server and beat down with it. supervisord restarts what exits and, on
SIGTERM or Ctrl-C, stops every process group it started. The Procfile stays the one list of
processes (platforms that read Procfiles use it as it is); this writes supervisord's
configuration from it into ``var/`` and runs supervisord in the foreground.
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where supervisord's configuration and pid file go (the fault-injection tests use their own).
RUN_DIR = Path(os.environ.get("RUN_DIR", ROOT / "var"))


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


def configuration(procfile: Path) -> str:
    lines = [line.split(":", 1) for line in procfile.read_text().splitlines() if line and not line.startswith("#")]
    # supervisord runs commands without a shell: $NAME becomes its own %(ENV_NAME)s.
    programs = "".join(
        program(name.strip(), re.sub(r"\$(\w+)", r"%(ENV_\1)s", command.strip())) for name, command in lines
    )
    return f"""[supervisord]
nodaemon=true
umask=077
logfile=/dev/null
logfile_maxbytes=0
pidfile={RUN_DIR / "supervisord.pid"}
{programs}"""


def main() -> None:
    RUN_DIR.mkdir(mode=0o700, exist_ok=True)
    conf = RUN_DIR / "supervisord.conf"
    conf.write_text(configuration(ROOT / "Procfile"))
    os.environ.setdefault("WEB_PORT", os.environ.get("PORT", "8000"))
    supervisord = Path(sys.executable).parent / "supervisord"
    os.execv(supervisord, [str(supervisord), "-c", str(conf)])


if __name__ == "__main__":
    main()
