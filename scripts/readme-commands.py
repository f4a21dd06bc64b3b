#!/usr/bin/env python3
"""Runs the `aws`, `curl` and `sam` commands of README.md and docs/ as written.

- Every `aws` command runs with the AWS CLI against the local AWS emulator:
  shell blocks whole (with bash), inline code one command at a time. The
  emulator holds stand-ins for a deployed stack: the tables and queues
  `scripts/emulator.py` creates from template.yaml, and a secret or log
  group for every other resource the template keeps on delete, named as
  the stack would name it, plus a replayer function. Placeholders such as
  `<stack-name>` or `<LedgerTableName output>` are filled from them; an
  unknown placeholder fails, so a new command needs a stand-in here.
  What a command is for is checked too: a secret read prints the secret,
  a rotation stores the new value, and after the clean-up block no
  resource the template retains is left.
- The quickstart's block (a token, then `curl`) runs against
  `telehook serve`, and the emulator section's `curl` lines against
  `telehook sms-stub`, with only the port in the URL changed.
- Every `sam` command is parsed by the SAM CLI itself: the arguments, then
  `--help` (it rejects an unknown option or a bad value before printing
  help). Running them needs an AWS account; `sam validate --lint` and
  `sam build` run in scripts/lint-template and scripts/sam-build.
- The `telehook … --stack <stack-name>` lines of the shell blocks run
  against a CloudFormation stack on the emulator whose outputs name the
  stand-ins (and a `DlqReplay` stand-in that ends at once). Every other
  `telehook` command is parsed by a unit test of the CLI, and local mode
  and the emulator path run end to end in the CLI's tests.

Usage: .venv/bin/python scripts/readme-commands.py --telehook target/debug/telehook
"""

import argparse
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from samcli.yamlhelper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import emulator  # noqa: E402  (the emulator's table and queue names)

STACK = "telehook"
# What `cargo run -q -p telehook-cli --` builds and runs; the test already
# has the binary, so the commands run it directly.
CARGO_RUN = re.compile(r"cargo run (-q )?-p telehook-cli --")


# Every page with commands, in the order a reader follows them: the stack's
# clean-up (in the deploy guide) comes last, after every operation on it.
PAGES = [
    "README.md",
    "docs/local-mode.md",
    "docs/how-it-works.md",
    "docs/configuration.md",
    "docs/okta-setup.md",
    "docs/operations.md",
    "docs/cost-and-scale.md",
    "docs/deploying.md",
    "docs/first-code.md",
]


def snippets(readme):
    """(line, kind, text): the ```sh blocks whole, and the inline code spans
    of the prose (a span may wrap over lines)."""
    out, prose, prose_lines = [], [], []
    lines = readme.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            sh = lines[i].startswith("```sh")
            start = i + 1
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1
            if sh:
                out.append((start + 1, "block", "\n".join(lines[start:i])))
            i += 1
            continue
        prose.append(lines[i])
        prose_lines.append(i + 1)
        i += 1
    text = "\n".join(prose)
    parts = text.split("`")
    offset = 0
    for n, part in enumerate(parts):
        if n % 2 == 1:
            line = prose_lines[text.count("\n", 0, offset)]
            out.append((line, "inline", " ".join(part.split())))
        offset += len(part) + 1
    return sorted(out)


