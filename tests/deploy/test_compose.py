"""compose.yaml: real Kafka, Redis, the syncpipe services, Prometheus and Grafana."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main

from syncpipe.settings import ConfigError, load_settings
from tests.deploy.conftest import (
    COMPOSE,
    INFRA_SERVICES,
    ROOT,
    SYNCPIPE_SERVICES,
    argv_of,
    env_of,
    listen_port,
    published,
    settings_env_names,
)

REQUIRED = re.compile(r"^\$\{(?P<var>[A-Z][A-Z0-9_]*):\?(?P<message>[^}]+)\}$")
# A stand-in for the value of each required variable when building settings.
FAKE_SECRET = "x" * 40


def test_compose_has_real_kafka_redis_services_and_monitoring(services: dict[str, Any]) -> None:
    assert set(services) == {*SYNCPIPE_SERVICES, *INFRA_SERVICES}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert "broker" not in services, "real Kafka replaces the embedded broker"


@pytest.mark.parametrize("name", [*SYNCPIPE_SERVICES, *INFRA_SERVICES])
def test_every_service_has_a_healthcheck(services: dict[str, Any], name: str) -> None:
    check = services[name].get("healthcheck")
    assert check, f"{name} has no healthcheck"
    assert not check.get("disable", False)
    test = check["test"]
    assert isinstance(test, list)
    assert test[0] in {"CMD", "CMD-SHELL"}
    assert len(test) > 1


@pytest.mark.parametrize("name", SYNCPIPE_SERVICES)
def test_syncpipe_services_wait_for_healthy_dependencies(
    services: dict[str, Any], name: str
) -> None:
    deps = services[name].get("depends_on")
    assert isinstance(deps, dict)
    assert deps, f"{name} must depend on what it uses"
    for dep, spec in deps.items():
        assert dep in services
        assert spec == {"condition": "service_healthy"}, f"{name} -> {dep}"


def test_every_depends_on_waits_for_health(services: dict[str, Any]) -> None:
    for name, service in services.items():
        deps = service.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on as a mapping with conditions"
        for dep, spec in deps.items():
            assert spec.get("condition") == "service_healthy", f"{name} -> {dep}"
            assert services[dep].get("healthcheck"), f"{name} waits on {dep}, which has none"


@pytest.mark.parametrize(
    ("service", "needs"),
    [
        ("streams", {"kafka", "redis"}),
        ("ingest", {"kafka", "redis", "streams"}),  # streams creates the topics first
        ("push", {"kafka", "redis", "streams"}),
        ("pwa", {"ingest", "push"}),
        ("grafana", {"prometheus"}),
    ],
    ids=["streams", "ingest", "push", "pwa", "grafana"],
)
def test_start_order(services: dict[str, Any], service: str, needs: set[str]) -> None:
    assert set(services[service]["depends_on"]) == needs


@pytest.mark.parametrize(
    ("service", "var"),
    [
        ("ingest", "SYNCPIPE_JWT_SECRET"),
        ("push", "SYNCPIPE_JWT_SECRET"),
        ("streams", "SYNCPIPE_JWT_SECRET"),
        ("grafana", "GF_SECURITY_ADMIN_PASSWORD"),
    ],
)
def test_required_secrets_fail_compose_when_unset(
    services: dict[str, Any], service: str, var: str
) -> None:
    value = env_of(services[service])[var]
    match = REQUIRED.match(value)
    assert match, f"{service}.{var} must be ${{VAR:?message}}, got {value!r}"
    assert match["message"].strip(), "the message tells the operator what to set"


def test_no_secret_has_a_default_anywhere() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for var in ("SYNCPIPE_JWT_SECRET", "GRAFANA_ADMIN_PASSWORD"):
        assert f"${{{var}:-" not in text
        assert f"${{{var}-" not in text
        assert f"${{{var}:?" in text


@pytest.mark.parametrize("name", ["streams", "ingest", "push"])
def test_services_run_in_prod_mode_against_compose_kafka_and_redis(
    services: dict[str, Any], name: str
) -> None:
    env = env_of(services[name])
    assert env["SYNCPIPE_ENV"] == "prod"
    assert env["SYNCPIPE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert urlsplit(env["SYNCPIPE_REDIS_URL"]).hostname == "redis"
    kafka_env = services["kafka"]["environment"]
    assert "PLAINTEXT://kafka:9092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]


def test_every_syncpipe_env_var_is_a_real_setting(services: dict[str, Any]) -> None:
    known = settings_env_names()
    used = {
        (name, var)
        for name, service in services.items()
        for var in env_of(service)
        if var.startswith("SYNCPIPE_")
    }
    assert used
    unknown = sorted(f"{name}: {var}" for name, var in used if var not in known)
    assert not unknown, f"not a setting (see `syncpipe config`): {unknown}"


@pytest.mark.parametrize("name", ["streams", "ingest", "push"])
def test_compose_env_builds_every_settings_class(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The values parse too (JSON lists, numbers, literals), as the service would load them."""
    for var in [v for v in os.environ if v.startswith("SYNCPIPE_")]:
        monkeypatch.delenv(var)
    for var, value in env_of(services[name]).items():
        monkeypatch.setenv(var, FAKE_SECRET if REQUIRED.match(value) else value)
    for cls in set(settings_env_names().values()):
        try:
            load_settings(cls)
        except ConfigError as exc:
            pytest.fail(f"{name}: {exc}")


