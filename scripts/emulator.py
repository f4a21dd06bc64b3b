#!/usr/bin/env python3
"""Runs telehook's AWS side on one machine, for `telehook serve --aws`,
`telehook invoke --aws` and the operations commands.

    up     start the AWS API emulator (moto, as the tests use it), create the
           ledger and templates tables and the job queue with its dead-letter
           queue from template.yaml's own definitions, start the End User
           Messaging stand-in (`telehook sms-stub`), and print the variables
           to export
    env    print those variables again (`eval "$(./scripts/emulator env)"`)
    down   stop both (and wait until they are gone)
    create create the tables and queues on a running emulator
           (`--endpoint URL`) and print their variables as JSON: how the
           test suites, the Lambda harness and `up` all make them

Everything lives in the state directory (default .telehook/emulator): the
logs, the process ids, the `env` file, and the stand-in's outbox, where the
messages "sent" to phones land. Nothing reaches AWS: the variables point the
SDK at the emulator with dummy credentials.

Run it through scripts/emulator, which installs the emulator into .venv and
builds the `telehook` binary first.
"""

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
# The names the resources get here; in AWS, CloudFormation names them.
NAMES = {
    "LedgerTable": "telehook-ledger",
    "TemplatesTable": "telehook-templates",
    "JobQueue": "telehook-jobs.fifo",
    "JobDeadLetterQueue": "telehook-jobs-dlq.fifo",
    "ExpiryQueue": "telehook-expiry-checks",
    "ExpiryDeadLetterQueue": "telehook-expiry-checks-dlq",
    "ReceiptsDeadLetterQueue": "telehook-receipts-dlq",
}
# Queue properties the emulator takes as they are in the template. Server-side
# encryption (SqsManagedSseEnabled, KmsMasterKeyId) is AWS's business, not the
# pipeline's, and is left out.
QUEUE_ATTRIBUTES = [
    "FifoQueue",
    "ContentBasedDeduplication",
    "DelaySeconds",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DeduplicationScope",
    "FifoThroughputLimit",
]


def template_resources(path):
    """The template's resources, with its short-form tags read as
    CloudFormation reads them ({"Ref": ...}, {"Fn::GetAtt": ...})."""
    from samcli.yamlhelper import yaml_parse

    return yaml_parse(Path(path).read_text())["Resources"]


def aws_env(endpoint):
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        # The AWS CLI and boto3 read this one.
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def client(service, endpoint):
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_table(ddb, name, props):
    extra = {}
    # The ledger's byUser index (conversion matches sign-ins by it).
    if props.get("GlobalSecondaryIndexes"):
        extra["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    ddb.create_table(
        TableName=name,
        BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        **extra,
    )
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"],
                "Enabled": bool(ttl["Enabled"]),
            },
        )


def queue_attributes(props, arns):
    attrs = {}
    for key in QUEUE_ATTRIBUTES:
        if key in props:
            value = props[key]
            attrs[key] = str(value).lower() if isinstance(value, bool) else str(value)
    redrive = props.get("RedrivePolicy")
    if redrive:
        target = redrive["deadLetterTargetArn"]
        # {"Fn::GetAtt": ["JobDeadLetterQueue", "Arn"]}, or the short form's
        # "JobDeadLetterQueue.Arn".
        logical = target["Fn::GetAtt"]
        logical = logical[0] if isinstance(logical, list) else logical.split(".")[0]
        attrs["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": arns[logical],
                "maxReceiveCount": int(redrive["maxReceiveCount"]),
            }
        )
    return attrs


def with_overrides(logical, props, overrides):
    """The template's properties of `logical`, with the timings a run may
    shorten: `overrides` holds "JobQueue.VisibilityTimeout" = "1" and
    "JobQueue.RedrivePolicy.maxReceiveCount" = "2" style entries."""
    props = json.loads(json.dumps(props))
    for path, value in overrides.items():
        name, _, rest = path.partition(".")
        if name != logical:
            continue
        *parents, leaf = rest.split(".")
        node = props
        for p in parents:
            node = node[p]
        if leaf not in node:
            sys.exit(f"emulator: {path} is not in the template")
        node[leaf] = value
    return props


