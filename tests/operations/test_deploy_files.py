"""The Procfile and the systemd examples run the same commands, the contract's (§1)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
UNITS = PROJECT_ROOT / "deploy" / "systemd"
# systemd runs commands by absolute path, not through PATH: the install's virtualenv.
VENV_BIN = "/srv/backinstock/.venv/bin/"


def procfile() -> dict[str, str]:
    lines = (PROJECT_ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def exec_start(unit: str) -> str:
    text = (UNITS / f"backinstock-{unit}.service").read_text()
    [command] = re.findall(r"^ExecStart=(.+)$", text, flags=re.MULTILINE)
    assert command.startswith(VENV_BIN)
    return command.removeprefix(VENV_BIN)


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
    assert f"ExecStartPre={VENV_BIN}python manage.py migrate --noinput" in text
    assert f"ExecStartPre={VENV_BIN}python manage.py collectstatic --noinput" in text


def test_the_readmes_nginx_snippet_is_a_valid_configuration(tmp_path):
    """`nginx -t` on the README's snippet (TLS left out: no certificate here)."""
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed")
    readme = (PROJECT_ROOT / "README.md").read_text()
    [snippet] = re.findall(r"```nginx\n(.*?)```", readme, flags=re.DOTALL)
    snippet = snippet.replace("listen 443 ssl;", "listen 127.0.0.1:8443;")
    snippet = snippet.replace("/var/log/nginx/", f"{tmp_path}/")
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events {}\n"
        f"http {{\n{snippet}\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    """Installed under a temporary root whose virtualenv is this one."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    venv_bin = tmp_path / VENV_BIN.strip("/")
    venv_bin.mkdir(parents=True)
    for command in ("python", "gunicorn", "celery"):
        (venv_bin / command).symlink_to(Path(sys.executable).with_name(command))
    for unit in sorted(UNITS.glob("*.service")):
        installed = tmp_path / unit.name
        installed.write_text(
            unit.read_text().replace("/srv/backinstock", f"{tmp_path}/srv/backinstock")
        )
        result = subprocess.run(
            ["systemd-analyze", "verify", str(installed)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
        )
        assert result.returncode == 0 and not result.stderr.strip(), (unit.name, result.stderr)
