"""What provisioning grants: every unit writes only its own keys, nobody but the provisioner configures."""

import re
from urllib.parse import unquote, urlsplit

import pytest

from deploy import credentials as creds
from deploy import dbroles, provision
from deploy.credentials import Credential
from deploy.local import Installation
from shared.settings import PROJECT_ROOT
from shared.units import Units, load_units
from sim import units as sim_units

UNITS = load_units(PROJECT_ROOT / "deploy" / "units")


def test_the_committed_units_files_are_what_the_generator_makes() -> None:
    assert sim_units.generate() == UNITS


def test_the_national_list_has_526_upts_under_33_kanwil_with_stable_unique_ids() -> None:
    assert len(UNITS.upts) == 526
    assert len(UNITS.kanwil) == 33
    ids = [u.upt_id for u in UNITS.upts]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"upt-\d{4}-\d", i) for i in ids)
    assert {u.kanwil_id for u in UNITS.upts} == {k.kanwil_id for k in UNITS.kanwil}
    assert (
        next(u for u in UNITS.upts if u.kabkota_code == "6501").kanwil_id == "kanwil-64"
    )  # Kaltara -> Kaltim


def plan(units: Units = UNITS, namespace: str = "t1-") -> tuple[list, dict]:  # type: ignore[type-arg]
    credentials = provision.plan_credentials(units, namespace, [])
    return credentials, provision.definitions("vh", "admin", credentials)


def test_every_unit_may_only_write_its_own_routing_keys_and_read_its_own_receipts() -> None:
    credentials, defs = plan()
    perms = {p["user"]: p for p in defs["permissions"]}
    topics = {t["user"]: t for t in defs["topic_permissions"]}
    upt = next(c for c in credentials if c.role == "upt" and c.unit_id == "upt-3273-1")
    assert upt.username == "t1-upt-3273-1"
    p, t = perms[upt.username], topics[upt.username]
    assert (p["configure"], p["write"], p["read"]) == ("^$", "^ingest$", r"^receipts\.upt\-3273\-1$")
    assert t["exchange"] == "ingest"
    assert t["read"] == "^$"
    assert re.match(t["write"], "sdp.upt-3273-1.submission")
    assert not re.match(t["write"], "sdp.upt-3273-2.submission")
    assert not re.match(p["read"], "receipts.upt-3273-2")
    assert not re.match(p["write"], "amq.default")  # a direct queue publish would bypass topic checks


def test_services_never_configure_and_only_touch_their_own_queues() -> None:
    credentials, defs = plan()
    perms = {p["user"]: p for p in defs["permissions"]}
    for c in credentials:
        if c.role == "service":
            assert perms[c.username]["configure"] == "^$"
            assert re.match(perms[c.username]["read"], f"{c.unit_id}.anything")
            assert not re.match(perms[c.username]["read"], "registry.sdp") or c.unit_id == "registry"
    assert perms["admin"]["configure"] == ".*"


def test_known_passwords_are_kept_and_new_units_get_new_ones() -> None:
    first = provision.plan_credentials(UNITS, "", [])
    again = provision.plan_credentials(UNITS, "", first)
    assert first == again
    assert len({c.password for c in first}) == len(first)


def test_rabbitmq_password_hash_format() -> None:
    import base64
    import hashlib

    encoded = provision.rabbit_password_hash("rahasia", salt=b"\x01\x02\x03\x04")
    raw = base64.b64decode(encoded)
    assert raw[:4] == b"\x01\x02\x03\x04"
    assert raw[4:] == hashlib.sha256(b"\x01\x02\x03\x04rahasia").digest()


def test_each_service_gets_a_database_role_named_after_the_database_and_keeps_its_password() -> None:
    assert not [c for c in provision.plan_credentials(UNITS, "", []) if c.role == "database"]
    first = provision.plan_credentials(UNITS, "", [], "simpul_test_1")
    roles = [c for c in first if c.role == "database"]
    assert [(c.unit_id, c.username) for c in roles] == [
        (s, f"simpul_test_1_{s}") for s in ("registry", "dedup", "consolidator", "monitor")
    ]
    roles = [c for c in roles if c.unit_id == "consolidator"]
    assert provision.plan_credentials(UNITS, "", first, "simpul_test_1") == first
    other = provision.plan_credentials(UNITS, "", first, "simpul_test_2")
    assert creds.find(other, "database", "consolidator").password != roles[0].password


def test_role_names_stay_within_postgres_identifier_length_and_distinct() -> None:
    long_a, long_b = "simpul_" + "a" * 60, "simpul_" + "a" * 59 + "b"
    names = {dbroles.role_name(d, "consolidator") for d in (long_a, long_b)}
    assert len(names) == 2
    assert all(len(n) <= 63 and n.endswith("_consolidator") for n in names)


