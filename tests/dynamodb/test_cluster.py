"""What only a replicated cluster shows: every node takes every request, writes sent to a
follower are forwarded to the leader, ConsistentRead through a follower sees a write made
through another node at once, and an SDK client rides through a leader kill with its own
retries, losing no acknowledged write."""

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import client, eventually

pytestmark = pytest.mark.raft_only


def roles(cluster):
    leader = cluster.leader()
    followers = [i for i in range(len(cluster.addrs)) if i != leader]
    return leader, followers


def test_writes_sent_to_a_follower_are_forwarded_to_the_leader(cluster, make_table):
    leader, followers = roles(cluster)
    f = followers[0]
    t = make_table()
    body = json.dumps({"TableName": t, "Item": {"pk": {"S": "via-follower"}}}).encode()
    req = urllib.request.Request(cluster.url(f) + "/", data=body, method="POST")
    req.add_header("X-Amz-Target", "DynamoDB_20120810.PutItem")
    req.add_header("Content-Type", "application/x-amz-json-1.0")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
        assert r.headers["x-raft-forwarded-from"] == str(f)
    got = client(cluster.url(leader)).get_item(
        TableName=t, Key={"pk": {"S": "via-follower"}}, ConsistentRead=True
    )
    assert "Item" in got


def test_every_node_takes_table_and_item_writes_from_an_sdk(cluster):
    name = "every-node"
    for i in range(3):
        c = client(cluster.url(i))
        c.create_table(
            TableName=f"{name}-{i}",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        c.put_item(TableName=f"{name}-{i}", Item={"pk": {"S": str(i)}})
        c.batch_write_item(
            RequestItems={f"{name}-{i}": [{"PutRequest": {"Item": {"pk": {"S": "b"}}}}]}
        )
    for i in range(3):
        c = client(cluster.url(i))
        for j in range(3):
            r = c.scan(TableName=f"{name}-{j}", ConsistentRead=True)
            assert r["Count"] == 2
    for i in range(3):
        client(cluster.url(i)).delete_table(TableName=f"{name}-{i}")


def test_consistent_read_through_a_follower_sees_a_write_through_another_node(cluster, make_table):
    leader, followers = roles(cluster)
    t = make_table(("pk", "S"), ("sk", "N"))
    writer = client(cluster.url(followers[0]))
    reader = client(cluster.url(followers[1]))
    for i in range(20):
        writer.put_item(TableName=t, Item={"pk": {"S": "p"}, "sk": {"N": str(i)}})
        got = reader.get_item(TableName=t, Key={"pk": {"S": "p"}, "sk": {"N": str(i)}}, ConsistentRead=True)
        assert "Item" in got, f"write {i} not seen by a consistent read on another node"
        q = reader.query(TableName=t, KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}}, ConsistentRead=True)
        assert q["Count"] == i + 1


def test_an_sdk_client_rides_through_a_leader_kill(cluster, make_table):
    """The client talks to a node that stays up; the leader is killed mid-stream. The
    SDK's own retries carry every write through the election; every write it
    acknowledged is there afterwards."""
    t = make_table()
    # A healthy cluster: no follower still catching up on earlier tests' large items.
    cluster.wait_converged()
    leader, followers = roles(cluster)
    survivor = followers[0]
    c = client(cluster.url(survivor), retries={"mode": "standard", "max_attempts": 10})
    acked = []
    try:
        for i in range(30):
            if i == 10:
                cluster.cli("cluster", "kill", str(leader))
            try:
                c.put_item(TableName=t, Item={"pk": {"S": f"k{i}"}, "i": {"N": str(i)}})
                acked.append(i)
            except ClientError as e:  # only if the SDK gave up: not acknowledged
                print(f"write {i} failed after retries: {e}")
        assert acked == list(range(30)), f"the SDK should ride through the election; acked {acked}"
        alive = [i for i in range(3) if i != leader]
        cluster.wait_ready(alive)
        for node in alive:
            r = client(cluster.url(node))
            for i in acked:
                got = r.get_item(TableName=t, Key={"pk": {"S": f"k{i}"}}, ConsistentRead=True)
                assert got.get("Item", {}).get("i") == {"N": str(i)}, f"acked write {i} lost"
    finally:
        cluster.cli("cluster", "start-node", str(leader))
        eventually("the killed node to rejoin", lambda: cluster.alive(leader), 60)
        cluster.wait_ready(range(3))
