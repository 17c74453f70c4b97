"""TagResource, UntagResource and ListTagsOfResource; UpdateTimeToLive and
DescribeTimeToLive. Both change a table's settings through the log, so every replica
ends up listing the same tags and reporting the same time to live.

ListTagsOfResource and DescribeTimeToLive are eventually consistent reads (on DynamoDB
too: a tag shows up seconds after TagResource), answered by the node asked, which may
not have applied the change yet: tests poll for what a change should show."""

import pytest
from botocore.exceptions import ClientError

from conftest import client, error_of, eventually, unique

TOO_MANY = "Number of Tags exceed the current limit for the provided ResourceArn"


@pytest.fixture(scope="module")
def raw(server):
    """A client that sends what it is given (botocore checks nothing first), so the
    server's own validation answers."""
    return client(server.url(0), parameter_validation=False)


def arn_of(ddb, name):
    return ddb.describe_table(TableName=name)["Table"]["TableArn"]


def tags_of(ddb, arn):
    return sorted((t["Key"], t["Value"]) for t in ddb.list_tags_of_resource(ResourceArn=arn)["Tags"])


def tags_become(ddb, arn, expected):
    eventually(f"the tags to be {expected}", lambda: tags_of(ddb, arn) == expected, 30)


def ttl_becomes(ddb, name, expected):
    def seen():
        return ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"] == expected

    eventually(f"time to live to be {expected}", seen, 30)


def test_tag_resource_adds_tags_and_untag_resource_removes_them(ddb, make_table):
    arn = arn_of(ddb, make_table())
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "storage"}])
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": ""}, {"Key": "tier", "Value": "1"}])
    tags_become(ddb, arn, [("env", ""), ("team", "storage"), ("tier", "1")])
    # A key the table does not have is ignored.
    ddb.untag_resource(ResourceArn=arn, TagKeys=["team", "never-set"])
    tags_become(ddb, arn, [("env", ""), ("tier", "1")])
    ddb.untag_resource(ResourceArn=arn, TagKeys=["env", "tier"])
    tags_become(ddb, arn, [])


@pytest.mark.deviation(moto="appends a second tag with the same key")
def test_tagging_a_key_again_replaces_its_value(ddb, make_table):
    arn = arn_of(ddb, make_table())
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "storage"}])
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "compute"}])
    tags_become(ddb, arn, [("team", "compute")])


@pytest.mark.deviation(dynalite="drops the tags given to CreateTable")
def test_tag_resource_adds_to_the_tags_given_at_creation(ddb, make_table):
    arn = arn_of(ddb, make_table(Tags=[{"Key": "a", "Value": "1"}]))
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "b", "Value": "2"}])
    tags_become(ddb, arn, [("a", "1"), ("b", "2")])


@pytest.mark.deviation(moto="accepts empty tag lists")
def test_empty_tag_lists_are_refused(raw, make_table):
    arn = arn_of(raw, make_table())
    with pytest.raises(ClientError) as e:
        raw.tag_resource(ResourceArn=arn, Tags=[])
    assert error_of(e) == ("ValidationException", "Atleast one Tag needs to be provided as Input.")
    with pytest.raises(ClientError) as e:
        raw.untag_resource(ResourceArn=arn, TagKeys=[])
    assert error_of(e) == ("ValidationException", "Atleast one Tag Key needs to be provided as Input.")


@pytest.mark.deviation(moto="does not check the ARN")
@pytest.mark.parametrize(
    "op,member",
    [("tag_resource", {"Tags": [{"Key": "a", "Value": "b"}]}), ("untag_resource", {"TagKeys": ["a"]})],
)
def test_tag_operations_refuse_an_arn_that_is_not_a_tables(raw, op, member):
    bad = "arn:aws:dynamodb:us-east-1:000000000000:table/ab"
    with pytest.raises(ClientError) as e:
        getattr(raw, op)(ResourceArn=bad, **member)
    assert error_of(e) == (
        "ValidationException",
        f"Invalid TableArn: Invalid ResourceArn provided as input {bad}",
    )


@pytest.mark.deviation(moto="tags nothing and answers success")
def test_tagging_a_missing_table_is_resource_not_found(ddb, make_table):
    arn = arn_of(ddb, make_table()) + "-gone"
    with pytest.raises(ClientError) as e:
        ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "b"}])
    assert error_of(e) == (
        "ResourceNotFoundException",
        f"Requested resource not found: ResourcArn: {arn} not found",
    )
    with pytest.raises(ClientError) as e:
        ddb.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert error_of(e) == ("ResourceNotFoundException", "Requested resource not found")


@pytest.mark.deviation(moto="does not limit tags", dynalite="does not limit tags")
def test_a_table_holds_at_most_fifty_tags(ddb, make_table):
    arn = arn_of(ddb, make_table())
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(45)])
    more = [{"Key": f"k{i}", "Value": "v"} for i in range(45, 51)]
    with pytest.raises(ClientError) as e:
        ddb.tag_resource(ResourceArn=arn, Tags=more)
    assert error_of(e) == ("ValidationException", TOO_MANY)
    # Setting keys the table has already does not add to the count; of the refused
    # request, nothing (k50) was kept.
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "w"} for i in range(40, 50)])
    tags_become(ddb, arn, sorted((f"k{i}", "v" if i < 40 else "w") for i in range(50)))


