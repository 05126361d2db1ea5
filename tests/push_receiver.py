#!/usr/bin/env python3
"""A Web Push service and browser in one, for tests/push.rs.

Written with implementations the server does not use: `http_ece` decrypts
(RFC 8291 / RFC 8188) and `cryptography` checks the VAPID signature
(RFC 8292). On start it prints one JSON line: the port it listens on
(127.0.0.1) and the subscription keys a browser would give. Then one JSON
line per push it receives: the path, the headers that matter, whether the
VAPID token verifies against the key it names, its claims, and the
decrypted payload.

The path decides the answer: /gone/... answers 410, /flaky/... answers
500 the first time and 201 after, anything else 201.

With `--tls DIR` it serves HTTPS with a certificate for 127.0.0.1 that
it makes and signs itself, written to DIR/ca.pem for the server to trust
(`--push-ca-file`).
"""

import base64
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


PRIVATE = ec.generate_private_key(ec.SECP256R1())
PUBLIC = PRIVATE.public_key().public_bytes(
    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
)
AUTH = bytes(range(16))
FAILED_ONCE = set()


def check_vapid(header):
    """(verified, claims, public key) of an `Authorization: vapid t=..., k=...`."""
    fields = dict(part.strip().split("=", 1) for part in header[len("vapid "):].split(","))
    token, key = fields["t"], fields["k"]
    signed, signature = token.rsplit(".", 1)
    raw = b64decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64decode(key))
    try:
        public.verify(der, signed.encode(), ec.ECDSA(hashes.SHA256()))
        verified = True
    except InvalidSignature:
        verified = False
    header_part, claims_part = signed.split(".")
    alg = json.loads(b64decode(header_part))["alg"]
    return verified and alg == "ES256", json.loads(b64decode(claims_part)), key


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        verified, claims, key = check_vapid(self.headers["Authorization"])
        payload = http_ece.decrypt(body, private_key=PRIVATE, auth_secret=AUTH, version="aes128gcm")
        if self.path.startswith("/gone/"):
            status = 410
        elif self.path.startswith("/flaky/") and self.path not in FAILED_ONCE:
            FAILED_ONCE.add(self.path)
            status = 500
        else:
            status = 201
        record = {
            "path": self.path,
            "status": status,
            "ttl": self.headers["TTL"],
            "urgency": self.headers["Urgency"],
            "topic": self.headers["Topic"],
            "encoding": self.headers["Content-Encoding"],
            "vapid_verified": verified,
            "vapid_claims": claims,
            "vapid_key": key,
            "payload": json.loads(payload),
        }
        print(json.dumps(record), flush=True)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def serve_tls(server, directory):
    """Wraps `server` in TLS with a fresh self-signed certificate."""
    import datetime
    import ipaddress
    import os
    import ssl

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "push test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "ca.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if len(sys.argv) == 3 and sys.argv[1] == "--tls":
    serve_tls(server, sys.argv[2])
print(
    json.dumps({"port": server.server_address[1], "p256dh": b64encode(PUBLIC), "auth": b64encode(AUTH)}),
    flush=True,
)
server.serve_forever()
