"""moto's server, with every request handled one at a time.

moto's own `moto_server` runs a threaded server without locking its in-memory backends, so two
conditional writes racing each other may both succeed: DynamoDB never allows that, and our
tests of "exactly one of two concurrent claims wins" must see DynamoDB's behaviour. Serializing
requests behind one lock gives it (moto is CPU-bound under the GIL anyway, so little is lost).

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT [--keep-alive] [--at-scale]

moto's server answers every request with `Connection: close`, so each AWS call of a client
opens a new connection. AWS itself keeps connections open, and a Lambda function reuses them
across calls and invocations. `--keep-alive` makes the server speak HTTP/1.1 with persistent
connections, as AWS does (served by waitress instead of werkzeug, whose server closes every
connection on purpose): the benchmarks use it, so that a client's CPU per call is not
dominated by a TCP connect and close per call that production does not pay.

Two of moto's operations take time in proportion to what it holds, so the poll-cost benchmark
(two items per order in one table, a message per order in one queue) slowed to a crawl long
before its 20,000 orders; `--at-scale` makes both independent of it, with the same answers.
Only the benchmarks use it; the tests run moto as it is.
- `TransactWriteItems` deep-copies every table it touches before it starts, to roll back: over
  20 s a transaction at 4,000 items. Backed up instead: the items the transaction names, which
  is all a transaction can change (DynamoDB streams, which moto's rollback would not undo
  either, are not used here).
- `SendMessage` (and each entry of a batch) reads the queue's attributes for one setting, and
  building them counts the queue's visible, delayed and in-flight messages, a walk of the whole
  queue per message sent. While a message is sent those counts read 0; nothing in sending
  uses them.
"""

import argparse
import os
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class Serialized:
    """WSGI middleware: one request at a time, the response produced inside the lock."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            return list(self.app(environ, start_response))


def rollback_by_item():
    """Makes moto's `TransactWriteItems` back up the items it names instead of whole tables."""
    import moto.dynamodb.models as dynamodb

    real_copy = dynamodb.copy

    class TablesNotCopied:
        """The `copy` module as moto's transaction sees it: a table is "copied" as itself."""

        @staticmethod
        def deepcopy(value, memo=None):
            if isinstance(value, dynamodb.Table):
                return value
            return real_copy.deepcopy(value, memo)

    transact = dynamodb.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        saved = []
        for entry in transact_items:
            for op in entry.values():
                table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                if table is None:
                    continue
                try:
                    hash_key, range_key = self.get_keys_value(table, op.get("Item") or op["Key"])
                    item = table.get_item(hash_key, range_key)
                except Exception:
                    # A malformed entry: moto's own checks refuse it before anything is written.
                    continue
                saved.append((table, hash_key, range_key, real_copy.deepcopy(item)))
        # Requests are serialized (`Serialized`), so nothing else runs while this is swapped.
        dynamodb.copy = TablesNotCopied
        try:
            return transact(self, transact_items)
        except BaseException:
            # Earliest backup last, so an item named twice gets its state from before both.
            for table, hash_key, range_key, item in reversed(saved):
                items = table.items[hash_key] if range_key is not None else table.items
                key = range_key if range_key is not None else hash_key
                if item is None:
                    items.pop(key, None)
                else:
                    items[key] = item
            raise
        finally:
            dynamodb.copy = real_copy

    dynamodb.DynamoDBBackend.transact_write_items = transact_write_items


def sends_without_counting():
    """Makes moto's `SendMessage` skip counting the queue's messages (see the module's doc)."""
    from moto.sqs.models import Queue, SQSBackend

    sending = False

    def uncounted_while_sending(counted):
        return property(lambda queue: 0 if sending else counted.fget(queue))

    for name in (
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    ):
        setattr(Queue, name, uncounted_while_sending(getattr(Queue, name)))

    send = SQSBackend.send_message

    def send_message(self, *args, **kwargs):
        nonlocal sending
        # Requests are serialized (`Serialized`), so no other request sees the flag.
        sending = True
        try:
            return send(self, *args, **kwargs)
        finally:
            sending = False

    SQSBackend.send_message = send_message


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="HTTP/1.1 with persistent connections (as AWS), not a connection per request",
    )
    parser.add_argument(
        "--at-scale",
        action="store_true",
        help="transactions and sends in time independent of the table and queue (benchmarks)",
    )
    args = parser.parse_args()
    if args.at_scale:
        rollback_by_item()
        sends_without_counting()
    app = DomainDispatcherApplication(create_backend_app)
    if args.keep_alive:
        # werkzeug's server closes every connection on purpose; waitress keeps them.
        import waitress

        waitress.serve(Serialized(app), host=args.host, port=args.port, threads=4, _quiet=True)
        return
    run_simple(
        args.host,
        args.port,
        Serialized(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
