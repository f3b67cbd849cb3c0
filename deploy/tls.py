"""Encryption in transit: a local certificate authority and the broker's certificate, for a demonstration or a
closed network without a CA of its own (a real installation uses its organisation's CA instead).

python -m deploy.tls create DIR [--host NAME ...]    a CA and a server certificate for the broker (make tls)
python -m deploy.tls ensure DIR [--key-owner U:G]     the same unless DIR holds them already (docker-compose)
python -m deploy.tls listen DIR [--port 5671]         the local broker also listens for AMQPS on 127.0.0.1
                                                      until it restarts (rabbitmqctl; for good: its config)

`create` writes `ca.pem` (give it to every client: services, regional senders), `ca.key` (keep it offline),
`server.pem` and `server.key` (the broker's). Clients then connect with
`amqps://user:password@host:5671/vhost?cafile=/path/to/ca.pem`: the broker's certificate is checked against the
CA and its name against the host (the certificate names `localhost`, `127.0.0.1`, `rabbitmq` and `postgres`, plus
`--host`; docker-compose's PostgreSQL serves it too, deploy/postgres/pg_hba.conf).
The stream protocol (the central feed) speaks TLS on 5551 the same way (`rabbitmq-stream+tls://`).
deploy/rabbitmq/tls.conf is the broker's side for docker-compose; the same lines serve any RabbitMQ.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from deploy.provision import RabbitmqctlBackend

# this machine; the servers' names in docker-compose
HOSTS = ("localhost", "127.0.0.1", "rabbitmq", "postgres")
CA_DAYS = 3650
SERVER_DAYS = 825  # what browsers and most TLS clients still accept for a server certificate
FILES = ("ca.pem", "ca.key", "server.pem", "server.key")
_CA_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
)  # fmt: skip


@dataclass(frozen=True)
class Material:
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def certificate(self) -> Path:
        return self.folder / "server.pem"

    @property
    def key(self) -> Path:
        return self.folder / "server.key"


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Simpul (local demonstration)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def create(folder: Path, hosts: tuple[str, ...] = HOSTS, *, now: datetime | None = None) -> Material:
    """A new CA and a server certificate for `hosts` (DNS names or IP addresses), in a new or empty folder.
    Keys are P-256; the private keys are readable by their owner only."""
    folder.mkdir(parents=True, exist_ok=True)
    if any((folder / f).exists() for f in FILES):
        raise FileExistsError(f"{folder} already holds TLS files: choose a new folder")
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)  # a clock a little behind still accepts it
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Simpul local CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(folder / "ca.pem", ca.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(folder / "ca.key", _pem_key(ca_key), 0o600)
    _issue_server(folder, ca, ca_key, hosts, start)
    return Material(folder)


def _issue_server(
    folder: Path,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hosts: tuple[str, ...],
    start: datetime,
) -> None:
    """The servers' key and certificate, for `hosts`, signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(folder / "server.pem", server.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(folder / "server.key", _pem_key(key), 0o600)


def names_of(certificate: Path) -> set[str]:
    """The host names and addresses a certificate is valid for."""
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {
        *alt.get_values_for_type(x509.DNSName),
        *(str(a) for a in alt.get_values_for_type(x509.IPAddress)),
    }


def ensure(folder: Path, hosts: tuple[str, ...] = HOSTS, key_owner: tuple[int, int] | None = None) -> bool:
    """The files in `folder`, made once (True when made now); the broker's key and certificate handed to
    `key_owner` (uid, gid: the broker's user in its container), who alone may read the key."""
    material = Material(folder)
    made = not material.ca.exists()
    if made:
        create(folder, hosts)
    missing = [f for f in FILES if f != "ca.key" and not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {', '.join(missing)}: remove the folder's files to start over"
        )
    lacking = set(hosts) - names_of(material.certificate)
    if lacking and (folder / "ca.key").exists():
        # made by an earlier version for fewer servers (PostgreSQL came later): the same CA signs a new one
        ca = x509.load_pem_x509_certificate(material.ca.read_bytes())
        ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        _issue_server(folder, ca, ca_key, hosts, datetime.now(UTC) - timedelta(minutes=5))
        print(f"the servers' certificate now names {', '.join(sorted(lacking))} too", flush=True)
    elif lacking:
        raise ValueError(
            f"{material.certificate} does not name {', '.join(sorted(lacking))} and there is no ca.key"
        )
    if key_owner is not None:
        _hand_to(material, *key_owner)
    return made


def _hand_to(material: Material, uid: int, gid: int) -> None:
    """The broker's key and certificate to the broker's user, who alone may then read the key."""
    for path in (material.key, material.certificate):
        os.chown(path, uid, gid)


def _erlang_string(text: str) -> str:
    if '"' in text or "\\" in text:
        raise ValueError(f"unsupported character in path: {text!r}")
    return f'"{text}"'


