"""The province's broker: a NATS cluster with JetStream and MQTT (docs/scaling.md).

Boxes and supervisors speak MQTT 3.1.1 to any node; their sessions, QoS 1 messages and
retained messages are kept in JetStream, replicated on the nodes, so a node's loss loses no
session. Collectors take the boxes' messages as one NATS queue group (``cloud.intake``): each
message reaches one collector. This module writes each node's config, the recipe the tests,
the benchmark and an operator run alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

CLUSTER_NAME = "shian"


@dataclass
class ClusterPlan:
    """Where each node listens and keeps its data. One machine (tests, a trial) uses one
    host and distinct ports; an operator gives each node its own host and the same ports."""

    host: str
    client_ports: list[int]
    cluster_ports: list[int]
    mqtt_ports: list[int]
    http_ports: list[int]
    data_dir: Path
    hosts: list[str] = field(default_factory=list)
    """One host per node; empty means ``host`` for every node."""
    auth_file: Path | None = None
    """Users and their permissions (``cloud.broker_nats``), included by every node."""
    max_file_store: str = "8G"
    route_password: str = ""
    """The nodes' password among themselves: a route without it is refused, so no host that
    reaches the cluster port can join and read everything. Empty: none (never in production)."""

    def node_host(self, i: int) -> str:
        return self.hosts[i] if self.hosts else self.host


def node_config(plan: ClusterPlan, i: int, conf_dir: Path | None = None) -> str:
    """nats-server's config for node ``i`` (0-based) of the plan, to be written in
    ``conf_dir`` (default ``data_dir``): nats-server reads an include relative to it."""
    n = len(plan.client_ports)
    host = plan.node_host(i)
    cred = f"route:{plan.route_password}@" if plan.route_password else ""
    routes = ", ".join(
        f'"nats-route://{cred}{plan.node_host(k)}:{plan.cluster_ports[k]}"'
        for k in range(n)
        if k != i
    )
    route_auth = (
        f'\n  authorization {{ user: "route", password: "{plan.route_password}" }}'
        if plan.route_password
        else ""
    )
    store = plan.data_dir / f"n{i + 1}"
    auth = ""
    if plan.auth_file:
        where = os.path.relpath(plan.auth_file, conf_dir or plan.data_dir)
        auth = (
            "\n# the registry's users (shian-cloud writes them; reload every node)\n"
            f'include "{where}"\n'
        )
    return f"""# Shian province broker, node {i + 1} of {n} (written by shian-cloud cluster config)
server_name: "n{i + 1}"
listen: "{host}:{plan.client_ports[i]}"
# monitoring (connections, subscriptions): this machine only
http: "127.0.0.1:{plan.http_ports[i]}"
pid_file: "{store}.pid"
max_payload: 1MB

jetstream {{
  store_dir: "{store}"
  max_memory_store: 256MB
  max_file_store: {plan.max_file_store}
}}

cluster {{
  name: "{CLUSTER_NAME}"
  listen: "{host}:{plan.cluster_ports[i]}"{route_auth}
  routes: [{routes}]
}}

mqtt {{
  listen: "{host}:{plan.mqtt_ports[i]}"
  # a QoS 1 message not acknowledged by a client is sent again after this long
  ack_wait: "30s"
  # what the boxes' and collectors' sessions hold in flight, per subscription
  max_ack_pending: 1024
  # A QoS 1 subscription's consumer lives on the client's node. Replicated (the default,
  # 3), each SUBSCRIBE costs about a second, and none can be made while a node is down: a
  # box moving off a dead node could not subscribe again. The boxes' sessions are clean, so
  # a consumer lost with its node loses nothing they need; the streams stay replicated.
  consumer_replicas: 1
  # Sessions, QoS 1 messages and retained messages on every node. Said, not left to the
  # server: it counts the nodes it knows when the first client connects, and streams made
  # while a route is still coming up get 2 replicas, which lose their quorum with one node.
  stream_replicas: {len(plan.client_ports)}
}}
{auth}"""
