//! The one error type of a node's request path, and its mapping to HTTP.
//!
//! Every failure a client can see is one [`Error`] variant. [`Error::status`] and
//! [`Error::code`] are the single place where errors become HTTP status codes and the
//! JSON body `{"error": {"code": "...", "message": "..."}}`. Storage failures inside
//! Raft are not here: those are fatal and stop the node (see `node.rs`).

use serde::Serialize;
use warp::http::StatusCode;

use crate::model::expr::ExprError;
use crate::model::ModelError;
use crate::raft::{CancelReason, Rejection};

/// What went wrong with a client request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request itself is malformed: bad JSON, bad query parameter, wrong type.
    #[error("{0}")]
    BadRequest(String),
    /// The item, key or schema breaks a data-model rule.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// No table with this name.
    #[error("table {0:?} not found")]
    TableNotFound(String),
    /// No item with this key.
    #[error("item not found")]
    ItemNotFound,
    /// A table with this name exists already.
    #[error("table {0:?} already exists")]
    TableExists(String),
    /// The table a write was checked against was deleted (and a new one of the same
    /// name created) before the write was applied; nothing was written.
    #[error("table {0:?} was deleted and created again while the write waited to be applied; nothing was written")]
    TableReplaced(String),
    /// This node is not the leader; the leader is `leader_id` at `leader_addr`. Becomes
    /// a 307 redirect to the same path on the leader.
    #[error("node is not the leader; the leader is node {leader_id} at {leader_addr}")]
    NotLeader { leader_id: u64, leader_addr: String },
    /// This node is not the leader and does not know who is (election in progress,
    /// or partitioned away). Retry later; `Retry-After` says when.
    #[error("no leader is known at the moment; retry shortly")]
    NoLeader,
    /// The cluster cannot serve this now (shutting down, quorum unreachable). The text
    /// is a whole sentence; the code `unavailable` goes in the JSON body.
    #[error("{0}")]
    Unavailable(String),
    /// A write was proposed but not committed in time. Its outcome is unknown: it may
    /// still commit later. Retrying may apply it twice.
    #[error("the write was not committed within {0} ms; it may or may not take effect")]
    WriteTimeout(u64),
    /// A write was proposed, then its answer was lost (the node shut down, or lost
    /// leadership while the entry was in its log). It may have been applied, or may
    /// still be: never answered as "not applied", never resent by our clients.
    #[error("the outcome of the write is unknown: {0}; it may or may not take effect")]
    OutcomeUnknown(String),
    /// A conditional write's condition did not hold on the item as stored when the
    /// write was applied; nothing was written. `old` is that item (stored form).
    #[error("the conditional request failed")]
    ConditionFailed { old: Option<Vec<u8>> },
    /// An update could not be made to the stored item (DynamoDB's message).
    #[error(transparent)]
    Expression(#[from] ExprError),
    /// A transaction was cancelled; one reason per action, in order. Nothing was
    /// written.
    #[error("transaction cancelled: {}", crate::raft::reasons_text(.0))]
    TransactionCanceled(Vec<CancelReason>),
    /// A transaction's idempotency token came with a different request.
    #[error("the idempotency token was used by a different request")]
    IdempotentMismatch,
    /// A membership change that cannot be made now (an id or address in use, another
    /// change in progress, the last voter); nothing was changed.
    #[error("{0}")]
    MembershipConflict(String),
    /// No such cluster member.
    #[error("{0}")]
    NodeNotFound(String),
    /// The node's storage failed; the node is going down.
    #[error("storage error: {0}")]
    Storage(String),
    /// The request needs the proof of the cluster secret (`x-raft-nosql-auth`) and came
    /// without it, or with a wrong one; nothing was done.
    #[error("{0}")]
    Unauthorized(String),
    /// A bug: something that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Model(ModelError::ItemTooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Model(_) => StatusCode::BAD_REQUEST,
            Error::TableNotFound(_) | Error::ItemNotFound | Error::NodeNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            Error::MembershipConflict(_) => StatusCode::CONFLICT,
            Error::TableExists(_) | Error::TableReplaced(_) => StatusCode::CONFLICT,
            Error::ConditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Error::Expression(_) | Error::IdempotentMismatch => StatusCode::BAD_REQUEST,
            Error::TransactionCanceled(_) => StatusCode::CONFLICT,
            Error::NotLeader { .. } => StatusCode::TEMPORARY_REDIRECT,
            Error::NoLeader | Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::WriteTimeout(_) | Error::OutcomeUnknown(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Storage(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable code for the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::Model(ModelError::ItemTooLarge { .. }) => "item_too_large",
            Error::Model(ModelError::InvalidTableName(_)) => "invalid_table_name",
            Error::Model(_) => "invalid",
            Error::TableNotFound(_) => "table_not_found",
            Error::ItemNotFound => "item_not_found",
            Error::TableExists(_) => "table_exists",
            Error::TableReplaced(_) => "table_replaced",
            Error::ConditionFailed { .. } => "condition_failed",
            Error::Expression(_) => "invalid_update",
            Error::TransactionCanceled(_) => "transaction_canceled",
            Error::IdempotentMismatch => "idempotent_parameter_mismatch",
            Error::NotLeader { .. } => "not_leader",
            Error::MembershipConflict(_) => "membership_conflict",
            Error::NodeNotFound(_) => "node_not_found",
            Error::NoLeader => "no_leader",
            Error::Unavailable(_) => "unavailable",
            Error::WriteTimeout(_) => "write_timeout",
            Error::OutcomeUnknown(_) => "outcome_unknown",
            Error::Unauthorized(_) => "unauthorized",
            Error::Storage(_) => "storage",
            Error::Internal(_) => "internal",
        }
    }

    /// Whether the same request may succeed if retried later, unchanged, and was
    /// certainly not applied (a write answered so may be resent elsewhere).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::NotLeader { .. } | Error::NoLeader | Error::Unavailable(_))
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail { code: self.code().to_string(), message: self.to_string() },
        }
    }
}

impl From<openraft::error::ForwardToLeader<crate::raft::NodeId, crate::raft::NodeAddr>> for Error {
    /// openraft's "not the leader": a redirect if the leader is known, else 503.
    fn from(
        f: openraft::error::ForwardToLeader<crate::raft::NodeId, crate::raft::NodeAddr>,
    ) -> Self {
        match (f.leader_id, f.leader_node) {
            (Some(id), Some(node)) => Error::NotLeader { leader_id: id, leader_addr: node.addr },
            _ => Error::NoLeader,
        }
    }
}

impl From<Rejection> for Error {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::TableNotFound(t) => Error::TableNotFound(t),
            Rejection::TableExists(t) => Error::TableExists(t),
            Rejection::TableReplaced(t) => Error::TableReplaced(t),
            Rejection::Invalid(e) => Error::Model(e),
            Rejection::NotBatchable => Error::Internal(r.to_string()),
            Rejection::ConditionalCheckFailed { old } => Error::ConditionFailed { old },
            Rejection::Expression(e) => Error::Expression(e),
            Rejection::TransactionCanceled(reasons) => Error::TransactionCanceled(reasons),
            Rejection::IdempotentParameterMismatch => Error::IdempotentMismatch,
            Rejection::TableSetting(m) => Error::BadRequest(m),
        }
    }
}

/// `{"error": {"code": "...", "message": "..."}}`
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
