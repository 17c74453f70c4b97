"""Conditional writes and UpdateItem: ConditionExpression and Expected on PutItem,
DeleteItem and UpdateItem, ConditionalCheckFailedException (with the old item when asked),
UpdateExpression and AttributeUpdates, ReturnValues per operation. Expectations from
DynamoDB's documentation ("Condition expressions", "Update expressions", the UpdateItem
API reference)."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_of


def get(ddb, t, pk):
    return ddb.get_item(TableName=t, Key={"pk": {"S": pk}}).get("Item")


def n(x):
    return {"N": str(x)}


def s(x):
    return {"S": x}


# ---- conditional puts and deletes ------------------------------------------------------


def test_create_if_absent_succeeds_once(ddb, make_table):
    t = make_table()
    item = {"pk": s("a"), "v": n(1)}
    ddb.put_item(TableName=t, Item=item, ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(ClientError) as e:
        ddb.put_item(
            TableName=t,
            Item={"pk": s("a"), "v": n(2)},
            ConditionExpression="attribute_not_exists(pk)",
        )
    assert error_of(e) == ("ConditionalCheckFailedException", "The conditional request failed")
    assert "Item" not in e.value.response
    assert get(ddb, t, "a") == item


@pytest.mark.deviation(dynalite="does not return the item on a failed condition")
def test_failed_condition_returns_the_old_item_when_asked(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": s("a"), "v": n(1)})
    with pytest.raises(ClientError) as e:
        ddb.put_item(
            TableName=t,
            Item={"pk": s("a"), "v": n(2)},
            ConditionExpression="v = :old",
            ExpressionAttributeValues={":old": n(7)},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert error_of(e)[0] == "ConditionalCheckFailedException"
    assert e.value.response["Item"] == {"pk": s("a"), "v": n(1)}


def test_optimistic_locking_with_a_version_attribute(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": s("doc"), "version": n(1), "body": s("v1")})

    def save(expected, body):
        ddb.put_item(
            TableName=t,
            Item={"pk": s("doc"), "version": n(expected + 1), "body": s(body)},
            ConditionExpression="#v = :expected",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":expected": n(expected)},
        )

    save(1, "v2")
    with pytest.raises(ClientError) as e:
        save(1, "lost update")
    assert error_of(e)[0] == "ConditionalCheckFailedException"
    assert get(ddb, t, "doc") == {"pk": s("doc"), "version": n(2), "body": s("v2")}


def test_conditional_delete_and_put_return_all_old(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": s("a"), "state": s("done")})
    with pytest.raises(ClientError) as e:
        ddb.delete_item(
            TableName=t,
            Key={"pk": s("a")},
            ConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":s": s("open")},
        )
    assert error_of(e)[0] == "ConditionalCheckFailedException"
    r = ddb.delete_item(
        TableName=t,
        Key={"pk": s("a")},
        ConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":s": s("done")},
        ReturnValues="ALL_OLD",
    )
    assert r["Attributes"] == {"pk": s("a"), "state": s("done")}
    assert get(ddb, t, "a") is None


def test_condition_on_a_missing_item_sees_no_attributes(ddb, make_table):
    t = make_table()
    with pytest.raises(ClientError) as e:
        ddb.delete_item(TableName=t, Key={"pk": s("x")}, ConditionExpression="attribute_exists(pk)")
    assert error_of(e)[0] == "ConditionalCheckFailedException"
    ddb.put_item(
        TableName=t,
        Item={"pk": s("x")},
        ConditionExpression="attribute_not_exists(v) AND NOT contains(tags, :t)",
        ExpressionAttributeValues={":t": s("a")},
    )


def test_legacy_expected_is_a_condition_too(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": s("a"), "v": n(1)})
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": s("a")}, Expected={"v": {"Value": n(2)}})
    assert error_of(e)[0] == "ConditionalCheckFailedException"
    ddb.put_item(
        TableName=t,
        Item={"pk": s("a"), "v": n(2)},
        Expected={"v": {"ComparisonOperator": "LT", "AttributeValueList": [n(5)]}},
    )
    ddb.put_item(TableName=t, Item={"pk": s("b")}, Expected={"pk": {"Exists": False}})
    assert get(ddb, t, "a")["v"] == n(2)


@pytest.mark.parametrize(
    "kw",
    [
        pytest.param(
            dict(ConditionExpression="v = "),
            marks=pytest.mark.deviation(moto="answers a syntax error with a 500"),
        ),
        pytest.param(
            dict(ConditionExpression="v = :x"),
            marks=pytest.mark.deviation(moto="answers an undefined value with a 500"),
        ),
        pytest.param(
            dict(ConditionExpression="attribute_exists(v)", ExpressionAttributeValues={":x": n(1)}),
            marks=pytest.mark.deviation(moto="does not check for unused values on writes"),
        ),
        pytest.param(
            dict(ConditionExpression="attribute_exists(v)", Expected={"v": {"Exists": False}}),
            marks=pytest.mark.deviation(moto="accepts both forms in one request"),
        ),
        pytest.param(
            dict(ConditionalOperator="AND"),
            marks=pytest.mark.deviation(
                moto="accepts ConditionalOperator alone", dynalite="accepts it alone"
            ),
        ),
    ],
    ids=["syntax", "undefined-value", "unused-value", "mixed-forms", "operator-alone"],
)
def test_bad_conditions_are_validation_errors_and_write_nothing(ddb, make_table, kw):
    t = make_table()
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": s("a")}, **kw)
    assert error_of(e)[0] == "ValidationException", kw
    assert get(ddb, t, "a") is None


@pytest.mark.deviation(dynalite="accepts every ReturnValues on PutItem and DeleteItem")
@pytest.mark.parametrize("rv", ["ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"])
def test_put_and_delete_take_only_none_or_all_old(ddb, make_table, rv):
    t = make_table()
    for op in (ddb.delete_item, lambda **kw: ddb.put_item(Item=kw.pop("Key"), **kw)):
        with pytest.raises(ClientError) as e:
            op(TableName=t, Key={"pk": s("a")}, ReturnValues=rv)
        assert error_of(e)[0] == "ValidationException"


# ---- UpdateItem ------------------------------------------------------------------------


def update(ddb, t, pk, expr, values=None, names=None, **kw):
    args = dict(TableName=t, Key={"pk": s(pk)}, UpdateExpression=expr, **kw)
    if values:
        args["ExpressionAttributeValues"] = values
    if names:
        args["ExpressionAttributeNames"] = names
    return ddb.update_item(**args)


def test_update_creates_the_item_from_its_key(ddb, make_table):
    t = make_table()
    r = update(ddb, t, "c", "ADD hits :one", {":one": n(1)}, ReturnValues="ALL_NEW")
    assert r["Attributes"] == {"pk": s("c"), "hits": n(1)}
    update(ddb, t, "c", "ADD hits :one", {":one": n(1)})
    assert get(ddb, t, "c") == {"pk": s("c"), "hits": n(2)}


def test_set_arithmetic_if_not_exists_list_append_and_nested_paths(ddb, make_table):
    t = make_table()
    ddb.put_item(
        TableName=t,
        Item={
            "pk": s("a"),
            "n": n(10),
            "l": {"L": [n(1), n(2)]},
            "m": {"M": {"deep": {"M": {"x": n(1)}}}},
        },
    )
    update(
        ddb,
        t,
        "a",
        "SET n = n - :two, c = if_not_exists(c, :zero) + :two, l = list_append(l, :more), "
        "m.deep.y = :two",
        {":two": n(2), ":zero": n(0), ":more": {"L": [n(3)]}},
    )
    assert get(ddb, t, "a") == {
        "pk": s("a"),
        "n": n(8),
        "c": n(2),
        "l": {"L": [n(1), n(2), n(3)]},
        "m": {"M": {"deep": {"M": {"x": n(1), "y": n(2)}}}},
    }


def test_add_and_delete_of_one_attribute_conflict(ddb, make_table):
    t = make_table()
    with pytest.raises(ClientError) as e:
        update(
            ddb, t, "a", "ADD tags :add DELETE tags :del", {":add": {"SS": ["c"]}, ":del": {"SS": ["a"]}}
        )
    assert error_of(e)[0] == "ValidationException"


def test_overlapping_paths_are_refused(ddb, make_table):
    t = make_table()
    with pytest.raises(ClientError) as e:
        update(ddb, t, "a", "SET a = :v, a.b = :v", {":v": n(1)})
    assert error_of(e)[0] == "ValidationException"
    assert "overlap" in error_of(e)[1].lower() or "conflict" in error_of(e)[1].lower()


@pytest.mark.deviation(
    dynalite="removes list elements one after the other (l[2] then names the shifted list); "
    "DynamoDB's indexes name positions in the original list"
)
def test_remove_and_set_operations_on_sets(ddb, make_table):
    t = make_table()
    ddb.put_item(
        TableName=t,
        Item={"pk": s("a"), "gone": s("x"), "l": {"L": [n(1), n(2), n(3)]}, "tags": {"SS": ["a", "b"]}},
    )
    update(
        ddb,
        t,
        "a",
        "REMOVE gone, l[0], l[2] ADD nums :ns DELETE tags :del",
        {":ns": {"NS": ["1"]}, ":del": {"SS": ["a"]}},
    )
    assert get(ddb, t, "a") == {
        "pk": s("a"),
        "l": {"L": [n(2)]},
        "tags": {"SS": ["b"]},
        "nums": {"NS": ["1"]},
    }


def test_return_values_of_update_item(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": s("a"), "x": n(1), "y": n(1), "keep": s("k")})
    vals = {":one": n(1)}
    expr = "SET x = x + :one REMOVE y"
    r = update(ddb, t, "a", expr, vals, ReturnValues="NONE")
    assert "Attributes" not in r
    r = update(ddb, t, "a", "SET x = x + :one", vals, ReturnValues="UPDATED_OLD")
    assert r["Attributes"] == {"x": n(2)}
    r = update(ddb, t, "a", "SET x = x + :one", vals, ReturnValues="UPDATED_NEW")
    assert r["Attributes"] == {"x": n(4)}
    r = update(ddb, t, "a", "SET z = :one", vals, ReturnValues="ALL_OLD")
    assert r["Attributes"] == {"pk": s("a"), "x": n(4), "keep": s("k")}
    r = update(ddb, t, "a", "REMOVE z", None, ReturnValues="ALL_NEW")
    assert r["Attributes"] == {"pk": s("a"), "x": n(4), "keep": s("k")}
    r = update(ddb, t, "new", "SET z = :one", vals, ReturnValues="ALL_OLD")
    assert "Attributes" not in r


def test_update_with_condition_and_return_values_on_failure(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": s("a"), "version": n(3)})
    with pytest.raises(ClientError) as e:
        update(
            ddb,
            t,
            "a",
            "SET version = version + :one",
            {":one": n(1), ":v": n(2)},
            ConditionExpression="version = :v",
        )
    assert error_of(e)[0] == "ConditionalCheckFailedException"
    r = update(
        ddb,
        t,
        "a",
        "SET version = version + :one",
        {":one": n(1), ":v": n(3)},
        ConditionExpression="version = :v",
        ReturnValues="UPDATED_NEW",
    )
    assert r["Attributes"] == {"version": n(4)}


@pytest.mark.deviation(moto="answers an undefined #name with a 500")
def test_update_validation_errors(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": s("a"), "title": s("x")})
    cases = [
        ("SET pk = :v", {":v": s("b")}, "part of the key"),
        ("SET a = :v", {":v": n(1), ":w": n(2)}, "unused"),
        ("SET a = :v", None, None),
        ("SET a = title + :v", {":v": n(1)}, None),
        ("SET a = name", None, "reserved keyword"),
        ("SET a = nope", None, "does not exist"),
        ("ADD title :v", {":v": n(1)}, "incorrect data type"),
        ("SET a.b = :v", {":v": n(1)}, "document path"),
        ("SET #name = :v", {":v": n(1)}, None),
    ]
    for expr, vals, text in cases:
        with pytest.raises(ClientError) as e:
            update(ddb, t, "a", expr, vals)
        code, message = error_of(e)
        assert code == "ValidationException", expr
        if text:
            assert text in message, (expr, message)
    assert get(ddb, t, "a") == {"pk": s("a"), "title": s("x")}


def test_update_past_the_item_size_limit_is_refused(ddb, make_table):
    t = make_table()
    big = "x" * 300_000
    ddb.put_item(TableName=t, Item={"pk": s("a"), "one": s(big)})
    with pytest.raises(ClientError) as e:
        update(ddb, t, "a", "SET two = :b", {":b": s(big)})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "size" in message.lower()
    assert set(get(ddb, t, "a")) == {"pk", "one"}


def test_legacy_attribute_updates(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": s("a"), "n": n(1), "gone": s("x"), "ss": {"SS": ["a", "b"]}})
    r = ddb.update_item(
        TableName=t,
        Key={"pk": s("a")},
        AttributeUpdates={
            "n": {"Action": "ADD", "Value": n(2)},
            "gone": {"Action": "DELETE"},
            "ss": {"Action": "DELETE", "Value": {"SS": ["a"]}},
            "new": {"Action": "PUT", "Value": s("v")},
        },
        Expected={"n": {"Value": n(1)}},
        ReturnValues="ALL_NEW",
    )
    assert r["Attributes"] == {"pk": s("a"), "n": n(3), "ss": {"SS": ["b"]}, "new": s("v")}


def test_expression_and_legacy_parameters_do_not_mix(ddb, make_table):
    t = make_table()
    with pytest.raises(ClientError) as e:
        ddb.update_item(
            TableName=t,
            Key={"pk": s("a")},
            UpdateExpression="SET a = :v",
            ExpressionAttributeValues={":v": n(1)},
            AttributeUpdates={"b": {"Action": "PUT", "Value": n(1)}},
        )
    assert error_of(e)[0] == "ValidationException"
    assert "Can not use both expression and non-expression parameters" in error_of(e)[1]


def test_update_item_reports_consumed_capacity(ddb, make_table):
    t = make_table()
    r = update(ddb, t, "a", "SET v = :v", {":v": n(1)}, ReturnConsumedCapacity="TOTAL")
    assert r["ConsumedCapacity"]["TableName"] == t
    assert r["ConsumedCapacity"]["CapacityUnits"] > 0
