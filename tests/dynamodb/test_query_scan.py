"""Query and Scan: key conditions, order, Limit and pagination, the 1 MB page limit,
Select, Count/ScannedCount, parallel scan. Expectations from DynamoDB's developer guide
("Query", "Scan", "Paginating table query results", "Parallel scan")."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import error_of


def eq(v):
    return {"ComparisonOperator": "EQ", "AttributeValueList": [v]}


def cond(op, *vs):
    return {"ComparisonOperator": op, "AttributeValueList": list(vs)}


@pytest.fixture
def music(ddb, make_table):
    """Partition "a" with sort keys 1..20, partition "b" with 1..3 (N sort key)."""
    t = make_table(("pk", "S"), ("sk", "N"))
    with_items(ddb, t, [("a", i) for i in range(1, 21)] + [("b", i) for i in range(1, 4)])
    return t


def with_items(ddb, t, keys):
    for i in range(0, len(keys), 25):
        ddb.batch_write_item(
            RequestItems={
                t: [
                    {"PutRequest": {"Item": {"pk": {"S": p}, "sk": {"N": str(s)}, "v": {"S": f"{p}{s}"}}}}
                    for p, s in keys[i : i + 25]
                ]
            }
        )


def sks(items):
    return [int(i["sk"]["N"]) for i in items]


def query_all(ddb, **kw):
    items, pages = [], 0
    while True:
        r = ddb.query(**kw)
        pages += 1
        items += r["Items"]
        if "LastEvaluatedKey" not in r:
            return items, pages
        kw["ExclusiveStartKey"] = r["LastEvaluatedKey"]


def test_query_returns_one_partition_in_sort_key_order(ddb, music):
    r = ddb.query(TableName=music, KeyConditions={"pk": eq({"S": "a"})})
    assert sks(r["Items"]) == list(range(1, 21))
    assert r["Count"] == 20 and r["ScannedCount"] == 20
    assert "LastEvaluatedKey" not in r


def test_query_backwards_with_scan_index_forward_false(ddb, music):
    r = ddb.query(TableName=music, KeyConditions={"pk": eq({"S": "a"})}, ScanIndexForward=False)
    assert sks(r["Items"]) == list(range(20, 0, -1))


@pytest.mark.parametrize(
    "op,args,want",
    [
        ("EQ", ["5"], [5]),
        ("LT", ["3"], [1, 2]),
        ("LE", ["3"], [1, 2, 3]),
        ("GT", ["18"], [19, 20]),
        ("GE", ["18"], [18, 19, 20]),
        ("BETWEEN", ["4", "6"], [4, 5, 6]),
    ],
)
def test_query_sort_key_conditions(ddb, music, op, args, want):
    r = ddb.query(
        TableName=music,
        KeyConditions={"pk": eq({"S": "a"}), "sk": cond(op, *[{"N": a} for a in args])},
    )
    assert sks(r["Items"]) == want


def test_numbers_sort_numerically_not_as_text(ddb, make_table):
    t = make_table(("pk", "S"), ("sk", "N"))
    for n in ["10", "9", "-1", "0.5", "-20", "100"]:
        ddb.put_item(TableName=t, Item={"pk": {"S": "p"}, "sk": {"N": n}})
    r = ddb.query(TableName=t, KeyConditions={"pk": eq({"S": "p"})})
    assert [i["sk"]["N"] for i in r["Items"]] == ["-20", "-1", "0.5", "9", "10", "100"]


def test_begins_with_on_string_sort_keys(ddb, make_table):
    t = make_table(("pk", "S"), ("sk", "S"))
    for s in ["ab", "abc", "abd", "b", "a"]:
        ddb.put_item(TableName=t, Item={"pk": {"S": "p"}, "sk": {"S": s}})
    r = ddb.query(
        TableName=t, KeyConditions={"pk": eq({"S": "p"}), "sk": cond("BEGINS_WITH", {"S": "ab"})}
    )
    assert [i["sk"]["S"] for i in r["Items"]] == ["ab", "abc", "abd"]


def test_binary_sort_keys_order_by_unsigned_bytes(ddb, make_table):
    t = make_table(("pk", "S"), ("sk", "B"))
    values = [b"\xff", b"\x00", b"\x7f", b"\x80", b"\x00\x01", b"\x01"]
    for v in values:
        ddb.put_item(TableName=t, Item={"pk": {"S": "p"}, "sk": {"B": v}})
    r = ddb.query(TableName=t, KeyConditions={"pk": eq({"S": "p"})})
    assert [i["sk"]["B"] for i in r["Items"]] == sorted(values)
    r = ddb.query(
        TableName=t,
        KeyConditions={"pk": eq({"S": "p"}), "sk": cond("BEGINS_WITH", {"B": b"\x00"})},
    )
    assert [i["sk"]["B"] for i in r["Items"]] == [b"\x00", b"\x00\x01"]


def test_query_pages_with_limit_and_exclusive_start_key(ddb, music):
    items, pages = query_all(ddb, TableName=music, KeyConditions={"pk": eq({"S": "a"})}, Limit=6)
    assert sks(items) == list(range(1, 21))
    assert pages >= 4
    r = ddb.query(TableName=music, KeyConditions={"pk": eq({"S": "a"})}, Limit=6)
    assert r["LastEvaluatedKey"] == {"pk": {"S": "a"}, "sk": {"N": "6"}}


def test_query_paginator_backwards(ddb, music):
    pages = ddb.get_paginator("query").paginate(
        TableName=music,
        KeyConditions={"pk": eq({"S": "a"})},
        ScanIndexForward=False,
        PaginationConfig={"PageSize": 7},
    )
    assert sks([i for p in pages for i in p["Items"]]) == list(range(20, 0, -1))


def test_query_select_count_returns_no_items(ddb, music):
    r = ddb.query(TableName=music, KeyConditions={"pk": eq({"S": "b"})}, Select="COUNT")
    assert r["Count"] == 3
    assert "Items" not in r


@pytest.mark.deviation(moto="ignores AttributesToGet")
def test_query_attributes_to_get(ddb, music):
    r = ddb.query(
        TableName=music,
        KeyConditions={"pk": eq({"S": "b"})},
        AttributesToGet=["v"],
        Select="SPECIFIC_ATTRIBUTES",
    )
    assert r["Items"] == [{"v": {"S": "b1"}}, {"v": {"S": "b2"}}, {"v": {"S": "b3"}}]


def test_query_without_key_condition_is_invalid(ddb, music):
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=music)
    assert error_of(e)[0] == "ValidationException"


def test_query_must_name_the_partition_key(ddb, music):
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=music, KeyConditions={"v": eq({"S": "a1"})})
    assert error_of(e)[0] == "ValidationException"


@pytest.mark.deviation(moto="answers Limit 0 with a 500")
def test_query_limit_must_be_positive(server, music):
    from test_protocol import call

    status, _, body = call(
        server, "Query", {"TableName": music, "KeyConditions": {"pk": eq({"S": "a"})}, "Limit": 0}
    )
    assert status == 400
    assert json.loads(body)["__type"].endswith("ValidationException")


def test_query_missing_table(ddb):
    with pytest.raises(ClientError) as e:
        ddb.query(TableName="no-such-table", KeyConditions={"pk": eq({"S": "a"})})
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_query_consistent_read(ddb, music):
    r = ddb.query(TableName=music, KeyConditions={"pk": eq({"S": "b"})}, ConsistentRead=True)
    assert sks(r["Items"]) == [1, 2, 3]


def test_scan_returns_every_item_across_pages(ddb, music):
    items, seen_pages = [], 0
    kw = {"TableName": music, "Limit": 5}
    while True:
        r = ddb.scan(**kw)
        seen_pages += 1
        assert r["ScannedCount"] <= 5
        items += r["Items"]
        if "LastEvaluatedKey" not in r:
            break
        kw["ExclusiveStartKey"] = r["LastEvaluatedKey"]
    assert len(items) == 23
    assert len({(i["pk"]["S"], i["sk"]["N"]) for i in items}) == 23
    assert seen_pages >= 5


def test_scan_select_count(ddb, music):
    r = ddb.scan(TableName=music, Select="COUNT")
    assert r["Count"] == 23 and r["ScannedCount"] == 23
    assert "Items" not in r


def test_parallel_scan_segments_are_disjoint_and_cover_the_table(ddb, music):
    seen = []
    for seg in range(3):
        pages = ddb.get_paginator("scan").paginate(
            TableName=music, Segment=seg, TotalSegments=3, PaginationConfig={"PageSize": 4}
        )
        seen += [(i["pk"]["S"], i["sk"]["N"]) for p in pages for i in p["Items"]]
    assert len(seen) == 23
    assert len(set(seen)) == 23


@pytest.mark.deviation(dynalite="accepts Segment without TotalSegments")
def test_segment_without_total_segments_is_invalid(ddb, music):
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=music, Segment=0)
    assert error_of(e)[0] == "ValidationException"


def test_segment_must_be_below_total_segments(ddb, music):
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=music, Segment=3, TotalSegments=3)
    assert error_of(e)[0] == "ValidationException"


def test_pages_stop_at_1_mb(ddb, make_table):
    t = make_table(("pk", "S"), ("sk", "N"))
    blob = "x" * (100 * 1024)
    for start in range(0, 30, 5):
        ddb.batch_write_item(
            RequestItems={
                t: [
                    {"PutRequest": {"Item": {"pk": {"S": "p"}, "sk": {"N": str(i)}, "b": {"S": blob}}}}
                    for i in range(start, start + 5)
                ]
            }
        )
    r = ddb.scan(TableName=t)
    assert 0 < r["ScannedCount"] < 30
    assert "LastEvaluatedKey" in r
    total = r["ScannedCount"]
    while "LastEvaluatedKey" in r:
        r = ddb.scan(TableName=t, ExclusiveStartKey=r["LastEvaluatedKey"])
        total += r["ScannedCount"]
    assert total == 30
    q = ddb.query(TableName=t, KeyConditions={"pk": eq({"S": "p"})})
    assert 0 < q["Count"] < 30 and "LastEvaluatedKey" in q


@pytest.mark.deviation(moto="pages from any starting key")
def test_starting_key_in_another_partition_is_outside_the_query(ddb, music):
    with pytest.raises(ClientError) as e:
        ddb.query(
            TableName=music,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}},
            ExclusiveStartKey={"pk": {"S": "b"}, "sk": {"N": "1"}},
        )
    assert error_of(e) == (
        "ValidationException",
        "The provided starting key is outside query boundaries based on provided conditions",
    )


@pytest.mark.deviation(moto="pages from any starting key")
def test_starting_key_outside_the_sort_key_condition_is_refused(ddb, music):
    with pytest.raises(ClientError) as e:
        ddb.query(
            TableName=music,
            KeyConditionExpression="pk = :p AND sk > :s",
            ExpressionAttributeValues={":p": {"S": "a"}, ":s": {"N": "10"}},
            ExclusiveStartKey={"pk": {"S": "a"}, "sk": {"N": "5"}},
        )
    assert error_of(e) == (
        "ValidationException",
        "The provided starting key does not match the range key predicate",
    )


@pytest.mark.parametrize(
    "select,projection,message",
    [
        (
            "ALL_ATTRIBUTES",
            {"ProjectionExpression": "v"},
            "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES",
        ),
        (
            "COUNT",
            {"ProjectionExpression": "v"},
            "Cannot specify the ProjectionExpression when choosing to get only the Count",
        ),
        (
            "COUNT",
            {"AttributesToGet": ["v"]},
            "Cannot specify the AttributesToGet when choosing to get only the Count",
        ),
        (
            "SPECIFIC_ATTRIBUTES",
            {},
            "Must specify the AttributesToGet or ProjectionExpression when choosing to get "
            "SPECIFIC_ATTRIBUTES",
        ),
    ],
)
@pytest.mark.deviation(
    dynalite="accepts every Select with every projection",
    moto="wraps a Scan's message in the envelope of a Query's",
)
def test_select_must_agree_with_the_projection(ddb, music, select, projection, message):
    """A Query's message carries the "1 validation error detected: " envelope, a Scan's
    does not."""
    key = {"KeyConditions": {"pk": eq({"S": "a"})}} if "AttributesToGet" in projection else {
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "a"}},
    }
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=music, Select=select, **key, **projection)
    assert error_of(e) == ("ValidationException", "1 validation error detected: " + message)
    if select == "COUNT" and "AttributesToGet" in projection:
        return  # moto words the Scan's differently; the Query's shows the rule
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=music, Select=select, **projection)
    assert error_of(e) == ("ValidationException", message)
