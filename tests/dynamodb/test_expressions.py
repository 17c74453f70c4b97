"""Expressions on reads: KeyConditionExpression, FilterExpression, ProjectionExpression,
ExpressionAttributeNames/Values and their validation, and the legacy QueryFilter,
ScanFilter and ConditionalOperator. Expectations from DynamoDB's developer guide
("Expressions", "Comparison operator and function reference")."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_of


@pytest.fixture
def shop(ddb, make_table):
    """Partition "p" with sort keys 1..10 and varied attributes."""
    t = make_table(("pk", "S"), ("sk", "N"))
    for i in range(1, 11):
        item = {
            "pk": {"S": "p"},
            "sk": {"N": str(i)},
            "name": {"S": f"item{i:02d}"},
            "price": {"N": str(i * 10)},
            "tags": {"SS": ["even" if i % 2 == 0 else "odd", "all"]},
            "info": {"M": {"colour": {"S": "red" if i <= 5 else "blue"}, "dims": {"L": [{"N": str(i)}, {"N": "2"}]}}},
        }
        if i % 3 == 0:
            item["sale"] = {"BOOL": True}
        ddb.put_item(TableName=t, Item=item)
    return t


def sks(r):
    return [int(i["sk"]["N"]) for i in r["Items"]]


def q(ddb, t, kce, values, **kw):
    return ddb.query(
        TableName=t, KeyConditionExpression=kce, ExpressionAttributeValues=values, **kw
    )


P = {":p": {"S": "p"}}


@pytest.mark.parametrize(
    "cond,values,want",
    [
        ("sk = :a", {":a": {"N": "3"}}, [3]),
        ("sk < :a", {":a": {"N": "3"}}, [1, 2]),
        ("sk <= :a", {":a": {"N": "3"}}, [1, 2, 3]),
        ("sk > :a", {":a": {"N": "8"}}, [9, 10]),
        ("sk >= :a", {":a": {"N": "8"}}, [8, 9, 10]),
        ("sk BETWEEN :a AND :b", {":a": {"N": "4"}, ":b": {"N": "6"}}, [4, 5, 6]),
    ],
)
def test_key_condition_expression_operators(ddb, shop, cond, values, want):
    r = q(ddb, shop, f"pk = :p AND {cond}", {**P, **values})
    assert sks(r) == want


def test_key_condition_begins_with(ddb, make_table):
    t = make_table(("pk", "S"), ("sk", "S"))
    for s in ["apple", "apricot", "banana"]:
        ddb.put_item(TableName=t, Item={"pk": {"S": "p"}, "sk": {"S": s}})
    r = q(ddb, t, "pk = :p AND begins_with(sk, :x)", {**P, ":x": {"S": "ap"}})
    assert [i["sk"]["S"] for i in r["Items"]] == ["apple", "apricot"]


def test_key_condition_with_names(ddb, shop):
    r = ddb.query(
        TableName=shop,
        KeyConditionExpression="#k = :p AND #s > :a",
        ExpressionAttributeNames={"#k": "pk", "#s": "sk"},
        ExpressionAttributeValues={**P, ":a": {"N": "9"}},
    )
    assert sks(r) == [10]


def test_key_condition_on_a_non_key_attribute_is_invalid(ddb, shop):
    with pytest.raises(ClientError) as e:
        q(ddb, shop, "pk = :p AND price > :a", {**P, ":a": {"N": "1"}})
    assert error_of(e)[0] == "ValidationException"


def test_key_condition_needs_the_partition_key_equality(ddb, shop):
    with pytest.raises(ClientError) as e:
        q(ddb, shop, "pk > :p", P)
    assert error_of(e)[0] == "ValidationException"


@pytest.mark.parametrize(
    "expr,values,want",
    [
        ("price > :v", {":v": {"N": "70"}}, [8, 9, 10]),
        ("price <> :v", {":v": {"N": "10"}}, list(range(2, 11))),
        ("price BETWEEN :a AND :b", {":a": {"N": "20"}, ":b": {"N": "40"}}, [2, 3, 4]),
        ("price IN (:a, :b)", {":a": {"N": "10"}, ":b": {"N": "100"}}, [1, 10]),
        ("price < :a OR price > :b", {":a": {"N": "20"}, ":b": {"N": "90"}}, [1, 10]),
        ("NOT (price < :a)", {":a": {"N": "90"}}, [9, 10]),
        ("(price > :a AND price < :b) OR price = :c", {":a": {"N": "10"}, ":b": {"N": "40"}, ":c": {"N": "90"}}, [2, 3, 9]),
        ("attribute_exists(sale)", {}, [3, 6, 9]),
        ("attribute_not_exists(sale) AND price < :a", {":a": {"N": "40"}}, [1, 2]),
        ("attribute_type(sale, :t)", {":t": {"S": "BOOL"}}, [3, 6, 9]),
        ("begins_with(#n, :x)", {":x": {"S": "item1"}}, [10]),
        ("contains(tags, :x)", {":x": {"S": "even"}}, [2, 4, 6, 8, 10]),
        ("size(tags) = :n AND info.colour = :c", {":n": {"N": "2"}, ":c": {"S": "blue"}}, [6, 7, 8, 9, 10]),
        ("info.dims[0] >= :n", {":n": {"N": "9"}}, [9, 10]),
    ],
)
def test_filter_expressions(ddb, shop, expr, values, want):
    kw = {"ExpressionAttributeNames": {"#n": "name"}} if "#n" in expr else {}
    r = ddb.query(
        TableName=shop,
        KeyConditionExpression="pk = :p",
        FilterExpression=expr,
        ExpressionAttributeValues={**P, **values},
        **kw,
    )
    assert sks(r) == want
    assert r["ScannedCount"] == 10
    assert r["Count"] == len(want)


def test_scan_with_filter_and_limit_counts_items_read(ddb, shop):
    r = ddb.scan(
        TableName=shop,
        FilterExpression="price > :v",
        ExpressionAttributeValues={":v": {"N": "50"}},
        Limit=5,
    )
    assert r["ScannedCount"] == 5
    assert r["Count"] == 0
    assert "LastEvaluatedKey" in r


def test_projection_expression_with_nested_paths(ddb, shop):
    r = ddb.get_item(
        TableName=shop,
        Key={"pk": {"S": "p"}, "sk": {"N": "2"}},
        ProjectionExpression="#n, info.dims[1], info.colour",
        ExpressionAttributeNames={"#n": "name"},
    )
    assert r["Item"] == {
        "name": {"S": "item02"},
        "info": {"M": {"colour": {"S": "red"}, "dims": {"L": [{"N": "2"}]}}},
    }


def test_query_projection_and_select_specific_attributes(ddb, shop):
    r = q(ddb, shop, "pk = :p AND sk = :s", {**P, ":s": {"N": "1"}}, ProjectionExpression="price")
    assert r["Items"] == [{"price": {"N": "10"}}]


def test_reserved_words_need_a_name_placeholder(ddb, shop):
    with pytest.raises(ClientError) as e:
        ddb.get_item(
            TableName=shop, Key={"pk": {"S": "p"}, "sk": {"N": "1"}}, ProjectionExpression="name"
        )
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "reserved keyword" in message


@pytest.mark.deviation(moto="does not report unused placeholders")
def test_unused_placeholders_are_errors(ddb, shop):
    with pytest.raises(ClientError) as e:
        q(ddb, shop, "pk = :p", {**P, ":unused": {"S": "x"}})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "unused" in message.lower()


def test_undefined_placeholders_are_errors(ddb, shop):
    with pytest.raises(ClientError) as e:
        q(ddb, shop, "pk = :nope", P)
    assert error_of(e)[0] == "ValidationException"


@pytest.mark.deviation(moto="answers a syntax error with a 500")
def test_syntax_errors_are_validation_errors(ddb, shop):
    with pytest.raises(ClientError) as e:
        q(ddb, shop, "pk = :p", P, FilterExpression="price >")
    code, message = error_of(e)
    assert code == "ValidationException"
    assert message.startswith("Invalid FilterExpression")


@pytest.mark.deviation(moto="accepts both forms in one request")
def test_expression_and_legacy_parameters_do_not_mix(ddb, shop):
    with pytest.raises(ClientError) as e:
        q(ddb, shop, "pk = :p", P, AttributesToGet=["price"])
    assert error_of(e)[0] == "ValidationException"


@pytest.mark.deviation(
    moto="answers QueryFilter with a 500", dynalite="ignores ConditionalOperator OR in QueryFilter"
)
def test_legacy_query_filter_and_conditional_operator(ddb, shop):
    r = ddb.query(
        TableName=shop,
        KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}},
        QueryFilter={
            "price": {"ComparisonOperator": "LT", "AttributeValueList": [{"N": "20"}]},
            "sale": {"ComparisonOperator": "NOT_NULL"},
        },
        ConditionalOperator="OR",
    )
    assert sks(r) == [1, 3, 6, 9]


@pytest.mark.deviation(moto="filters on key attributes")
def test_filters_on_key_attributes_are_refused_in_a_query(ddb, shop):
    with pytest.raises(ClientError) as e:
        q(ddb, shop, "pk = :p", {**P, ":a": {"N": "1"}}, FilterExpression="sk > :a")
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "non-primary key attributes" in message


def test_legacy_scan_filter(ddb, shop):
    r = ddb.scan(
        TableName=shop,
        ScanFilter={"tags": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "odd"}]}},
    )
    assert sorted(int(i["sk"]["N"]) for i in r["Items"]) == [1, 3, 5, 7, 9]


@pytest.mark.parametrize(
    "value,why",
    [
        ({"SS": []}, "One or more parameter values were invalid: An string set  may not be empty"),
        ({"NS": ["1", "1"]}, "Input collection contains duplicates"),
        ({"N": "x"}, "The parameter cannot be converted to a numeric value: x"),
        ({"NULL": False}, "One or more parameter values were invalid: Null attribute value types must have the value of true"),
    ],
    ids=["empty-set", "duplicates", "number", "null"],
)
@pytest.mark.deviation(moto="accepts or words invalid values differently")
def test_an_invalid_value_names_its_placeholder(ddb, shop, value, why):
    with pytest.raises(ClientError) as e:
        q(ddb, shop, "pk = :p", {**P, ":v": value}, FilterExpression="price = :v")
    assert error_of(e) == (
        "ValidationException",
        f"ExpressionAttributeValues contains invalid value: {why} for key :v",
    )


@pytest.mark.deviation(moto="accepts values with no expression to use them")
def test_values_without_an_expression_that_takes_them(ddb, shop):
    values = {"ExpressionAttributeValues": {":v": {"N": "1"}}}
    key = {"pk": {"S": "p"}, "sk": {"N": "1"}}
    for call, member in [
        (lambda: ddb.put_item(TableName=shop, Item=key, **values), "ConditionExpression is"),
        (lambda: ddb.delete_item(TableName=shop, Key=key, **values), "ConditionExpression is"),
        (
            lambda: ddb.update_item(
                TableName=shop, Key=key, AttributeUpdates={"x": {"Value": {"N": "1"}}}, **values
            ),
            "UpdateExpression and ConditionExpression are",
        ),
        (lambda: ddb.scan(TableName=shop, **values), "FilterExpression is"),
    ]:
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == (
            "ValidationException",
            f"ExpressionAttributeValues can only be specified when using expressions: {member} null",
        )
