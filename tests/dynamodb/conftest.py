"""The DynamoDB compatibility suite's harness.

The same tests run against three targets, chosen with the environment variable
DDB_TARGET:

- ``raftnosql`` (the default): a real 3-node raft-nosql cluster, started with the
  supervisor (``raft-nosql server --config <tmp>/cluster.toml``) on free loopback ports in
  a temp dir, polled until every node answers and knows the leader, and stopped at the
  end (SIGTERM to the supervisor's pid, which stops its nodes).
- ``moto``: moto's server (``moto_server -p PORT``) from this virtualenv.
- ``dynalite``: dynalite from ``tests/dynamodb/node_modules``.

The references keep the expectations honest: a test that fails on one of them is marked
with ``@pytest.mark.deviation(moto="why")`` (it then runs there as an expected failure),
and a test that only makes sense on a cluster (followers, failover) is marked
``@pytest.mark.raft_only`` and skipped on the references.

No fixed sleeps: everything waits by polling with a deadline.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TARGET = os.environ.get("DDB_TARGET", "raftnosql")
REGION = "us-east-1"

# The SDKs and the AWS CLI need credentials and a region; nothing checks them.
for k, v in {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}.items():
    os.environ.setdefault(k, v)
os.environ.pop("AWS_PROFILE", None)
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(what, f, timeout=60.0, interval=0.05):
    """Calls f until it returns a true value, or fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = f()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - anything means "not yet"
            last = e
        time.sleep(interval)  # poll interval, bounded by the deadline
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last!r})")


