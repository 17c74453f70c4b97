//! DynamoDB's wire protocol on every node's port: boto3, the AWS CLI and the other
//! DynamoDB SDKs talk to a raft-nosql cluster as they talk to DynamoDB.
//!
//! A request is `POST /` with `X-Amz-Target: DynamoDB_20120810.<Operation>` and a JSON
//! body (`application/x-amz-json-1.0`, `application/json` accepted too). The answer is
//! JSON with `x-amzn-RequestId` and `x-amz-crc32` (see [`wire`]); errors are DynamoDB's
//! types and messages (see [`error`], where node errors are mapped in one function).
//! The `Authorization` header (SigV4) is not checked, as DynamoDB Local does not: any
//! credentials, or none, are accepted.
//!
//! One system, not two: every operation becomes the same replicated [`Command`]s the REST
//! API proposes, through the same group-commit queue and the same state machine, and
//! reads come from the same store through the same consistency paths. What is
//! DynamoDB-specific is translated here, at the edge:
//!
//! - [`tables`]: table operations; [`items`]: item and batch operations; [`read`]:
//!   Query and Scan; [`keys`]: primary keys with DynamoDB's messages; [`exprs`]: where
//!   expressions (either form) are read and handed to `model::expr`, which parses and
//!   evaluates them.
//! - [`forward`]: a write that reaches a follower is sent on to the leader by the node
//!   (SDKs do not follow redirects); reads are answered where they arrive.
//!
//! [`Command`]: crate::raft::Command

use std::sync::Arc;

use bytes::Bytes;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::error::Error;
use crate::server::App;
use error::{DdbError, Kind};
use wire::Req;

pub mod conditions;
pub mod error;
pub mod exprs;
pub mod forward;
pub mod indexes;
pub mod items;
pub mod keys;
pub mod read;
pub mod tables;
pub mod transact;
pub mod wire;

pub use forward::Forwarder;

/// Largest request body: a BatchWriteItem of 25 items of 400 KB, as JSON (DynamoDB's
/// limit is 16 MB).
pub const MAX_BODY: u64 = 16 * 1024 * 1024;

/// The `X-Amz-Target` prefix of DynamoDB's API version.
const TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// The operations this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    CreateTable,
    DeleteTable,
    DescribeTable,
    ListTables,
    UpdateTable,
    PutItem,
    GetItem,
    DeleteItem,
    UpdateItem,
    TransactWriteItems,
    TransactGetItems,
    Query,
    Scan,
    BatchGetItem,
    BatchWriteItem,
    DescribeLimits,
    DescribeEndpoints,
    UpdateTimeToLive,
    DescribeTimeToLive,
    TagResource,
    UntagResource,
    ListTagsOfResource,
    DescribeContinuousBackups,
}

impl Op {
    /// The operation named after the target prefix, if implemented.
    pub fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "CreateTable" => Op::CreateTable,
            "DeleteTable" => Op::DeleteTable,
            "DescribeTable" => Op::DescribeTable,
            "ListTables" => Op::ListTables,
            "UpdateTable" => Op::UpdateTable,
            "PutItem" => Op::PutItem,
            "GetItem" => Op::GetItem,
            "DeleteItem" => Op::DeleteItem,
            "UpdateItem" => Op::UpdateItem,
            "TransactWriteItems" => Op::TransactWriteItems,
            "TransactGetItems" => Op::TransactGetItems,
            "Query" => Op::Query,
            "Scan" => Op::Scan,
            "BatchGetItem" => Op::BatchGetItem,
            "BatchWriteItem" => Op::BatchWriteItem,
            "DescribeLimits" => Op::DescribeLimits,
            "DescribeEndpoints" => Op::DescribeEndpoints,
            "UpdateTimeToLive" => Op::UpdateTimeToLive,
            "DescribeTimeToLive" => Op::DescribeTimeToLive,
            "TagResource" => Op::TagResource,
            "UntagResource" => Op::UntagResource,
            "ListTagsOfResource" => Op::ListTagsOfResource,
            "DescribeContinuousBackups" => Op::DescribeContinuousBackups,
            _ => return None,
        })
    }

    /// Whether the operation proposes a command, so only the leader can serve it.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Op::CreateTable
                | Op::DeleteTable
                | Op::UpdateTable
                | Op::PutItem
                | Op::DeleteItem
                | Op::UpdateItem
                | Op::TransactWriteItems
                | Op::BatchWriteItem
                | Op::UpdateTimeToLive
                | Op::TagResource
                | Op::UntagResource
        )
    }
}

