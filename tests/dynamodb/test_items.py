"""Item operations and the data model: PutItem, GetItem, DeleteItem, every attribute
type, binary keys, sets, numbers, sizes and keys. Expectations from DynamoDB's
documentation ("Supported data types", "Service, account, and table quotas")."""

import base64
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError

from conftest import error_of, eventually

EVERY_TYPE = {
    "pk": {"S": "k"},
    "s": {"S": "text"},
    "empty": {"S": ""},
    "n": {"N": "12.5"},
    "b": {"B": b"\x00\x01\xff"},
    "t": {"BOOL": True},
    "z": {"NULL": True},
    "l": {"L": [{"N": "1"}, {"S": "x"}, {"L": []}]},
    "m": {"M": {"inner": {"M": {"deep": {"S": "y"}}}, "e": {"M": {}}}},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"\x01", b"\x02"]},
}


def normalize(item):
    """Sets compare as sets (DynamoDB keeps no order in them)."""
    out = {}
    for k, v in item.items():
        ((t, x),) = v.items()
        out[k] = {t: sorted(x) if t in ("SS", "NS", "BS") else x}
    return out


def test_put_then_get_returns_every_type_as_written(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item=EVERY_TYPE)
    got = ddb.get_item(TableName=t, Key={"pk": {"S": "k"}})["Item"]
    assert normalize(got) == normalize(EVERY_TYPE)


def test_get_missing_item_returns_no_item(ddb, make_table):
    t = make_table()
    r = ddb.get_item(TableName=t, Key={"pk": {"S": "nope"}})
    assert "Item" not in r


def test_put_replaces_the_whole_item(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "x": {"S": "1"}})
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "y": {"S": "2"}})
    assert ddb.get_item(TableName=t, Key={"pk": {"S": "a"}})["Item"] == {
        "pk": {"S": "a"},
        "y": {"S": "2"},
    }


def test_put_return_values_all_old_returns_the_replaced_item(ddb, make_table):
    t = make_table()
    r = ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "v": {"N": "1"}}, ReturnValues="ALL_OLD")
    assert "Attributes" not in r
    r = ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "v": {"N": "2"}}, ReturnValues="ALL_OLD")
    assert r["Attributes"] == {"pk": {"S": "a"}, "v": {"N": "1"}}


def test_delete_item_return_values_all_old(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    r = ddb.delete_item(TableName=t, Key={"pk": {"S": "a"}}, ReturnValues="ALL_OLD")
    assert r["Attributes"] == {"pk": {"S": "a"}, "v": {"N": "1"}}
    assert "Item" not in ddb.get_item(TableName=t, Key={"pk": {"S": "a"}})
    r = ddb.delete_item(TableName=t, Key={"pk": {"S": "a"}}, ReturnValues="ALL_OLD")
    assert "Attributes" not in r, "deleting nothing returns nothing"


def test_delete_item_with_no_return_values_returns_nothing(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}})
    r = ddb.delete_item(TableName=t, Key={"pk": {"S": "a"}})
    assert "Attributes" not in r


def test_put_item_return_values_all_new_is_invalid(ddb, make_table):
    t = make_table()
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "a"}}, ReturnValues="ALL_NEW")
    assert error_of(e)[0] == "ValidationException"


def test_item_operations_on_a_missing_table_are_resource_not_found(ddb):
    """Item operations do not name the table in the message (table operations do)."""
    key = {"pk": {"S": "a"}}
    for call in (
        lambda: ddb.put_item(TableName="no-such-table", Item=key),
        lambda: ddb.get_item(TableName="no-such-table", Key=key),
        lambda: ddb.delete_item(TableName="no-such-table", Key=key),
        lambda: ddb.update_item(
            TableName="no-such-table", Key=key, UpdateExpression="REMOVE a"
        ),
        lambda: ddb.scan(TableName="no-such-table"),
        lambda: ddb.query(
            TableName="no-such-table",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}},
        ),
        lambda: ddb.batch_write_item(RequestItems={"no-such-table": [{"PutRequest": {"Item": key}}]}),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("ResourceNotFoundException", "Requested resource not found")


def test_missing_key_attribute_in_item(ddb, make_table):
    t = make_table(("pk", "S"), ("sk", "N"))
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "a"}})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert message.startswith("One or more parameter values were invalid: Missing the key sk")


