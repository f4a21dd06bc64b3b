#!/usr/bin/env python3
"""Prints template.yaml as CloudFormation reads it after the SAM transform.

Offline: the aws-sam-translator package (installed with the SAM CLI into
.venv) runs the same transform CloudFormation runs at deploy time. Local
CodeUri paths are replaced by placeholder S3 URIs, as `sam package` would.
No account, credentials or network are needed; the region only picks the
partition SAM writes into the ARNs it generates.

Usage: .venv/bin/python scripts/sam-translate.py [TEMPLATE] > out.json
"""

import json
import os
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The template names policies by ARN only, so no IAM lookup is needed."""

    def load(self):
        return {}


def main(argv):
    path = argv[0] if argv else "template.yaml"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://artifacts/{name}.zip"
    out = transform(template, {}, NoManagedPolicies())
    json.dump(out, sys.stdout, indent=1, sort_keys=True, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
