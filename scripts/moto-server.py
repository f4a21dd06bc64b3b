"""The local AWS API emulator the tests use: moto's server, with DynamoDB
requests handled one at a time.

DynamoDB applies each conditional write atomically, and the ledger's
idempotency rests on that. moto's threaded server checks a condition and
writes the item in two steps, so two concurrent claims of one event can
both succeed there, and a test of that race would pass or fail by chance.
Serialising DynamoDB requests restores the guarantee; every other service
(SQS long polls included) stays concurrent.

Arguments are moto_server's (-H host, -p port, ...).
"""

import threading

import moto.server as server

_run_simple = server.run_simple
_dynamodb = threading.Lock()


def _serialise_dynamodb(app):
    def wrapped(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _dynamodb:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


def _run(host, port, app, **kwargs):
    _run_simple(host, port, _serialise_dynamodb(app), **kwargs)


server.run_simple = _run

if __name__ == "__main__":
    server.main()
