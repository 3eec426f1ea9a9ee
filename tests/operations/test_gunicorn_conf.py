"""gunicorn.conf.py's hooks, called as gunicorn calls them."""

import gc
import runpy
import sys
from pathlib import Path

GUNICORN_CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def test_a_worker_that_has_loaded_the_app_freezes_it_out_of_full_collections():
    hooks = runpy.run_path(str(GUNICORN_CONF))
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        hooks["post_worker_init"](None)
        # This process has Django, the apps and the test tools loaded: far more than this.
        assert gc.get_freeze_count() > 50_000
        assert len(gc.get_objects(generation=2)) < gc.get_freeze_count()
    finally:
        gc.unfreeze()


def test_a_worker_hands_the_gil_on_after_a_millisecond_not_five():
    hooks = runpy.run_path(str(GUNICORN_CONF))
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)  # Python's default
        hooks["post_worker_init"](None)
        assert sys.getswitchinterval() == 0.001
    finally:
        sys.setswitchinterval(before)
        gc.unfreeze()
