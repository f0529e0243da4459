"""What scripts/chaos builds on: Valkey nodes behind `slotwarden run` processes on loopback, formed
into a cluster the way Sources/LocalCluster forms one (each node announces its sidecar's port, the
bus stays direct, replicas replicate through their primary's sidecar); a cluster-aware RESP client
that follows -MOVED/-ASK between sidecars; writers that remember every acknowledged write and read
them back; the admin API over HTTP; and an RSS sampler.

scripts/chaos puts this directory on sys.path and imports it; it is not a program of its own.
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from benchlib import STARTED, read_reply, resp_command, start_process, stop_process, wait_for_port

# Sidecar admin port = listen port + this, on every sidecar: the `peers:` rule's default offset is
# then the same everywhere, so a replica's sidecar finds any primary's sidecar admin API.
ADMIN_OFFSET = 700


# ----------------------------------------------------------------------------------------------
# Ports


class Ports:
    """Free loopback ports below the kernel's ephemeral range (32768–60999 by default), so that
    the 12,000 client connections of a scenario never take a server's port. A node's bus port is
    its port + 10000 (Valkey refuses cluster ports above 55535) and a sidecar's admin port is its
    port + ADMIN_OFFSET; every port handed out is remembered so two servers never share one."""

    def __init__(self) -> None:
        self.taken: set[int] = set()

    def _free(self, port: int) -> bool:
        if port in self.taken:
            return False
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                return False

    def pair(self, offset: int, low: int = 20_000, high: int = 22_000) -> int:
        for _ in range(500):
            port = random.randint(low, high)
            if self._free(port) and self._free(port + offset):
                self.taken.update((port, port + offset))
                return port
        raise RuntimeError(f"no free port pair (p, p+{offset}) in {low}-{high}")


# ----------------------------------------------------------------------------------------------
# RESP


class Conn:
    """One blocking RESP connection. Error replies come back as RuntimeError values (benchlib's
    read_reply); a closed connection or a timeout raises."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def call(self, *args: bytes | str) -> object:
        return self.pipeline([args])[0]

    def pipeline(self, commands: list) -> list:
        self.sock.sendall(b"".join(resp_command(*c) for c in commands))
        return [read_reply(self.file) for _ in commands]

    def close(self) -> None:
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass


def call(port: int, *args: bytes | str, timeout: float = 5.0) -> object:
    c = Conn(port, timeout)
    try:
        return c.call(*args)
    finally:
        c.close()


def info_fields(port: int, section: str) -> dict[str, str]:
    reply = call(port, "INFO", section)
    if isinstance(reply, Exception):
        raise RuntimeError(f"INFO {section} on :{port}: {reply}")
    return dict(line.split(":", 1) for line in reply.decode().splitlines() if ":" in line)


def crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: bytes) -> int:
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return crc16(key) % 16384


def describe(error: object) -> str:
    """One client error, as the client saw it, with numbers folded so that messages group."""
    if isinstance(error, RuntimeError) and not str(error).startswith("connection closed"):
        text = "-" + str(error)
    elif isinstance(error, socket.timeout):
        text = "timeout (5 s) waiting for a reply"
    elif isinstance(error, ConnectionRefusedError):
        text = "connect: connection refused"
    elif isinstance(error, (ConnectionResetError, BrokenPipeError)):
        text = "connection reset by peer"
    elif isinstance(error, RuntimeError):
        text = "connection closed by slotwarden"
    else:
        text = f"{type(error).__name__}: {error}"
    text = re.sub(r"\d+", "N", text)
    return text[:110]


