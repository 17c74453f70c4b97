"""BatchWriteItem and BatchGetItem. Expectations from DynamoDB's API reference: at most 25
write requests and 100 keys, no duplicate keys, all tables must exist."""

import json
import re

import pytest
from botocore.exceptions import ClientError

from conftest import error_of


def put(pk, **attrs):
    item = {"pk": {"S": pk}}
    item.update({k: {"S": v} for k, v in attrs.items()})
    return {"PutRequest": {"Item": item}}


def delete(pk):
    return {"DeleteRequest": {"Key": {"pk": {"S": pk}}}}


def test_batch_write_puts_and_deletes_over_two_tables(ddb, make_table):
    t1, t2 = make_table(), make_table()
    ddb.put_item(TableName=t1, Item={"pk": {"S": "gone"}})
    r = ddb.batch_write_item(
        RequestItems={t1: [put("a", v="1"), put("b"), delete("gone")], t2: [put("c")]}
    )
    assert r["UnprocessedItems"] == {}
    assert ddb.get_item(TableName=t1, Key={"pk": {"S": "a"}})["Item"]["v"] == {"S": "1"}
    assert "Item" not in ddb.get_item(TableName=t1, Key={"pk": {"S": "gone"}})
    assert "Item" in ddb.get_item(TableName=t2, Key={"pk": {"S": "c"}})


@pytest.mark.deviation(moto="takes more than 25 requests", dynalite="quotes the requests as JSON")
def test_batch_write_takes_25_requests_and_no_more(ddb, make_table):
    t = make_table()
    ddb.batch_write_item(RequestItems={t: [put(f"k{i}") for i in range(25)]})
    assert ddb.scan(TableName=t, Select="COUNT")["Count"] == 25
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={t: [put(f"x{i}") for i in range(26)]})
    code, message = error_of(e)
    assert code == "ValidationException"
    # DynamoDB quotes the request map ("{<table>=[...]}") before the constraint.
    assert re.fullmatch(
        r"1 validation error detected: Value '\{" + re.escape(t) + r"=\[.+\]\}' at 'requestItems' "
        r"failed to satisfy constraint: Map value must satisfy constraint: \[Member must have "
        r"length less than or equal to 25, Member must have length greater than or equal to 1\]",
        message,
    ), message
    assert ddb.scan(TableName=t, Select="COUNT")["Count"] == 25, "nothing of a refused batch"


@pytest.mark.deviation(moto="accepts duplicate keys")
def test_batch_write_refuses_duplicate_keys(ddb, make_table):
    t = make_table()
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={t: [put("a"), delete("a")]})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "duplicates" in message


def test_batch_write_to_a_missing_table(ddb, make_table):
    t = make_table()
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={t: [put("a")], "no-such-table": [put("b")]})
    assert error_of(e)[0] == "ResourceNotFoundException"
    assert "Item" not in ddb.get_item(TableName=t, Key={"pk": {"S": "a"}})


@pytest.mark.deviation(moto="writes the valid requests of a refused batch")
def test_batch_write_with_an_invalid_item_writes_nothing(ddb, make_table):
    t = make_table()
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={t: [put("a"), {"PutRequest": {"Item": {"x": {"S": "1"}}}}]})
    assert error_of(e)[0] == "ValidationException"
    assert "Item" not in ddb.get_item(TableName=t, Key={"pk": {"S": "a"}})


def test_batch_get_reads_over_two_tables(ddb, make_table):
    t1, t2 = make_table(), make_table()
    ddb.batch_write_item(RequestItems={t1: [put("a", v="1"), put("b")], t2: [put("c")]})
    r = ddb.batch_get_item(
        RequestItems={
            t1: {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}, {"pk": {"S": "missing"}}]},
            t2: {"Keys": [{"pk": {"S": "c"}}], "ConsistentRead": True},
        }
    )
    assert sorted(i["pk"]["S"] for i in r["Responses"][t1]) == ["a", "b"]
    assert [i["pk"]["S"] for i in r["Responses"][t2]] == ["c"]
    assert r["UnprocessedKeys"] == {}


