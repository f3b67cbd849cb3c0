"""The local CA and the broker's certificate (deploy/tls.py), and the stream client's TLS context."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from deploy import tls
from services.consolidator.stream_wire import stream_url, tls_context


def test_the_broker_certificate_is_signed_by_the_new_ca_for_its_names_and_the_keys_are_private(
    tmp_path: Path,
) -> None:
    material = tls.create(tmp_path / "tls", (*tls.HOSTS, "broker.centre.example"))
    ca = x509.load_pem_x509_certificate(material.ca.read_bytes())
    server = x509.load_pem_x509_certificate(material.certificate.read_bytes())
    server.verify_directly_issued_by(ca)  # raises when the signature or issuer does not match
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {
        "localhost",
        "rabbitmq",
        "postgres",
        "broker.centre.example",
    }
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((material.folder / key).stat().st_mode) == 0o600
    # Python's own TLS stack accepts the pair as a server's and trusts the CA
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(material.certificate, material.key)
    assert ssl.create_default_context(cafile=material.ca).cert_store_stats()["x509_ca"] == 1


def test_a_folder_that_already_holds_tls_files_is_never_overwritten(tmp_path: Path) -> None:
    tls.create(tmp_path)
    before = (tmp_path / "ca.key").read_bytes()
    with pytest.raises(FileExistsError):
        tls.create(tmp_path)
    assert (tmp_path / "ca.key").read_bytes() == before


def test_ensure_reissues_a_certificate_made_for_fewer_servers_with_the_same_ca(tmp_path: Path) -> None:
    """A tls volume made before PostgreSQL spoke TLS: its certificate lacks `postgres`; ensure signs a new one
    with the same CA (clients keep their ca.pem) and leaves a complete one alone."""
    old = tls.create(tmp_path / "tls", ("localhost", "127.0.0.1", "rabbitmq"))
    ca_before = old.ca.read_bytes()
    assert not tls.ensure(old.folder)
    assert tls.names_of(old.certificate) == {"localhost", "127.0.0.1", "rabbitmq", "postgres"}
    assert old.ca.read_bytes() == ca_before
    ca = x509.load_pem_x509_certificate(ca_before)
    x509.load_pem_x509_certificate(old.certificate.read_bytes()).verify_directly_issued_by(ca)
    again = old.certificate.read_bytes()
    assert not tls.ensure(old.folder)
    assert old.certificate.read_bytes() == again


def test_the_listener_and_the_broker_configuration_name_the_files() -> None:
    material = tls.Material(Path("/etc/simpul/tls"))
    expression = tls.listener_expression(material, "127.0.0.1", 5671)
    assert expression.startswith('rabbit_networking:start_ssl_listener({"127.0.0.1", 5671}, [')
    assert '{keyfile, "/etc/simpul/tls/server.key"}' in expression
    assert "{verify, verify_none}" in expression  # clients log in with passwords, as over AMQP
    assert (
        tls.stop_expression("127.0.0.1", 5671) == 'rabbit_networking:stop_tcp_listener({"127.0.0.1", 5671}).'
    )
    lines = tls.config_lines(material).splitlines()
    assert "listeners.ssl.default = 5671" in lines
    assert "stream.listeners.ssl.default = 5551" in lines
    with pytest.raises(ValueError, match="unsupported"):
        tls.listener_expression(tls.Material(Path('/srv/a"b')), "127.0.0.1", 5671)


def test_the_stream_client_checks_the_broker_against_the_ca_its_url_names(tmp_path: Path) -> None:
    material = tls.create(tmp_path)
    url = stream_url(f"amqps://pusat:pw@localhost:5671/simpul?cafile={material.ca}", 5551)
    assert url == f"rabbitmq-stream+tls://pusat:pw@localhost:5551/simpul?cafile={material.ca}"
    context = tls_context(url)
    assert context is not None
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert context.cert_store_stats()["x509_ca"] == 1  # the local CA alone
    assert tls_context("rabbitmq-stream://pusat:pw@localhost:5552/simpul") is None