/// `POST /` with an `X-Amz-Target` header.
pub fn routes(app: Arc<App>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path::end()
        .and(warp::post())
        .and(warp::header::optional::<String>("x-amz-target"))
        .and(warp::header::optional::<String>(forward::FORWARDED_FROM))
        .and(warp::header::optional::<String>("host"))
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes())
        .then(move |target, forwarded, host, body| {
            let app = app.clone();
            async move { handle(&app, target, forwarded, host, body).await }
        })
}

async fn handle(
    app: &App,
    target: Option<String>,
    forwarded: Option<String>,
    host: Option<String>,
    body: Bytes,
) -> Response {
    let target = target.unwrap_or_default();
    let Some(op) = target.strip_prefix(TARGET_PREFIX).and_then(Op::parse) else {
        let name = target.rsplit('.').next().unwrap_or_default();
        return wire::error(&DdbError::new(
            Kind::UnknownOperation,
            format!("raft-nosql does not support the operation {name:?}"),
        ));
    };
    if op.is_write() && forwarded.is_none() {
        if let Err(Error::NotLeader { leader_addr, .. }) = crate::server::api::ensure_leader(app) {
            return app.forward.forward(app.id, &leader_addr, &target, body).await;
        }
    }
    let result = match Req::parse(&body) {
        Ok(req) => dispatch(app, op, &req, host.as_deref()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => wire::ok(&v),
        Err(e) => wire::error(&e),
    }
}

async fn dispatch(
    app: &App,
    op: Op,
    req: &Req,
    host: Option<&str>,
) -> Result<serde_json::Value, DdbError> {
    match op {
        Op::CreateTable => tables::create_table(app, req).await,
        Op::DeleteTable => tables::delete_table(app, req).await,
        Op::DescribeTable => tables::describe_table(app, req),
        Op::ListTables => tables::list_tables(app, req),
        Op::UpdateTable => tables::update_table(app, req).await,
        Op::PutItem => items::put_item(app, req).await,
        Op::GetItem => items::get_item(app, req).await,
        Op::DeleteItem => items::delete_item(app, req).await,
        Op::UpdateItem => items::update_item(app, req).await,
        Op::TransactWriteItems => transact::transact_write_items(app, req).await,
        Op::TransactGetItems => transact::transact_get_items(app, req).await,
        Op::Query => read::query(app, req).await,
        Op::Scan => read::scan(app, req).await,
        Op::BatchGetItem => items::batch_get_item(app, req).await,
        Op::BatchWriteItem => items::batch_write_item(app, req).await,
        Op::DescribeLimits => Ok(tables::describe_limits()),
        Op::DescribeEndpoints => Ok(tables::describe_endpoints(host, app)),
        Op::UpdateTimeToLive => tables::update_time_to_live(app, req).await,
        Op::DescribeTimeToLive => tables::describe_time_to_live(app, req),
        Op::TagResource => tables::tag_resource(app, req).await,
        Op::UntagResource => tables::untag_resource(app, req).await,
        Op::ListTagsOfResource => tables::list_tags_of_resource(app, req),
        Op::DescribeContinuousBackups => tables::describe_continuous_backups(app, req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_parse_and_writes_are_known() {
        assert_eq!(Op::parse("PutItem"), Some(Op::PutItem));
        assert_eq!(Op::parse("UpdateItem"), Some(Op::UpdateItem));
        assert_eq!(Op::parse("ExecuteStatement"), None);
        assert!(Op::TransactWriteItems.is_write());
        assert!(!Op::TransactGetItems.is_write());
        assert!(Op::BatchWriteItem.is_write());
        assert!(!Op::Query.is_write());
        assert!(!Op::DescribeEndpoints.is_write());
        assert!(!Op::DescribeTimeToLive.is_write());
        assert!(Op::UpdateTimeToLive.is_write());
        assert!(Op::TagResource.is_write() && Op::UntagResource.is_write());
        assert!(!Op::ListTagsOfResource.is_write());
    }
}
