"""Start and stop a private JACK dummy server (no sound card) for tests that need real MIDI ports.

Each server gets a unique name (`unique_server_name()`); clients pick it with the environment
variable JACK_DEFAULT_SERVER. The server is stopped by its PID (SIGTERM, then SIGKILL), never by
process name, and the files jackd2 leaves in /dev/shm under that unique name are removed.

Scheduling: a server runs with realtime scheduling where this process may use it (as JACK users
run it; its clients' process threads then are realtime too), and then in synchronous mode (-S);
else with neither. Without realtime, on a busy machine, a client's process thread that misses a
cycle loses the MIDI of that cycle: with two CPU hogs on the 2-core test machine 10 of 1731
messages between two clients were lost in 20 s (README, Figures, says the same of the live
benchmark). With realtime, cycles are still missed now and then on that (virtual) machine, 20
in a minute, and an end-to-end test lost 2 of 41 messages; in synchronous mode the server waits
for a late client instead, and nothing was lost. Synchronous mode is not used without realtime:
there the port of a killed client stays listed for the client timeout (5 s measured; 0.06-0.09 s
with realtime), unlike on users' servers, and the panel's rescue test depends on it going. Set
LIVEGEN_TEST_JACK_REALTIME=0 (or 1) to choose.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

NO_JACK_ENV = "LIVEGEN_NO_JACK"
REALTIME_ENV = "LIVEGEN_TEST_JACK_REALTIME"
_SHM = Path("/dev/shm")


class JackServerError(RuntimeError):
    """jackd could not be started."""


def jackd_path() -> str | None:
    return shutil.which("jackd")


@functools.cache
def realtime_permitted() -> bool:
    """Whether a process started from this one may use realtime scheduling (SCHED_FIFO), which
    needs a right (root, CAP_SYS_NICE or an rtprio limit) and a realtime budget in its cgroup;
    tried once in a child process, so this one's scheduling is left alone."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))"
    try:
        result = subprocess.run([sys.executable, "-c", probe], stdin=subprocess.DEVNULL,
                                capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def default_realtime() -> bool:
    """$LIVEGEN_TEST_JACK_REALTIME ("1" or "0") if set, else whether realtime is permitted."""
    chosen = os.environ.get(REALTIME_ENV)
    if chosen in ("0", "1"):
        return chosen == "1"
    return realtime_permitted()


def unique_server_name(prefix: str = "lgtest") -> str:
    """A server name no other test run uses. Kept short: jack_lsp 1.9.21 aborts (malloc
    assertion) on server names of 24 characters or more, while libjack clients cope."""
    return f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the test process dies, so no jackd outlives it."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


# jackd2's registry of running servers (/dev/shm/jack-shm-registry) has 8 slots, each a pid and a
# name, after a 24-byte header. A server that is killed (a crash, a test of one) keeps its slot,
# and jackd2 reclaims a dead server's slot only for a server of the same name; with unique names
# the slots fill up and jackd refuses to start ("Too many servers already active").
_REGISTRY = _SHM / "jack-shm-registry"
_SLOTS, _SLOT_AT, _SLOT_SIZE, _SLOT_NAME = 8, 24, 264, 257


def reclaim_stale_servers() -> None:
    """Free the registry slots of servers whose process is gone (a test's killed servers)."""
    try:
        with open(_REGISTRY, "r+b") as f:
            data = bytearray(f.read(_SLOT_AT + _SLOTS * _SLOT_SIZE))
            if data[:4] != b"KCAJ" or len(data) < _SLOT_AT + _SLOTS * _SLOT_SIZE:
                return
            changed = False
            for i in range(_SLOTS):
                at = _SLOT_AT + i * _SLOT_SIZE
                pid = int.from_bytes(data[at:at + 4], sys.byteorder, signed=True)
                if pid > 0 and not _alive(pid):
                    data[at:at + 4 + _SLOT_NAME] = bytes(4 + _SLOT_NAME)
                    changed = True
            if changed:
                f.seek(0)
                f.write(data)
    except OSError:
        return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JackServer:
    """One `jackd --realtime|--no-realtime -n NAME -d dummy` process (see `realtime`)."""

    def __init__(
        self,
        name: str | None = None,
        rate: int = 48000,
        period: int = 128,
        log_path: Path | None = None,
        realtime: bool | None = None,
        sync: bool | None = None,
    ) -> None:
        """`realtime`: run the server and its clients' process threads with realtime
        scheduling, as JACK users do; None (the default) does where this process may
        (`default_realtime`). `sync`: jackd's synchronous mode (-S), in which a starved client
        makes the cycle wait instead of losing MIDI; None (the default): with realtime only.
        The module docstring has the measurements. In either mode a message sent just after a
        connection was made may be lost (4 in 40 under the hog in -S mode), which
        conftest.JackTestClient.sync waits out."""
        self.name = name or unique_server_name()
        self.realtime = default_realtime() if realtime is None else realtime
        self.sync = self.realtime if sync is None else sync
        self.rate = rate
        self.period = period
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def start(self, timeout: float = 10.0) -> None:
        jackd = jackd_path()
        if jackd is None:
            raise JackServerError("jackd is not installed (Debian/Ubuntu: apt-get install jackd2)")
        if self.running:
            return
        reclaim_stale_servers()
        command = [
            jackd,
            "--realtime" if self.realtime else "--no-realtime",
            *(["-S"] if self.sync else []),
            "-n",
            self.name,
            "-d",
            "dummy",
            "-r",
            str(self.rate),
            "-p",
            str(self.period),
        ]
        env = dict(os.environ, JACK_NO_START_SERVER="1")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            if not isinstance(log, int):
                log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise JackServerError(
                    f"jackd -n {self.name} exited with status {self.process.returncode}:\n"
                    + self.log_tail()
                )
            if self.ready():
                return
            time.sleep(0.02)
        self.stop()
        raise JackServerError(
            f"jackd -n {self.name} was not ready after {timeout:.0f} s:\n" + self.log_tail()
        )

    def ready(self) -> bool:
        """Whether clients can connect: jackd2's socket accepts connections, or, where there is
        no such socket, `jack_lsp -s NAME` succeeds."""
        path = _SHM / f"jack_{self.name}_{os.getuid()}_0"
        if path.exists():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(str(path))
                except OSError:
                    return False
            return True
        jack_lsp = shutil.which("jack_lsp")
        if jack_lsp is None:
            return False
        env = dict(os.environ, JACK_NO_START_SERVER="1")
        result = subprocess.run(
            [jack_lsp, "-s", self.name],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=5,
        )
        return result.returncode == 0

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM by PID, SIGKILL after `timeout`; then remove this server's leftover files."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        self.process = None
        self.remove_leftovers()

    def kill(self) -> None:
        """SIGKILL by PID at once, as a crash would (leftover files stay until `stop`)."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(5)
        self.process = None

    def remove_leftovers(self) -> None:
        """Remove the sockets and semaphores jackd2 and its clients leave under this unique name
        when the server dies with clients still open (a clean stop removes its own)."""
        if not _SHM.is_dir():
            return
        uid = os.getuid()
        patterns = (f"jack_{self.name}_{uid}_*", f"jack_sem.{uid}_{self.name}_*")
        for pattern in patterns:
            for path in _SHM.glob(pattern):
                with contextlib.suppress(OSError):
                    path.unlink()

    def __enter__(self) -> JackServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
