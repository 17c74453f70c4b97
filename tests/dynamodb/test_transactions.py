"""Transactions: TransactWriteItems (Put, Update, Delete, ConditionCheck across tables,
all or nothing, CancellationReasons, ClientRequestToken idempotency) and
TransactGetItems. Expectations from DynamoDB's documentation ("Amazon DynamoDB
Transactions: How it works", the TransactWriteItems and TransactGetItems API references)."""

import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import error_of


def n(x):
    return {"N": str(x)}


def s(x):
    return {"S": x}


def get(ddb, t, pk):
    return ddb.get_item(TableName=t, Key={"pk": s(pk)}).get("Item")


def transfer(a, b, amount, table, **kw):
    """Moves `amount` from account a to b if a has enough."""
    return [
        {
            "Update": {
                "TableName": table,
                "Key": {"pk": s(a)},
                "UpdateExpression": "SET balance = balance - :x",
                "ConditionExpression": "balance >= :x",
                "ExpressionAttributeValues": {":x": n(amount)},
                **kw,
            }
        },
        {
            "Update": {
                "TableName": table,
                "Key": {"pk": s(b)},
                "UpdateExpression": "SET balance = balance + :x",
                "ExpressionAttributeValues": {":x": n(amount)},
            }
        },
    ]


@pytest.mark.deviation(dynalite="has no transactions")
def test_every_kind_of_action_across_tables_commits_together(ddb, make_table):
    t1, t2 = make_table(), make_table()
    ddb.put_item(TableName=t1, Item={"pk": s("gone"), "v": n(1)})
    ddb.put_item(TableName=t2, Item={"pk": s("check"), "open": {"BOOL": True}})
    ddb.put_item(TableName=t2, Item={"pk": s("counter"), "n": n(5)})
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": t1, "Item": {"pk": s("new"), "v": n(2)},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Delete": {"TableName": t1, "Key": {"pk": s("gone")}}},
            {"ConditionCheck": {"TableName": t2, "Key": {"pk": s("check")},
                                "ConditionExpression": "#o = :t",
                                "ExpressionAttributeNames": {"#o": "open"},
                                "ExpressionAttributeValues": {":t": {"BOOL": True}}}},
            {"Update": {"TableName": t2, "Key": {"pk": s("counter")},
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": n(1)}}},
        ]
    )
    assert get(ddb, t1, "new") == {"pk": s("new"), "v": n(2)}
    assert get(ddb, t1, "gone") is None
    assert get(ddb, t2, "counter")["n"] == n(6)


@pytest.mark.deviation(dynalite="has no transactions")
def test_a_failed_condition_cancels_everything_with_one_reason_per_action(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": s("alice"), "balance": n(10)})
    ddb.put_item(TableName=t, Item={"pk": s("bob"), "balance": n(0)})
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=list(reversed(transfer("alice", "bob", 50, t))))
    code, message = error_of(e)
    assert code == "TransactionCanceledException"
    assert "[None, ConditionalCheckFailed]" in message
    reasons = e.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert get(ddb, t, "alice")["balance"] == n(10)
    assert get(ddb, t, "bob")["balance"] == n(0)
    ddb.transact_write_items(TransactItems=transfer("alice", "bob", 4, t))
    assert get(ddb, t, "alice")["balance"] == n(6)
    assert get(ddb, t, "bob")["balance"] == n(4)


@pytest.mark.deviation(dynalite="has no transactions")
def test_cancellation_reasons_carry_the_old_item_when_asked(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": s("alice"), "balance": n(1)})
    ddb.put_item(TableName=t, Item={"pk": s("bob"), "balance": n(0)})
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(
            TransactItems=transfer(
                "alice", "bob", 5, t, ReturnValuesOnConditionCheckFailure="ALL_OLD"
            )
        )
    reasons = e.value.response["CancellationReasons"]
    assert reasons[0]["Code"] == "ConditionalCheckFailed"
    assert reasons[0]["Item"] == {"pk": s("alice"), "balance": n(1)}
    assert reasons[1]["Code"] == "None"
    assert "Item" not in reasons[1]


@pytest.mark.deviation(dynalite="has no transactions")
def test_one_item_at_most_once_and_at_most_100_actions(ddb, make_table):
    t = make_table()
    twice = [
        {"Put": {"TableName": t, "Item": {"pk": s("a")}}},
        {"Delete": {"TableName": t, "Key": {"pk": s("a")}}},
    ]
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=twice)
    assert error_of(e)[0] == "ValidationException"
    many = [{"Put": {"TableName": t, "Item": {"pk": s(f"k{i}")}}} for i in range(101)]
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=many)
    assert error_of(e)[0] == "ValidationException"
    assert ddb.scan(TableName=t)["Count"] == 0
    ddb.transact_write_items(TransactItems=many[:100])
    assert ddb.scan(TableName=t)["Count"] == 100


