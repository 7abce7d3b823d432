"""gRPC interop: Python's grpcio (an independent client, another language) against the
grpc_api example.

    python interop/grpc_check.py target/debug/examples/grpc_api

It generates an Ed25519 key with `cryptography`, serves it as a JWKS on loopback, signs
tokens by hand, starts the example with JWKS_URL pointing at it, and calls
grpc.health.v1.Health/Check with valid, missing, expired, scope-less and malformed
credentials. Every failed check is printed and makes the exit status non-zero; nothing
is skipped. Everything binds to 127.0.0.1.
"""

import base64
import http.server
import json
import subprocess
import sys
import threading
import time

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from grpc_health.v1 import health_pb2, health_pb2_grpc

passes = 0
failures = 0


def check(ok, what, detail=None):
    global passes, failures
    if ok:
        passes += 1
        print(f"  ok    {what}")
    else:
        failures += 1
        print(f"  FAIL  {what}: {detail!r}")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main(binary):
    print(f"\n== grpcio {grpc.__version__} calls the grpc_api example")
    key = Ed25519PrivateKey.generate()
    x = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jwks = json.dumps(
        {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "py-ed25519", "alg": "EdDSA", "x": b64(x)}]}
    ).encode()

    class Jwks(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(jwks)))
            self.end_headers()
            self.wfile.write(jwks)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    jwks_url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"

    def token(exp_in=300, scope=None):
        header = b64(json.dumps({"alg": "EdDSA", "kid": "py-ed25519", "typ": "JWT"}).encode())
        claims = {"iss": "https://grpc-interop.example/", "sub": "python", "aud": "grpc-interop", "exp": int(time.time()) + exp_in}
        if scope:
            claims["scope"] = scope
        payload = b64(json.dumps(claims).encode())
        signature = key.sign(f"{header}.{payload}".encode())
        return f"{header}.{payload}.{b64(signature)}"

    child = subprocess.Popen(
        [binary],
        env={"JWKS_URL": jwks_url, "JWT_ISSUER": "https://grpc-interop.example/", "JWT_AUDIENCE": "grpc-interop", "LISTEN_ADDR": "127.0.0.1:0", "RUST_LOG": "warn"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = child.stdout.readline().strip()
        check(line.startswith("listening on "), "the example prints its address", line)
        address = line.removeprefix("listening on ")
        channel = grpc.insecure_channel(address)
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = health_pb2_grpc.HealthStub(channel)

        def call(service="", authorization=None):
            metadata = [] if authorization is None else [("authorization", authorization)]
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), metadata=metadata, timeout=10)
                return "OK", reply.status
            except grpc.RpcError as e:
                return e.code().name, e.details()

        code, status = call(authorization=f"Bearer {token()}")
        check(code == "OK" and status == health_pb2.HealthCheckResponse.SERVING, "a valid token: SERVING", (code, status))
        check(call()[0] == "UNAUTHENTICATED", "no token: UNAUTHENTICATED", call())
        expired = call(authorization=f"Bearer {token(exp_in=-3600)}")
        check(expired[0] == "UNAUTHENTICATED", "an expired token: UNAUTHENTICATED", expired)
        forged = call(authorization=f"Bearer {token()}x")
        check(forged[0] == "UNAUTHENTICATED", "a bad signature: UNAUTHENTICATED", forged)
        malformed = call(authorization="Bearer a,b")
        check(malformed[0] == "INVALID_ARGUMENT", "a malformed header: INVALID_ARGUMENT", malformed)
        denied = call(service="admin", authorization=f"Bearer {token()}")
        check(denied[0] == "PERMISSION_DENIED", "service admin without scope admin: PERMISSION_DENIED", denied)
        admin = call(service="admin", authorization=f"Bearer {token(scope='admin')}")
        check(admin == ("OK", health_pb2.HealthCheckResponse.SERVING), "service admin with scope admin: SERVING", admin)
        channel.close()
    except Exception as e:  # any surprise is a failure, never a skip
        check(False, "grpc interop run", repr(e))
    finally:
        child.terminate()
        child.wait(timeout=10)
        server.shutdown()
    print(f"\ngrpc: {passes} passed, {failures} failed")
    return 0 if failures == 0 and passes > 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python interop/grpc_check.py <path to the grpc_api example binary>", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
