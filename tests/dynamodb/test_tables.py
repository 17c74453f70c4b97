"""Table operations: CreateTable, DescribeTable, ListTables, UpdateTable, DeleteTable,
DescribeLimits, DescribeEndpoints. Expectations from DynamoDB's API reference."""

import datetime

import pytest
from botocore.exceptions import ClientError

from conftest import client, error_of, eventually, unique


def test_create_table_reports_the_table_as_dynamodb_describes_it(ddb, make_table):
    name = make_table(("Artist", "S"), ("SongTitle", "S"))
    t = ddb.describe_table(TableName=name)["Table"]
    assert t["TableName"] == name
    assert t["TableStatus"] == "ACTIVE"
    assert t["KeySchema"] == [
        {"AttributeName": "Artist", "KeyType": "HASH"},
        {"AttributeName": "SongTitle", "KeyType": "RANGE"},
    ]
    assert sorted(t["AttributeDefinitions"], key=lambda d: d["AttributeName"]) == [
        {"AttributeName": "Artist", "AttributeType": "S"},
        {"AttributeName": "SongTitle", "AttributeType": "S"},
    ]
    assert t["ItemCount"] == 0
    assert t["TableSizeBytes"] == 0
    assert isinstance(t["CreationDateTime"], datetime.datetime)
    assert t["TableArn"].startswith("arn:aws:dynamodb:") and t["TableArn"].endswith(f":table/{name}")
    assert t["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert t["ProvisionedThroughput"]["ReadCapacityUnits"] == 0


@pytest.mark.deviation(
    moto="does not report TableId", dynalite="reports a 32-character TableId, not a UUID"
)
def test_describe_table_has_a_table_id(ddb, make_table):
    name = make_table()
    assert len(ddb.describe_table(TableName=name)["Table"]["TableId"]) == 36


def test_provisioned_tables_report_their_throughput(ddb, make_table):
    name = make_table(
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7},
    )
    pt = ddb.describe_table(TableName=name)["Table"]["ProvisionedThroughput"]
    assert (pt["ReadCapacityUnits"], pt["WriteCapacityUnits"]) == (5, 7)


def test_create_table_response_describes_the_new_table(ddb):
    name = unique()
    r = ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
    )
    d = r["TableDescription"]
    assert d["TableName"] == name
    assert d["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert d["TableStatus"] in ("ACTIVE", "CREATING")
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    ddb.delete_table(TableName=name)


def test_creating_an_existing_table_is_resource_in_use(ddb, make_table):
    name = make_table()
    with pytest.raises(ClientError) as e:
        make_table(name=name)
    assert error_of(e)[0] == "ResourceInUseException"


def test_describe_missing_table_is_resource_not_found(ddb):
    name = unique("missing")
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName=name)
    assert error_of(e) == (
        "ResourceNotFoundException",
        f"Requested resource not found: Table: {name} not found",
    )


