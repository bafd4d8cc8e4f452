"""The Prometheus config and the Grafana dashboard name metrics the code really exports."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.conftest import (
    DASHBOARD,
    DEPLOY,
    PROMETHEUS,
    listen_port,
    load_yaml,
    metric_catalog,
    settings_env_names,
)

METRIC = re.compile(r"\bsyncpipe_[a-z0-9_]+\b")
# `sum by (a, b) (rate(metric[...]))` and `histogram_quantile(q, sum by (le, ...) (rate(x_bucket`
BY = re.compile(r"\bby \((?P<labels>[^)]*)\) \((?:rate|irate|increase)?\(?(?P<metric>\w+)")
QUANTILE = re.compile(r"histogram_quantile\(\s*[\d.]+,\s*sum by \((?P<labels>[^)]*)\)")
SELECTOR = re.compile(r"(?P<metric>syncpipe_\w+)\{(?P<matchers>[^}]*)\}")

# Panel title (as on the dashboard) -> a series its queries must use.
REQUIRED_PANELS = {
    "End-to-end latency (p50 / p95 / p99)": "syncpipe_push_end_to_end_seconds_bucket",
    "Send path latency (queue wait, socket write)": "syncpipe_push_queue_wait_seconds_bucket",
    "Bytes sent /s": "syncpipe_push_sent_bytes_total",
    "Messages dropped /s by reason": "syncpipe_push_messages_dropped_total",
    "Messages conflated /s by reason": "syncpipe_push_messages_conflated_total",
    "Consumer lag": "syncpipe_streams_consumer_lag_messages",
    "Ops by receipt status /s": "syncpipe_streams_ops_applied_total",
    "Ingest ops /s: accepted, duplicate, rejected by reason": "syncpipe_ingest_ops_rejected_total",
    "Request latency by route (p50 / p99)": "syncpipe_ingest_request_duration_seconds_bucket",
}


@pytest.fixture(scope="module")
def catalog() -> dict[str, frozenset[str]]:
    return metric_catalog()


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return out


def exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query on the dashboard."""
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def test_catalog_holds_each_services_metrics(catalog: dict[str, frozenset[str]]) -> None:
    for service in ("ingest", "push", "streams"):
        assert any(name.startswith(f"syncpipe_{service}_") for name in catalog), service
    assert catalog["syncpipe_push_messages_dropped_total"] == {"reason"}
    assert "le" in catalog["syncpipe_push_end_to_end_seconds_bucket"]


def test_dashboard_is_a_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"]
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]


