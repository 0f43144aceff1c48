#!/usr/bin/env python3
"""Builds the signed API Gateway webhook POST events from events/whatsapp/text.json.

    python3 scripts/gen_apigw_events.py           # (re)write the files
    python3 scripts/gen_apigw_events.py --check   # exit 1 if they are stale

Writes events/apigw/webhook_post_text.json (plain body) and
events/apigw/webhook_post_text_base64.json (isBase64Encoded: true). Both
carry X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256 over the exact body
bytes (UTF-8; for the base64 event, the decoded bytes), keyed with the local
development app secret "dev-app-secret", as Meta signs its webhook POSTs.

The body is text.json re-serialised compactly, as Meta sends it (one line, no
spaces), with its non-ASCII characters kept as raw UTF-8: a verifier that
re-encodes the body instead of hashing its bytes fails on it.

Standard library only; run with any Python 3.
"""

import base64
import hashlib
import hmac
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = ROOT / "events" / "whatsapp" / "text.json"
OUT_DIR = ROOT / "events" / "apigw"

APP_SECRET = b"dev-app-secret"
API_ID = "r7x9k2m4qa"
REGION = "us-east-1"
DOMAIN = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
META_IP = "173.252.95.13"
META_UA = "facebookexternalua"
TIME = "21/Nov/2024:00:00:00 +0000"
TIME_EPOCH_MS = 1732147200123


def body_bytes() -> bytes:
    doc = json.loads(SOURCE.read_text(encoding="utf-8"))
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def post_event(body: bytes, request_id: str, trace: str, base64_encoded: bool) -> dict:
    sig256 = hmac.new(APP_SECRET, body, hashlib.sha256).hexdigest()
    sig1 = hmac.new(APP_SECRET, body, hashlib.sha1).hexdigest()
    return {
        "version": "2.0",
        "routeKey": "POST /webhooks/whatsapp",
        "rawPath": "/webhooks/whatsapp",
        "rawQueryString": "",
        "headers": {
            "accept": "*/*",
            "accept-encoding": "deflate, gzip",
            "content-length": str(len(body)),
            "content-type": "application/json",
            "host": DOMAIN,
            "user-agent": META_UA,
            "x-amzn-trace-id": trace,
            "x-forwarded-for": META_IP,
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
            "x-hub-signature": "sha1=" + sig1,
            "x-hub-signature-256": "sha256=" + sig256,
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "domainName": DOMAIN,
            "domainPrefix": API_ID,
            "http": {
                "method": "POST",
                "path": "/webhooks/whatsapp",
                "protocol": "HTTP/1.1",
                "sourceIp": META_IP,
                "userAgent": META_UA,
            },
            "requestId": request_id,
            "routeKey": "POST /webhooks/whatsapp",
            "stage": "$default",
            "time": TIME,
            "timeEpoch": TIME_EPOCH_MS,
        },
        "body": base64.b64encode(body).decode("ascii") if base64_encoded else body.decode("utf-8"),
        "isBase64Encoded": base64_encoded,
    }


def render(event: dict) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def outputs() -> dict:
    body = body_bytes()
    return {
        OUT_DIR / "webhook_post_text.json": render(
            post_event(body, "BqZ3sgKpIAMEb1Q=", "Root=1-673e7880-4f1c2a9b6d3e5f7081a2b3c4", False)
        ),
        OUT_DIR / "webhook_post_text_base64.json": render(
            post_event(body, "BqZ3tiN7oAMEcHw=", "Root=1-673e7880-5a2b3c4d6e7f8091a2b3c4d5", True)
        ),
    }


def main(argv: list) -> int:
    check = "--check" in argv[1:]
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if check:
            stale.append(path.relative_to(ROOT))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        names = ", ".join(str(p) for p in stale)
        print(f"stale: {names}; run: python3 scripts/gen_apigw_events.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