def registered_commands() -> set[str]:
    from syncpipe.cli import app

    group = typer.main.get_command(app)
    return set(group.commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", SYNCPIPE_SERVICES)
def test_service_command_exists_in_the_image(services: dict[str, Any], name: str) -> None:
    service = services[name]
    assert service.get("build") == ".", "built from the repository's Dockerfile"
    argv = argv_of(service)
    if argv[0] == "syncpipe":
        assert argv[1] in registered_commands(), f"{name}: no `syncpipe {argv[1]}`"
    elif argv[:2] == ["python", "-m"]:
        assert importlib.util.find_spec(f"{argv[2]}.__main__"), f"{name}: python -m {argv[2]}"
    else:
        assert argv[0] == "python"
        assert argv[1].startswith("/app/deploy/docker/")
        script = ROOT / argv[1].removeprefix("/app/")
        assert script.is_file(), f"{name}: {script} is missing"
        dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
        assert script.relative_to(ROOT).as_posix() in dockerfile, "the image copies the script"


@pytest.mark.parametrize(
    ("name", "host_var", "port_var"),
    [
        ("ingest", "SYNCPIPE_INGEST_HOST", "SYNCPIPE_INGEST_PORT"),
        ("push", "SYNCPIPE_PUSH_HOST", "SYNCPIPE_PUSH_PORT"),
        ("streams", "SYNCPIPE_STREAMS_METRICS_HOST", "SYNCPIPE_STREAMS_METRICS_PORT"),
    ],
)
def test_services_listen_beyond_loopback_and_check_their_own_port(
    services: dict[str, Any], name: str, host_var: str, port_var: str
) -> None:
    env = env_of(services[name])
    assert env[host_var] == "0.0.0.0", f"{name} must be reachable from other containers"
    port = listen_port(services, name, port_var)
    test = " ".join(services[name]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/" in test


@pytest.mark.parametrize(
    ("name", "port_var"),
    [("ingest", "SYNCPIPE_INGEST_PORT"), ("push", "SYNCPIPE_PUSH_PORT")],
)
def test_api_ports_are_published_on_the_same_number(
    services: dict[str, Any], name: str, port_var: str
) -> None:
    port = listen_port(services, name, port_var)
    assert published(services[name]) == {port: port}


def pwa_option(services: dict[str, Any], option: str) -> str:
    for arg in argv_of(services["pwa"]):
        if arg.startswith(f"--{option}="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"pwa has no --{option}=")


def test_pwa_points_the_browser_at_published_ingest_and_push(services: dict[str, Any]) -> None:
    api, ws = urlsplit(pwa_option(services, "api-base")), urlsplit(pwa_option(services, "ws-base"))
    assert api.scheme == "http"
    assert api.port in published(services["ingest"]).values()
    assert ws.scheme == "ws"
    assert ws.port in published(services["push"]).values()
    port = int(pwa_option(services, "port"))
    assert pwa_option(services, "host") == "0.0.0.0"
    assert published(services["pwa"]) == {port: port}
    assert f"http://127.0.0.1:{port}/healthz" in services["pwa"]["healthcheck"]["test"]
    assert not any(a.startswith("--token") for a in argv_of(services["pwa"])), "no token served"


@pytest.mark.parametrize(
    ("name", "var"),
    [("ingest", "SYNCPIPE_INGEST_CORS_ORIGINS"), ("push", "SYNCPIPE_PUSH_ALLOWED_ORIGINS")],
)
def test_browser_origin_of_the_pwa_is_allowed(
    services: dict[str, Any], name: str, var: str
) -> None:
    host_port = next(iter(published(services["pwa"]).values()))
    origins = json.loads(env_of(services[name])[var])
    assert f"http://localhost:{host_port}" in origins
    assert f"http://127.0.0.1:{host_port}" in origins


def test_published_ports_bind_loopback_only(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for spec in service.get("ports", []):
            assert str(spec).startswith("127.0.0.1:"), f"{name}: {spec}"


def test_grafana_mounts_the_provisioning_and_dashboards(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in grafana["volumes"]}
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./deploy/grafana/dashboards"] == "/etc/grafana/dashboards"
    assert grafana["environment"]["PROMETHEUS_URL"] == "http://prometheus:9090"
    prom = services["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prom["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]


def test_readme_explains_running_on_real_kafka(services: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = readme.index("## Running on real Kafka"), readme.index("## Configuration")
    assert start < end, "the section comes before the generated configuration table"
    section = readme[start:end]
    for needed in ("SYNCPIPE_JWT_SECRET", "GRAFANA_ADMIN_PASSWORD", "SYNCPIPE_KAFKA_BOOTSTRAP"):
        assert needed in section
    host_ports = {port for s in services.values() for port in published(s).values()}
    for port in re.findall(r"localhost:(\d+)", section):
        assert int(port) in host_ports, f"README: localhost:{port} is not published"