def commands_in(text, word):
    """The command lines of a shell text that run `word` (after a pipe too),
    continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        for part in line.split(" | "):
            part = part.strip()
            if part.startswith(word + " "):
                found.append(part)
    return found


class Stack:
    """Stand-ins for a deployed stack's resources on the emulator."""

    def __init__(self, exports):
        self.exports = exports
        self.clients = {}
        self.template = yaml_parse((ROOT / "template.yaml").read_text())
        self.values = {"stack-name": STACK}
        self.retained = []  # (logical id, type, physical id)
        self.secret_arns = []

    def client(self, service):
        if service not in self.clients:
            kwargs = {}
            if service == "pinpoint-sms-voice-v2":
                kwargs["endpoint_url"] = self.exports["AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2"]
            else:
                kwargs["endpoint_url"] = self.exports["AWS_ENDPOINT_URL"]
            # One attempt: a scheduled fault must reach the caller.
            kwargs["config"] = Config(retries={"total_max_attempts": 1})
            self.clients[service] = boto3.client(
                service,
                region_name=self.exports["AWS_DEFAULT_REGION"],
                aws_access_key_id=self.exports["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=self.exports["AWS_SECRET_ACCESS_KEY"],
                **kwargs,
            )
        return self.clients[service]

    def create(self):
        resources = self.template["Resources"]
        physical = {}
        for logical, r in resources.items():
            if r.get("DeletionPolicy") != "Retain":
                continue
            kind = r["Type"]
            if kind == "AWS::Logs::LogGroup":
                name = r["Properties"]["LogGroupName"]["Fn::Sub"].replace("${AWS::StackName}", STACK)
                self.client("logs").create_log_group(logGroupName=name)
                physical[logical] = name
            elif kind == "AWS::SecretsManager::Secret":
                arn = self.client("secretsmanager").create_secret(
                    Name=f"{logical}-{secrets.token_hex(4)}", SecretString=secrets.token_urlsafe(32)
                )["ARN"]
                physical[logical] = arn
                self.secret_arns.append(arn)
            elif kind == "AWS::DynamoDB::Table":
                physical[logical] = emulator.NAMES[logical]
            elif kind == "AWS::SQS::Queue":
                physical[logical] = self.client("sqs").get_queue_url(
                    QueueName=emulator.NAMES[logical]
                )["QueueUrl"]
            else:
                sys.exit(f"readme-commands: no stand-in for {logical} ({kind}), which the stack keeps")
            self.retained.append((logical, kind, physical[logical]))
        self.moto_config()
        physical["DlqReplayerFunction"] = self.replayer()
        physical["DlqReplay"] = self.replay_state_machine()
        physical["JobQueue"] = self.client("sqs").get_queue_url(QueueName=emulator.NAMES["JobQueue"])[
            "QueueUrl"
        ]
        for queue in ("ExpiryQueue", "ExpiryDeadLetterQueue"):
            physical[queue] = self.client("sqs").get_queue_url(QueueName=emulator.NAMES[queue])[
                "QueueUrl"
            ]
        # The receipts topic, which local mode does not need (its
        # dead-letter queue is made with the other queues).
        physical["ReceiptsTopic"] = self.client("sns").create_topic(Name=f"{STACK}-receipts")["TopicArn"]
        physical["ReceiptsDeadLetterQueue"] = self.client("sqs").get_queue_url(
            QueueName=emulator.NAMES["ReceiptsDeadLetterQueue"]
        )["QueueUrl"]
        # Each output that names one of them, by the output's name.
        for name, output in self.template["Outputs"].items():
            ref = output["Value"].get("Ref") if isinstance(output["Value"], dict) else None
            if ref in physical:
                self.values[name] = physical[ref]
        self.cloudformation_stack()

    def cloudformation_stack(self):
        """A stack of the stack's name whose outputs name the stand-ins:
        what `telehook … --stack` reads."""
        template = {
            "Resources": {"Anchor": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "anchor"}}},
            "Outputs": {name: {"Value": value} for name, value in self.values.items() if name != "stack-name"},
        }
        self.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))

    def replay_state_machine(self):
        """`DlqReplay`'s stand-in: it ends at once with a replay's totals."""
        definition = {
            "StartAt": "Done",
            "States": {
                "Done": {
                    "Type": "Pass",
                    "Result": {"moved": 0, "expired": 0, "alreadySent": 0, "failed": 0, "remaining": 0},
                    "End": True,
                }
            },
        }
        return self.client("stepfunctions").create_state_machine(
            name=f"{STACK}-DlqReplay",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/telehook-replay",
        )["stateMachineArn"]

    def moto_config(self):
        """Lambda answers without running code (no Docker here), and Step
        Functions runs executions to their end."""
        import urllib.request

        req = urllib.request.Request(
            self.exports["AWS_ENDPOINT_URL"] + "/moto-api/config",
            data=json.dumps(
                {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}
            ).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(req, timeout=10).read()

    def replayer(self):
        """A function for `aws lambda invoke`."""
        role = self.client("iam").create_role(
            RoleName="telehook-dlq-replayer",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        self.role_arn = role
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as z:
            z.writestr("bootstrap", "")
        name = f"{STACK}-DlqReplayerFunction-{secrets.token_hex(4)}"
        self.client("lambda").create_function(
            FunctionName=name,
            Runtime="provided.al2023",
            Role=role,
            Handler="bootstrap",
            Code={"ZipFile": code.getvalue()},
        )
        return name

    def fill(self, text):
        """The placeholders of a command, filled in."""

        def value(m):
            key = m.group(1)
            name = key.removesuffix(" output")
            if name in self.values:
                return self.values[name]
            if key == "arn":  # "each secret's <arn>": any of them
                return self.secret_arns[0]
            if key == "another role ARN":  # API Gateway's logging role
                return self.role_arn
            if key.startswith("new, "):  # a rotated secret's new value
                return "rotated-" + secrets.token_hex(12)
            raise SystemExit(f"readme-commands: no value for the placeholder <{key}> in: {text}")

        return re.sub(r"<([^<>\n]+)>", value, text).replace("…", "phone-0123456789")

    def gone(self):
        """The retained stand-ins still there after the clean-up."""
        left = []
        for logical, kind, name in self.retained:
            try:
                if kind == "AWS::Logs::LogGroup":
                    groups = self.client("logs").describe_log_groups(logGroupNamePrefix=name)
                    there = any(g["logGroupName"] == name for g in groups["logGroups"])
                elif kind == "AWS::SecretsManager::Secret":
                    there = "DeletedDate" not in self.client("secretsmanager").describe_secret(SecretId=name)
                elif kind == "AWS::DynamoDB::Table":
                    self.client("dynamodb").describe_table(TableName=name)
                    there = True
                else:
                    self.client("sqs").get_queue_attributes(QueueUrl=name)
                    there = True
            except ClientError:
                there = False
            if there:
                left.append(f"{logical} ({name})")
        return left


# AWS CLI v1 (the one on PyPI) ignores AWS_ENDPOINT_URL for SQS: it pins
# the service's public endpoint unless --endpoint-url is on the command
# line. This gives every `aws` call the endpoint the variables name, as v2
# does by itself; the commands stay as written.
AWS_ENDPOINTS = """aws() {
  local url="$AWS_ENDPOINT_URL"
  if [ "$1" = pinpoint-sms-voice-v2 ]; then url="$AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2"; fi
  command aws --endpoint-url "$url" "$@"
}
"""


def run(cmd, env, cwd, check=True):
    if "AWS_ENDPOINT_URL" in env:
        cmd = AWS_ENDPOINTS + cmd
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", cmd],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
    )
    if check and out.returncode != 0:
        raise SystemExit(f"readme-commands: failed ({out.returncode}):\n{cmd}\n{out.stdout}{out.stderr}")
    return out


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--telehook", required=True)
    args = parser.parse_args(argv)
    telehook = str(Path(args.telehook).resolve())
    found = []
    for name in PAGES:
        found += [(f"{name}:{line}", kind, text) for line, kind, text in snippets((ROOT / name).read_text())]
    unlisted = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")} - set(PAGES)
    if unlisted:
        raise SystemExit(f"readme-commands: pages not read: {', '.join(sorted(unlisted))}")
    work = Path(tempfile.mkdtemp(prefix="readme-commands-"))
    venv_bin = str(ROOT / ".venv/bin")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TELEHOOK_"))}
    base["PATH"] = venv_bin + os.pathsep + base.get("PATH", "")
    base["SAM_CLI_TELEMETRY"] = "0"
    counts = {"aws": 0, "curl": 0, "sam": 0, "telehook": 0}

    # sam: parsed by the SAM CLI.
    for line, kind, text in found:
        for cmd in commands_in(text, "sam") if kind == "block" else (
            [text] if text.startswith("sam ") else []
        ):
            cmd = cmd.replace("<stack-name>", STACK).replace("<file>", "events/ingress-sms.json")
            if "<" in cmd:
                raise SystemExit(f"readme-commands: {line}: a placeholder to fill in `{cmd}`")
            if "[" in cmd or "|" in cmd:
                continue
            out = run(cmd + " --help", base, ROOT, check=False)
            if out.returncode != 0 and kind == "inline" and cmd.split()[-1].startswith("-"):
                # Prose naming an option without its value (`sam local
                # invoke -e`): the command parses, and its help lists it.
                words = cmd.split()
                option = words.pop()
                out = run(" ".join(words) + " --help", base, ROOT, check=False)
                if out.returncode == 0 and f"{option}," not in out.stdout and f"{option} " not in out.stdout:
                    raise SystemExit(f"readme-commands: {line}: `{cmd}`: no option {option}")
            if out.returncode != 0:
                raise SystemExit(f"readme-commands: {line}: `{cmd}` does not parse:\n{out.stderr}")
            counts["sam"] += 1

    state = work / "emulator"
    up = subprocess.run(
        [sys.executable, str(ROOT / "scripts/emulator.py"), "up", "--state-dir", str(state),
         "--port", "0", "--stub-port", "0", "--telehook", telehook,
         # However this script ends, the emulator ends with it.
         "--exit-with", str(os.getpid())],
        capture_output=True, text=True, timeout=180,
    )
    if up.returncode != 0:
        raise SystemExit(f"readme-commands: emulator up failed:\n{up.stderr}")
    exports = dict(
        (k, v.strip("'"))
        for k, v in (
            line.removeprefix("export ").split("=", 1)
            for line in up.stdout.splitlines()
            if line.startswith("export ")
        )
    )
    serve = None
    try:
        stack = Stack(exports)
        stack.create()
        aws_env = dict(base)
        aws_env.update({k: v for k, v in exports.items() if k.startswith("AWS_")})

        # aws: blocks whole, inline one by one, in reading order.
        cleaned = False
        for line, kind, text in found:
            ops = [c for c in commands_in(CARGO_RUN.sub("telehook", text), "telehook") if "--stack" in c]
            if kind == "block" and ops:
                # The operations on a deployed stack, found by its outputs.
                for cmd in ops:
                    run(stack.fill(cmd).replace("telehook", telehook, 1), aws_env, ROOT)
                    counts["telehook"] += 1
                    if " templates push " in cmd:
                        items = stack.client("dynamodb").scan(TableName=stack.values["TemplatesTableName"])
                        if not items["Items"]:
                            raise SystemExit(f"readme-commands: {line}: no template pushed")
            if kind == "block" and commands_in(text, "aws"):
                out = run(stack.fill(text), aws_env, work)
                counts["aws"] += len(commands_in(text, "aws"))
                if "delete-table" in text:
                    left = stack.gone()
                    if left:
                        raise SystemExit(
                            f"readme-commands: {line}: the clean-up leaves {', '.join(left)}"
                        )
                    cleaned = True
                if "lambda invoke" in text and not any(work.glob("*.json")):
                    raise SystemExit(f"readme-commands: {line}: no report written")
            elif kind == "inline" and text.startswith("aws "):
                cmd = stack.fill(text)
                out = run(cmd, aws_env, work, check=False)
                counts["aws"] += 1
                if out.returncode == 0:
                    pass
                elif out.returncode in (2, 252) and "the following arguments are required" in out.stderr:
                    # A mention of an operation without its arguments: the
                    # operation exists and only arguments are missing.
                    pass
                elif "UnknownOperationException" in out.stderr and " pinpoint-sms-voice-v2 " in cmd:
                    # The End User Messaging stand-in implements what
                    # telehook calls; the CLI built and sent this request.
                    op = "".join(w.title() for w in cmd.split()[2].split("-"))
                    if op not in out.stderr:
                        raise SystemExit(f"readme-commands: {line}: {out.stderr}")
                else:
                    raise SystemExit(
                        f"readme-commands: {line} failed ({out.returncode}):\n{cmd}\n{out.stderr}"
                    )
                if out.returncode == 0 and "get-secret-value" in cmd:
                    secret_id = cmd.split("--secret-id ")[1].split()[0]
                    want = stack.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
                    if out.stdout.strip() != want:
                        raise SystemExit(f"readme-commands: {line} does not print the secret")
                if out.returncode == 0 and "put-secret-value" in cmd:
                    secret_id = cmd.split("--secret-id ")[1].split()[0]
                    new = re.search(r"--secret-string '([^']*)'", cmd).group(1)
                    got = stack.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
                    if got != new:
                        raise SystemExit(f"readme-commands: {line} does not rotate the secret")
        if not cleaned:
            raise SystemExit("readme-commands: no clean-up block found")

        # curl, inline: the stand-in's faults, and their effect on a send.
        sms = stack.client("pinpoint-sms-voice-v2")

        def send():
            try:
                sms.send_text_message(
                    DestinationPhoneNumber="+12065550123",
                    OriginationIdentity="+12065550100",
                    MessageBody="readme check",
                )
                return "sent"
            except ClientError as e:
                return e.response["Error"]["Code"]

        stub_host = exports["AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2"].removeprefix("http://")
        for line, kind, text in found:
            if kind == "inline" and text.startswith("curl ") and "localhost:4567" in text:
                run(text.replace("localhost:4567", stub_host), base, work)
                counts["curl"] += 1
                result = send()
                want = "sent" if "DELETE" in text else "ThrottlingException"
                if result != want:
                    raise SystemExit(f"readme-commands: {line}: a send then got {result}")

        # curl, the quickstart block: a token, then the hook, against serve.
        serve_env = dict(base)
        serve_env["TELEHOOK_STATE_DIR"] = str(work / "state")
        serve_env["TELEHOOK_PORT"] = "0"
        # The whole test suite shares this machine's cores: the longest
        # budget keeps a slow moment from turning SUCCESSFUL into PENDING.
        serve_env["FAST_PATH_BUDGET_MS"] = "2800"
        serve = subprocess.Popen(
            [telehook, "serve"], env=serve_env, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        port = None
        for out_line in serve.stdout:
            if out_line.startswith("listening on http://127.0.0.1:"):
                port = out_line.strip().rsplit(":", 1)[1]
                break
        if port is None:
            raise SystemExit("readme-commands: telehook serve did not start")
        serve_env["TELEHOOK_PORT"] = port
        quickstart = [t for _, k, t in found if k == "block" and "curl " in t]
        if len(quickstart) != 1:
            raise SystemExit(f"readme-commands: {len(quickstart)} blocks with curl, expected the quickstart's")
        block = CARGO_RUN.sub(telehook, quickstart[0]).replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        out = run(block, serve_env, ROOT)
        answer = json.loads(out.stdout)
        status = answer["commands"][0]["value"][0]["status"]
        if status != "SUCCESSFUL":
            raise SystemExit(f"readme-commands: the quickstart answered {status}")
        counts["curl"] += 1
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(timeout=60)
        subprocess.run(
            [sys.executable, str(ROOT / "scripts/emulator.py"), "down", "--state-dir", str(state)],
            capture_output=True, timeout=60,
        )
        shutil.rmtree(work, ignore_errors=True)

    # Pages without them mean the extraction broke, not that all passed.
    for word, least in (("aws", 12), ("curl", 3), ("sam", 5), ("telehook", 5)):
        if counts[word] < least:
            raise SystemExit(f"readme-commands: only {counts[word]} `{word}` commands found")
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    t0 = time.monotonic()
    code = main(sys.argv[1:])
    print(f"readme-commands: done in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    sys.exit(code)