def test_a_service_connects_as_its_own_role() -> None:
    known = [
        Credential("service", "consolidator", "svc-consolidator", "amqp-pw"),
        Credential("service", "registry", "svc-registry", "amqp-pw"),
        Credential("database", "consolidator", "simpul_consolidator", "p@ss/w:rd"),
    ]
    base = "postgresql://postgres@db.example:6543/simpul?sslmode=disable"
    url = urlsplit(creds.database_url(base, known, "consolidator"))
    assert (url.username, unquote(url.password or "")) == ("simpul_consolidator", "p@ss/w:rd")
    assert (url.hostname, url.port, url.path, url.query) == ("db.example", 6543, "/simpul", "sslmode=disable")
    inst = Installation(database_url=base)
    assert urlsplit(inst.service_env("consolidator", known)["DATABASE_URL"]).username == "simpul_consolidator"
    with pytest.raises(KeyError, match="make provision"):  # a service's role not provisioned yet
        creds.database_url(base, known, "registry")
    with pytest.raises(KeyError, match="make provision"):
        creds.database_url(base, known[:2], "consolidator")


def test_each_compose_service_connects_as_the_role_its_provision_step_makes() -> None:
    import yaml

    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    args = provision.parser().parse_args(compose["provision"]["command"][3:])
    for service in creds.DATABASE_ROLE_SERVICES:
        role = dbroles.role_name(dbroles.database_name(args.database_url), service)
        url = urlsplit(compose[service]["environment"]["DATABASE_URL"])
        assert url.username == role
        assert url.path == urlsplit(args.database_url).path
        # with_credentials swaps in the role's password from the credentials file
        assert compose[service]["command"][3] == service
    assert set(creds.DATABASE_ROLE_SERVICES) == {"registry", "dedup", "consolidator", "monitor"}


def test_an_open_files_limit_too_low_for_the_queues_is_told_with_what_to_change() -> None:
    from deploy.provision import open_files_advice

    advice = open_files_advice(927, 1_055)  # RabbitMQ's default 1,024 open files, one installation
    assert advice is not None
    assert "927 file handles" in advice
    assert "1,055 queues" in advice
    assert "LimitNOFILE=65536" in advice
    assert "ulimit -n 65536" in advice
    assert open_files_advice(927, 2) is not None  # far below the guidance, even with few queues
    assert open_files_advice(58_982, 2_110) is None  # 65,536 open files
    assert open_files_advice(40_000, 30_000) is not None  # not enough room beside that many queues


def test_an_installation_counts_its_queues_by_type() -> None:
    from deploy.provision import queue_kinds
    from shared import messaging

    units = load_units(PROJECT_ROOT / "deploy" / "units")
    kinds = queue_kinds(units)
    assert kinds["classic"] == len(units.upts) + len(units.dukcapil)  # a receipts queue per sender
    assert kinds["stream"] == 1  # central.records
    assert sum(kinds.values()) == len(messaging.QUEUES) + len(units.upts) + len(units.dukcapil)


def test_every_broker_user_has_connection_and_channel_limits() -> None:
    units = load_units(PROJECT_ROOT / "deploy" / "units").subset({"upt-3273-1", "dukcapil-3273"})
    plan = provision.plan_credentials(units, "", [])
    users = {u["name"]: u for u in provision.definitions("simpul", "admin", plan)["users"]}
    assert users["upt-3273-1"]["limits"] == {"max-connections": 5, "max-channels": 50}
    assert users["dukcapil-3273"]["limits"] == {"max-connections": 5, "max-channels": 50}
    assert users["svc-registry"]["limits"]["max-channels"] >= 100  # a consumer channel per subscriber
    assert users["operator"]["tags"] == ["impersonator"]  # the dead-letter tool replays in a sender's name
    assert all(u["limits"]["max-connections"] > 0 for u in users.values())
    # the monitor reads queue depths from the management API (its own vhost, no more than over AMQP)
    assert users["svc-monitor"]["tags"] == ["management"]
    assert not any(u["tags"] for name, u in users.items() if name not in ("operator", "svc-monitor"))


def test_an_eval_that_returns_an_error_tuple_is_raised_though_rabbitmqctl_exits_0() -> None:
    # printf stands in for rabbitmqctl: it prints its first argument and exits 0, as rabbitmqctl does then
    assert provision.RabbitmqctlBackend(["printf", "ok"]).eval("ok.") == "ok"
    with pytest.raises(RuntimeError, match="could_not_start_listener"):
        provision.RabbitmqctlBackend(["printf", "{error,{could_not_start_listener}}"]).eval("x.")
    with pytest.raises(RuntimeError, match="failed"):
        provision.RabbitmqctlBackend(["false"]).eval("x.")
