import importlib.util
import json
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _demo_module():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_leaves_its_settings_for_commands_run_beside_it(tmp_path, monkeypatch):
    demo = _demo_module()
    monkeypatch.setitem(demo.ENVIRONMENT, "CHECKOUT_API_ALLOWED_ORIGINS", "http://a:1,http://b'c")
    path = tmp_path / "demo.env"

    demo.demo_env_file_write(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    shown = subprocess.run(
        [
            "bash",
            "-c",
            f"set -a; . {path}; "
            'echo "$DJANGO_SETTINGS_MODULE|$KLAVIYO_API_URL|$CHECKOUT_API_ALLOWED_ORIGINS"',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert shown == (
        f"config.settings.local|{demo.ENVIRONMENT['KLAVIYO_API_URL']}|http://a:1,http://b'c"
    )


# What a shell set up for production, or for another project, may export.
HOSTILE = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/production",
    "CELERY_BROKER_URL": "amqp://guest:guest@mq.example:5672//",
    "REDIS_URL": "redis://cache.example:6379/0",
    "KLAVIYO_API_URL": "https://a.klaviyo.com",
    "KLAVIYO_API_KEY": "pk_live_real_account",
    "SHOP_API_KEY": "real-shop-key",
    "INTEGRATION_API_TOKEN": "real-integration-token",
    "CHECKOUT_API_ALLOWED_ORIGINS": "https://shop.example",
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_READ_DOT_ENV_FILE": "true",
    "DJANGO_SECRET_KEY": "a-real-secret-key",
    "DJANGO_DEBUG": "false",
    "SENTRY_DSN": "https://key@sentry.example/1",
    "KLAVIYO_DISPATCH_SECONDS": "3600",
    "PYTHONPATH": "/somewhere/else",
}
SHOWN = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps([s.DATABASES['default']['ENGINE'], str(s.DATABASES['default']['NAME']), "
    "s.CELERY_BROKER_URL, s.CACHES['default']['BACKEND'], s.KLAVIYO_API_URL, s.KLAVIYO_API_KEY, "
    "s.SHOP_API_KEY, s.INTEGRATION_API_TOKEN, s.SENTRY_DSN, s.KLAVIYO_DISPATCH_SECONDS, s.DEBUG]))"
)


def test_the_demo_uses_its_own_settings_whatever_the_shell_exports(monkeypatch):
    for name, value in HOSTILE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DEMO_SANDBOX_PORT", raising=False)
    demo = _demo_module()

    shown = subprocess.run(
        [sys.executable, "-c", SHOWN],
        cwd=ROOT,
        env=demo.ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == [
        "django.db.backends.sqlite3",
        str(ROOT / "db.sqlite3"),
        "filesystem://localhost/",
        "django.core.cache.backends.locmem.LocMemCache",
        "http://127.0.0.1:8100",
        "pk_demo_sandbox",
        "demo-shop-key",
        "demo-integration-token",
        "",
        1.0,
        True,
    ]
    assert [name for name, value in HOSTILE.items() if demo.ENVIRONMENT.get(name) == value] == []


# Sends itself a TERM, as make demo's process group gets one, then a second one while stopping,
# as make passes its own on; and a Ctrl-C after that.
SECOND_SIGNAL = f"""
import importlib.util, os, signal, sys
spec = importlib.util.spec_from_file_location("demo", {str(ROOT / "scripts" / "demo.py")!r})
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)
demo.stop_signals_handle()
try:
    os.kill(os.getpid(), signal.SIGTERM)
except KeyboardInterrupt:
    print("stopping", flush=True)
os.kill(os.getpid(), signal.SIGTERM)
os.kill(os.getpid(), signal.SIGINT)
print("stopped", flush=True)
"""


def test_a_second_term_or_ctrl_c_does_not_interrupt_the_demo_stopping():
    finished = subprocess.run(
        [sys.executable, "-c", SECOND_SIGNAL], capture_output=True, text=True, timeout=60
    )

    assert finished.stdout.split() == ["stopping", "stopped"], finished.stderr
    assert finished.returncode == 0