def listener_expression(material: Material, host: str, port: int) -> str:
    """The Erlang expression that makes a running broker accept AMQPS on host:port with these files (server
    authentication only: clients log in with their passwords, as over plain AMQP)."""
    options = ", ".join(
        [
            f"{{cacertfile, {_erlang_string(str(material.ca))}}}",
            f"{{certfile, {_erlang_string(str(material.certificate))}}}",
            f"{{keyfile, {_erlang_string(str(material.key))}}}",
            "{verify, verify_none}",
            "{fail_if_no_peer_cert, false}",
            "{versions, ['tlsv1.3', 'tlsv1.2']}",
        ]
    )
    return f"rabbit_networking:start_ssl_listener({{{_erlang_string(host)}, {port}}}, [{options}], 1)."


def stop_expression(host: str, port: int) -> str:
    return f"rabbit_networking:stop_tcp_listener({{{_erlang_string(host)}, {port}}})."


def readable_by_broker(material: Material, user: str = "rabbitmq") -> None:
    """The broker reads the key as its own user: hand it the server's key (where this runs as root)."""
    if os.geteuid() != 0:
        return
    try:
        import pwd

        entry = pwd.getpwnam(user)
    except KeyError:
        return
    _hand_to(material, entry.pw_uid, entry.pw_gid)
    material.folder.chmod(0o755)  # ca.pem is readable by all already


def listen(
    material: Material, host: str = "127.0.0.1", port: int = 5671, ctl: Sequence[str] = ("rabbitmqctl",)
) -> None:
    """The local broker accepts AMQPS on host:port from now until it restarts (idempotent)."""
    readable_by_broker(material)
    try:
        RabbitmqctlBackend(ctl).eval(listener_expression(material, host, port))
    except RuntimeError as exc:
        if "already_started" not in str(exc):  # listening already: nothing to do
            raise


def stop(host: str = "127.0.0.1", port: int = 5671, ctl: Sequence[str] = ("rabbitmqctl",)) -> None:
    RabbitmqctlBackend(ctl).eval(stop_expression(host, port))


def config_lines(material: Material, port: int = 5671, stream_port: int = 5551) -> str:
    """The same for good: lines for the broker's rabbitmq.conf (AMQPS and the stream protocol over TLS)."""
    return "\n".join(
        [
            f"listeners.ssl.default = {port}",
            f"ssl_options.cacertfile = {material.ca}",
            f"ssl_options.certfile = {material.certificate}",
            f"ssl_options.keyfile = {material.key}",
            "ssl_options.verify = verify_none",
            "ssl_options.fail_if_no_peer_cert = false",
            f"stream.listeners.ssl.default = {stream_port}",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.tls", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("create", help="a local CA and the broker's certificate")
    make.add_argument("folder", type=Path)
    make.add_argument("--host", action="append", default=[], help="another name the broker is reached by")
    once = sub.add_parser("ensure", help="create unless the folder holds them already")
    once.add_argument("folder", type=Path)
    once.add_argument("--host", action="append", default=[], help="another name the broker is reached by")
    once.add_argument("--key-owner", help="UID:GID to own the broker's key and certificate")
    serve = sub.add_parser("listen", help="the local broker accepts AMQPS until it restarts")
    serve.add_argument("folder", type=Path)
    serve.add_argument("--port", type=int, default=5671)
    args = parser.parse_args(argv)
    if args.command == "create":
        try:
            material = create(args.folder, (*HOSTS, *args.host))
        except FileExistsError as exc:
            sys.exit(f"deploy.tls: {exc}")
        print(f"CA: {material.ca} (give it to every client; keep ca.key offline)")
        print(f"broker: {material.certificate}, {material.key}")
        print("for the broker's rabbitmq.conf:\n" + config_lines(material))
        return
    if args.command == "ensure":
        owner: tuple[int, int] | None = None
        if args.key_owner:
            uid, _, gid = args.key_owner.partition(":")
            if not (uid.isdigit() and gid.isdigit()):
                sys.exit("deploy.tls: --key-owner UID:GID (numbers)")
            owner = (int(uid), int(gid))
        made = ensure(args.folder, (*HOSTS, *args.host), owner)
        print(f"{'made' if made else 'kept'}: {args.folder / 'ca.pem'} and the broker's certificate")
        return
    material = Material(args.folder.resolve())
    missing = [f for f in FILES[:1] + FILES[2:] if not (args.folder / f).exists()]
    if missing:
        sys.exit(f"deploy.tls: {args.folder} lacks {', '.join(missing)} (python -m deploy.tls create first)")
    listen(material, port=args.port)
    print(f"the broker accepts AMQPS on 127.0.0.1:{args.port} until it restarts; clients: "
          f"amqps://user:password@localhost:{args.port}/simpul?cafile={material.ca}")  # fmt: skip


if __name__ == "__main__":
    main()
