"""A two-node Slurm cluster on one machine, for the tests: munge, slurmctld, two slurmd.

Debian's slurmd is built without ``--enable-multiple-slurmd``, so each node has its own
loopback address (127.0.0.2, 127.0.0.3), ``NodeHostname`` and port, and runs as
``slurmd -N NAME``. Job processes resolve the node names through nss_wrapper
(``NSS_WRAPPER_HOSTS`` + ``LD_PRELOAD``); torch's c10d asks for IPv6 first, so each name
also has an ``::ffff:127.0.0.x`` line. Every daemon runs in the foreground as a child of
the test process and is stopped by its PID.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

NODES = {"node1": "127.0.0.2", "node2": "127.0.0.3"}
PARTITION = "debug"
PACKAGES = "slurm-wlm munge libnss-wrapper"
_DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sacct")


def nss_wrapper() -> str | None:
    """The path of libnss_wrapper.so, or None where libnss-wrapper is not installed."""
    for folder in (
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ):
        path = Path(folder) / "libnss_wrapper.so"
        if path.exists():
            return str(path)
    return None


def missing() -> str | None:
    """Why a cluster cannot start here, or None."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "Slurm needs a POSIX machine"
    absent = [name for name in _DAEMONS if shutil.which(name) is None]
    if absent or nss_wrapper() is None:
        what = ", ".join(absent + ([] if nss_wrapper() else ["libnss_wrapper.so"]))
        return f"{what} not found; install with: apt-get install {PACKAGES}"
    if os.geteuid() != 0:
        return "the test cluster runs its daemons as root"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """Start with :meth:`start`, stop with :meth:`stop` (by PID; the folder is removed)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="slurm-test-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.conf = self.root / "slurm.conf"
        self.env: dict[str, str] = {}
        self.files: list[IO[bytes]] = []

    def _spawn(self, name: str, *argv: str) -> None:
        log = (self.root / f"{name}.out").open("wb")
        self.files.append(log)
        self.procs.append(
            subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        )

    def start(self) -> None:
        root = self.root
        root.chmod(0o700)
        munge = root / "munge"
        munge.mkdir(mode=0o700)
        key = munge / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        sock = munge / "munge.socket"
        hosts = root / "hosts"
        hosts.write_text(
            "".join(f"{ip} {name}\n::ffff:{ip} {name}\n" for name, ip in NODES.items())
        )
        for d in ("state", "spool", "log"):
            (root / d).mkdir()
        ports = [free_port() for _ in range(len(NODES) + 1)]
        lines = [
            "ClusterName=mccompile-test",
            "SlurmctldHost=localhost(127.0.0.1)",
            f"SlurmctldPort={ports[0]}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={sock}",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}/%n",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'spool'}/slurmd-%n.pid",
            f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'log'}/slurmd-%n.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SchedulerType=sched/backfill",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "SlurmdTimeout=60",
            "InactiveLimit=0",
            "KillWait=10",
            "MinJobAge=600",
        ]
        cpus = os.cpu_count() or 1
        for (name, ip), port in zip(NODES.items(), ports[1:], strict=True):
            lines.append(
                f"NodeName={name} NodeAddr={ip} NodeHostname={name} Port={port}"
                f" CPUs={cpus} State=UNKNOWN"
            )
        lines.append(
            f"PartitionName={PARTITION} Nodes={','.join(NODES)} Default=YES"
            " MaxTime=INFINITE State=UP"
        )
        self.conf.write_text("\n".join(lines) + "\n")
        for name in NODES:
            (root / "spool" / name).mkdir()
        self.env = {
            **os.environ,
            "SLURM_CONF": str(self.conf),
            "NSS_WRAPPER_HOSTS": str(hosts),
            "LD_PRELOAD": str(nss_wrapper()),
        }
        self.env.pop("NUM_PROCESSES", None)
        self._spawn(
            "munged",
            "munged",
            "--foreground",
            "--force",
            f"--key-file={key}",
            f"--socket={sock}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--seed-file={munge / 'munged.seed'}",
            f"--log-file={munge / 'munged.log'}",
        )
        self._wait(sock.exists, "munged")
        self._spawn("slurmctld", "slurmctld", "-D", "-i", "-f", str(self.conf))
        for name in NODES:
            self._spawn(f"slurmd-{name}", "slurmd", "-D", "-N", name, "-f", str(self.conf))
        self._wait(self._nodes_idle, "the nodes to be idle")

    def _nodes_idle(self) -> bool:
        result = self.run("sinfo", "-h", "-N", "-o", "%N %t", check=False)
        states = dict(line.split() for line in result.stdout.splitlines() if line.strip())
        return all(states.get(name) == "idle" for name in NODES)

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a Slurm test daemon exited ({proc.args}):\n{self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}:\n{self.logs()}")
            time.sleep(0.3)

    def run(
        self,
        *argv: str,
        check: bool = True,
        cwd: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """A Slurm command against this cluster (``extra_env`` reaches the job too)."""
        return subprocess.run(
            argv,
            env={**self.env, **(extra_env or {})},
            cwd=cwd,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def logs(self) -> str:
        parts = []
        for path in sorted(self.root.rglob("*.log")) + sorted(self.root.glob("*.out")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for log in self.files:
            log.close()
        shutil.rmtree(self.root, ignore_errors=True)
