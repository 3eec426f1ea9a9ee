"""A private RabbitMQ node for tests: its own ports, data and cookie under a temporary folder.

The machine's shared node (5672) is never touched. The node keeps its data across ``stop`` and
``start`` (as a real broker restarted after an outage does), so its durable queues and their
messages survive. Skipped where RabbitMQ is not installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.redis_server import free_port

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
START_TIMEOUT_SECONDS = 60


class PrivateRabbitMQ:
    def __init__(self) -> None:
        if not RABBITMQ_SERVER.exists() or shutil.which("erl") is None:
            pytest.skip("RabbitMQ is not installed")
        self.port = free_port()
        self.dist_port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="rabbitmq-test-"))
        self.process: subprocess.Popen[bytes] | None = None
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "log.console = false\n"
            "log.file.level = warning\n"
        )
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _environment(self) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.base),  # its own Erlang cookie
            "RABBITMQ_NODENAME": f"test{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self) -> PrivateRabbitMQ:
        self.process = subprocess.Popen(
            [str(RABBITMQ_SERVER)],
            env=self._environment(),
            cwd=self.base,
            stdout=(self.base / "stdout.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._accepts_amqp():
                return self
            time.sleep(0.2)
        log = (self.base / "stdout.log").read_text()[-3000:]
        self.stop()
        raise RuntimeError(f"private RabbitMQ did not start:\n{log}")

    def _accepts_amqp(self) -> bool:
        from kombu import Connection

        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            with Connection(self.url, connect_timeout=1) as connection:
                connection.ensure_connection(max_retries=1)
            return True
        except Exception:
            return False

    def queues(self) -> dict[str, str]:
        """``{queue name: type}`` as the node lists them (``rabbitmqctl list_queues``)."""
        result = subprocess.run(
            [str(RABBITMQ_SERVER.with_name("rabbitmqctl")), "-q", "list_queues", "name", "type"],
            env=self._environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        rows = [line.split() for line in result.stdout.splitlines()]
        return {row[0]: row[1] for row in rows if len(row) == 2 and row[0] != "name"}

    def stop(self) -> None:
        """Kill the node at once (SIGKILL, the whole process group), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
