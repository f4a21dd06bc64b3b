#!/usr/bin/env python3
"""Runs the real Lambda binaries as Lambda would, on one machine.

A minimal Lambda Runtime API (the `/2018-06-01/runtime/invocation/...`
endpoints) hands each binary the events from events/. The AWS calls go to the
local emulator (moto: DynamoDB, SQS; the tables and queues are the
template's, made by scripts/emulator.py) and to the End User Messaging
stand-in, `telehook sms-stub`. It
reports each binary's responses and its peak resident memory (VmHWM), read
from /proc while the process is still alive.

Usage: .venv/bin/python scripts/lambda-harness.py [--release-dir target/release] [--rounds 20]
       .venv/bin/python scripts/lambda-harness.py --cold-first-hook 30

--cold-first-hook N starts N cold ingress instances in OAuth mode against a
local JWKS server that answers after --jwks-latency-ms (100: a fetch from
Okta is a TLS handshake and a round trip), each handling one hook, and reports the first hook's
latency (event handed over to answer received) in two modes: the keys
reachable at init (the ingress loads them there), and the keys unreachable
at init but back before the hook (so the first hook fetches them: how every
cold start worked before the init fetch).

Needs: the binaries built (`cargo build --release --bins`, the `telehook`
command included), and .venv from scripts/test-env (moto and boto3).
"""

import argparse
import glob
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "bench-shared-secret-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RuntimeApi:
    """The Lambda Runtime API, for one function process at a time."""

    def __init__(self):
        self.events = queue.Queue()
        self.responses = {}
        self.errors = {}
        self.done = threading.Event()
        # Set when the function first asks for an event: its init is over.
        self.polled = threading.Event()
        self.handed = {}
        self.answered = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path.endswith("/runtime/invocation/next"):
                    api.polled.set()
                    request_id, payload = api.events.get()
                    api.handed[request_id] = time.perf_counter()
                    body = json.dumps(payload).encode()
                    self.send_response(200)
                    self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                    self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
                    self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
                    self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_error(404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length) if length else b""
                parts = self.path.split("/")
                request_id = parts[-2] if len(parts) > 2 else ""
                api.answered[request_id] = time.perf_counter()
                if self.path.endswith("/response"):
                    api.responses[request_id] = json.loads(body or b"null")
                elif self.path.endswith("/error"):
                    api.errors[request_id] = body.decode(errors="replace")
                self.send_response(202)
                self.end_headers()
                if len(api.responses) + len(api.errors) >= api.expected:
                    api.done.set()

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def load(self, payloads):
        self.responses, self.errors, self.expected = {}, {}, len(payloads)
        self.done.clear()
        for p in payloads:
            self.events.put((str(uuid.uuid4()), p))