def http_json(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def binary():
    if os.environ.get("RAFT_NOSQL_BIN"):
        return os.environ["RAFT_NOSQL_BIN"]
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return str(target_dir / "debug" / "raft-nosql")


class Cluster:
    """A raft-nosql cluster under its supervisor, in a temp dir, on free ports."""

    def __init__(self, n=3):
        self.dir = Path(tempfile.mkdtemp(prefix="ddb-cluster-"))
        self.addrs = [f"127.0.0.1:{free_port()}" for _ in range(n)]
        self.config = self.dir / "cluster.toml"
        lines = [
            f'data_root = "{self.dir / "data"}"',
            'log_level = "info"',
            "",
            "[supervisor]",
            f'control_addr = "127.0.0.1:{free_port()}"',
            "",
            # The default [raft] timing, as `make server` runs it.
        ]
        for i, a in enumerate(self.addrs):
            lines += ["", "[[nodes]]", f"id = {i}", f'addr = "{a}"']
        self.config.write_text("\n".join(lines) + "\n")
        self.log = open(self.dir / "supervisor.out", "wb")
        self.proc = subprocess.Popen(
            [binary(), "server", "--config", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready(range(n))

    def status(self, i):
        return http_json(f"http://{self.addrs[i]}/status")

    def wait_ready(self, nodes, timeout=60.0):
        """Every node in `nodes` answers and names the same leader, which is one of them."""

        def ready():
            assert self.proc.poll() is None, "the supervisor exited; see supervisor.out"
            leaders = {self.status(i).get("leader_id") for i in nodes}
            return len(leaders) == 1 and None not in leaders and leaders.pop() in nodes

        eventually("the cluster to be ready", ready, timeout)

    def wait_converged(self, timeout=120.0):
        """Every node has the same log and has applied all of it (no follower lags)."""

        def converged():
            s = [self.status(i) for i in range(len(self.addrs))]
            logs = {(x["last_log_index"], x["applied"]) for x in s}
            return len(logs) == 1 and s[0]["last_log_index"] == s[0]["applied"]

        eventually("every node to hold the whole log", converged, timeout)

    def leader(self):
        return self.status(0 if self.alive(0) else 1)["leader_id"]

    def alive(self, i):
        try:
            self.status(i)
            return True
        except OSError:
            return False

    def cli(self, *args):
        return subprocess.run(
            [binary(), *args, "--config", str(self.config)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def url(self, i):
        return f"http://{self.addrs[i]}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if os.environ.get("DDB_KEEP_DATA"):
            print(f"cluster data kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class Reference:
    """moto's server or dynalite, one process on a free port."""

    def __init__(self, kind):
        port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"ddb-{kind}-"))
        if kind == "moto":
            cmd = [str(Path(sys.executable).parent / "moto_server"), "-p", str(port)]
        else:
            cli = HERE / "node_modules" / "dynalite" / "cli.js"
            if not cli.exists():
                pytest.exit("dynalite is not installed: run make test-dynamodb-reference", 2)
            cmd = ["node", str(cli), "--port", str(port)]
        self.log = open(self.dir / "server.out", "wb")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.addrs = [f"127.0.0.1:{port}"]

        def up():
            assert self.proc.poll() is None, f"{kind} exited; see {self.dir}/server.out"
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        eventually(f"{kind} to listen", up, 60)

    def url(self, i):
        return f"http://{self.addrs[0]}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "raft_only: needs a raft-nosql cluster (followers, failover)")
    config.addinivalue_line(
        "markers", "deviation(moto=..., dynalite=...): a reference's known deviation from DynamoDB"
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if TARGET != "raftnosql" and item.get_closest_marker("raft_only"):
            item.add_marker(pytest.mark.skip(reason="needs a raft-nosql cluster"))
        m = item.get_closest_marker("deviation")
        if m and TARGET in m.kwargs:
            item.add_marker(pytest.mark.xfail(reason=f"{TARGET} deviates: {m.kwargs[TARGET]}"))


@pytest.fixture(scope="session")
def server():
    s = Cluster() if TARGET == "raftnosql" else Reference(TARGET)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def cluster(server):
    if not isinstance(server, Cluster):
        pytest.skip("needs a raft-nosql cluster")
    return server


def read_your_writes(params, **_):
    """Makes reads strongly consistent unless a test says otherwise: a test reads what it
    just wrote, which DynamoDB guarantees only to consistent reads (an eventually
    consistent read on a follower may not have it yet, as on DynamoDB)."""
    if "RequestItems" not in params:
        params.setdefault("ConsistentRead", True)
        return
    for spec in params["RequestItems"].values():
        if isinstance(spec, dict) and "Keys" in spec:
            spec.setdefault("ConsistentRead", True)


def consistent_by_default(c):
    for op in ("GetItem", "Query", "Scan", "BatchGetItem"):
        c.meta.events.register(f"provide-client-params.dynamodb.{op}", read_your_writes)
    return c


def client(url, **config):
    # The SDK's own retries (as an application would configure them) carry a request
    # through an election on a loaded machine; 4xx errors are never retried.
    config.setdefault("retries", {"mode": "standard", "max_attempts": 10})
    return consistent_by_default(
        boto3.client(
            "dynamodb",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(**config),
        )
    )


@pytest.fixture(scope="session")
def ddb(server):
    """A boto3 client of node 0 (a follower or the leader: both take every request)."""
    return client(server.url(0))


@pytest.fixture(scope="session")
def resource(server):
    r = boto3.resource(
        "dynamodb",
        endpoint_url=server.url(0),
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 10}),
    )
    consistent_by_default(r.meta.client)
    return r


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_table(ddb):
    """Creates tables with unique names: make_table(("pk", "S"), ("sk", "N")) → name."""
    made = []

    def make(hash_key=("pk", "S"), range_key=None, name=None, **kw):
        name = name or unique()
        keys = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
        defs = [{"AttributeName": hash_key[0], "AttributeType": hash_key[1]}]
        if range_key:
            keys.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
            defs.append({"AttributeName": range_key[0], "AttributeType": range_key[1]})
        kw.setdefault("BillingMode", "PAY_PER_REQUEST")
        ddb.create_table(TableName=name, KeySchema=keys, AttributeDefinitions=defs, **kw)
        ddb.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            ddb.delete_table(TableName=name)
        except ddb.exceptions.ResourceNotFoundException:
            pass


def error_of(excinfo):
    """(code, message) of a botocore ClientError."""
    e = excinfo.value.response["Error"]
    return e["Code"], e.get("Message", "")
