"""The Procfile and the systemd examples run the same commands, the contract's (§1)."""

import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
UNITS = PROJECT_ROOT / "deploy" / "systemd"


def procfile() -> dict[str, str]:
    lines = (PROJECT_ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def exec_start(unit: str) -> str:
    text = (UNITS / f"backinstock-{unit}.service").read_text()
    [command] = re.findall(r"^ExecStart=(.+)$", text, flags=re.MULTILINE)
    return command


def test_the_procfile_runs_web_worker_and_scheduler_with_the_contracts_commands():
    assert procfile() == {
        "web": "gunicorn config.wsgi",
        "worker": "celery -A config worker -l info",
        "beat": "celery -A config beat -l info",
    }


def test_each_systemd_unit_starts_what_the_procfile_starts():
    commands = procfile()
    assert exec_start("web") == commands["web"]
    assert exec_start("worker") == commands["worker"]
    assert exec_start("beat").startswith(commands["beat"])


def test_the_web_unit_migrates_and_collects_static_files_before_it_starts():
    text = (UNITS / "backinstock-web.service").read_text()
    assert "ExecStartPre=python manage.py migrate --noinput" in text
    assert "ExecStartPre=python manage.py collectstatic --noinput" in text
