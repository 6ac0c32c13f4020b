"""moto's server, with every request handled one at a time.

moto's own `moto_server` runs a threaded server without locking its in-memory backends, so two
conditional writes racing each other may both succeed: DynamoDB never allows that, and our
tests of "exactly one of two concurrent claims wins" must see DynamoDB's behaviour. Serializing
requests behind one lock gives it (moto is CPU-bound under the GIL anyway, so little is lost).

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT [--keep-alive]

moto's server answers every request with `Connection: close`, so each AWS call of a client
opens a new connection. AWS itself keeps connections open, and a Lambda function reuses them
across calls and invocations. `--keep-alive` makes the server speak HTTP/1.1 with persistent
connections, as AWS does (served by waitress instead of werkzeug, whose server closes every
connection on purpose): the benchmarks use it, so that a client's CPU per call is not
dominated by a TCP connect and close per call that production does not pay.
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="HTTP/1.1 with persistent connections (as AWS), not a connection per request",
    )
    args = parser.parse_args()
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
