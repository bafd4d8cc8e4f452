"""Everything a request handler may touch, built once by the server."""

from __future__ import annotations

from dataclasses import dataclass

from broker.cluster import Cluster
from broker.groups import GroupCoordinator
from broker.log.flush import Flusher
from broker.metrics import Metrics
from broker.offsets import OffsetStore
from broker.settings import BrokerSettings


@dataclass(slots=True)
class BrokerState:
    settings: BrokerSettings
    flusher: Flusher
    cluster: Cluster
    offsets: OffsetStore
    groups: GroupCoordinator
    metrics: Metrics
    advertised_port: int = 0

    @property
    def node_id(self) -> int:
        return self.settings.node_id
