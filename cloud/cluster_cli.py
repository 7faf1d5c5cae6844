"""``shian-cloud cluster``: the province's NATS cluster, written as each node's config
(docs/scaling.md)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cloud.cluster import ClusterPlan, node_config
from shared.clikit import Decorator
from shared.secretfiles import write_secret


def register(main: click.Group, config_option: Decorator, get_config: Callable[..., Any]) -> None:
    @main.group()
    def cluster() -> None:
        """The province's broker: a NATS cluster with JetStream and MQTT.

        Example: shian-cloud cluster config --host 10.0.0.1 --host 10.0.0.2 --host 10.0.0.3
        """

    @cluster.command("config")
    @click.option("--host", "hosts", multiple=True, required=True,
                  help="A node's address, once per node (3 or 5); the same address several "
                  "times runs the nodes on one machine, on ports one apart.")  # fmt: skip
    @click.option("--out", type=click.Path(path_type=Path), default=Path("."), show_default=True,
                  help="Where to write n1.conf, n2.conf, ...")  # fmt: skip
    @click.option("--data-dir", type=click.Path(path_type=Path),
                  default=Path("/var/lib/nats"), show_default=True,
                  help="Each node's JetStream store goes in DATA_DIR/nN.")  # fmt: skip
    @click.option("--auth", type=click.Path(path_type=Path), default=None,
                  help="The users file: broker_dir/nats-users.conf.")  # fmt: skip
    @click.option("--client-port", default=4222, show_default=True)
    @click.option("--cluster-port", default=6222, show_default=True)
    @click.option("--mqtt-port", default=1883, show_default=True)
    @click.option("--http-port", default=8222, show_default=True)
    def cluster_config(
        hosts: tuple[str, ...],
        out: Path,
        data_dir: Path,
        auth: Path | None,
        client_port: int,
        cluster_port: int,
        mqtt_port: int,
        http_port: int,
    ) -> None:
        """Write each node's nats-server config: JetStream replicated on every node, MQTT on
        each, the routes between them, and the registry's users when --auth is given.

        Example: shian-cloud cluster config --host 10.0.0.1 --host 10.0.0.2 --host 10.0.0.3
        --out /etc/nats --auth /var/lib/shian/broker/nats-users.conf
        """
        if len(hosts) not in (3, 5):
            raise click.UsageError("a cluster has 3 or 5 nodes (a quorum survives one or two)")
        one = len(set(hosts)) == 1
        step = [i if one else 0 for i in range(len(hosts))]
        plan = ClusterPlan(
            host=hosts[0],
            hosts=list(hosts),
            client_ports=[client_port + k for k in step],
            cluster_ports=[cluster_port + k for k in step],
            mqtt_ports=[mqtt_port + k for k in step],
            http_ports=[http_port + k for k in step],
            data_dir=data_dir,
            auth_file=auth,
            route_password=secrets.token_urlsafe(24),
        )
        out.mkdir(parents=True, exist_ok=True)
        for i in range(len(hosts)):
            path = out / f"n{i + 1}.conf"  # it holds the routes' password: for nats only
            write_secret(path, node_config(plan, i, conf_dir=out), 0o640, "nats")
            click.echo(f"{path}: nats-server -c {path}  (MQTT on {hosts[i]}:{plan.mqtt_ports[i]})")
        urls = ", ".join(f'"mqtt://{h}:{p}"' for h, p in zip(hosts, plan.mqtt_ports, strict=True))
        intake = ", ".join(
            f'"nats://{h}:{p}"' for h, p in zip(hosts, plan.client_ports, strict=True)
        )
        click.echo(f"boxes and collectors: [mqtt] url = one of them, failover_urls = [{urls}]")
        click.echo(f'collectors: [collector] share_group = "collectors", intake_urls = [{intake}]')