def test_key_schema_must_match_attribute_definitions(ddb):
    with pytest.raises(ClientError) as e:
        ddb.create_table(
            TableName=unique(),
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "other", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    code, message = error_of(e)
    assert code == "ValidationException"
    assert message.startswith("One or more parameter values were invalid")


@pytest.mark.parametrize(
    "keys,defs,message",
    [
        (
            [{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
            [{"AttributeName": "id", "AttributeType": "S"}],
            "Invalid KeySchema: Some index key attribute have no definition",
        ),
        pytest.param(
            [{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "id", "KeyType": "RANGE"}],
            [{"AttributeName": "id", "AttributeType": "S"}],
            "Invalid KeySchema: Some index key attribute have no definition",
            marks=pytest.mark.deviation(moto="accepts one attribute as both keys"),
        ),
        pytest.param(
            [
                {"AttributeName": "a", "KeyType": "HASH"},
                {"AttributeName": "b", "KeyType": "RANGE"},
                {"AttributeName": "c", "KeyType": "RANGE"},
            ],
            [{"AttributeName": x, "AttributeType": "S"} for x in "abc"],
            "1 validation error detected: Value '[KeySchemaElement(attributeName=a, keyType=HASH), "
            "KeySchemaElement(attributeName=b, keyType=RANGE), KeySchemaElement(attributeName=c, "
            "keyType=RANGE)]' at 'keySchema' failed to satisfy constraint: Member must have length "
            "less than or equal to 2",
            marks=pytest.mark.deviation(dynalite="quotes the key schema as JSON"),
        ),
        (
            [{"AttributeName": "id", "KeyType": "HASH"}],
            [{"AttributeName": "other", "AttributeType": "S"}],
            "One or more parameter values were invalid: Some index key attributes are not defined "
            "in AttributeDefinitions. Keys: [id], AttributeDefinitions: [other]",
        ),
    ],
    ids=["fewer-definitions", "one-name-twice", "three-keys", "undefined-key"],
)
def test_key_schema_messages(ddb, keys, defs, message):
    with pytest.raises(ClientError) as e:
        ddb.create_table(
            TableName=unique(), KeySchema=keys, AttributeDefinitions=defs, BillingMode="PAY_PER_REQUEST"
        )
    assert error_of(e) == ("ValidationException", message)


@pytest.mark.deviation(moto="accepts a RANGE key without a HASH key first")
def test_first_key_must_be_the_hash_key(ddb):
    with pytest.raises(ClientError) as e:
        ddb.create_table(
            TableName=unique(),
            KeySchema=[{"AttributeName": "id", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    assert error_of(e)[0] == "ValidationException"


@pytest.mark.deviation(moto="accepts any table name")
def test_invalid_table_names_are_rejected(ddb):
    with pytest.raises(ClientError) as e:
        ddb.create_table(
            TableName="bad name!",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    assert error_of(e)[0] == "ValidationException"


def test_pay_per_request_refuses_provisioned_throughput(ddb):
    with pytest.raises(ClientError) as e:
        ddb.create_table(
            TableName=unique(),
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
        )
    assert error_of(e)[0] == "ValidationException"


@pytest.mark.deviation(moto="lists tables in creation order, not by name")
def test_list_tables_pages_with_limit_and_exclusive_start(ddb, make_table):
    prefix = unique("list")
    names = sorted(make_table(name=f"{prefix}-{i}") for i in range(5))
    seen = []
    kw = {"Limit": 2}
    while True:
        r = ddb.list_tables(**kw)
        assert len(r["TableNames"]) <= 2
        seen += r["TableNames"]
        if "LastEvaluatedTableName" not in r:
            break
        kw["ExclusiveStartTableName"] = r["LastEvaluatedTableName"]
    assert [n for n in seen if n.startswith(prefix)] == names
    assert seen == sorted(seen), "table names come in order"


@pytest.mark.deviation(moto="does not check Limit")
def test_list_tables_limit_must_be_1_to_100(ddb):
    with pytest.raises(ClientError) as e:
        ddb.list_tables(Limit=101)
    assert error_of(e)[0] == "ValidationException"


def test_paginator_lists_every_table(ddb, make_table):
    name = make_table()
    pages = ddb.get_paginator("list_tables").paginate(PaginationConfig={"PageSize": 1})
    assert name in [n for p in pages for n in p["TableNames"]]


def test_update_table_switches_billing_mode(ddb, make_table):
    name = make_table()
    r = ddb.update_table(
        TableName=name,
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 3, "WriteCapacityUnits": 4},
    )
    assert r["TableDescription"]["TableName"] == name
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    t = ddb.describe_table(TableName=name)["Table"]
    pt = t["ProvisionedThroughput"]
    assert (pt["ReadCapacityUnits"], pt["WriteCapacityUnits"]) == (3, 4)
    assert t.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == "PROVISIONED"


def test_update_missing_table_is_resource_not_found(ddb):
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=unique("missing"), BillingMode="PAY_PER_REQUEST")
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_delete_table_removes_it_and_its_items(ddb, make_table):
    name = make_table()
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}})
    r = ddb.delete_table(TableName=name)
    assert r["TableDescription"]["TableName"] == name
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    assert name not in ddb.list_tables()["TableNames"]
    with pytest.raises(ClientError) as e:
        ddb.delete_table(TableName=name)
    assert error_of(e)[0] == "ResourceNotFoundException"


@pytest.mark.deviation(dynalite="DescribeLimits is not implemented")
def test_describe_limits_reports_account_and_table_limits(ddb):
    r = ddb.describe_limits()
    for k in (
        "AccountMaxReadCapacityUnits",
        "AccountMaxWriteCapacityUnits",
        "TableMaxReadCapacityUnits",
        "TableMaxWriteCapacityUnits",
    ):
        assert r[k] > 0


@pytest.mark.deviation(
    moto="DescribeEndpoints answers for the AWS region, not the endpoint",
    dynalite="DescribeEndpoints is not implemented",
)
def test_describe_endpoints_names_this_endpoint(ddb, server):
    r = ddb.describe_endpoints()
    assert r["Endpoints"][0]["Address"] == server.addrs[0]
    assert r["Endpoints"][0]["CachePeriodInMinutes"] > 0


@pytest.mark.raft_only
def test_every_replica_describes_a_table_identically(cluster, make_table):
    name = make_table()
    clients = [client(cluster.url(i)) for i in range(3)]

    def same():
        ds = [c.describe_table(TableName=name)["Table"] for c in clients]
        return all(d == ds[0] for d in ds)

    eventually("every replica to describe the table the same", same, 30)


@pytest.mark.deviation(moto="accepts an UpdateTable that changes nothing")
def test_update_table_must_change_something(ddb, make_table):
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=make_table())
    assert error_of(e) == (
        "ValidationException",
        "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, "
        "GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
    )


def test_time_to_live_is_described_as_disabled(ddb, make_table):
    r = ddb.describe_time_to_live(TableName=make_table())
    assert r["TimeToLiveDescription"] == {"TimeToLiveStatus": "DISABLED"}


@pytest.mark.deviation(moto='answers "ResourceNotFound: Table not found"')
def test_time_to_live_of_a_missing_table(ddb):
    name = unique("missing")
    with pytest.raises(ClientError) as e:
        ddb.describe_time_to_live(TableName=name)
    assert error_of(e) == (
        "ResourceNotFoundException",
        f"Requested resource not found: Table: {name} not found",
    )


@pytest.mark.deviation(moto="accepts an update to the same throughput")
def test_update_table_to_the_same_throughput_is_refused(ddb, make_table):
    units = {"ReadCapacityUnits": 2, "WriteCapacityUnits": 3}
    name = make_table(BillingMode="PROVISIONED", ProvisionedThroughput=units)
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=name, ProvisionedThroughput=units)
    assert error_of(e) == (
        "ValidationException",
        "The provisioned throughput for the table will not change. The requested value equals "
        "the current value. Current ReadCapacityUnits provisioned for the table: 2. Requested "
        "ReadCapacityUnits: 2. Current WriteCapacityUnits provisioned for the table: 3. "
        "Requested WriteCapacityUnits: 3. Refer to the Amazon DynamoDB Developer Guide for "
        "current limits and how to request higher limits.",
    )