def test_key_type_mismatch_in_item(ddb, make_table):
    t = make_table(("pk", "S"))
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"N": "1"}})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert message.startswith("One or more parameter values were invalid: Type mismatch")


@pytest.mark.deviation(moto='says "Validation Exception" only')
def test_key_that_does_not_match_the_schema(ddb, make_table):
    t = make_table(("pk", "S"), ("sk", "S"))
    for key in (
        {"pk": {"S": "a"}},
        {"pk": {"S": "a"}, "sk": {"N": "1"}},
        {"pk": {"S": "a"}, "sk": {"S": "b"}, "extra": {"S": "c"}},
    ):
        with pytest.raises(ClientError) as e:
            ddb.get_item(TableName=t, Key=key)
        code, message = error_of(e)
        assert code == "ValidationException"
        assert message == "The provided key element does not match the schema"


def test_empty_strings_are_allowed_except_in_keys(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "e": {"S": ""}, "eb": {"B": b""}})
    got = ddb.get_item(TableName=t, Key={"pk": {"S": "a"}})["Item"]
    assert got["e"] == {"S": ""}
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": ""}})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "empty string" in message


@pytest.mark.parametrize(
    "kind", ["SS", "NS", pytest.param("BS", marks=pytest.mark.deviation(moto="accepts an empty BS"))]
)
def test_empty_sets_are_rejected(ddb, make_table, kind):
    t = make_table()
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "s": {kind: []}})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "One or more parameter values were invalid" in message


@pytest.mark.parametrize(
    "value,message",
    [
        (
            {"SS": ["a", "a"]},
            "One or more parameter values were invalid: Input collection [a, a] contains duplicates.",
        ),
        ({"NS": ["1", "1.0"]}, "Input collection contains duplicates"),
        (
            {"BS": [b"x", b"x"]},
            "One or more parameter values were invalid: Input collection [eA==, eA==]of type BS "
            "contains duplicates.",
        ),
    ],
    ids=["SS", "NS", "BS"],
)
@pytest.mark.deviation(moto="accepts duplicate set members")
def test_duplicate_set_members_are_rejected(ddb, make_table, value, message):
    """DynamoDB words each kind of set differently (the BS message lacks a space)."""
    t = make_table()
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "s": value})
    assert error_of(e) == ("ValidationException", message)


def test_numbers_keep_38_digits(ddb, make_table):
    t = make_table(("pk", "N"))
    big = "1" + "2" * 36 + "3"  # 38 significant digits
    small = "-0." + "0" * 20 + "1"
    ddb.put_item(TableName=t, Item={"pk": {"N": big}, "v": {"N": small}, "e": {"N": "9.9E+125"}})
    got = ddb.get_item(TableName=t, Key={"pk": {"N": big}})["Item"]
    assert got["pk"] == {"N": big}
    assert Decimal(got["v"]["N"]) == Decimal(small)
    assert Decimal(got["e"]["N"]) == Decimal("9.9E+125")


@pytest.mark.parametrize(
    "number,why",
    [
        pytest.param("1" * 39, "38 significant digits", marks=pytest.mark.deviation(moto="keeps 39 digits")),
        pytest.param("1E+126", "overflow", marks=pytest.mark.deviation(moto="no range check")),
        ("1E-131", "underflow"),
        ("abc", ""),
    ],
)
def test_numbers_out_of_dynamodb_range_are_rejected(ddb, make_table, number, why):
    """Out of range or not a number at all; the exact texts of the latter are below."""
    t = make_table()
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "n": {"N": number}})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert why.lower() in message.lower()


def test_binary_keys_round_trip(ddb, make_table):
    t = make_table(("pk", "B"), ("sk", "B"))
    key = {"pk": {"B": b"\x00\xff"}, "sk": {"B": b"\x01"}}
    ddb.put_item(TableName=t, Item={**key, "v": {"S": "x"}})
    got = ddb.get_item(TableName=t, Key=key)["Item"]
    assert got["pk"] == {"B": b"\x00\xff"}
    assert got["v"] == {"S": "x"}


@pytest.mark.deviation(moto="counts item size differently: refuses an item of exactly 400 KB")
def test_items_up_to_400_kb_fit_and_larger_ones_do_not(ddb, make_table):
    t = make_table()
    # Item size = attribute name lengths + value lengths: "pk" + "a" + "blob" + blob.
    fits = 400 * 1024 - len("pk") - len("a") - len("blob")
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "blob": {"S": "x" * fits}})
    assert len(ddb.get_item(TableName=t, Key={"pk": {"S": "a"}})["Item"]["blob"]["S"]) == fits
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "b"}, "blob": {"S": "x" * (fits + 1)}})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "size has exceeded" in message.lower()