class Router:
    """Sends one command or a pipeline of commands on one slot to the node that owns it, through
    the sidecars: the slot map comes from CLUSTER SLOTS (sidecar ports) and -MOVED/-ASK replies
    update it. One connection per sidecar port, reopened after an error."""

    def __init__(self, entry_port: int, cluster: bool) -> None:
        self.entry = entry_port
        self.cluster = cluster
        self.slots: dict[int, int] = {}
        self.conns: dict[int, Conn] = {}

    def _conn(self, port: int) -> Conn:
        c = self.conns.get(port)
        if c is None:
            c = self.conns[port] = Conn(port)
        return c

    def drop(self, port: int | None = None) -> None:
        for p in [port] if port is not None else list(self.conns):
            c = self.conns.pop(p, None)
            if c is not None:
                c.close()

    def execute(self, commands: list, key: bytes) -> list:
        port = self.slots.get(key_slot(key), self.entry) if self.cluster else self.entry
        asking = False
        for _ in range(6):
            try:
                c = self._conn(port)
                sent = ([("ASKING",)] if asking else []) + commands
                replies = c.pipeline(sent)[1 if asking else 0:]
            except (OSError, RuntimeError):
                self.drop(port)
                raise
            redirect = next((r for r in replies if isinstance(r, RuntimeError)
                             and str(r).split(" ", 1)[0] in ("MOVED", "ASK")), None)
            if redirect is None or not self.cluster:
                return replies
            kind, slot, address = str(redirect).split(" ")
            port = int(address.rsplit(":", 1)[1])
            asking = kind == "ASK"
            if kind == "MOVED":
                self.slots[int(slot)] = port
        raise RuntimeError("too many redirects")

    def close(self) -> None:
        self.drop()


# ----------------------------------------------------------------------------------------------
# Writers and the record of acknowledged writes


@dataclass
class Record:
    """Every acknowledged write of the writers, and every error a client got."""
    sets: dict[bytes, bytes] = field(default_factory=dict)
    padded: dict[bytes, int] = field(default_factory=dict)  # SET keys whose value has padding(n)
    counters: dict[bytes, int] = field(default_factory=dict)
    lists: dict[bytes, set[bytes]] = field(default_factory=lambda: collections.defaultdict(set))
    errors: collections.Counter = field(default_factory=collections.Counter)
    acknowledged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, e: object) -> None:
        with self.lock:
            self.errors[describe(e)] += 1


def padding(n: int) -> bytes:
    """What a SET's value carries after its unique prefix: nothing, 200 B or 4 KiB by turns."""
    return b"x" * (0, 0, 200, 4000)[n % 4]


class Writer(threading.Thread):
    """One client thread: SET of unique keys to unique values, INCR of a few counters, RPUSH of
    unique elements, a pipeline of 8 SETs, and (`transactions`) MULTI/SET/INCR/EXEC, each op on
    one hash tag. A write is acknowledged only by its reply (+OK, an integer, EXEC's array); a
    write that got an error or no reply is not, and the error is counted."""

    def __init__(self, wid: int, entry_port: int, record: Record, stop: threading.Event, *,
                 cluster: bool = False, transactions: bool = False, rate: float = 0) -> None:
        super().__init__(daemon=True, name=f"writer-{wid}")
        self.wid, self.record, self.stop_event = wid, record, stop
        self.router = Router(entry_port, cluster)
        self.transactions = transactions
        self.interval = 1 / rate if rate else 0
        self.ops = 0

    def run(self) -> None:
        n = 0
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            n += 1
            errors = sum(self.record.errors.values())
            try:
                self.one(n)
            except (OSError, RuntimeError) as e:
                self.record.error(e)
            if sum(self.record.errors.values()) != errors:  # back off, as a client would
                self.stop_event.wait(0.05)
            if self.interval:
                next_at += self.interval
                self.stop_event.wait(max(0.0, next_at - time.monotonic()))
        self.router.close()

    def one(self, n: int) -> None:
        w, r = self.wid, self.record
        tag = b"{w%d:%d}" % (w, n % 997)
        kind = n % (6 if self.transactions else 5)
        if kind in (0, 1):
            key, value = tag + b"s%d" % n, b"v%d:%d:" % (w, n)
            replies = self.router.execute([("SET", key, value + padding(n)), ("GET", key)], key)
            if replies[0] == b"OK":
                with r.lock:
                    r.sets[key] = value
                    if n % 4 >= 2:
                        r.padded[key] = n
                    r.acknowledged += 1
            else:
                r.error(replies[0])
        elif kind == 2:
            key = b"{w%d:c}c%d" % (w, n % 8)
            reply, = self.router.execute([("INCR", key)], key)
            if isinstance(reply, bytes):
                with r.lock:
                    r.counters[key] = max(r.counters.get(key, 0), int(reply))
                    r.acknowledged += 1
            else:
                r.error(reply)
        elif kind == 3:
            key, element = b"{w%d:l}l%d" % (w, n % 4), b"e%d" % n
            reply, = self.router.execute([("RPUSH", key, element)], key)
            if isinstance(reply, bytes):
                with r.lock:
                    r.lists[key].add(element)
                    r.acknowledged += 1
            else:
                r.error(reply)
        elif kind == 4:
            pairs = [(tag + b"p%d:%d" % (n, i), b"pv%d:%d:%d" % (w, n, i)) for i in range(8)]
            replies = self.router.execute([("SET", k, v) for k, v in pairs], pairs[0][0])
            with r.lock:
                for (k, v), reply in zip(pairs, replies):
                    if reply == b"OK":
                        r.sets[k] = v
                        r.acknowledged += 1
                    else:
                        r.errors[describe(reply)] += 1
        else:
            key, counter = tag + b"m%d" % n, tag + b"mc"
            value = b"t%d:%d" % (w, n)
            replies = self.router.execute(
                [("MULTI",), ("SET", key, value), ("INCR", counter), ("EXEC",)], key)
            result = replies[-1]
            if isinstance(result, list) and len(result) == 2 and result[0] == b"OK":
                with r.lock:
                    r.sets[key] = value
                    r.counters[counter] = max(r.counters.get(counter, 0), int(result[1]))
                    r.acknowledged += 2
            else:
                r.error(result if isinstance(result, Exception) else
                        next((x for x in replies if isinstance(x, Exception)),
                             RuntimeError(f"EXEC answered {result!r}")))
        self.ops += 1