@pytest.mark.deviation(moto="does not report the table class", dynalite="does not report the table class")
def test_table_class_is_recorded_and_reported(ddb, make_table):
    name = make_table(TableClass="STANDARD_INFREQUENT_ACCESS")
    t = ddb.describe_table(TableName=name)["Table"]
    assert t["TableClassSummary"]["TableClass"] == "STANDARD_INFREQUENT_ACCESS"
    plain = ddb.describe_table(TableName=make_table())["Table"]
    assert plain.get("TableClassSummary", {}).get("TableClass", "STANDARD") == "STANDARD"


@pytest.mark.deviation(
    moto="does not report on-demand throughput", dynalite="does not report on-demand throughput"
)
def test_on_demand_throughput_is_recorded_and_reported(ddb, make_table):
    name = make_table(OnDemandThroughput={"MaxReadRequestUnits": 10, "MaxWriteRequestUnits": 5})
    t = ddb.describe_table(TableName=name)["Table"]
    assert t["OnDemandThroughput"] == {"MaxReadRequestUnits": 10, "MaxWriteRequestUnits": 5}


@pytest.mark.deviation(dynalite="drops the tags given to CreateTable")
def test_tags_given_at_creation_are_listed(ddb, make_table):
    name = make_table(Tags=[{"Key": "team", "Value": "storage"}, {"Key": "env", "Value": ""}])
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    tags = ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", ""), ("team", "storage")]
    bare = ddb.describe_table(TableName=make_table())["Table"]["TableArn"]
    assert ddb.list_tags_of_resource(ResourceArn=bare)["Tags"] == []


@pytest.mark.deviation(moto="answers with its own message")
def test_tags_of_a_missing_table(ddb, make_table):
    arn = ddb.describe_table(TableName=make_table())["Table"]["TableArn"] + "-gone"
    with pytest.raises(ClientError) as e:
        ddb.list_tags_of_resource(ResourceArn=arn)
    assert error_of(e) == (
        "ResourceNotFoundException",
        f"Requested resource not found: ResourcArn: {arn} not found",
    )


@pytest.mark.deviation(
    moto="reports continuous backups enabled", dynalite="DescribeContinuousBackups is not implemented"
)
def test_continuous_backups_are_described_as_disabled(ddb, make_table):
    r = ddb.describe_continuous_backups(TableName=make_table())["ContinuousBackupsDescription"]
    assert r == {
        "ContinuousBackupsStatus": "DISABLED",
        "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"},
    }
    with pytest.raises(ClientError) as e:
        ddb.describe_continuous_backups(TableName=unique("missing"))
    assert error_of(e)[0] == "TableNotFoundException"
