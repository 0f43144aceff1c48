#!/usr/bin/env python3
"""Cold start, resident memory and size of each function's release binary.

Size is the binary as built; zipped is the deployment package Lambda takes
(the binary alone, named `bootstrap`, deflate level 9).

Runs each binary as Lambda would, against a fake Lambda runtime API on
loopback: the time from exec to its first `GET .../invocation/next` is its
cold start (config, secrets, clients, adapters), and its VmRSS then is its
memory after start. Secrets come from moto (MOTO_ENDPOINT must be set, e.g.
`eval "export $(bash scripts/moto.sh start)"`).

    .tools/venv/bin/python scripts/measure_functions.py [target/release]
"""
import http.server
import io
import json
import os
import secrets
import string
import subprocess
import sys
import threading
import time
import zipfile

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
stamp = int(time.time())
arn = sm.create_secret(
    Name=f"charla-measure-{stamp}",
    # chatwoot_api_token: escalation's desk, as on AWS (other functions ignore it).
    SecretString=json.dumps({"app_secret": "a", "verify_token": "v", "access_token": "t",
                             "chatwoot_api_token": "c"}),
)["ARN"]
# media's key salt: 48 letters and digits, as the template generates it.
salt_arn = sm.create_secret(
    Name=f"charla-measure-salt-{stamp}",
    SecretString="".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(48)),
)["ARN"]
# call-trigger's and voice's provider keys: without a key no provider client is built.
voice_arn = sm.create_secret(
    Name=f"charla-measure-voice-{stamp}",
    SecretString=json.dumps({"vapi_api_key": "k", "vapi_webhook_secret": "w", "retell_api_key": "r"}),
)["ARN"]

common = dict(
    CHARLA_TABLE="charla-measure",
    CHARLA_TEXT_QUEUE_URL=f"{MOTO}/123456789012/charla-measure.fifo",
    CHARLA_QUARANTINE_BUCKET="charla-measure",
    CHARLA_CALL_QUEUE_URL=f"{MOTO}/123456789012/charla-measure-calls.fifo",
    CHARLA_ESCALATION_QUEUE_URL=f"{MOTO}/123456789012/charla-measure-escalations.fifo",
    CHARLA_MEDIA_BUCKET="charla-measure-media",
    CHARLA_MEDIA_SALT_SECRET_ARN=salt_arn,
    # escalation with every notifier and the desk configured, as deployed:
    # each is only a client at start, no call to SNS, SES or Chatwoot.
    CHARLA_TIMER_QUEUE_URL=f"{MOTO}/123456789012/charla-measure-timers",
    CHARLA_ESCALATION_TOPIC_ARN="arn:aws:sns:us-east-1:123456789012:charla-measure",
    CHARLA_SES_FROM="charla@example.com",
    CHARLA_SES_TO="desk@example.com",
    CHATWOOT_URL="https://chatwoot.example.com",
    CHATWOOT_ACCOUNT_ID="1",
    CHATWOOT_INBOX_ID="1",
    # Vapi (the default provider) needs its key (from the secret) and these two.
    CHARLA_VOICE_SECRET_ARN=voice_arn,
    CHARLA_VOICE_PROVIDER="vapi",
    VAPI_PHONE_NUMBER_ID="measure-phone",
    VAPI_ASSISTANT_ID="measure-assistant",
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



def zipped_size(binary):
    # In memory: the largest binary is tens of MB.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(binary, "bootstrap")
    return buf.getbuffer().nbytes


FUNCTIONS = ["ingestion", "text-ai", "authorizer", "admin",
             "media", "escalation", "call-trigger", "voice"]

print(f"{'function':<12} {'size':>9} {'zipped':>9} {'cold start':>11} {'RSS after start':>16}")
for fn in FUNCTIONS:
    binary = os.path.join(TARGET, fn)
    if not os.path.exists(binary):
        print(f"{fn}: no binary at {binary}: build it with cargo build --release -p {fn}")
        continue
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
    zipped = zipped_size(binary)
    starts.sort()
    median = starts[len(starts) // 2] if starts else float("nan")
    print(f"{fn:<12} {size / 1e6:>7.1f}MB {zipped / 1e6:>7.1f}MB {median:>9.1f}ms {rss / 1024:>14.1f}MB")
