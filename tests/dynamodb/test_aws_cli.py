"""The README's AWS CLI examples, run as written (only the endpoint ports are changed to
the test cluster's), with their output checked."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import REPO

AWS = str(Path(sys.executable).parent / "aws")


def readme_commands():
    """The `aws dynamodb` commands of README.md's "DynamoDB SDKs" section, in order."""
    text = (REPO / "README.md").read_text()
    section = text.split("## DynamoDB SDKs", 1)[1].split("\n## ", 1)[0]
    commands, current = [], ""
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            if current or line.startswith("aws dynamodb"):
                current += line.rstrip("\\").strip() + " "
                if not line.endswith("\\"):
                    commands.append(current.strip())
                    current = ""
    return commands


def test_readme_aws_cli_examples_work_as_written(server):
    commands = readme_commands()
    ops = [shlex.split(c)[4] for c in commands]
    assert ops == [
        "create-table",
        "put-item",
        "put-item",
        "get-item",
        "query",
        "describe-table",
        "delete-table",
    ], ops
    env = dict(os.environ, AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
    outputs = {}
    for c in commands:
        args = shlex.split(c)
        i = args.index("--endpoint-url") + 1
        node = int(args[i].rsplit(":", 1)[1]) - 8100
        args[i] = server.url(node)
        args[0] = AWS
        r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{c}\n{r.stderr}"
        outputs.setdefault(args[4], []).append(json.loads(r.stdout) if r.stdout.strip() else {})
    assert outputs["create-table"][0]["TableDescription"]["TableName"] == "Songs"
    assert outputs["put-item"] == [{}, {}]
    item = outputs["get-item"][0]["Item"]
    assert item["Year"] == {"N": "2015"} and item["SongTitle"] == {"S": "Call Me Today"}
    q = outputs["query"][0]
    assert q["Count"] == 2
    assert [i["SongTitle"]["S"] for i in q["Items"]] == ["Call Me Today", "Scared of My Shadow"]
    d = outputs["describe-table"][0]["Table"]
    assert d["TableName"] == "Songs" and d["ItemCount"] in (0, 2)
    assert outputs["delete-table"][0]["TableDescription"]["TableName"] == "Songs"
