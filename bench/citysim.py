"""Simulated boxes for bench/city.py: N real MQTT clients in one asyncio process, speaking
Shian's protocol as the edge agent does (retained status with a last will, heartbeats, QoS 1
event batches of up to 100, confirmations on cmd/ack, resending what is not confirmed, and
reconnecting with jittered exponential backoff).

Kitchens send a few violations an hour, stalls a ticket every one or two minutes. Driven by
lines on stdin; answers JSON lines on stdout:

    rate <x>        multiply every box's rate by x (0 stops, 5 is a morning rush)
    backlog <s>     queue at once the events of s seconds at the normal rate (an outage)
    mark            start a new latency sample (event made -> collector's confirmation)
    stats           {"connected", "generated", "unconfirmed", "latency_ms": [p50, p99, n],
                     "nodes": [boxes connected per broker], "watched": [boxes, back]}
    dump            {"seqs": {device: last seq}}
    latencies       {"latencies": [ms, ...]} of the current sample (to merge several processes)
    watch <i>       remember the boxes connected to broker i now; stats' "watched" then says
                    how many of them are connected again in a session begun since
    pending_before <t>   {"pending": unconfirmed events made at or before t (epoch seconds),
                    "examples": [[device, seq, age, connected, broker, since sent, queued], ...]}

    python bench/citysim.py --port 1883 --boxes 2000
    python bench/citysim.py --brokers 4001,4002,4003 --boxes 2500 --first 2500 --sub-qos 0

With --brokers (ports on 127.0.0.1, or mqtt://host:port), box n starts at broker n % k and,
when a session fails or drops, moves to the next in the order given (as the edge's
failover_urls). MQTT 3.1.1 always (a NATS cluster speaks nothing else).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared import topics
from shared.codec import batch_payload, envelope_json
from shared.ids import uuid7
from shared.models import Ack, OutboxStats, Status
from shared.signing import new_ticket_id

KITCHEN_PER_S = 4 / 3600  # violations
STALL_PER_S = 1 / 90  # tickets, market hours
PUBLISH_TIMEOUT_S = 30  # a PUBACK not back by then ends the session (aiomqtt's timeout)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def site_of(n: int) -> str:
    return f"site-{n:05d}"


def district_of(n: int, districts: int) -> str:
    return f"district-{n % districts:02d}"


def device_of(n: int) -> str:
    """Half the boxes are kitchens, half stalls."""
    return f"{'kitchen' if n % 2 == 0 else 'stall'}-{n:05d}"


class Box:
    def __init__(self, sim: Sim, n: int) -> None:
        self.sim, self.n = sim, n
        self.kitchen = n % 2 == 0
        self.device = device_of(n)
        self.site = site_of(n)
        self.rate = KITCHEN_PER_S if self.kitchen else STALL_PER_S
        self.seq = 0
        self.unconfirmed: dict[int, tuple[str, float]] = {}  # seq -> (envelope, made at)
        self.to_send: list[int] = []
        self.wake = asyncio.Event()
        self.last_sent = 0.0
        self.began = 0.0  # when the current MQTT session began
        self.node = n % len(sim.brokers)  # the broker in use (--brokers), then the next

    def data(self) -> str:
        if self.kitchen:
            d = {
                "camera": "cam1",
                "type": "no_chef_hat",
                "label": "head",
                "score": 0.8,
                "box": [10, 10, 50, 50],
                "frame": [640, 360],
                "model": "site",
            }
        else:
            d = {
                "ticket_id": new_ticket_id(),
                "market": "M",
                "stall": str(self.n),
                "retailer": "R",
                "plu": "1",
                "product": "青菜",
                "batch": "B1",
                "origin": "咸宁",
                "unit": "kg",
                "quantity": 500,
                "unit_price_cents": 600,
                "total_cents": 300,
                "time": iso(time.time()),
                "sig": "a" * 16,
            }
        return json.dumps(d, ensure_ascii=False, separators=(",", ":"))

    def make_event(self) -> None:
        self.seq += 1
        now = time.time()
        env = envelope_json(
            event_id=str(uuid7()),
            device=self.device,
            site=self.site,
            seq=self.seq,
            ts=iso(now),
            kind="violation" if self.kitchen else "ticket",
            data_json=self.data(),
        )
        self.unconfirmed[self.seq] = (env, now)
        self.to_send.append(self.seq)
        self.sim.generated += 1
        self.wake.set()

    def status(self, state: str, reason: str, ts: float) -> str:
        """A status of the current session (``self.began``), as the edge writes it."""
        depth = len(self.unconfirmed)
        outbox = OutboxStats(
            depth=depth,
            bytes=depth * 400,
            policy="drop_oldest",
            max_events=100_000,
            max_bytes=64 << 20,
            dropped=0,
            rejected=0,
            expired=0,
        )
        st = Status.model_validate(
            {
                "v": 1,
                "device": self.device,
                "site": self.site,
                "state": state,
                "reason": reason,
                "ts": iso(ts),
                "session": iso(self.began),
                "version": "citysim",
                "outbox": None if reason else outbox,
            }
        )
        return st.model_dump_json(exclude_none=True)

    async def generate(self) -> None:
        rng = self.sim.rng
        while True:
            while self.sim.multiplier <= 0:
                await self.sim.rate_changed.wait()
            await asyncio.sleep(rng.expovariate(self.rate * self.sim.multiplier))
            if self.sim.multiplier > 0:
                self.make_event()

    async def run(self) -> None:
        a = self.sim.args
        delay = a.backoff_initial_s
        await asyncio.sleep(self.sim.rng.uniform(0, a.ramp_s))
        while True:
            began = self.began = time.time()
            will = aiomqtt.Will(
                topics.status(self.device),
                self.status("offline", "will", began),
                qos=1,
                retain=True,
            )
            host, port = self.sim.brokers[self.node]
            try:
                async with aiomqtt.Client(
                    host,
                    port,
                    protocol=aiomqtt.ProtocolVersion.V311,
                    identifier=self.device,
                    will=will,
                    keepalive=60,
                    clean_session=True,
                    max_inflight_messages=20,
                    timeout=a.connect_timeout_s,
                ) as client:
                    delay = a.backoff_initial_s
                    await self.session(client, began)
            except aiomqtt.MqttError:
                pass
            except Exception as exc:  # a bug here: say so, do not hide it
                print(f"{self.device}: {exc!r}", file=sys.stderr, flush=True)
            finally:
                self.sim.connected.discard(self.n)
            self.node = (self.node + 1) % len(self.sim.brokers)  # that one failed: the next
            await asyncio.sleep(delay * self.sim.rng.uniform(0.5, 1.5))  # jitter
            delay = min(delay * 2, a.backoff_max_s)

    async def session(self, client: aiomqtt.Client, began: float) -> None:
        granted = await client.subscribe(
            topics.command(self.device, "ack"), qos=self.sim.args.sub_qos
        )
        if any((g if isinstance(g, int) else g.value) >= 0x80 for g in granted):  # refused
            raise aiomqtt.MqttError(f"subscription refused: {granted}")
        await client.publish(
            topics.status(self.device),
            self.status("online", "", began),
            qos=1,
            retain=True,
            timeout=PUBLISH_TIMEOUT_S,
        )
        self.sim.connected.add(self.n)
        self.to_send = sorted(self.unconfirmed)  # a new session sends all unconfirmed again
        self.wake.set()
        # the session's tasks end together: a sender left behind by a dropped session would
        # take events off to_send for a client that is gone (they would wait for a resend)
        tasks = [
            asyncio.create_task(f(client)) for f in (self.sender, self.heartbeat, self.receiver)
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in done:
            t.result()  # the session's end: its MqttError

    async def sender(self, client: aiomqtt.Client) -> None:
        timeout = self.sim.args.confirm_timeout_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
            self.wake.clear()
            if not self.to_send and self.unconfirmed and time.time() - self.last_sent > timeout:
                self.to_send = sorted(self.unconfirmed)  # no confirmation came: send again
            while self.to_send:
                chunk, self.to_send = self.to_send[:100], self.to_send[100:]
                bodies = [self.unconfirmed[s][0] for s in chunk if s in self.unconfirmed]
                if bodies:
                    self.last_sent = time.time()
                    await client.publish(
                        topics.events(self.device),
                        batch_payload(bodies),
                        qos=1,
                        timeout=PUBLISH_TIMEOUT_S,
                    )

    async def heartbeat(self, client: aiomqtt.Client) -> None:
        every = self.sim.args.heartbeat_s
        await asyncio.sleep(self.sim.rng.uniform(0, every))
        while True:
            await client.publish(
                topics.status(self.device),
                self.status("online", "", time.time()),
                qos=1,
                retain=True,
                timeout=PUBLISH_TIMEOUT_S,
            )
            await asyncio.sleep(every)

    async def receiver(self, client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            ack = Ack.model_validate_json(msg.payload if isinstance(msg.payload, bytes) else b"")
            now = time.time()
            for lo, hi in ack.seqs:
                for s in range(lo, hi + 1):
                    got = self.unconfirmed.pop(s, None)
                    if got is not None and got[1] >= self.sim.marked:
                        self.sim.latencies.append((now - got[1]) * 1000)


class Sim:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.brokers = broker_addresses(args)
        self.boxes = [Box(self, n) for n in range(args.first, args.first + args.boxes)]
        self.watched: set[int] = set()
        self.watched_since = 0.0
        self.connected: set[int] = set()
        self.generated = 0
        self.multiplier = 1.0
        self.rate_changed = asyncio.Event()
        self.marked = float("inf")
        self.latencies: list[float] = []

    def stats(self) -> dict[str, object]:
        lat = sorted(self.latencies)
        pct = [lat[min(len(lat) - 1, int(q * len(lat)))] if lat else None for q in (0.5, 0.99)]
        return {
            "connected": len(self.connected),
            "generated": self.generated,
            "unconfirmed": sum(len(b.unconfirmed) for b in self.boxes),
            "latency_ms": [*pct, len(lat)],
            "latency_mean_ms": statistics.fmean(lat) if lat else None,
            "nodes": [
                sum(1 for b in self.boxes if b.n in self.connected and b.node == i)
                for i in range(len(self.brokers))
            ],
            "watched": [
                len(self.watched),
                sum(
                    1
                    for b in self.boxes
                    if b.n in self.watched
                    and b.n in self.connected
                    and b.began > self.watched_since
                ),
            ],
        }

    def command(self, line: str) -> dict[str, object]:
        word, *rest = line.split()
        if word == "rate":
            self.multiplier = float(rest[0])
            self.rate_changed.set()
            self.rate_changed = asyncio.Event()
        elif word == "backlog":
            for b in self.boxes:
                expected = b.rate * float(rest[0])
                for _ in range(int(expected) + (self.rng.random() < expected % 1)):
                    b.make_event()
        elif word == "mark":
            self.marked, self.latencies = time.time(), []
        elif word == "dump":
            return {"seqs": {b.device: b.seq for b in self.boxes}}
        elif word == "latencies":
            return {"latencies": [round(x, 2) for x in self.latencies]}
        elif word == "watch":
            node = int(rest[0])
            self.watched_since = time.time()
            self.watched = {b.n for b in self.boxes if b.n in self.connected and b.node == node}
        elif word == "pending_before":
            t = float(rest[0])
            late = [
                (b, s) for b in self.boxes for s, (_, made) in b.unconfirmed.items() if made <= t
            ]
            examples = [
                [b.device, s, round(time.time() - b.unconfirmed[s][1], 1), b.n in self.connected,
                 b.node, round(time.time() - b.last_sent, 1), s in b.to_send]
                for b, s in late[:5]
            ]  # fmt: skip
            return {"pending": len(late), "examples": examples}
        return self.stats()


def broker_addresses(args: argparse.Namespace) -> list[tuple[str, int]]:
    """--brokers (ports or mqtt://host:port, comma-separated), else 127.0.0.1:--port."""
    if not args.brokers:
        return [("127.0.0.1", args.port)]
    out = []
    for item in (x.strip() for x in args.brokers.split(",")):
        if item.isdigit():
            out.append(("127.0.0.1", int(item)))
            continue
        parts = urlsplit(item if "://" in item else f"mqtt://{item}")
        if not parts.hostname or not parts.port:  # never a broker of someone else's, on 1883
            raise SystemExit(f"--brokers {item}: say the port (4001, host:4001, mqtt://host:4001)")
        out.append((parts.hostname, parts.port))
    return out


def more_files() -> None:
    """A socket per box: the soft limit on open files up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def main(args: argparse.Namespace) -> None:
    more_files()
    sim = Sim(args)
    tasks = [asyncio.create_task(f()) for b in sim.boxes for f in (b.run, b.generate)]
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        print(json.dumps(sim.command(line)), flush=True)
    for t in tasks:
        t.cancel()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, help="Broker port on 127.0.0.1 (or --brokers).")
    p.add_argument("--brokers", default="", help="Broker ports or mqtt:// urls, comma-separated:"
                   " box n starts at n %% k and fails over in the order given.")  # fmt: skip
    p.add_argument("--first", type=int, default=0, help="Number of the first box (a slice).")
    p.add_argument("--sub-qos", type=int, choices=(0, 1), default=1,
                   help="QoS of the boxes' cmd/ack subscription (the edge: 0).")  # fmt: skip
    p.add_argument("--boxes", type=int, default=2000, help="How many boxes (half kitchens).")
    p.add_argument("--seed", type=int, default=1, help="Random seed.")
    p.add_argument("--ramp-s", type=float, default=10, help="Boxes first connect over this.")
    p.add_argument("--heartbeat-s", type=float, default=30, help="As the edge's default.")
    p.add_argument("--confirm-timeout-s", type=float, default=30, help="As the edge's default.")
    p.add_argument("--backoff-initial-s", type=float, default=0.5, help="As the edge's default.")
    p.add_argument("--backoff-max-s", type=float, default=60.0, help="As the edge's default.")
    p.add_argument("--connect-timeout-s", type=float, default=30,
                   help="Wait for a CONNACK or SUBACK (the edge: 10).")  # fmt: skip
    parsed = p.parse_args()
    if parsed.port is None and not parsed.brokers:
        p.error("--port or --brokers")
    asyncio.run(main(parsed))
