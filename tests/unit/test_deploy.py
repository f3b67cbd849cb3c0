"""docker-compose.yml and the image cannot be run here (no Docker engine), so their wiring is checked."""

import copy
import json
import re
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from deploy import provision, tls
from shared.settings import PROJECT_ROOT

COMPOSE: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = ("registry", "dedup", "consolidator", "monitor")


def test_the_stack_has_the_servers_provisioning_and_four_services_from_one_image() -> None:
    services = COMPOSE["services"]
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3.10.")
    assert services["postgres"]["image"].startswith("postgres:15.")
    images = {services[s]["image"] for s in (*SERVICES, "provision", "sim")}
    assert images == {"simpul:latest"}
    assert {services[s]["build"]["dockerfile"] for s in (*SERVICES, "provision")} == {"deploy/Dockerfile"}
    assert services["rabbitmq"]["ulimits"]["nofile"]["soft"] >= 65536


def test_services_wait_for_provisioning_which_waits_for_healthy_servers() -> None:
    services = COMPOSE["services"]
    for name in SERVICES:
        assert services[name]["depends_on"]["provision"]["condition"] == "service_completed_successfully"
    assert services["provision"]["depends_on"] == {
        "rabbitmq": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }


def test_each_service_runs_as_its_own_broker_user_and_its_health_check_probes_its_own_port() -> None:
    services = COMPOSE["services"]
    for name in SERVICES:
        spec = services[name]
        assert spec["command"][:4] == ["python", "-m", "deploy.with_credentials", name]
        assert spec["command"][-1] == f"services.{name}"
        env = spec["environment"]
        port = env["WEB_PORT"] if name == "monitor" else env["HEALTH_PORT"]
        check = spec["healthcheck"]["test"]
        assert check[1:4] == ["python", "-m", "shared.health"]
        assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/health/ready", check[-1])


def test_the_provisioning_command_is_one_the_tool_accepts() -> None:
    command = COMPOSE["services"]["provision"]["command"]
    assert command[:3] == ["python", "-m", "deploy.provision"]
    args = provision.parser().parse_args(command[3:])
    assert args.api_url == "http://rabbitmq:15672"
    assert args.receipts_queue_type == "quorum"