def create_resources(endpoint, template, overrides=None):
    """Creates the tables and queues as the template defines them, with
    `overrides` (see with_overrides); returns the pipeline's variables for
    them."""
    overrides = overrides or {}
    resources = template_resources(template)
    props = lambda logical: with_overrides(logical, resources[logical]["Properties"], overrides)
    ddb = client("dynamodb", endpoint)
    for logical in ("LedgerTable", "TemplatesTable"):
        create_table(ddb, NAMES[logical], props(logical))
    sqs = client("sqs", endpoint)
    urls, arns = {}, {}
    # The dead-letter queues first: the redrive policies name them.
    for logical in ("JobDeadLetterQueue", "JobQueue", "ExpiryDeadLetterQueue", "ExpiryQueue",
                    "ReceiptsDeadLetterQueue"):
        attrs = queue_attributes(props(logical), arns)
        url = sqs.create_queue(QueueName=NAMES[logical], Attributes=attrs)["QueueUrl"]
        urls[logical] = url
        arns[logical] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
    return {
        "LEDGER_TABLE": NAMES["LedgerTable"],
        "TEMPLATES_TABLE": NAMES["TemplatesTable"],
        "QUEUE_URL": urls["JobQueue"],
        "DLQ_URL": urls["JobDeadLetterQueue"],
        "EXPIRY_QUEUE_URL": urls["ExpiryQueue"],
        "EXPIRY_DLQ_URL": urls["ExpiryDeadLetterQueue"],
        # Not the pipeline's: where `telehook replay receipts` reads.
        "RECEIPTS_DLQ_URL": urls["ReceiptsDeadLetterQueue"],
    }


def wait_http(url, what, log, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.2)
    sys.exit(f"emulator: {what} did not answer at {url} within {seconds} s; see {log}")


def free_port(port):
    if port:
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, log, state):
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=ROOT, start_new_session=True,
        )
    return proc.pid


# Run as `python -c WATCHDOG OWNER PGID...`: ends the emulator's process
# groups once OWNER (the test or script that started them) is gone, however
# it ended (a panic, a kill, a timeout), and ends itself once they are.
WATCHDOG = """
import os, signal, sys, time
owner, groups = int(sys.argv[1]), [int(g) for g in sys.argv[2:]]
def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
def group_alive(g):
    try:
        os.killpg(g, 0)
        return True
    except ProcessLookupError:
        return False
while alive(owner) and any(group_alive(g) for g in groups):
    time.sleep(0.5)
for g in groups:
    try:
        os.killpg(g, signal.SIGTERM)
    except ProcessLookupError:
        pass
"""


def watchdog(owner, groups):
    proc = subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, str(owner), *map(str, groups)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc.pid


def pids(state):
    path = state / "pids"
    if not path.exists():
        return []
    return [int(p) for p in path.read_text().split()]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # Our own child that exited but was not reaped yet counts as gone.
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def stop(state):
    running = pids(state)
    for pid in running:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    # Gone before returning, so an `up` right after gets the ports back.
    deadline = time.monotonic() + 10
    while any(alive(p) for p in running) and time.monotonic() < deadline:
        time.sleep(0.1)
    (state / "pids").unlink(missing_ok=True)
    (state / "env").unlink(missing_ok=True)


def env_text(variables):
    return "".join(f"export {k}='{v}'\n" for k, v in variables.items())


