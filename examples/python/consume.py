#!/usr/bin/env python3
"""Reads tradecloud-relay's queue with the official Amazon SQS Extended Client for Python.

The relay puts one JSON envelope per message on the queue (standard or FIFO); an envelope too
large for the queue is stored in S3 and the message carries the Extended Client's pointer
instead. `sqs_extended_client` follows that pointer, so this consumer sees every envelope the
same way. See docs/consumers.md for the contract.

    pip install amazon-sqs-extended-client==1.0.1 boto3
    python consume.py --queue-url https://sqs.eu-west-1.amazonaws.com/123456789012/erp-events.fifo

For an emulator (moto, LocalStack) set AWS_ENDPOINT_URL: the Extended Client builds its own S3
client from the environment, so the endpoint must come from there, not from a parameter.

Each envelope is handed to `handle()` (replace it with your ERP import) and the message is
deleted only after `handle()` returned, so a crash re-delivers it. Numbers are read as Python
`Decimal`s: quantities and prices keep every digit Tradecloud sent.

With `--jsonl` it prints each message as one JSON line instead ({"body", "attributes",
"groupId", "deduplicationId"}, the body exactly as received), which the relay's own test reads.
With `--quarantine` the queue is the quarantine queue: each message is a refused request, whose
raw body (base64 in the JSON) is decoded for display.
"""

import argparse
import base64
import json
import sys
from decimal import Decimal

from sqs_extended_client import SQSExtendedClientSession

# The envelope versions this consumer understands (docs/consumers.md, "Versions").
KNOWN_SCHEMAS = {"tradecloud-relay/1"}


def parse(body):
    """The message body as JSON, numbers as exact Decimals (never float)."""
    return json.loads(body, parse_float=Decimal)


def handle(envelope):
    """Your ERP import goes here. Raise to leave the message on the queue for a retry."""
    if envelope["schema"] not in KNOWN_SCHEMAS:
        raise ValueError(f"unknown envelope schema {envelope['schema']!r}")
    print(
        f"{envelope['kind']} {envelope['id']} {envelope.get('eventName') or '-'} "
        f"(version {envelope.get('version')}, via {envelope['source']})"
    )


def handle_quarantined(request):
    """A request the relay authenticated but refused (answered 4xx): show it to an operator."""
    body = base64.b64decode(request["body"])
    print(
        f"{request['receivedAt']} {request['method']} {request['uri']}: {request['reason']} "
        f"({len(body)} bytes: {body[:80]!r})"
    )


def receive(sqs, queue_url, empty_receives, wait_seconds):
    """Yields messages until `empty_receives` receives in a row came back empty."""
    empty = 0
    while empty < empty_receives:
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            MessageAttributeNames=["All"],
            # MessageGroupId and MessageDeduplicationId of FIFO messages.
            AttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        empty = 0 if messages else empty + 1
        yield from messages


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--quarantine", action="store_true", help="the quarantine queue")
    parser.add_argument("--jsonl", action="store_true", help="print messages as JSON lines")
    parser.add_argument("--empty-receives", type=int, default=3,
                        help="stop after this many empty receives in a row")
    parser.add_argument("--wait-seconds", type=int, default=1, help="long-poll wait")
    parser.add_argument("--keep", action="store_true", help="do not delete what was read")
    args = parser.parse_args()

    sqs = SQSExtendedClientSession().client("sqs")
    # The payload stays in S3 for the bucket's lifecycle rule to remove: the extended client
    # deletes it before the message, and a message whose delete then fails (its receipt handle
    # gone stale past the visibility timeout) would come back pointing at nothing.
    sqs.delete_payload_from_s3 = False

    for message in receive(sqs, args.queue_url, args.empty_receives, args.wait_seconds):
        body = message["Body"]
        if args.jsonl:
            system = message.get("Attributes", {})
            print(json.dumps({
                "body": body,
                "attributes": {
                    name: value.get("StringValue")
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "groupId": system.get("MessageGroupId"),
                "deduplicationId": system.get("MessageDeduplicationId"),
            }), flush=True)
        elif args.quarantine:
            handle_quarantined(parse(body))
        else:
            handle(parse(body))
        if not args.keep:
            sqs.delete_message(QueueUrl=args.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