def test_dashboard_picks_its_datasource_by_variable(dashboard: dict[str, Any]) -> None:
    """So the same JSON works provisioned by compose and imported into any Grafana."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


@pytest.mark.parametrize(("title", "series"), REQUIRED_PANELS.items(), ids=REQUIRED_PANELS)
def test_dashboard_has_required_panel(dashboard: dict[str, Any], title: str, series: str) -> None:
    by_title = {p["title"]: p for p in panels(dashboard)}
    assert title in by_title
    queries = " ".join(t["expr"] for t in by_title[title]["targets"])
    assert series in queries


def test_end_to_end_panel_reads_p50_p95_p99(dashboard: dict[str, Any]) -> None:
    panel = next(p for p in panels(dashboard) if p["title"].startswith("End-to-end latency"))
    quantiles = {re.search(r"histogram_quantile\(([\d.]+)", t["expr"])[1] for t in panel["targets"]}  # type: ignore[index]
    assert quantiles == {"0.5", "0.95", "0.99"}


def test_send_path_panel_covers_queue_wait_and_socket_write(dashboard: dict[str, Any]) -> None:
    panel = next(p for p in panels(dashboard) if p["title"].startswith("Send path"))
    queries = " ".join(t["expr"] for t in panel["targets"])
    assert "syncpipe_push_queue_wait_seconds_bucket" in queries
    assert "syncpipe_push_socket_write_seconds_bucket" in queries


def test_every_dashboard_metric_exists(
    dashboard: dict[str, Any], catalog: dict[str, frozenset[str]]
) -> None:
    missing = sorted(
        f"{title}: {name}"
        for title, expr in exprs(dashboard)
        for name in METRIC.findall(expr)
        if name not in catalog
    )
    assert not missing, f"no such series in ingest/push/streams metrics: {missing}"


def test_every_grouping_and_matcher_label_exists(
    dashboard: dict[str, Any], catalog: dict[str, frozenset[str]]
) -> None:
    """`sum by (reason)` over a metric without a reason label silently yields one series."""
    problems = []
    for title, expr in exprs(dashboard):
        for m in BY.finditer(expr):
            labels = {x.strip() for x in m["labels"].split(",") if x.strip()}
            if m["metric"] in catalog and not labels <= catalog[m["metric"]]:
                problems.append(f"{title}: by ({m['labels']}) on {m['metric']}")
        for m in SELECTOR.finditer(expr):
            names = {x.split("=")[0].strip().rstrip("!~") for x in m["matchers"].split(",")}
            if not names <= catalog.get(m["metric"], frozenset()):
                problems.append(f"{title}: {{{m['matchers']}}} on {m['metric']}")
    assert not problems, problems


def test_quantiles_aggregate_buckets_by_le(dashboard: dict[str, Any]) -> None:
    for title, expr in exprs(dashboard):
        if "histogram_quantile" not in expr:
            continue
        match = QUANTILE.search(expr)
        assert match, f"{title}: histogram_quantile over sum by (le, ...)"
        assert "le" in {x.strip() for x in match["labels"].split(",")}, title
        assert "_bucket[" in expr, title


def test_prometheus_config_metric_names_exist(catalog: dict[str, frozenset[str]]) -> None:
    """Any metric a rule or relabeling names (none today) must exist too."""
    prometheus_dir = DEPLOY / "prometheus"
    for path in prometheus_dir.rglob("*.yml"):
        for name in METRIC.findall(path.read_text(encoding="utf-8")):
            assert name in catalog, f"{path.name}: {name}"


def scrape_targets() -> dict[str, list[str]]:
    """job name -> host:port targets, from static configs and the file_sd files."""
    config = load_yaml(PROMETHEUS)
    out: dict[str, list[str]] = {}
    for job in config["scrape_configs"]:
        targets: list[str] = []
        for static in job.get("static_configs", []):
            targets += static["targets"]
        for sd in job.get("file_sd_configs", []):
            for rel in sd["files"]:
                path = PROMETHEUS.parent / rel  # relative to the config file, as Prometheus does
                assert path.is_file(), f"{job['job_name']}: {rel} is missing"
                for group in load_yaml(path):
                    targets += group["targets"]
        out[job["job_name"]] = targets
    return out


@pytest.mark.parametrize(
    ("job", "service", "port_var"),
    [
        ("syncpipe-ingest", "ingest", "SYNCPIPE_INGEST_PORT"),
        ("syncpipe-push", "push", "SYNCPIPE_PUSH_PORT"),
        ("syncpipe-streams", "streams", "SYNCPIPE_STREAMS_METRICS_PORT"),
    ],
)
def test_prometheus_scrapes_each_service_where_it_listens(
    services: dict[str, Any], job: str, service: str, port_var: str
) -> None:
    assert scrape_targets()[job] == [f"{service}:{listen_port(services, service, port_var)}"]
    config = load_yaml(PROMETHEUS)
    paths = {j["job_name"]: j.get("metrics_path", "/metrics") for j in config["scrape_configs"]}
    assert paths[job] == "/metrics"
    assert port_var in settings_env_names()


def test_grafana_provisioning_matches_compose_mounts() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert [(d["type"], d["url"]) for d in datasources] == [("prometheus", "${PROMETHEUS_URL}")]
    providers = load_yaml(provisioning / "dashboards" / "syncpipe.yml")["providers"]
    assert [p["options"]["path"] for p in providers] == ["/etc/grafana/dashboards"]
    assert DASHBOARD.parent.name == "dashboards"
