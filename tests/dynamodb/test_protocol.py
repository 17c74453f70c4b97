"""The wire protocol itself, spoken without an SDK: content type, x-amz-crc32, request
ids, error shapes, unknown operations, malformed bodies, missing Authorization."""

import json
import urllib.error
import urllib.request
import zlib

import pytest

from conftest import unique

PREFIX = "com.amazonaws.dynamodb.v20120810#"


def call(server, op, body, content_type="application/x-amz-json-1.0", raw=None, auth=True):
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(server.url(0) + "/", data=data, method="POST")
    req.add_header("Content-Type", content_type)
    if op is not None:
        req.add_header("X-Amz-Target", f"DynamoDB_20120810.{op}")
    if auth:
        req.add_header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000",
        )
        req.add_header("X-Amz-Date", "20240101T000000Z")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def headers_lower(h):
    return {k.lower(): v for k, v in h.items()}


def test_responses_are_amz_json_with_a_valid_crc32_and_a_request_id(server):
    status, h, body = call(server, "ListTables", {})
    h = headers_lower(h)
    assert status == 200
    assert h["content-type"].startswith("application/x-amz-json-1.0")
    assert int(h["x-amz-crc32"]) == zlib.crc32(body)
    assert h.get("x-amzn-requestid")
    assert "TableNames" in json.loads(body)


def test_errors_carry_the_dynamodb_type_and_a_message(server):
    status, h, body = call(server, "DescribeTable", {"TableName": unique("missing")})
    assert status == 400
    err = json.loads(body)
    assert err["__type"] == PREFIX + "ResourceNotFoundException"
    msg = err.get("message") or err.get("Message")
    assert msg.startswith("Requested resource not found")
    assert int(headers_lower(h)["x-amz-crc32"]) == zlib.crc32(body)


@pytest.mark.deviation(moto="answers 500")
def test_unknown_operation(server):
    status, _, body = call(server, "NoSuchOperation", {})
    assert status == 400
    assert json.loads(body)["__type"].endswith("UnknownOperationException")


@pytest.mark.deviation(moto="answers malformed JSON with a 500")
def test_malformed_json_is_a_serialization_exception(server):
    status, _, body = call(server, "ListTables", None, raw=b"{not json")
    assert status == 400
    assert json.loads(body)["__type"].endswith("SerializationException")


@pytest.mark.deviation(moto="does not check member types")
def test_wrong_member_type_is_a_serialization_exception(server):
    status, _, body = call(server, "DescribeTable", {"TableName": 5})
    assert status == 400
    assert json.loads(body)["__type"].endswith("SerializationException")


@pytest.mark.raft_only
def test_requests_without_authorization_are_accepted(server):
    """As DynamoDB Local does (DynamoDB itself and dynalite refuse unsigned requests)."""
    status, _, body = call(server, "ListTables", {}, auth=False)
    assert status == 200, body


@pytest.mark.deviation(moto="answers application/json with a 500")
def test_application_json_is_accepted_too(server):
    status, _, _ = call(server, "ListTables", {}, content_type="application/json")
    assert status == 200


@pytest.mark.deviation(moto="answers a missing TableName with a 500")
def test_missing_required_member_is_a_validation_exception(server):
    status, _, body = call(server, "DescribeTable", {})
    assert status == 400
    assert json.loads(body)["__type"].endswith("ValidationException")


@pytest.mark.deviation(moto="accepts attribute values with two types")
def test_attribute_value_with_two_types_is_invalid(server, make_table):
    t = make_table()
    status, _, body = call(server, "PutItem", {"TableName": t, "Item": {"pk": {"S": "a", "N": "1"}}})
    assert status == 400
    err = json.loads(body)
    assert err["__type"].endswith("ValidationException")
    assert "more than one datatypes" in (err.get("message") or err.get("Message"))


@pytest.mark.deviation(moto="accepts an empty attribute value")
def test_empty_attribute_value_is_invalid(server, make_table):
    t = make_table()
    status, _, body = call(server, "PutItem", {"TableName": t, "Item": {"pk": {"S": "a"}, "x": {}}})
    assert status == 400
    assert json.loads(body)["__type"].endswith("ValidationException")


def _at(name, *constraints):
    each = [f"Value '{name}' at 'tableName' failed to satisfy constraint: {c}" for c in constraints]
    n = len(each)
    return f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(each)


PATTERN = "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"


@pytest.mark.parametrize(
    "op,name,message",
    [
        ("PutItem", "bad table!@#", _at("bad table!@#", PATTERN)),
        ("PutItem", "", _at("", "Member must have length greater than or equal to 1")),
        ("PutItem", "a" * 256, _at("a" * 256, "Member must have length less than or equal to 255")),
        ("CreateTable", "ab", _at("ab", "Member must have length greater than or equal to 3")),
        ("DescribeTable", "b!", _at("b!", PATTERN, "Member must have length greater than or equal to 3")),
    ],
    ids=["pattern", "empty", "too-long", "create-short", "two-errors"],
)
@pytest.mark.deviation(moto="accepts any table name", dynalite="checks the length of table names its own way")
def test_table_names_are_checked_constraint_by_constraint(server, op, name, message):
    """One message per broken constraint; item operations take names from 1 byte (they
    also take a table's ARN), table operations from 3."""
    body = {"TableName": name}
    if op == "PutItem":
        body["Item"] = {"pk": {"S": "a"}}
    if op == "CreateTable":
        body.update(
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    status, _, raw = call(server, op, body)
    if status == 200 and op == "CreateTable":
        call(server, "DeleteTable", {"TableName": name})  # a reference that took it
    assert status == 400
    err = json.loads(raw)
    assert err["__type"].endswith("#ValidationException")
    assert err["message"] == message
