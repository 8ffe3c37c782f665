"""What the tests that start a real server share: a free loopback port, and a subprocess that is waited for until it
answers and always stopped afterwards. Servers bind to 127.0.0.1 only."""
import socket, subprocess, time
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(cmd, ready, log: Path, timeout: float = 60, retry_on=(OSError,), **popen):
    """Run `cmd` with its output in `log` until `ready()` is true (it may raise `retry_on` meanwhile; bounded by
    `timeout`); yield the process; then stop it."""
    with open(log, "w") as out:
        proc = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT, **popen)
        try:
            deadline = time.monotonic() + timeout
            while True:
                assert proc.poll() is None, f"{cmd[2]} exited ({proc.returncode}):\n{log.read_text()}"
                assert time.monotonic() < deadline, f"{cmd[2]} did not answer in {timeout} s:\n{log.read_text()}"
                try:
                    if ready(): break
                except retry_on: pass
                time.sleep(0.2)
            yield proc
        finally:
            proc.terminate()
            try: proc.wait(15)
            except subprocess.TimeoutExpired: proc.kill(); proc.wait()