def sms_voice_stub(release_dir, workdir):
    """The End User Messaging stand-in, `telehook sms-stub`, on a free port;
    returns the process and its URL."""
    proc = subprocess.Popen(
        [os.path.join(release_dir, "telehook"), "sms-stub", "--port", "0",
         "--outbox", os.path.join(workdir, "sms-stub-outbox.jsonl")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    # Its first line names the URL it listens on.
    first = proc.stdout.readline()
    if "listening on " not in first:
        proc.kill()
        sys.exit(f"telehook sms-stub did not start: {first!r}")
    # Nothing reads its console from here on; the OS may drop it.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, first.split("listening on ", 1)[1].strip()


def start_moto():
    port = free_port()
    proc = subprocess.Popen(
        [os.path.join(ROOT, ".venv/bin/python"), os.path.join(ROOT, "scripts/moto-server.py"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("moto_server did not start")


def setup_aws(url):
    """The tables and queues as template.yaml defines them, made the way
    the emulator run makes them (scripts/emulator.py); returns their
    variables."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import emulator

    return emulator.create_resources(url, os.path.join(ROOT, "template.yaml"))


def events(prefix, rounds):
    payloads = []
    for r in range(rounds):
        for path in sorted(glob.glob(os.path.join(ROOT, "events", prefix + "*.json"))):
            text = open(path).read().replace("{{token}}", SECRET)
            event = json.loads(text)
            if prefix == "ingress-" and isinstance(event.get("body"), str) and not event.get("isBase64Encoded"):
                # A fresh eventId per round, so every round really delivers.
                try:
                    body = json.loads(event["body"])
                    body["eventId"] = f"{body.get('eventId', 'x')}-r{r}"
                    event["body"] = json.dumps(body)
                except (ValueError, TypeError):
                    pass
            payloads.append(event)
    return payloads


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def jwks_server(jwks, latency_ms):
    """Serves a key set at /oauth2/default/v1/keys while state["up"] (503
    otherwise), each answer after latency_ms: a fetch from Okta over the
    internet is a TLS handshake and a round trip, not a loopback call."""
    state = {"up": False, "served": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if not state["up"] or self.path != "/oauth2/default/v1/keys":
                self.send_error(503)
                return
            time.sleep(latency_ms / 1000)
            state["served"] += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(jwks)))
            self.end_headers()
            self.wfile.write(jwks)

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", state


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def cold_first_hook(args, env):
    """The first hook's latency on cold instances, keys loaded at init or not."""
    import tempfile

    cli = os.path.join(args.release_dir, "telehook")
    state_dir = tempfile.mkdtemp(prefix="telehook-harness-")
    jwks = subprocess.check_output([cli, "token", "--jwks", "--state-dir", state_dir]).strip()
    url, keys = jwks_server(jwks, args.jwks_latency_ms)
    issuer = url + "/oauth2/default"
    token = subprocess.check_output([cli, "token", "--state-dir", state_dir, "--issuer", issuer]).decode().strip()
    env = {k: v for k, v in env.items() if not k.startswith("AUTH_")}
    env.update(
        {
            "OKTA_ISSUER": issuer,
            "OKTA_CLIENT_IDS": "telehook-local",
            "OKTA_REQUIRED_SCOPE": "telephony.hook",
            "OKTA_AUDIENCE": "api://default",
        }
    )
    template = open(os.path.join(ROOT, "events", "ingress-sms.json")).read().replace("{{token}}", token)
    report = {}
    for mode, up_at_init in [("keys loaded at init", True), ("keys fetched by the first hook", False)]:
        latencies, statuses, served_at_init = [], {}, 0
        for trial in range(args.cold_first_hook):
            event = json.loads(template)
            body = json.loads(event["body"])
            body["eventId"] = f"cold-{uuid.uuid4().hex[:12]}"
            event["body"] = json.dumps(body)
            runtime = RuntimeApi()
            keys["up"] = up_at_init
            proc = subprocess.Popen(
                [os.path.join(args.release_dir, "ingress")],
                env={**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime.port}"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                served = keys["served"]
                if not runtime.polled.wait(timeout=60):
                    sys.exit("the ingress did not finish its init")
                served_at_init += keys["served"] - served
                keys["up"] = True
                runtime.load([event])
                if not runtime.done.wait(timeout=60):
                    sys.exit("the ingress did not answer its first hook")
            finally:
                proc.kill()
                proc.wait()
                runtime.server.shutdown()
            (rid,) = runtime.handed
            latencies.append((runtime.answered[rid] - runtime.handed[rid]) * 1000)
            code = str((runtime.responses.get(rid) or {}).get("statusCode", "error"))
            statuses[code] = statuses.get(code, 0) + 1
        report[mode] = {
            "instances": len(latencies),
            "keySetsServedDuringInit": served_at_init,
            "keyServerLatencyMs": args.jwks_latency_ms,
            "statusCodes": statuses,
            "firstHookMs": {
                "p50": round(percentile(latencies, 50), 2),
                "p90": round(percentile(latencies, 90), 2),
                "max": round(max(latencies), 2),
                "mean": round(sum(latencies) / len(latencies), 2),
            },
        }
    print(json.dumps(report, indent=2))
    ok = all(r["statusCodes"] == {"200": r["instances"]} for r in report.values())
    sys.exit(0 if ok else 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--release-dir", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--cold-first-hook", type=int, default=0, metavar="N")
    ap.add_argument("--jwks-latency-ms", type=int, default=100)
    args = ap.parse_args()

    moto, moto_url = start_moto()
    try:
        resources = setup_aws(moto_url)
        workdir = tempfile.mkdtemp(prefix="lambda-harness-")
        stub_proc, stub = sms_voice_stub(args.release_dir, workdir)
        env = dict(os.environ)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": "bench",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
                "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
                "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "x",
                "AWS_SECRET_ACCESS_KEY": "x",
                "AWS_ENDPOINT_URL": moto_url,
                "AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2": stub,
                "AUTH_MODE": "header",
                "AUTH_HEADER_NAME": "authorization",
                "AUTH_HEADER_SECRET": "Bearer " + SECRET,
                "HASH_KEY": "bench-hash-key-0123456789",
                "ORIGINATION_IDENTITIES": '{"default": "+12065550100"}',
                # Every round sends to the same sample numbers again.
                "RATE_LIMIT_PER_DESTINATION": "off",
                "RATE_LIMIT_PER_USER": "off",
                "RATE_LIMIT_TOTAL": "off",
                "RUST_LOG": "warn",
            }
        )
        env.update(resources)
        if args.cold_first_hook:
            cold_first_hook(args, env)
        report = {}
        for binary, prefix in [("ingress", "ingress-"), ("dispatcher", "dispatcher-"), ("dlq-replayer", "dlq-replayer")]:
            payloads = events(prefix, args.rounds)
            # A runtime API per binary: a killed process's pending `next` must
            # not take the following binary's events.
            runtime = RuntimeApi()
            runtime.load(payloads)
            proc = subprocess.Popen(
                [os.path.join(args.release_dir, binary)],
                env={**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime.port}"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            finished = runtime.done.wait(timeout=300)
            peak = peak_rss_kib(proc.pid) if proc.poll() is None else None
            proc.kill()
            proc.wait()
            runtime.server.shutdown()
            statuses = {}
            for r in runtime.responses.values():
                key = str(r.get("statusCode", "batchItemFailures" if "batchItemFailures" in r else "report")) if isinstance(r, dict) else "other"
                statuses[key] = statuses.get(key, 0) + 1
            report[binary] = {
                "events": len(payloads),
                "responses": len(runtime.responses),
                "errors": len(runtime.errors),
                "finished": finished,
                "peakRssMiB": round(peak / 1024, 1) if peak else None,
                "responseKinds": statuses,
            }
        print(json.dumps(report, indent=2))
        ok = all(r["finished"] and r["errors"] == 0 and r["peakRssMiB"] for r in report.values())
        sys.exit(0 if ok else 1)
    finally:
        moto.kill()
        if "stub_proc" in locals():
            stub_proc.kill()


if __name__ == "__main__":
    main()
