import importlib.util
import stat
import subprocess
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
