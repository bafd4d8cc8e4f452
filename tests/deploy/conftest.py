"""Shared fixtures of the deployment-file tests: the parsed files and the code's catalogs.

There is no Docker engine here, so these tests check the files against the code they
deploy: settings names, metric names and labels, CLI commands, ports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "syncpipe.json"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"

# Services built from our Dockerfile, and the infrastructure beside them.
SYNCPIPE_SERVICES = ("streams", "ingest", "push", "pwa")
INFRA_SERVICES = ("kafka", "redis", "prometheus", "grafana")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    doc = load_yaml(COMPOSE)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="session")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    svc = compose["services"]
    assert isinstance(svc, dict)
    return svc


@pytest.fixture(scope="session")
def dashboard() -> dict[str, Any]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment is written as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def argv_of(service: dict[str, Any]) -> list[str]:
    """What the container runs: the image's ENTRYPOINT ["syncpipe"] unless overridden."""
    entrypoint = service.get("entrypoint", ["syncpipe"])
    command = service.get("command", [])
    assert isinstance(entrypoint, list), "entrypoint is written in exec form"
    assert isinstance(command, list), "command is written in exec form"
    return [*entrypoint, *command]


def published(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port."""
    out: dict[int, int] = {}
    for spec in service.get("ports", []):
        *_, host, container = str(spec).split(":")
        out[int(container)] = int(host)
    return out


def listen_port(services: dict[str, Any], name: str, var: str) -> int:
    """The port a service listens on: its env var in compose, else the setting's default."""
    value = env_of(services[name]).get(var)
    if value is not None:
        return int(value)
    cls = settings_env_names()[var]
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    return int(cls.model_fields[var.removeprefix(prefix).lower()].default)


def settings_env_names() -> dict[str, type[BaseSettings]]:
    """Every environment variable a syncpipe process reads -> its settings class."""
    from schemas.settings import SharedSettings
    from syncpipe.configdoc import settings_classes

    out: dict[str, type[BaseSettings]] = {}
    for _, cls in [("all services", SharedSettings), *settings_classes()]:
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name in cls.model_fields:
            out[f"{prefix}{name}".upper()] = cls
    return out


def _series(name: str, kind: str) -> list[str]:
    """The sample names Prometheus stores for a metric family of ``kind``."""
    if kind == "counter":
        return [f"{name}_total", f"{name}_created"]
    if kind == "histogram":
        return [f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"]
    if kind == "summary":
        return [name, f"{name}_sum", f"{name}_count", f"{name}_created"]
    return [name]


def _add(catalog: dict[str, frozenset[str]], name: str, kind: str, labels: tuple[str, ...]) -> None:
    for series in _series(name, kind):
        extra = ("le",) if series.endswith("_bucket") else ()
        catalog[series] = frozenset((*labels, *extra))


def metric_catalog() -> dict[str, frozenset[str]]:
    """Every series name ingest, push and streams export -> its label names.

    Each service owns a per-app registry, so the metrics objects are built here as the
    apps build them. Unobserved labeled metrics export no samples, so labels come from
    the metric definitions (prometheus-client's ``_name``/``_type``/``_labelnames``,
    and the families push's custom collector yields).
    """
    from ingest.metrics import IngestMetrics
    from push.metrics import PushMetrics
    from streams.metrics import StreamsMetrics

    catalog: dict[str, frozenset[str]] = {}
    for holder in (IngestMetrics(), StreamsMetrics()):
        wrappers = [v for v in vars(holder).values() if isinstance(v, MetricWrapperBase)]
        defined = {w._name for w in wrappers}
        exported = {family.name for family in holder.registry.collect()}
        assert defined == exported, f"{type(holder).__name__}: metrics outside its attributes"
        for w in wrappers:
            _add(catalog, w._name, w._type, tuple(w._labelnames))
    for family in PushMetrics().collect():
        _add(catalog, family.name, family.type, tuple(getattr(family, "_labelnames", ())))
    return catalog
