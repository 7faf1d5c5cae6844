"""The sensors' worker: reads every sensor when it is due, keeps the raw readings on the box,
and turns them into events: a summary per minute (``sensor_minute``), an excursion that lasts
(``sensor_excursion``), a sensor gone silent (``sensor_fault``), a disinfection run
(``disinfection_cycle``). It never dies on a sensor: a failed read is a fault once it lasts.

:meth:`Sensors.poll` does one round at a given time, so a test drives it on its own clock
against a real Modbus server.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from edge.sensors.config import SensorSettings
from edge.sensors.modbus import Bus
from edge.sensors.profiles import SensorError, SensorProfile, load_sensor_profile
from edge.sensors.rules import Cycle, Excursion, Minutes, Silence, iso
from edge.store.outbox import Outbox, OutboxError
from shared.sparkline import sparkline

log = logging.getLogger("shian.sensors")
Emit = Callable[[str, dict[str, Any]], Any]
PRUNE_EVERY_S = 600.0


@dataclass
class Sensor:
    s: SensorSettings
    profile: SensorProfile
    bus: Bus
    silence: Silence
    minutes: Minutes = field(default_factory=Minutes)
    excursion: Excursion | None = None
    cycle: Cycle | None = None
    due: float = 0.0
    latest: dict[str, Any] = field(default_factory=dict)
    last_error: str = ""


class Sensors:
    def __init__(self, settings: list[SensorSettings], outbox: Outbox, emit: Emit,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.outbox, self.emit, self.clock = outbox, emit, clock
        self.buses: dict[tuple[str, int, str], Bus] = {}
        self.sensors: list[Sensor] = []
        now = clock()
        for s in settings:
            profile = load_sensor_profile(s.profile)
            key = (s.port, s.baudrate or profile.baudrate, s.parity or profile.parity)
            bus = self.buses.setdefault(key, Bus(*key))
            sensor = Sensor(s, profile, bus, Silence(s.silent_s, now))
            if s.low_c is not None or s.high_c is not None:
                sensor.excursion = Excursion(s.low_c, s.high_c, s.hold_s)
            if s.kind == "disinfection_cabinet":
                sensor.cycle = Cycle(s.cycle_min_c, s.cycle_hold_s)
            self.sensors.append(sensor)
        self._load_states()
        self._plots: dict[str, tuple[tuple[int, float, bool], str]] = {}
        self.pruned = 0.0
        self.alive_at = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the worker ------------------------------------------------------------------------
    def start(self) -> None:
        if self.sensors:
            self._thread = threading.Thread(target=self._run, name="shian-sensors", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.alive_at = time.monotonic()
            try:
                wait = self.poll(self.clock())
            except (OutboxError, OSError, sqlite3.Error) as exc:  # a full disk: the box goes on
                log.error("sensor readings not kept: %s", exc)
                wait = 5.0
            self._stop.wait(wait)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for bus in self.buses.values():
            bus.close()

    def alive(self) -> bool:
        return self._thread is None or self._thread.is_alive()

    # -- one round ---------------------------------------------------------------------------
    def poll(self, now: float) -> float:
        """Read every sensor that is due at ``now``; seconds until the next is due."""
        for sensor in self.sensors:
            if sensor.due <= now:
                sensor.due = now + sensor.s.poll_s
                self._read(sensor, now)
        if now - self.pruned >= PRUNE_EVERY_S:
            self._prune(now)
        return max(0.05, min(s.due for s in self.sensors) - now) if self.sensors else 60.0

    def _load_states(self) -> None:
        """An excursion raised or a sensor lost before a restart: still so, until a reading
        says otherwise (then cleared or back is sent, and the collector's alert closes)."""
        rows = {r[0]: r[1:] for r in self.outbox.read("SELECT * FROM sensor_state")}
        for sensor in self.sensors:
            raised, since, lost = rows.get(sensor.s.name, (0, None, 0))
            sensor.silence.lost = bool(lost)
            if sensor.excursion is not None and raised:
                sensor.excursion.raised, sensor.excursion.since = True, since

    def _save_state(self, sensor: Sensor) -> None:
        ex = sensor.excursion
        with self.outbox.transaction() as conn:
            conn.execute(
                "INSERT INTO sensor_state (sensor, raised, since, lost) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (sensor) DO UPDATE SET raised = excluded.raised,"
                " since = excluded.since, lost = excluded.lost",
                (sensor.s.name, int(bool(ex and ex.raised)), ex.since if ex else None,
                 int(sensor.silence.lost)),
            )  # fmt: skip

    def _read(self, sensor: Sensor, now: float) -> None:
        """One reading and what it means. When an event cannot be queued (a full disk), the
        rules are put back as they were, so the next reading says it again."""
        kept = (replace(sensor.silence), sensor.excursion and replace(sensor.excursion),
                sensor.cycle and replace(sensor.cycle), replace(sensor.minutes))  # fmt: skip
        try:
            self._judge(sensor, now)
        except (OutboxError, sqlite3.Error):
            sensor.silence, sensor.excursion, sensor.cycle, sensor.minutes = kept
            raise

    def _judge(self, sensor: Sensor, now: float) -> None:
        name = sensor.s.name
        try:
            values = sensor.bus.read(sensor.profile, sensor.s.device_id)
        except SensorError as exc:
            sensor.last_error = str(exc)
            if sensor.cycle is not None:
                sensor.cycle.began = None  # a run the probe did not watch proves nothing
            if sensor.silence.failed(now):
                log.warning("sensor %s lost: %s", name, exc)
                self.emit("sensor_fault", {"sensor": name, "state": "lost", "reason": str(exc)})
                self._save_state(sensor)
            return
        if sensor.silence.ok(now):
            log.info("sensor %s reads again", name)
            self.emit("sensor_fault", {"sensor": name, "state": "back", "reason": ""})
            self._save_state(sensor)
        sensor.latest = {"at": now, **values}
        with self.outbox.transaction() as conn:
            conn.execute(
                "INSERT INTO sensor_readings (sensor, at, temperature, humidity)"
                " VALUES (?, ?, ?, ?)",
                (name, now, values.get("temperature"), values.get("humidity")),
            )
        done = sensor.minutes.add(values, now)
        if done is not None:
            self.emit("sensor_minute", {"sensor": name, "kind": sensor.s.kind, **done})
        temp = values.get("temperature")
        if temp is None:
            return
        if sensor.excursion is not None:
            self._excursion(sensor, temp, now)
        if sensor.cycle is not None and (run := sensor.cycle.feed(temp, now)) is not None:
            log.info("sensor %s: disinfection run of %.0f s (proven: %s)", name,
                     run["held_s"], run["proven"])  # fmt: skip
            self.emit("disinfection_cycle", {"sensor": name, **run})

    def _excursion(self, sensor: Sensor, temp: float, now: float) -> None:
        ex = sensor.excursion
        assert ex is not None
        since, worst = ex.since, ex.worst
        change = ex.feed(temp, now)
        if change is None:
            return
        data = {"sensor": sensor.s.name, "kind": sensor.s.kind, "state": change, "value": temp,
                "low": ex.low, "high": ex.high}  # fmt: skip
        if change == "raised":
            data.update(worst=ex.worst, since=iso(ex.since or now))
        else:
            data.update(worst=worst, since=iso(since) if since else None)
        log.warning("sensor %s: %s at %.1f °C", sensor.s.name, change, temp)
        self.emit("sensor_excursion", data)
        self._save_state(sensor)

    def _prune(self, now: float) -> None:
        self.pruned = now
        with self.outbox.transaction() as conn:
            for sensor in self.sensors:
                conn.execute("DELETE FROM sensor_readings WHERE sensor = ? AND at < ?",
                             (sensor.s.name, now - sensor.s.keep_raw_h * 3600))  # fmt: skip

    def view(self, day_start: float) -> list[dict[str, Any]]:
        """For the hall screen: each sensor's last reading, its state, and the day so far as a
        small plot. The screen asks twice a second; the plot is drawn again once a minute."""
        out = []
        minute = int(time.time() // 60)
        for sensor in self.sensors:
            s = sensor.s
            key = (minute, day_start, bool(sensor.latest))  # and at its first reading
            drawn = self._plots.get(s.name)
            if drawn is None or drawn[0] != key:
                drawn = (key, self._plot(sensor, day_start))
                self._plots[s.name] = drawn
            svg = drawn[1]
            ex = sensor.excursion
            state = ("lost" if sensor.silence.lost else "out" if ex is not None and ex.raised
                     else "ok")  # fmt: skip
            out.append({"name": s.name, "kind": s.kind, "state": state, **sensor.latest,
                        "low": s.low_c, "high": s.high_c, "svg": svg})  # fmt: skip
        return out

    def _plot(self, sensor: Sensor, day_start: float) -> str:
        """The day so far: five-minute means of the raw series, the range dashed."""
        s = sensor.s
        buckets: dict[int, list[float]] = {}
        for at, temp, _hum in self.today(s.name, day_start):
            if temp is not None:
                buckets.setdefault(int((at - day_start) // 300), []).append(temp)
        points = [(day_start + b * 300 + 150, sum(v) / len(v)) for b, v in buckets.items()]
        return sparkline(points, day_start, s.low_c, s.high_c, s.name)

    def today(self, name: str, since: float) -> list[tuple[float, float | None, float | None]]:
        """A sensor's raw readings since ``since`` (for the screen's plot of the day)."""
        rows = self.outbox.read(
            "SELECT at, temperature, humidity FROM sensor_readings WHERE sensor = ? AND at >= ?"
            " ORDER BY at",
            (name, since),
        )
        return [(r[0], r[1], r[2]) for r in rows]