def test_partition_keys_are_at_most_2048_bytes(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": {"S": "k" * 2048}})
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "k" * 2049}})
    assert error_of(e)[0] == "ValidationException"


def test_sort_keys_are_at_most_1024_bytes(ddb, make_table):
    t = make_table(("pk", "S"), ("sk", "S"))
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "sk": {"S": "s" * 1024}})
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "sk": {"S": "s" * 1025}})
    assert error_of(e)[0] == "ValidationException"


def test_resource_api_round_trips_python_values(resource, make_table):
    t = resource.Table(make_table(("id", "N")))
    t.put_item(Item={"id": 1, "name": "x", "tags": {"a", "b"}, "score": Decimal("1.25")})
    got = t.get_item(Key={"id": 1})["Item"]
    assert got == {"id": 1, "name": "x", "tags": {"a", "b"}, "score": Decimal("1.25")}


def test_consistent_read_get_item_sees_the_write(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    got = ddb.get_item(TableName=t, Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]
    assert got["v"] == {"N": "1"}


@pytest.mark.deviation(moto="ignores AttributesToGet")
def test_get_item_attributes_to_get_projects(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "x": {"N": "1"}, "y": {"N": "2"}})
    got = ddb.get_item(TableName=t, Key={"pk": {"S": "a"}}, AttributesToGet=["y"])["Item"]
    assert got == {"y": {"N": "2"}}


def test_return_consumed_capacity_total(ddb, make_table):
    t = make_table()
    r = ddb.put_item(TableName=t, Item={"pk": {"S": "a"}}, ReturnConsumedCapacity="TOTAL")
    assert r["ConsumedCapacity"]["TableName"] == t
    assert r["ConsumedCapacity"]["CapacityUnits"] >= 1


def test_binary_values_are_base64_on_the_wire(ddb, make_table):
    t = make_table()
    raw = bytes(range(256))
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "b": {"B": raw}})
    assert ddb.get_item(TableName=t, Key={"pk": {"S": "a"}})["Item"]["b"]["B"] == raw
    assert base64.b64decode(base64.b64encode(raw)) == raw


def test_eventually_consistent_read_sees_the_write_eventually(ddb, make_table):
    t = make_table()
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "v": {"N": "7"}})

    def seen():
        r = ddb.get_item(TableName=t, Key={"pk": {"S": "a"}}, ConsistentRead=False)
        return r.get("Item", {}).get("v") == {"N": "7"}

    eventually("an eventually consistent read to see the write", seen, 30)


@pytest.mark.parametrize(
    "number,message",
    [
        ("abc", "The parameter cannot be converted to a numeric value: abc"),
        ("1e", "The parameter cannot be converted to a numeric value: 1e"),
        ("0x10", "The parameter cannot be converted to a numeric value: 0x10"),
        ("NaN", "The parameter cannot be converted to a numeric value: NaN"),
        (" 1", "The parameter cannot be converted to a numeric value:  1"),
        pytest.param(
            "",
            "The parameter cannot be converted to a numeric value",
            marks=pytest.mark.deviation(moto="quotes the empty text after a colon"),
        ),
    ],
)
def test_text_that_is_not_a_number_is_quoted_back(ddb, make_table, number, message):
    t = make_table()
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "n": {"N": number}})
    assert error_of(e) == ("ValidationException", message)


def test_return_consumed_capacity_indexes_breaks_it_down(ddb, make_table):
    t = make_table()
    r = ddb.put_item(TableName=t, Item={"pk": {"S": "a"}}, ReturnConsumedCapacity="INDEXES")
    assert r["ConsumedCapacity"] == {"TableName": t, "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}}


def test_attribute_names_may_be_longer_than_255_bytes(ddb, make_table):
    """DynamoDB's 255-byte limit is for secondary index key attributes; others may have
    names of up to 64 KB."""
    t = make_table()
    name = "n" * 1000
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, name: {"S": "x"}})
    assert ddb.get_item(TableName=t, Key={"pk": {"S": "a"}})["Item"][name] == {"S": "x"}
