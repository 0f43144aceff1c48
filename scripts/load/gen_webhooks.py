#!/usr/bin/env python3
"""Signed WhatsApp webhooks for wrk (`webhooks.lua`), one per line.

Each line is `<x-hub-signature-256>\t<body>`: a text message from its own
user with a fresh wamid, signed with the app secret as Meta signs them, so
that every request is a new turn (no duplicates, no FIFO group waiting on
another). wrk's Lua has no HMAC, hence the file made beforehand.

    python3 scripts/load/gen_webhooks.py 200000 > /tmp/webhooks.tsv

NUMBERS=4 spreads the users over four business numbers (phone_number_id
106540352242922 and the next three): replies are paced per number, and the
demo answers a turn with two messages, so one number at Meta's highest tier
(1,000 messages/s) caps a run at 500 turns/s.
"""

import hashlib
import hmac
import json
import os
import sys
import time
import uuid

count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
secret = os.environ.get("WHATSAPP_APP_SECRET", "dev-app-secret").encode()
run = uuid.uuid4().int % 100_000
now = str(int(time.time()))
numbers = int(os.environ.get("NUMBERS", "1"))
out = sys.stdout
for n in range(count):
    user = f"549{run:05d}{n % 10_000_000:07d}"
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550783881",
                                    "phone_number_id": str(106540352242922 + n % numbers),
                                },
                                "contacts": [{"profile": {"name": "Load"}, "wa_id": user}],
                                "messages": [
                                    {
                                        "from": user,
                                        "id": f"wamid.LOAD{uuid.uuid4().hex}",
                                        "timestamp": now,
                                        "type": "text",
                                        "text": {"body": "hola, ¿cuánto cuesta el plan?"},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    out.write(sig + "\t" + body.decode() + "\n")
