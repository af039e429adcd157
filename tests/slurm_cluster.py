"""A single-node SLURM cluster on localhost for the tests: ``munged``, ``slurmctld`` and ``slurmd`` started from
Debian's ``munge`` and ``slurm-wlm`` packages with a minimal ``slurm.conf`` in a temporary folder.

Everything the daemons write (key, socket, state, spool, logs, pid files) stays in that folder; the ports are
free ones picked at start, never SLURM's defaults, so a real cluster on the machine is left alone.
:func:`start_cluster` returns a :class:`Cluster` whose :meth:`Cluster.stop` ends exactly the daemons it
started, by process id; where the cluster cannot start, :class:`ClusterUnavailable` says why (the
``slurm_cluster`` fixture turns that into a skip with the reason).

Accounting storage is off (``sacct`` answers "accounting storage is disabled"): job states come from
``squeue``, which is how :mod:`protolab.runner.slurm` polls anyway.

Run ``python -m tests.slurm_cluster`` to start one by hand: it prints the ``SLURM_CONF`` to export and
stops the daemons on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "srun", "sinfo")
START_TIMEOUT_S = 60
DEBIAN_PACKAGES = "slurm-wlm munge"


class ClusterUnavailable(RuntimeError):
    """The cluster could not start here; the message says what is missing or which daemon failed and why."""


@dataclass
class Cluster:
    """A running single-node cluster: its folder, ``slurm.conf``, node name and the daemons it started."""

    directory: Path
    conf: Path
    node: str
    cpus: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def environment(self) -> dict[str, str]:
        """What a client (``sbatch``, ``squeue``, the runner) needs to reach this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """A SLURM client command against this cluster."""
        return subprocess.run(command, env={**os.environ, **self.environment}, capture_output=True, text=True,
                              timeout=timeout)

    def queue(self) -> dict[str, str]:
        """Job id → state of every job ``squeue`` lists (pending, running, completing)."""
        listed = self.run("squeue", "--noheader", "--format=%i|%T").stdout.split()
        return dict(line.split("|", 1) for line in listed)

    def stop(self) -> None:
        """Cancel the jobs still in this cluster's queue (their processes would outlive slurmd), then end the
        daemons it started, by their process ids: slurmd first, munged last."""
        if all(self.processes.get(name) and self.processes[name].poll() is None for name in ("slurmctld", "slurmd")):
            try:
                left = list(self.queue())
                if left:
                    self.run("scancel", *left)
                    deadline = time.monotonic() + 30
                    while self.queue() and time.monotonic() < deadline:
                        time.sleep(0.5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def log_tail(self, name: str, lines: int = 5) -> str:
        path = self.directory / "log" / f"{name}.log"
        text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        return " | ".join(text[-lines:]) or f"(no {path.name})"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterUnavailable("cannot read MemTotal from /proc/meminfo")


def slurm_conf(directory: Path, *, node: str, cpus: int, memory_mb: int, ports: tuple[int, int],
               munge_socket: Path) -> str:
    """A minimal ``slurm.conf`` for one node, everything under ``directory``, accounting off."""
    controller_port, node_port = ports
    user = "root" if os.geteuid() == 0 else os.environ.get("USER") or Path.home().name
    return "\n".join([
        "ClusterName=protolab-test",
        f"SlurmctldHost={node}(127.0.0.1)",
        f"SlurmctldPort={controller_port}",
        f"SlurmdPort={node_port}",
        f"SlurmUser={user}",
        f"SlurmdUser={user}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={munge_socket}",
        f"StateSaveLocation={directory / 'state'}",
        f"SlurmdSpoolDir={directory / 'spool'}",
        f"SlurmctldPidFile={directory / 'run' / 'slurmctld.pid'}",
        f"SlurmdPidFile={directory / 'run' / 'slurmd.pid'}",
        f"SlurmctldLogFile={directory / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={directory / 'log' / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU",
        "MpiDefault=none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "ReturnToService=2",
        "KillWait=5",
        "MinJobAge=600",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=60",
        "SchedulerType=sched/builtin",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
        f"PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


def start_cluster(directory: Path | None = None) -> Cluster:
    """Start ``munged``, ``slurmctld`` and ``slurmd`` under ``directory`` and wait until the node is idle.

    Raises :class:`ClusterUnavailable` (after stopping whatever it started) when a program is missing or a
    daemon does not come up within :data:`START_TIMEOUT_S` seconds; the message names it and quotes its log.
    """
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        raise ClusterUnavailable(f"{', '.join(missing)} not found (Debian: apt-get install {DEBIAN_PACKAGES})")
    directory = Path(directory or tempfile.mkdtemp(prefix="protolab-slurm-")).resolve()
    for sub in ("state", "spool", "run", "log", "munge"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(directory / "munge", 0o700)
    node, cpus = socket.gethostname().split(".")[0], os.cpu_count() or 1
    munge_socket = directory / "munge" / "munge.socket"
    conf = directory / "slurm.conf"
    conf.write_text(slurm_conf(directory, node=node, cpus=cpus, memory_mb=_memory_mb(),
                               ports=(_free_port(), _free_port()), munge_socket=munge_socket))
    cluster = Cluster(directory, conf, node, cpus)
    try:
        key = directory / "munge" / "munge.key"
        created = subprocess.run(["mungekey", "--create", f"--keyfile={key}"], capture_output=True, text=True)
        if created.returncode != 0:
            raise ClusterUnavailable(f"mungekey could not create a key: {created.stderr.strip()}")
        _start(cluster, "munged", ["munged", "--foreground", "--force", f"--socket={munge_socket}",
                                   f"--key-file={key}", f"--pid-file={directory / 'run' / 'munged.pid'}",
                                   f"--log-file={directory / 'log' / 'munged.log'}",
                                   f"--seed-file={directory / 'munge' / 'munged.seed'}"])
        _wait(cluster, "munged", munge_socket.exists)
        _start(cluster, "slurmctld", ["slurmctld", "-D", "-i", "-f", str(conf)])
        _wait(cluster, "slurmctld", lambda: cluster.run("scontrol", "ping").stdout.count("UP") >= 1)
        _start(cluster, "slurmd", ["slurmd", "-D", "-f", str(conf)])
        _wait(cluster, "slurmd", lambda: cluster.run("sinfo", "--noheader", "--format=%T").stdout.strip()
              in {"idle", "mixed", "allocated"})
        _probe(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _probe(cluster: Cluster) -> None:
    """Run one job to the end (a daemon may start and still be unable to run jobs, e.g. without root)."""
    try:
        probe = cluster.run("sbatch", "--wait", "--quiet", f"--output={cluster.directory / 'log' / 'probe.out'}",
                            "--wrap", "true", timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ClusterUnavailable(f"a probe job did not end within {START_TIMEOUT_S} s: "
                                 f"{cluster.log_tail('slurmd')}") from None
    if probe.returncode != 0:
        raise ClusterUnavailable(f"a probe job failed (sbatch --wait exited {probe.returncode}: "
                                 f"{probe.stderr.strip() or probe.stdout.strip()}): {cluster.log_tail('slurmd')}")


def _start(cluster: Cluster, name: str, command: list[str]) -> None:
    log = open(cluster.directory / "log" / f"{name}.out", "w")
    cluster.processes[name] = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                               env={**os.environ, **cluster.environment}, start_new_session=True)
    log.close()


def _wait(cluster: Cluster, name: str, ready) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    process = cluster.processes[name]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (cluster.directory / "log" / f"{name}.out").read_text(errors="replace").strip()
            raise ClusterUnavailable(f"{name} exited with code {process.returncode}: "
                                     f"{output.splitlines()[-1] if output else cluster.log_tail(name)}")
        try:
            if ready():
                return
        except (OSError, subprocess.TimeoutExpired):
            pass
        time.sleep(0.3)
    raise ClusterUnavailable(f"{name} did not become ready within {START_TIMEOUT_S} s: {cluster.log_tail(name)}")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One localhost cluster for the whole session (``SLURM_CONF`` exported while it runs), or a skip saying
    why it cannot start here."""
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    except ClusterUnavailable as error:
        pytest.skip(f"no localhost SLURM cluster: {error}")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        cluster.stop()
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    for stop_signal in (signal.SIGINT, signal.SIGTERM):  # SIGINT is ignored in a background job: take SIGTERM too
        signal.signal(stop_signal, _interrupt)
    running = start_cluster()
    print(f"export SLURM_CONF={running.conf}  # daemons: "
          + ", ".join(f"{name} {process.pid}" for name, process in running.processes.items()), flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