def test_the_image_contains_every_package() -> None:
    dockerfile = (PROJECT_ROOT / "deploy" / "Dockerfile").read_text()
    for package in ("shared", "services", "sim", "bench", "deploy"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_prometheus_scrapes_every_services_metrics_port_in_its_own_profile() -> None:
    services = COMPOSE["services"]
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["metrics"]
    assert prometheus["image"].startswith("prom/prometheus:v")
    config = yaml.safe_load((PROJECT_ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {t["names"][0]: t["port"] for t in config["scrape_configs"][0]["dns_sd_configs"]}
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"
    for name in SERVICES:
        env = services[name]["environment"]
        assert targets[name] == int(env["HEALTH_PORT"])
        assert env["HEALTH_HOST"] == "0.0.0.0"  # noqa: S104 (reachable by Prometheus in the compose network)
        published = [p for p in services[name].get("ports", []) if p.endswith(f":{env['HEALTH_PORT']}")]
        assert published == []  # and nowhere else


def test_the_broker_speaks_the_stream_protocol_for_the_central_feed_on_loopback_only() -> None:
    broker = COMPOSE["services"]["rabbitmq"]
    mount = next(v for v in broker["volumes"] if v.endswith(":/etc/rabbitmq/enabled_plugins:ro"))
    plugins = (PROJECT_ROOT / mount.split(":")[0]).read_text()
    assert re.fullmatch(r"\[([a-z_]+,)*[a-z_]+\]\.\n", plugins)  # an Erlang list, as the broker reads it
    assert {"rabbitmq_stream", "rabbitmq_management"} <= set(plugins.strip("[].\n").split(","))
    assert "127.0.0.1:5551:5551" in broker["ports"]  # over TLS (below), published on loopback only
    assert COMPOSE["services"]["consolidator"]["environment"]["FEED_STREAM_PORT"] == "5551"


def test_the_broker_refuses_messages_far_larger_than_the_largest_legitimate_one() -> None:
    broker = COMPOSE["services"]["rabbitmq"]
    mount = next(v for v in broker["volumes"] if v.endswith(".conf:ro"))
    assert mount.split(":")[1].startswith("/etc/rabbitmq/conf.d/")
    conf = (PROJECT_ROOT / mount.split(":")[0]).read_text()
    size = int(re.search(r"^max_message_size = (\d+)$", conf, re.M).group(1))  # type: ignore[union-attr]
    assert 8 * 2**20 <= size <= 64 * 2**20  # above a 5,000-record part, far below the broker's 128 MB default


def test_every_image_from_elsewhere_is_pinned_to_an_exact_version() -> None:
    """A tag like `postgres:15` or `latest` moves under a running installation; only our own image is built."""
    images = [spec["image"] for spec in COMPOSE["services"].values() if spec.get("image") != "simpul:latest"]
    images += re.findall(r"^FROM (\S+)", (PROJECT_ROOT / "deploy" / "Dockerfile").read_text(), re.MULTILINE)
    assert len(images) >= 5
    for image in images:
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+(\.\d+)?(-[\w.-]+)?( AS \w+)?", image), image


def test_dedup_may_load_a_large_gallery_before_its_health_check_counts() -> None:
    check = COMPOSE["services"]["dedup"]["healthcheck"]
    seconds = int(check["start_period"].removesuffix("s"))
    assert seconds >= 300  # ten million people at about 30 s a million


def test_the_compose_broker_speaks_tls_only_and_every_client_checks_it_against_the_local_ca() -> None:
    services = COMPOSE["services"]
    conf = (PROJECT_ROOT / "deploy" / "rabbitmq" / "tls.conf").read_text().splitlines()
    assert {"listeners.tcp = none", "stream.listeners.tcp = none"} <= set(conf)  # no plain listener at all
    assert {"listeners.ssl.default = 5671", "stream.listeners.ssl.default = 5551"} <= set(conf)
    broker = services["rabbitmq"]
    assert "./deploy/rabbitmq/tls.conf:/etc/rabbitmq/conf.d/95-tls.conf:ro" in broker["volumes"]
    assert "tls:/etc/rabbitmq/tls:ro" in broker["volumes"]
    files = {line.split(" = ")[1] for line in conf if line.startswith("ssl_options.") and "file" in line}
    assert files == {f"/etc/rabbitmq/tls/{f}" for f in ("ca.pem", "server.pem", "server.key")}
    assert broker["depends_on"]["tls"]["condition"] == "service_completed_successfully"
    assert sorted(p.split(":")[-1] for p in broker["ports"]) == ["15672", "5551", "5671"]
    # the tls step makes the files once, the broker's user (999 in its image) owning its key
    step = services["tls"]
    assert step["command"][:5] == ["python", "-m", "deploy.tls", "ensure", "/tls"]
    assert step["command"][5:] == ["--key-owner", "999:999"]
    # every client: amqps, the broker's name in the certificate, the CA from the volume every app mounts
    ca = "/app/tls/ca.pem"
    urls = [services["registry"]["environment"]["AMQP_BASE_URL"]]
    urls += [a.split("=", 1)[1] for s in ("provision", "sim", "sim-ektp") for a in services[s]["command"]
             if a.startswith(("--amqp-url=", "--admin-url="))]  # fmt: skip
    assert len(urls) == 4
    for url in urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.hostname, parts.port, parts.query) == (
            "amqps",
            "rabbitmq",
            5671,
            f"cafile={ca}",
        )
    assert all("tls:/app/tls:ro" in services[s]["volumes"] for s in (*SERVICES, "provision", "sim"))
    assert services["consolidator"]["environment"]["FEED_STREAM_PORT"] == "5551"
    assert "tls" in COMPOSE["volumes"]


def test_the_compose_database_accepts_tls_only_and_every_client_checks_it_against_the_local_ca() -> None:
    services = COMPOSE["services"]
    postgres = services["postgres"]
    settings = dict(a.split("=", 1) for a in postgres["command"][1:] if a != "-c")
    assert postgres["command"][0] == "postgres"
    assert settings["ssl"] == "on"
    assert (settings["ssl_cert_file"], settings["ssl_key_file"]) == ("/tls/server.pem", "/tls/server.key")
    assert settings["hba_file"] == "/etc/postgresql/pg_hba.conf"
    assert "./deploy/postgres/pg_hba.conf:/etc/postgresql/pg_hba.conf:ro" in postgres["volumes"]
    assert "tls:/tls:ro" in postgres["volumes"]
    assert postgres["depends_on"]["tls"]["condition"] == "service_completed_successfully"
    # over the network only `hostssl` lines: a connection without TLS matches none and is refused
    lines = [line.split() for line in (PROJECT_ROOT / "deploy" / "postgres" / "pg_hba.conf").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]  # fmt: skip
    assert {line[0] for line in lines} == {"local", "hostssl"}
    # the certificate names the database's host in the compose network
    assert "postgres" in tls.HOSTS
    # every client: verify-full (the CA checked, and the host against the certificate), the CA every app mounts
    urls = [COMPOSE["x-env"]["DATABASE_URL"], *(services[n]["environment"]["DATABASE_URL"] for n in SERVICES)]
    urls += [a.split("=", 1)[1] for a in services["provision"]["command"] if a.startswith("--database-url=")]
    assert len(urls) == 6
    for url in urls:
        parts = urlsplit(url)
        assert (parts.hostname, parts.query) == (
            "postgres",
            "sslmode=verify-full&sslrootcert=/app/tls/ca.pem",
        )


def _compose_errors(document: dict[str, Any]) -> str | None:
    """What the Compose specification's parser finds wrong in a compose document (YAML anchors and merge keys
    resolved first, as `docker compose` resolves them), or None."""
    from compose_spec import PyCompose

    try:
        PyCompose.from_json(json.dumps(document))
    except ValueError as problem:
        return str(problem)
    return None


def test_the_compose_file_follows_the_compose_specification() -> None:
    assert _compose_errors(COMPOSE) is None
    # the check can fail: a misspelt key or a value of the wrong kind is refused
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["registry"]["restart"] = "sometimes"
    assert "sometimes" in (_compose_errors(broken) or "")
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["monitor"]["healthcheck"]["tset"] = ["CMD", "true"]
    assert _compose_errors(broken) is not None


@pytest.mark.skipif(
    subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode != 0
    if shutil.which("docker")
    else True,
    reason="no docker CLI with the compose plugin here: the specification's parser checks the file instead",
)
def test_docker_compose_accepts_the_file() -> None:
    done = subprocess.run(
        ["docker", "compose", "-f", str(PROJECT_ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