def up(args):
    state = Path(args.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    stop(state)
    moto_port, stub_port = free_port(args.port), free_port(args.stub_port)
    endpoint = f"http://127.0.0.1:{moto_port}"
    stub_url = f"http://127.0.0.1:{stub_port}"
    outbox = state / "outbox.jsonl"
    started = [
        start(
            [sys.executable, str(ROOT / "scripts/moto-server.py"), "-H", "127.0.0.1",
             "-p", str(moto_port)],
            state / "moto.log", state,
        ),
        start(
            [args.telehook, "sms-stub", "--port", str(stub_port), "--outbox", str(outbox)],
            state / "sms-stub.log", state,
        ),
    ]
    if args.exit_with:
        started.append(watchdog(args.exit_with, list(started)))
    (state / "pids").write_text(" ".join(map(str, started)))
    wait_http(f"{endpoint}/moto-api/", "the AWS emulator", state / "moto.log")
    wait_http(f"{stub_url}/healthz", "the End User Messaging stand-in", state / "sms-stub.log")
    variables = aws_env(endpoint)
    # The SMS client goes to the stand-in, everything else to the emulator.
    variables["AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2"] = stub_url
    overrides = {}
    if args.visibility_timeout is not None:
        overrides["JobQueue.VisibilityTimeout"] = args.visibility_timeout
    variables.update(create_resources(endpoint, args.template, overrides))
    variables.update(
        {
            # A fresh key per emulator: group ids and rate keys only need to
            # be stable while it runs. In AWS it is a Secrets Manager secret.
            "HASH_KEY": secrets.token_hex(32),
            # Any identity: the stand-in takes any, AWS would take yours.
            "ORIGINATION_IDENTITIES": json.dumps({"default": "+12065550100"}),
            "TELEHOOK_BACKEND": "aws",
            # Conversion tracking, with the guard only watching: nothing in
            # this setup types codes in, so every code ends UNUSED.
            "CONVERSIONS": "on",
            "LEARNED_GUARD": "monitor",
        }
    )
    (state / "env").write_text(env_text(variables))
    print(env_text(variables), end="")
    print(
        f"# emulator {endpoint}, End User Messaging stand-in {stub_url}\n"
        f"# messages land in {outbox}; stop with ./scripts/emulator down",
        file=sys.stderr,
    )


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "env", "down", "create"])
    parser.add_argument("--endpoint", help="the running emulator's URL (create)")
    parser.add_argument("--set", action="append", default=[], metavar="RESOURCE.PROPERTY=VALUE",
                        help="a property of a table or queue instead of the template's (create), "
                             "e.g. JobQueue.RedrivePolicy.maxReceiveCount=2")
    parser.add_argument("--state-dir", default=str(ROOT / ".telehook/emulator"))
    parser.add_argument("--port", type=int, default=4566, help="the emulator's (0: any free)")
    parser.add_argument("--stub-port", type=int, default=4567,
                        help="the End User Messaging stand-in's (0: any free)")
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("--telehook", default=str(ROOT / "target/debug/telehook"),
                        help="the telehook binary that runs the stand-in")
    parser.add_argument("--visibility-timeout", type=int, default=None,
                        help="the job queue's visibility timeout instead of the template's "
                             "(shorter makes a crashed dispatcher's jobs come back sooner)")
    parser.add_argument("--exit-with", type=int, default=None, metavar="PID",
                        help="stop the emulator and the stand-in when process PID ends "
                             "(tests pass their own, so nothing outlives them)")
    args = parser.parse_args(argv)
    state = Path(args.state_dir)
    if args.command == "up":
        up(args)
    elif args.command == "create":
        if not args.endpoint:
            sys.exit("emulator: create needs --endpoint")
        overrides = dict(s.split("=", 1) for s in args.set)
        print(json.dumps(create_resources(args.endpoint, args.template, overrides)))
    elif args.command == "env":
        path = state / "env"
        if not path.exists():
            sys.exit("emulator: not running; start it with ./scripts/emulator up")
        print(path.read_text(), end="")
    else:
        stop(state)


if __name__ == "__main__":
    main(sys.argv[1:])