@pytest.mark.deviation(
    dynalite="has no transactions", moto="answers a condition with an undefined value with a 500"
)
def test_bad_actions_are_validation_errors(ddb, make_table):
    t = make_table()
    bad = [
        [{"ConditionCheck": {"TableName": t, "Key": {"pk": s("a")},
                             "ConditionExpression": "a = :v"}}],
        [{"Update": {"TableName": t, "Key": {"pk": s("a")},
                     "UpdateExpression": "SET pk = :v",
                     "ExpressionAttributeValues": {":v": s("b")}}}],
        [{"Put": {"TableName": t, "Item": {"nokey": s("a")}}}],
    ]
    for items in bad:
        with pytest.raises(ClientError) as e:
            ddb.transact_write_items(TransactItems=items)
        assert error_of(e)[0] == "ValidationException", items
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": "no-such-table", "Item": {"pk": s("a")}}}]
        )
    assert error_of(e)[0] == "ResourceNotFoundException"


@pytest.mark.deviation(
    dynalite="has no transactions", moto="ignores ClientRequestToken (applies a retry again)"
)
def test_a_retried_client_request_token_applies_once(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": s("c"), "n": n(0)})
    add = [{"Update": {"TableName": t, "Key": {"pk": s("c")},
                       "UpdateExpression": "ADD n :one",
                       "ExpressionAttributeValues": {":one": n(1)}}}]
    token = uuid.uuid4().hex
    ddb.transact_write_items(TransactItems=add, ClientRequestToken=token)
    ddb.transact_write_items(TransactItems=add, ClientRequestToken=token)
    assert get(ddb, t, "c")["n"] == n(1)
    other = [{"Put": {"TableName": t, "Item": {"pk": s("other")}}}]
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=other, ClientRequestToken=token)
    assert error_of(e)[0] == "IdempotentParameterMismatchException"
    assert get(ddb, t, "other") is None


@pytest.mark.deviation(
    dynalite="has no transactions", moto="ignores ProjectionExpression in TransactGetItems"
)
def test_transact_get_items_reads_every_key_in_order(ddb, make_table):
    t1, t2 = make_table(), make_table()
    ddb.put_item(TableName=t1, Item={"pk": s("a"), "x": n(1), "y": n(2)})
    ddb.put_item(TableName=t2, Item={"pk": s("b"), "z": n(3)})
    r = ddb.transact_get_items(
        TransactItems=[
            {"Get": {"TableName": t2, "Key": {"pk": s("b")}}},
            {"Get": {"TableName": t1, "Key": {"pk": s("missing")}}},
            {"Get": {"TableName": t1, "Key": {"pk": s("a")}, "ProjectionExpression": "#y",
                     "ExpressionAttributeNames": {"#y": "y"}}},
        ],
        ReturnConsumedCapacity="TOTAL",
    )
    items = [x.get("Item") for x in r["Responses"]]
    assert items == [{"pk": s("b"), "z": n(3)}, None, {"y": n(2)}]
    assert {c["TableName"] for c in r["ConsumedCapacity"]} == {t1, t2}


@pytest.mark.deviation(
    dynalite="has no transactions", moto="accepts one key twice in TransactGetItems"
)
def test_transact_get_items_refuses_bad_input(ddb, make_table):
    t = make_table()
    get_a = {"Get": {"TableName": t, "Key": {"pk": s("a")}}}
    for items in ([get_a, get_a], [{"Get": {"TableName": t, "Key": {"nope": s("a")}}}]):
        with pytest.raises(ClientError) as e:
            ddb.transact_get_items(TransactItems=items)
        assert error_of(e)[0] == "ValidationException"
