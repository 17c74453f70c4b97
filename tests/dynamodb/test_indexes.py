"""Secondary indexes: GlobalSecondaryIndexes and LocalSecondaryIndexes in CreateTable,
DescribeTable's view of them, Query and Scan with IndexName. Expectations from
DynamoDB's developer guide ("Using Global Secondary Indexes", "Local Secondary
Indexes") and the CreateTable / Query API references."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_of, unique


def s(x):
    return {"S": x}


def n(x):
    return {"N": str(x)}


@pytest.fixture
def orders(ddb):
    """Orders by customer (pk) and id (sk); a GSI by status and amount (KEYS_ONLY), a GSI
    by status alone (ALL), an LSI by customer and date (INCLUDE note)."""
    name = unique()
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "amount", "AttributeType": "N"},
            {"AttributeName": "date", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byStatusAmount",
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "amount", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "byStatus",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "byDate",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "date", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]},
            }
        ],
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    items = [
        ("c1", "o1", "open", 30, "2024-03", "a"),
        ("c1", "o2", "open", 5, "2024-01", "b"),
        ("c1", "o3", "shipped", 12, "2024-02", "c"),
        ("c2", "o4", "open", 100, "2024-05", "d"),
        ("c2", "o5", None, 7, None, "e"),  # in no index but the table
    ]
    for pk, sk, status, amount, date, note in items:
        item = {"pk": s(pk), "sk": s(sk), "amount": n(amount), "note": s(note), "extra": s("x")}
        if status:
            item["status"] = s(status)
        if date:
            item["date"] = s(date)
        ddb.put_item(TableName=name, Item=item)
    # Global indexes are read eventually consistently (DynamoDB refuses anything else):
    # one consistent read through the same node first makes it hold every write above.
    ddb.scan(TableName=name, Select="COUNT")
    yield name
    ddb.delete_table(TableName=name)


@pytest.mark.deviation(moto="reports no IndexArn")
def test_describe_table_reports_the_indexes(ddb, orders):
    t = ddb.describe_table(TableName=orders)["Table"]
    assert {d["AttributeName"] for d in t["AttributeDefinitions"]} == {"pk", "sk", "status", "amount", "date"}
    gsis = {g["IndexName"]: g for g in t["GlobalSecondaryIndexes"]}
    assert set(gsis) == {"byStatusAmount", "byStatus"}
    g = gsis["byStatusAmount"]
    assert g["KeySchema"] == [
        {"AttributeName": "status", "KeyType": "HASH"},
        {"AttributeName": "amount", "KeyType": "RANGE"},
    ]
    assert g["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert g["IndexStatus"] == "ACTIVE"
    assert g["IndexArn"].endswith(f"table/{orders}/index/byStatusAmount")
    [lsi] = t["LocalSecondaryIndexes"]
    assert lsi["IndexName"] == "byDate"
    assert lsi["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}


def test_query_a_global_index_in_its_sort_key_order(ddb, orders):
    r = ddb.query(
        TableName=orders,
        IndexName="byStatusAmount",
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": s("open")},
        ConsistentRead=False,
    )
    assert [i["amount"]["N"] for i in r["Items"]] == ["5", "30", "100"]
    # KEYS_ONLY: the table's keys and the index's, nothing else.
    assert r["Items"][0] == {"pk": s("c1"), "sk": s("o2"), "status": s("open"), "amount": n(5)}
    assert r["Count"] == 3


def test_query_a_global_index_backwards_with_a_sort_key_condition(ddb, orders):
    r = ddb.query(
        TableName=orders,
        IndexName="byStatusAmount",
        KeyConditionExpression="#s = :s AND amount > :a",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": s("open"), ":a": n(10)},
        ScanIndexForward=False,
        ConsistentRead=False,
    )
    assert [i["amount"]["N"] for i in r["Items"]] == ["100", "30"]


def test_global_index_pages_carry_the_index_key(ddb, orders):
    kw = dict(
        TableName=orders,
        IndexName="byStatus",
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": s("open")},
        ConsistentRead=False,
        Limit=2,
    )
    first = ddb.query(**kw)
    assert first["Count"] == 2
    assert set(first["LastEvaluatedKey"]) == {"pk", "sk", "status"}
    rest = ddb.query(**kw, ExclusiveStartKey=first["LastEvaluatedKey"])
    got = first["Items"] + rest["Items"]
    assert sorted(i["sk"]["S"] for i in got) == ["o1", "o2", "o4"]
    assert all("extra" in i for i in got), "an ALL index holds whole items"


@pytest.mark.deviation(moto="applies a local index's projection to Select ALL_ATTRIBUTES")
def test_query_a_local_index(ddb, orders):
    r = ddb.query(
        TableName=orders,
        IndexName="byDate",
        KeyConditionExpression="pk = :p AND #d >= :d",
        ExpressionAttributeNames={"#d": "date"},
        ExpressionAttributeValues={":p": s("c1"), ":d": s("2024-02")},
    )
    assert [i["sk"]["S"] for i in r["Items"]] == ["o3", "o1"]
    assert set(r["Items"][0]) == {"pk", "sk", "date", "note"}
    whole = ddb.query(
        TableName=orders,
        IndexName="byDate",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": s("c1")},
        Select="ALL_ATTRIBUTES",
    )
    assert [i["sk"]["S"] for i in whole["Items"]] == ["o2", "o3", "o1"]
    assert all("extra" in i for i in whole["Items"]), "a local index reads whole items"


def test_scan_an_index_returns_only_the_items_it_holds(ddb, orders):
    items = []
    for page in ddb.get_paginator("scan").paginate(
        TableName=orders,
        IndexName="byStatusAmount",
        ConsistentRead=False,
        PaginationConfig={"PageSize": 2},
    ):
        items += page["Items"]
    assert sorted(i["sk"]["S"] for i in items) == ["o1", "o2", "o3", "o4"]
    assert all(set(i) == {"pk", "sk", "status", "amount"} for i in items)


def test_consistent_reads_of_a_global_index_are_refused(ddb, orders):
    with pytest.raises(ClientError) as e:
        ddb.query(
            TableName=orders,
            IndexName="byStatus",
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": s("open")},
            ConsistentRead=True,
        )
    assert error_of(e) == (
        "ValidationException",
        "Consistent reads are not supported on global secondary indexes",
    )


@pytest.mark.deviation(moto="answers ResourceNotFoundException")
def test_an_unknown_index_is_a_validation_error(ddb, orders):
    with pytest.raises(ClientError) as e:
        ddb.query(
            TableName=orders,
            IndexName="nope",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": s("c1")},
        )
    assert error_of(e) == ("ValidationException", "The table does not have the specified index: nope")


@pytest.mark.deviation(moto="does not check index key types")
def test_an_index_key_of_the_wrong_type_is_refused(ddb, orders):
    """By a put, and by an update (whose result is only known when it applies)."""
    for write in (
        lambda: ddb.put_item(TableName=orders, Item={"pk": s("c9"), "sk": s("o9"), "amount": s("lots")}),
        lambda: ddb.update_item(
            TableName=orders,
            Key={"pk": s("c1"), "sk": s("o1")},
            UpdateExpression="SET amount = :a",
            ExpressionAttributeValues={":a": s("lots")},
        ),
    ):
        with pytest.raises(ClientError) as e:
            write()
        code, message = error_of(e)
        assert code == "ValidationException"
        assert message.startswith("One or more parameter values were invalid: Type mismatch for Index Key")
        assert "amount" in message
    assert ddb.get_item(TableName=orders, Key={"pk": s("c1"), "sk": s("o1")})["Item"]["amount"] == n(30)


def test_all_attributes_of_a_keys_only_global_index_are_refused(ddb, orders):
    with pytest.raises(ClientError) as e:
        ddb.query(
            TableName=orders,
            IndexName="byStatusAmount",
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": s("open")},
            Select="ALL_ATTRIBUTES",
            ConsistentRead=False,
        )
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "ALL_ATTRIBUTES is not supported for global secondary index byStatusAmount" in message


@pytest.mark.deviation(moto="accepts a local index on a table without a sort key")
def test_a_local_index_needs_a_table_sort_key(ddb):
    with pytest.raises(ClientError) as e:
        ddb.create_table(
            TableName=unique(),
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "d", "AttributeType": "S"},
            ],
            LocalSecondaryIndexes=[
                {
                    "IndexName": "byD",
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "d", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
    assert error_of(e) == (
        "ValidationException",
        "One or more parameter values were invalid: Table KeySchema does not have a range key, "
        "which is required when specifying a LocalSecondaryIndex",
    )


def test_index_keys_must_be_defined(ddb):
    with pytest.raises(ClientError) as e:
        ddb.create_table(
            TableName=unique(),
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "byG",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
    assert error_of(e) == (
        "ValidationException",
        "One or more parameter values were invalid: Some index key attributes are not defined in "
        "AttributeDefinitions. Keys: [g], AttributeDefinitions: [pk]",
    )


@pytest.mark.deviation(
    moto="projects attributes a global index does not hold",
    dynalite="projects attributes a global index does not hold",
)
def test_a_projection_of_what_a_global_index_does_not_hold_is_refused(ddb, orders):
    with pytest.raises(ClientError) as e:
        ddb.query(
            TableName=orders,
            IndexName="byStatusAmount",
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": s("open")},
            ProjectionExpression="pk, note",
            ConsistentRead=False,
        )
    assert error_of(e) == (
        "ValidationException",
        "One or more parameter values were invalid: Global secondary index byStatusAmount does "
        "not project [note]",
    )
