"""Which settings each process runs with, and what production refuses (issue 9.7)."""

import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.worker import PROJECT_ROOT

STRONG_KEY = "k7Qx-3vR9pZ2mW8nB4cY6tH1jL5sD0fG-production-test-key-0123"


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter in the project, DJANGO_SETTINGS_MODULE unset."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_web_process_without_a_settings_module_runs_production_settings():
    result = run_python(
        "import config.wsgi; from django.conf import settings; "
        "print(settings.SETTINGS_MODULE, settings.DEBUG)",
        DJANGO_SECRET_KEY=STRONG_KEY,
    )
    assert result.stdout.split() == ["config.settings.production", "False"], result.stderr


def test_the_web_process_without_a_settings_module_or_a_secret_key_refuses_to_start():
    result = run_python(
        "import config.wsgi; from django.conf import settings; print(settings.DEBUG)"
    )
    assert result.returncode != 0
    assert "True" not in result.stdout
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    "entry_point",
    [
        "import config.celery_app",  # celery -A config worker
        "import runpy, sys; sys.argv = ['manage.py', 'version']; "
        "runpy.run_path('manage.py', run_name='__main__')",
    ],
)
def test_the_worker_and_manage_py_default_to_production_settings(entry_point):
    result = run_python(
        f"{entry_point}\nimport os; print(os.environ['DJANGO_SETTINGS_MODULE'])",
        DJANGO_SECRET_KEY=STRONG_KEY,
    )
    assert result.stdout.split()[-1] == "config.settings.production", result.stderr


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("a" * 64, "fewer than 5 different characters"),
        ("abcdefghijklmnopqrstuvwxyz012345", "fewer than 50 characters"),
        ("django-insecure-" + "x1y2z3w4v5" * 5, "development key"),
        ("dev-only-" + "x1y2z3w4v5" * 5, "development key"),
    ],
)
def test_production_refuses_a_weak_secret_key_by_djangos_w009_rule(key, reason):
    result = run_python(
        "import django; django.setup()",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=key,
    )
    assert result.returncode != 0
    assert reason in result.stderr
    assert key not in result.stderr


def test_check_deploy_raises_no_hsts_ssl_redirect_or_secret_key_warning():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=PROJECT_ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
            "DJANGO_SECRET_KEY": STRONG_KEY,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    for warning in ("security.W004", "security.W008", "security.W009"):
        assert warning not in output, output


def test_the_switches_turn_ssl_redirect_and_hsts_off():
    result = run_python(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS)",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=STRONG_KEY,
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_HSTS_SECONDS="0",
    )
    assert result.stdout.split() == ["False", "0"], result.stderr


def test_the_bench_settings_still_load_over_plain_http():
    result = run_python(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DEBUG, settings.SECURE_SSL_REDIRECT)",
        DJANGO_SETTINGS_MODULE="config.settings.bench",
    )
    assert result.stdout.split() == ["False", "False"], result.stderr


@pytest.mark.django_db
def test_demo_admin_refuses_any_database_but_the_demos_sqlite_file(settings):
    from django.contrib.auth import get_user_model

    settings.DEBUG = True
    with pytest.raises(CommandError, match="demo's SQLite database"):
        call_command("demo_admin")
    assert not get_user_model().objects.filter(username="admin").exists()


def test_manage_py_refused_by_production_settings_says_why_in_one_line_without_traceback():
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "manage.py", "import_catalog", "--help"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("manage.py: DJANGO_SECRET_KEY ")
    assert "config.settings.local" in line
