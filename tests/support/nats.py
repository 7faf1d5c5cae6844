"""The tests' NATS cluster: the one the demo and the benchmark run (``cloud.cluster_local``)."""

from cloud.cluster_local import NatsCluster, mqtt_round_trip, nats_binary

__all__ = ["NatsCluster", "mqtt_round_trip", "nats_binary"]