@pytest.mark.deviation(moto="does not check tags", dynalite="does not check tags")
def test_tag_keys_and_values_are_checked(raw, make_table):
    arn = arn_of(raw, make_table())
    cases = [
        ([{"Key": "k" * 129, "Value": "v"}], f"The Tag Key provided is invalid, Key: {'k' * 129}"),
        ([{"Key": "", "Value": "v"}], "The Tag Key provided is invalid, Key: "),
        ([{"Key": "k", "Value": "v" * 257}], f"The Tag Value provided is invalid, Value: {'v' * 257}"),
        ([{"Key": "k"}], "The Tag Value provided is invalid, Value: null"),
        (
            [{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}],
            "Duplicate Tag Keys provided as input: Duplicate Tag Key found dup",
        ),
        ([{"Key": f"k{i}", "Value": "v"} for i in range(51)], TOO_MANY),
    ]
    for tags, message in cases:
        with pytest.raises(ClientError) as e:
            raw.tag_resource(ResourceArn=arn, Tags=[{"Key": "good", "Value": "g"}] + tags)
        assert error_of(e) == ("ValidationException", message)
    # The longest key and value are fine; of the refused requests, nothing was kept.
    raw.tag_resource(ResourceArn=arn, Tags=[{"Key": "k" * 128, "Value": "v" * 256}])
    tags_become(raw, arn, [("k" * 128, "v" * 256)])
    with pytest.raises(ClientError) as e:
        raw.untag_resource(ResourceArn=arn, TagKeys=["k" * 129])
    assert error_of(e) == ("ValidationException", f"The Tag Key provided is invalid, Key: {'k' * 129}")


@pytest.mark.deviation(dynalite="UpdateTimeToLive is not implemented")
def test_time_to_live_is_enabled_and_disabled(ddb, make_table):
    name = make_table()
    spec = {"Enabled": True, "AttributeName": "expires"}
    r = ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=spec)
    assert r["TimeToLiveSpecification"] == spec
    ttl_becomes(ddb, name, {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"})
    off = {"Enabled": False, "AttributeName": "expires"}
    assert ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=off)[
        "TimeToLiveSpecification"
    ] == off
    def disabled():
        d = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        return d["TimeToLiveStatus"] == "DISABLED"

    eventually("time to live to be disabled", disabled, 30)


@pytest.mark.deviation(
    moto="accepts every change of time to live", dynalite="UpdateTimeToLive is not implemented"
)
def test_time_to_live_changes_that_change_nothing_are_refused(ddb, make_table):
    name = make_table()

    def refused(enabled, attribute):
        with pytest.raises(ClientError) as e:
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": enabled, "AttributeName": attribute}
            )
        return error_of(e)

    assert refused(False, "expires") == ("ValidationException", "TimeToLive is already disabled")
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
    assert refused(True, "expires") == ("ValidationException", "TimeToLive is already enabled")
    other = (
        "ValidationException",
        "TimeToLive is active on a different AttributeName: current AttributeName is expires",
    )
    assert refused(True, "other") == other
    assert refused(False, "other") == other
    ttl_becomes(ddb, name, {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"})


@pytest.mark.deviation(
    moto='answers "InvalidParameterValue"', dynalite="UpdateTimeToLive is not implemented"
)
def test_time_to_live_specification_needs_enabled_and_an_attribute(raw, make_table):
    name = make_table()
    for spec, field in [({"Enabled": True}, "attributeName"), ({"AttributeName": "x"}, "enabled")]:
        with pytest.raises(ClientError) as e:
            raw.update_time_to_live(TableName=name, TimeToLiveSpecification=spec)
        code, message = error_of(e)
        assert code == "ValidationException"
        assert f"'timeToLiveSpecification.{field}'" in message


@pytest.mark.deviation(
    moto='answers "ResourceNotFound: Table not found"', dynalite="UpdateTimeToLive is not implemented"
)
def test_time_to_live_of_a_missing_table_cannot_be_changed(ddb):
    name = unique("missing")
    with pytest.raises(ClientError) as e:
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "x"}
        )
    assert error_of(e) == (
        "ResourceNotFoundException",
        f"Requested resource not found: Table: {name} not found",
    )


@pytest.mark.raft_only
def test_every_node_lists_the_tags_and_reports_the_time_to_live(cluster, make_table):
    """Made through one node, read (eventually consistent) on every node: the settings
    are replicated state, not the answering node's memory."""
    name = make_table()
    writer = client(cluster.url(1))
    arn = arn_of(writer, name)
    writer.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "storage"}])
    writer.untag_resource(ResourceArn=arn, TagKeys=["nothing"])
    writer.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    for i in range(len(cluster.addrs)):
        c = client(cluster.url(i))
        tags_become(c, arn, [("team", "storage")])
        ttl_becomes(c, name, {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"})