def start_writers(count: int, entry_port: int, record: Record, stop: threading.Event,
                  **options) -> list[Writer]:
    writers = [Writer(i, entry_port, record, stop, **options) for i in range(count)]
    for w in writers:
        w.start()
    return writers


def stop_writers(writers: list[Writer], stop: threading.Event) -> None:
    stop.set()
    for w in writers:
        w.join(timeout=30)


def count_lost(record: Record, entry_port: int, cluster: bool) -> tuple[int, list[str]]:
    """Reads every acknowledged write back (through the sidecars, following redirects): a SET's
    key must hold its value, a counter at least its highest acknowledged value, a list every
    acknowledged element. Returns the number lost and a few examples."""
    router = Router(entry_port, cluster)
    lost, examples = 0, []

    def read(commands: list, key: bytes) -> list:
        for attempt in range(20):
            try:
                replies = router.execute(commands, key)
                if not any(isinstance(x, Exception) for x in replies):
                    return replies
            except (OSError, RuntimeError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"cannot read {key!r} back")

    try:
        by_slot: dict[int, list] = collections.defaultdict(list)
        for k, v in record.sets.items():
            by_slot[key_slot(k)].append((k, v))
        for pairs in by_slot.values():
            for i in range(0, len(pairs), 200):
                group = pairs[i:i + 200]
                values = read([("GET", k) for k, _ in group], group[0][0])
                for (k, v), got in zip(group, values):
                    if got != v + padding(record.padded.get(k, 0)):
                        lost += 1
                        if len(examples) < 5:
                            examples.append(f"{k!r}: {(got or b'')[:40]!r} != {v!r}")
        for k, acked in record.counters.items():
            got, = read([("GET", k)], k)
            if got is None or int(got) < acked:
                lost += 1
                if len(examples) < 5:
                    examples.append(f"{k!r}: {got!r} < {acked}")
        for k, elements in record.lists.items():
            got, = read([("LRANGE", k, "0", "-1")], k)
            missing = elements - set(got or [])
            lost += len(missing)
            if missing and len(examples) < 5:
                examples.append(f"{k!r}: {len(missing)} elements missing")
    finally:
        router.close()
    return lost, examples


# ----------------------------------------------------------------------------------------------
# Nodes and sidecars


@dataclass
class Member:
    """One valkey-server and the `slotwarden run` in front of it."""
    name: str
    shard: int
    port: int
    sidecar_port: int
    directory: str
    node_args: list[str]
    sidecar_config: str
    node: subprocess.Popen | None = None
    sidecar: subprocess.Popen | None = None
    node_id: str = ""

    @property
    def bus_port(self) -> int:
        return self.port + 10_000

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.sidecar_port + ADMIN_OFFSET}"

    def role(self) -> str:
        reply = call(self.port, "ROLE")
        return reply[0].decode() if isinstance(reply, list) else "?"