def test_batch_get_attributes_to_get(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "x": {"S": "1"}, "y": {"S": "2"}})
    r = ddb.batch_get_item(RequestItems={t: {"Keys": [{"pk": {"S": "a"}}], "AttributesToGet": ["x"]}})
    assert r["Responses"][t] == [{"x": {"S": "1"}}]


@pytest.mark.deviation(
    dynalite="quotes the keys in the message", moto="names the member in lower case"
)
def test_batch_get_takes_100_keys_and_no_more(ddb, make_table):
    t = make_table()
    keys = [{"pk": {"S": f"k{i}"}} for i in range(101)]
    r = ddb.batch_get_item(RequestItems={t: {"Keys": keys[:100]}})
    assert r["Responses"][t] == []
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={t: {"Keys": keys}})
    # DynamoDB checks the per-table list first; over several tables the message is
    # "Too many items requested".
    assert error_of(e) == (
        "ValidationException",
        f"1 validation error detected: Value at 'RequestItems.{t}.member.Keys' failed to "
        "satisfy constraint: Member must have length less than or equal to 100",
    )
    t2 = make_table()
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={t: {"Keys": keys[:60]}, t2: {"Keys": keys[60:]}})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "Too many items requested" in message


def test_batch_get_refuses_duplicate_keys(ddb, make_table):
    t = make_table()
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={t: {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "a"}}]}})
    assert error_of(e)[0] == "ValidationException"


def test_batch_get_missing_table(ddb):
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={"no-such-table": {"Keys": [{"pk": {"S": "a"}}]}})
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_batch_get_of_large_items_returns_unprocessed_keys_past_16_mb(ddb, make_table):
    t = make_table()
    blob = "x" * (390 * 1024)
    for i in range(50):
        ddb.put_item(TableName=t, Item={"pk": {"S": f"k{i}"}, "b": {"S": blob}})
    keys = [{"pk": {"S": f"k{i}"}} for i in range(50)]
    got, rounds, request = [], 0, {t: {"Keys": keys}}
    while request:
        r = ddb.batch_get_item(RequestItems=request)
        rounds += 1
        got += r["Responses"].get(t, [])
        request = r["UnprocessedKeys"]
    assert sorted(i["pk"]["S"] for i in got) == sorted(f"k{i}" for i in range(50))
    assert rounds >= 2, "50 items of 390 KB do not fit in one 16 MB response"


@pytest.mark.deviation(moto="counts batch capacity its own way and reports it unasked")
def test_batches_report_consumed_capacity_per_table(ddb, make_table):
    t, u = make_table(), make_table()
    w = ddb.batch_write_item(
        RequestItems={t: [put("a"), put("b")], u: [put("c")]}, ReturnConsumedCapacity="TOTAL"
    )
    caps = {c["TableName"]: c["CapacityUnits"] for c in w["ConsumedCapacity"]}
    assert caps == {t: 2.0, u: 1.0}, "a write unit per item of up to 1 KB"
    g = ddb.batch_get_item(
        RequestItems={t: {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}], "ConsistentRead": True}},
        ReturnConsumedCapacity="TOTAL",
    )
    assert g["ConsumedCapacity"] == [{"TableName": t, "CapacityUnits": 2.0}]
    quiet = ddb.batch_write_item(RequestItems={t: [put("d")]})
    assert "ConsumedCapacity" not in quiet


@pytest.mark.parametrize("op", ["BatchGetItem", "BatchWriteItem"])
@pytest.mark.deviation(moto="accepts empty RequestItems", dynalite="words it as a length constraint")
def test_batch_without_request_items(server, op):
    from test_protocol import call

    status, _, body = call(server, op, {"RequestItems": {}})
    assert status == 400
    assert json.loads(body)["message"] == f"The requestItems parameter is required for {op}"


@pytest.mark.deviation(moto="accepts both forms", dynalite="accepts both forms over two tables")
def test_batch_get_uses_one_projection_form_over_all_tables(ddb, make_table):
    t, u = make_table(), make_table()
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(
            RequestItems={
                t: {"Keys": [{"pk": {"S": "a"}}], "ProjectionExpression": "pk"},
                u: {"Keys": [{"pk": {"S": "a"}}], "AttributesToGet": ["pk"]},
            }
        )
    assert error_of(e) == (
        "ValidationException",
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
    )
