#!/usr/bin/env python3
"""moto's server with DynamoDB requests handled one at a time.

Usage (what scripts/moto.sh should run instead of moto_server):
    .tools/venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p PORT

moto checks a transaction's conditions and applies its writes without a lock,
and rolls a failed transaction back by restoring a copy of the whole table:
two concurrent TransactWriteItems on one item can both succeed, or the loser's
rollback can erase the winner's writes. Real DynamoDB is atomic. One lock
around each DynamoDB request makes moto behave like it; other services keep
moto's threads (SQS long polls must not block everyone).
"""
import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_lock = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialised_call_action(self):
    with _lock:
        return _call_action(self)


DynamoHandler.call_action = _serialised_call_action

if __name__ == "__main__":
    main(sys.argv[1:])