class Cluster:
    """`shards` × (1 + `replicas`) nodes, each behind its own `slotwarden run --config FILE`,
    formed as Sources/LocalCluster forms its cluster. Every process is ended by its pid in
    `stop()` (the sidecars by SIGTERM), also when forming fails half-way."""

    def __init__(self, valkey: str, binary: str, workdir: str, *, shards: int = 1, replicas: int = 0,
                 aof: bool = False, maxclients: int | None = None, max_clients: int | None = None,
                 node_options: tuple[str, ...] = (), log_level: str = "warning") -> None:
        self.valkey, self.binary, self.workdir = valkey, binary, workdir
        self.ports = Ports()
        self.members: list[Member] = []
        names = "abcdefghijklmnopqrstuvwxyz"
        for shard in range(shards):
            for _ in range(1 + replicas):
                name = names[len(self.members)]
                port = self.ports.pair(10_000)
                sidecar_port = self.ports.pair(ADMIN_OFFSET, 23_000, 26_000)
                directory = os.path.join(workdir, name)
                os.makedirs(directory, exist_ok=True)
                args = [valkey, "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "no",
                        "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                        "--cluster-slot-stats-enabled", "yes", "--cluster-node-timeout", "5000",
                        "--cluster-announce-port", str(sidecar_port),
                        "--cluster-announce-bus-port", str(port + 10_000),
                        "--repl-diskless-sync-delay", "0", "--dir", directory,
                        "--logfile", "valkey.log", "--save", ""]
                args += ["--appendonly", "yes", "--appendfsync", "always"] if aof else ["--appendonly", "no"]
                if maxclients:
                    args += ["--maxclients", str(maxclients)]
                args += node_options
                config = os.path.join(directory, "slotwarden.yaml")
                lines = [f'listen: "127.0.0.1:{sidecar_port}"', f'node: "127.0.0.1:{port}"']
                if max_clients:
                    lines.append(f"max_clients: {max_clients}")
                lines += ["logging:", f"  level: {log_level}",
                          "admin:", f'  listen: "127.0.0.1:{sidecar_port + ADMIN_OFFSET}"',
                          "fence:", f'  epoch_log: "{os.path.join(directory, "epochs.jsonl")}"']
                with open(config, "w") as f:
                    f.write("\n".join(lines) + "\n")
                self.members.append(Member(name, shard, port, sidecar_port, directory, args, config))
        self.shards = [[m for m in self.members if m.shard == s] for s in range(shards)]

    # processes

    def start_node(self, m: Member) -> None:
        m.node = start_process(f"valkey-{m.name}", m.node_args, os.path.join(m.directory, "valkey.out"))
        deadline = time.monotonic() + 30
        while True:
            if m.node.poll() is not None:
                raise RuntimeError(f"valkey {m.name} exited with {m.node.returncode}; see {m.directory}")
            try:
                if call(m.port, "PING", timeout=1) == b"PONG":
                    return
            except (OSError, RuntimeError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"valkey {m.name} does not answer PING on :{m.port}")
            time.sleep(0.05)

    def start_sidecar(self, m: Member) -> None:
        m.sidecar = start_process(f"slotwarden-{m.name}", [self.binary, "run", "--config", m.sidecar_config],
                                  os.path.join(m.directory, "slotwarden.log"))
        wait_for_port(m.sidecar_port, m.sidecar, f"slotwarden {m.name}")
        wait_for_port(m.sidecar_port + ADMIN_OFFSET, m.sidecar, f"slotwarden {m.name} admin")

    def kill_node(self, m: Member) -> None:
        """SIGKILL, and forget the process: a restart starts a new one."""
        m.node.kill()
        m.node.wait()
        STARTED[:] = [(n, p) for n, p in STARTED if p is not m.node]

    def start(self) -> None:
        for m in self.members:
            self.start_node(m)
            m.node_id = call(m.port, "CLUSTER", "MYID").decode()
        for m in self.members:
            self.start_sidecar(m)
        self.form()

    def stop(self) -> None:
        for m in self.members:
            for proc in (m.sidecar, m.node):
                if proc is not None:
                    stop_process(proc, 10)

    # formation

    def slot_ranges(self) -> list[tuple[int, int]]:
        size, extra = divmod(16384, len(self.shards))
        ranges, start = [], 0
        for s in range(len(self.shards)):
            count = size + (1 if s < extra else 0)
            ranges.append((start, start + count - 1))
            start += count
        return ranges

    def form(self) -> None:
        for shard, (lo, hi) in zip(self.shards, self.slot_ranges()):
            expect_ok(call(shard[0].port, "CLUSTER", "ADDSLOTSRANGE", str(lo), str(hi)), "ADDSLOTSRANGE")
        first = self.members[0]
        for m in self.members[1:]:
            expect_ok(call(m.port, "CLUSTER", "MEET", "127.0.0.1", str(first.port), str(first.bus_port)), "MEET")
        for shard in self.shards:
            for replica in shard[1:]:
                wait_until(f"{replica.name} sees {shard[0].name} as a primary",
                           lambda: self.nodes_view(replica).get(shard[0].node_id, {}).get("primary"), 20)
                expect_ok(call(replica.port, "CLUSTER", "REPLICATE", shard[0].node_id), "REPLICATE")
        self.wait_converged(30)

    def nodes_view(self, m: Member) -> dict[str, dict]:
        reply = call(m.port, "CLUSTER", "NODES")
        view = {}
        for line in reply.decode().splitlines():
            parts = line.split()
            flags = parts[2].split(",")
            view[parts[0]] = {"port": int(parts[1].split("@")[0].rsplit(":", 1)[1]),
                              "primary": "master" in flags, "healthy": not ({"fail", "fail?", "handshake",
                                                                           "noaddr"} & set(flags)),
                              "of": None if parts[3] == "-" else parts[3], "slots": parts[8:]}
        return view

    def check_converged(self) -> str | None:
        """None when every node says cluster_state:ok, lists every member healthy at its sidecar
        port, agrees on roles and slots, no migration is open, and every replica's link runs up
        through its primary's sidecar; else what is not so yet."""
        agreed = None
        by_id = {m.node_id: m for m in self.members}
        for m in self.members:
            state = call(m.port, "CLUSTER", "INFO").decode()
            if "cluster_state:ok" not in state:
                return f"{m.name}: cluster_state not ok"
            view = self.nodes_view(m)
            if len(view) != len(self.members):
                return f"{m.name} knows {len(view)} nodes"
            for nid, entry in view.items():
                other = by_id.get(nid)
                if other is None or not entry["healthy"] or entry["port"] != other.sidecar_port:
                    return f"{m.name} sees {nid[:8]} as {entry}"
                if any(s.startswith("[") for s in entry["slots"]):
                    return f"{nid[:8]} has an open migration"
            summary = {nid: (e["primary"], e["of"], tuple(e["slots"])) for nid, e in view.items()}
            if agreed is not None and summary != agreed:
                return f"{m.name} disagrees with {self.members[0].name}"
            agreed = summary
        for nid, (primary, of, _) in agreed.items():
            if primary:
                continue
            replica, upstream = by_id[nid], by_id.get(of)
            if upstream is None:
                return f"{replica.name} replicates no member"
            repl = info_fields(replica.port, "replication")
            if repl.get("master_link_status") != "up" or repl.get("master_port") != str(upstream.sidecar_port):
                return f"{replica.name}: link {repl.get('master_link_status')} via :{repl.get('master_port')}"
        return None

    def wait_converged(self, timeout: float) -> None:
        last = ["?"]

        def check():
            try:
                last[0] = self.check_converged()
            except (OSError, RuntimeError) as e:
                last[0] = str(e)
            return last[0] is None
        if not poll(check, timeout):
            raise RuntimeError(f"the cluster did not converge within {timeout:.0f}s: {last[0]}")

    def primaries(self) -> list[Member]:
        result = []
        for shard in self.shards:
            p = [m for m in shard if m.role() == "master"]
            if len(p) != 1:
                raise RuntimeError(f"shard {shard[0].shard} has {len(p)} primaries")
            result.append(p[0])
        return result

    def owner(self, slot: int) -> Member:
        view = self.nodes_view(self.members[0])
        for nid, entry in view.items():
            for r in entry["slots"]:
                lo, _, hi = r.partition("-")
                if not r.startswith("[") and int(lo) <= slot <= int(hi or lo):
                    return next(m for m in self.members if m.node_id == nid)
        raise RuntimeError(f"no owner of slot {slot}")


