#!/usr/bin/env python3
"""Cold start, resident memory and size of each function's release binary.

Runs each binary as Lambda would, against a fake Lambda runtime API on
loopback: the time from exec to its first `GET .../invocation/next` is its
cold start (config, secrets, clients, adapters), and its VmRSS then is its
memory after start. Secrets come from moto (MOTO_ENDPOINT must be set, e.g.
`eval "export $(bash scripts/moto.sh start)"`).

    .tools/venv/bin/python scripts/measure_functions.py [target/release]
"""
import http.server
import json
import os
import subprocess
import sys
import threading
import time

import boto3

TARGET = sys.argv[1] if len(sys.argv) > 1 else "target/release"
MOTO = os.environ.get("MOTO_ENDPOINT")
if not MOTO:
    sys.exit("MOTO_ENDPOINT not set: start moto with scripts/moto.sh start")

first_next = {}
lock = threading.Lock()


class Runtime(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/invocation/next"):
            name = self.headers.get("user-agent", "")
            with lock:
                first_next.setdefault(self.server.fn, time.monotonic())
            time.sleep(30)  # never hand out an event: we only time the start
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def serve(fn):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    srv.fn = fn
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


aws = dict(
    AWS_ENDPOINT_URL=MOTO,
    AWS_REGION="us-east-1",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ACCESS_KEY_ID="test",
    AWS_SECRET_ACCESS_KEY="test",
)
sm = boto3.client("secretsmanager", endpoint_url=MOTO, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
arn = sm.create_secret(
    Name=f"charla-measure-{int(time.time())}",
    SecretString=json.dumps({"app_secret": "a", "verify_token": "v", "access_token": "t"}),
)["ARN"]

common = dict(
    CHARLA_TABLE="charla-measure",
    CHARLA_TEXT_QUEUE_URL=f"{MOTO}/123456789012/charla-measure.fifo",
    CHARLA_QUARANTINE_BUCKET="charla-measure",
    CHARLA_CALL_QUEUE_URL=f"{MOTO}/123456789012/charla-measure-calls.fifo",
    CHARLA_ESCALATION_QUEUE_URL=f"{MOTO}/123456789012/charla-measure-escalations.fifo",
    # The profile layer's /opt/agent.toml, from the repository.
    CHARLA_AGENT=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "profiles", "demo", "agent.toml"),
    WHATSAPP_SECRET_ARN=arn,
    CHARLA_ADMIN_KEY_HASHES="a" * 64 + ":admin:read",
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
    AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
    AWS_LAMBDA_LOG_STREAM_NAME="measure",
    AWS_LAMBDA_LOG_GROUP_NAME="measure",
    AWS_LAMBDA_LOG_FORMAT="JSON",
    **aws,
)

print(f"{'function':<12} {'size':>9} {'cold start':>11} {'RSS after start':>16}")
for fn in ["ingestion", "text-ai", "authorizer", "admin"]:
    binary = os.path.join(TARGET, fn)
    srv = serve(fn)
    env = dict(os.environ, **common, AWS_LAMBDA_FUNCTION_NAME=fn,
               AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{srv.server_address[1]}")
    starts = []
    rss = -1
    for _ in range(5):
        first_next.pop(fn, None)
        t0 = time.monotonic()
        p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while fn not in first_next and p.poll() is None and time.monotonic() - t0 < 10:
            time.sleep(0.0005)
        if fn in first_next:
            starts.append((first_next[fn] - t0) * 1000)
            rss = rss_kib(p.pid)
        else:
            err = p.stderr.read().decode()[-400:] if p.poll() is not None else ""
            print(f"{fn}: did not reach the runtime API: {err}")
        p.kill()
        p.wait()
    srv.shutdown()
    size = os.path.getsize(binary)
    starts.sort()
    median = starts[len(starts) // 2] if starts else float("nan")
    print(f"{fn:<12} {size / 1e6:>7.1f}MB {median:>9.1f}ms {rss / 1024:>14.1f}MB")