def expect_ok(reply: object, what: str) -> None:
    if reply != b"OK":
        raise RuntimeError(f"{what}: {reply!r}")


def poll(check, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def wait_until(what: str, check, timeout: float) -> None:
    def safe():
        try:
            return check()
        except (OSError, RuntimeError):
            return False
    if not poll(safe, timeout):
        raise RuntimeError(f"timed out after {timeout:.0f}s waiting until {what}")


# ----------------------------------------------------------------------------------------------
# The admin API and memory


def admin_get(m: Member, path: str, timeout: float = 30) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(m.admin + path, timeout=timeout) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def metric(m: Member, name: str) -> float | None:
    _, text = admin_get(m, "/metrics")
    for line in str(text).splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def reconcile(m: Member, timeout: float = 20) -> tuple[str, str]:
    """A fenced reconciliation, repeated until it says match or `timeout` passes (a replica link
    still catching up after a full sync is reported as `replication` behind until it has). Returns
    the verdict and, for a difference, the slots and reasons."""
    deadline = time.monotonic() + timeout
    while True:
        status, report = admin_get(m, "/v1/reconcile?mode=fenced")
        if status == 200 and isinstance(report, dict) and report.get("verdict") == "match":
            return "match", ""
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if not isinstance(report, dict) or "summary" not in report:
        return "error", f"HTTP {status}: {str(report)[:200]}"
    s = report["summary"]
    slots = [x for x in report.get("slots", []) if x.get("status") != "match"]
    detail = (f"{s['slots_compared']} compared, {s['node_higher']} node_higher, "
              f"{s['ledger_higher']} ledger_higher, {s['unexplained']} unexplained; "
              f"in {s['bytes_in_difference']:+d} out {s['bytes_out_difference']:+d}; "
              + "; ".join(f"slot {x['slot']} {x['status']} in {x['difference']['bytes_in']:+d} "
                          f"out {x['difference']['bytes_out']:+d} {','.join(x['reasons']) or '-'}"
                          for x in slots[:4]))
    behind = report.get("replication", {}).get("behind")
    if behind:
        detail += f"; replication behind {behind}"
    return report.get("verdict", "?"), detail


def epochs_summary(m: Member) -> str:
    """The epochs after the first, by what opened them, and the slot cuts: the cuts the sidecar
    made, which a report names next to its verdict."""
    status, epochs = admin_get(m, "/v1/epochs")
    if status != 200:
        return f"epochs: HTTP {status}"
    records = epochs["closed"] + [epochs["open"]]
    opened = collections.Counter(e["opened_by"] for e in records if e["opened_by"] != "startup")
    _, cuts = admin_get(m, "/v1/cuts?after=0&limit=10000")
    n_cuts = len(cuts.get("cuts", [])) if isinstance(cuts, dict) else 0
    parts = [f"epoch {epochs['open']['id']}"]
    if opened:
        parts.append("opened by " + ", ".join(f"{k} ×{v}" for k, v in sorted(opened.items())))
    if n_cuts:
        parts.append(f"{n_cuts} slot cuts")
    return " ".join(parts)


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class RssSampler(threading.Thread):
    """VmRSS of some processes every `interval` seconds; keeps the maximum per pid and, with
    `series`, every sample as (seconds since start, name, MiB)."""

    def __init__(self, procs: dict[str, subprocess.Popen], interval: float, series: bool = False) -> None:
        super().__init__(daemon=True, name="rss")
        self.procs, self.interval, self.keep = procs, interval, series
        self.max: dict[str, float] = collections.defaultdict(float)
        self.samples: list[tuple[float, str, float]] = []
        self.stop_event = threading.Event()
        self.start_time = time.monotonic()

    def sample(self) -> None:
        t = time.monotonic() - self.start_time
        for name, proc in self.procs.items():
            value = rss_mib(proc.pid)
            if value == value:
                self.max[name] = max(self.max[name], value)
                if self.keep:
                    self.samples.append((t, name, value))

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        self.join()
        self.sample()
