//! DynamoDB's error types, and the one mapping from a node's [`Error`] to them.
//!
//! DynamoDB answers an error with an HTTP status and a body
//! `{"__type": "com.amazonaws.dynamodb.v20120810#<Name>", "message": "..."}`; SDKs read the
//! part after `#` and decide from it (and from the status) whether to retry. The
//! retryable ones here are the 5xx: `InternalServerError` (500) and `ServiceUnavailable`
//! (503); botocore's and the other SDKs' default retry policies retry both, which is how an
//! SDK client rides through a leader election without any code of its own.
//!
//! [`from_error`] is the only place where a node error becomes a DynamoDB error. The rule
//! for 5xx: `ServiceUnavailable` only for what certainly did *not* happen (no leader to
//! take the write, so nothing was proposed); anything whose outcome is unknown (a write
//! that was proposed and may still commit) is `InternalServerError`, which claims nothing.

use warp::http::StatusCode;

use crate::error::Error;
use crate::model::ModelError;

/// The `__type` prefix of every DynamoDB error.
pub const TYPE_PREFIX: &str = "com.amazonaws.dynamodb.v20120810#";

/// The DynamoDB error types this server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is well-formed JSON but breaks a rule (400).
    Validation,
    /// No such table (400).
    ResourceNotFound,
    /// The table exists already, or is in a state that forbids the request (400).
    ResourceInUse,
    /// The body is not JSON, or a member has the wrong JSON type (400).
    Serialization,
    /// `X-Amz-Target` names no operation this server knows (400).
    UnknownOperation,
    /// A partition's item collection is too large (400; tables with local secondary
    /// indexes only; raft-nosql sets no such limit, so it is never sent today).
    ItemCollectionSizeLimitExceeded,
    /// Something failed on the server side; the request may or may not have taken
    /// effect (500, retried by SDKs).
    InternalServerError,
    /// The cluster cannot take the request now (no leader known); it did not take
    /// effect (503, retried by SDKs).
    ServiceUnavailable,
    /// A write's condition did not hold when it was applied; nothing was written (400).
    ConditionalCheckFailed,
    /// A transaction was cancelled; `CancellationReasons` say why, per action (400).
    TransactionCanceled,
    /// A `ClientRequestToken` came back with a different request (400).
    IdempotentParameterMismatch,
    /// No such table, as the backup operations say it (400).
    TableNotFound,
}

impl Kind {
    /// The name after `#` in `__type`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Validation => "ValidationException",
            Kind::ResourceNotFound => "ResourceNotFoundException",
            Kind::ResourceInUse => "ResourceInUseException",
            Kind::Serialization => "SerializationException",
            Kind::UnknownOperation => "UnknownOperationException",
            Kind::ItemCollectionSizeLimitExceeded => "ItemCollectionSizeLimitExceededException",
            Kind::InternalServerError => "InternalServerError",
            Kind::ServiceUnavailable => "ServiceUnavailable",
            Kind::ConditionalCheckFailed => "ConditionalCheckFailedException",
            Kind::TransactionCanceled => "TransactionCanceledException",
            Kind::IdempotentParameterMismatch => "IdempotentParameterMismatchException",
            Kind::TableNotFound => "TableNotFoundException",
        }
    }

    /// The HTTP status DynamoDB sends with this type.
    pub fn status(self) -> StatusCode {
        match self {
            Kind::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A DynamoDB error: its type and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdbError {
    pub kind: Kind,
    pub message: String,
    /// Members of the body beyond `__type` and `message` (`Item`,
    /// `CancellationReasons`).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl DdbError {
    pub fn new(kind: Kind, message: impl Into<String>) -> DdbError {
        DdbError { kind, message: message.into(), extra: serde_json::Map::new() }
    }

    /// A `ValidationException`.
    pub fn validation(message: impl Into<String>) -> DdbError {
        DdbError::new(Kind::Validation, message)
    }

    /// A `ValidationException` in DynamoDB's most common wording: "One or more parameter
    /// values were invalid: {detail}".
    pub fn invalid(detail: impl std::fmt::Display) -> DdbError {
        DdbError::validation(format!("One or more parameter values were invalid: {detail}"))
    }

    /// A `SerializationException`.
    pub fn serialization(message: impl Into<String>) -> DdbError {
        DdbError::new(Kind::Serialization, message)
    }

    /// DynamoDB's `ResourceNotFoundException` for a missing table.
    pub fn table_not_found(name: &str) -> DdbError {
        DdbError::new(
            Kind::ResourceNotFound,
            format!("Requested resource not found: Table: {name} not found"),
        )
    }

    /// The JSON body: `{"__type": "...#Name", "message": "..."}`.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "__type": format!("{TYPE_PREFIX}{}", self.kind.name()),
            "message": self.message,
        });
        for (k, v) in &self.extra {
            body[k] = v.clone();
        }
        body
    }
}

/// The DynamoDB error for a node error. The one mapping (see the module docs).
pub fn from_error(e: &Error) -> DdbError {
    match e {
        Error::BadRequest(m) => DdbError::validation(m.clone()),
        Error::Model(ModelError::ItemTooLarge { .. }) => {
            DdbError::validation("Item size has exceeded the maximum allowed size")
        }
        Error::Model(ModelError::InvalidTableName(name)) => DdbError::validation(format!(
            "1 validation error detected: Value '{name}' at 'tableName' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and \
             have length between 3 and 255"
        )),
        Error::Model(ModelError::Invalid(m)) => DdbError::invalid(m),
        Error::TableNotFound(name) | Error::TableReplaced(name) => DdbError::table_not_found(name),
        Error::ItemNotFound => DdbError::validation("item not found"),
        Error::TableExists(name) => {
            DdbError::new(Kind::ResourceInUse, format!("Table already exists: {name}"))
        }
        // Refused before anything was proposed: certainly not applied.
        Error::NotLeader { .. } | Error::NoLeader | Error::Unavailable(_) => {
            DdbError::new(Kind::ServiceUnavailable, e.to_string())
        }
        // Proposed, and may have been or still be applied: claim nothing. DynamoDB's own
        // InternalServerError means the same ("the request may or may not have
        // succeeded"); SDKs retry it, as they do against DynamoDB.
        Error::WriteTimeout(_) | Error::OutcomeUnknown(_) => {
            DdbError::new(Kind::InternalServerError, e.to_string())
        }
        // Not DynamoDB requests; never reached through its protocol.
        Error::Storage(_)
        | Error::Internal(_)
        | Error::MembershipConflict(_)
        | Error::Unauthorized(_)
        | Error::NodeNotFound(_) => DdbError::new(Kind::InternalServerError, e.to_string()),
        Error::ConditionFailed { .. } => {
            DdbError::new(Kind::ConditionalCheckFailed, "The conditional request failed")
        }
        Error::Expression(x) => DdbError::validation(x.to_string()),
        Error::TransactionCanceled(reasons) => {
            let mut e = DdbError::new(
                Kind::TransactionCanceled,
                format!(
                    "Transaction cancelled, please refer cancellation reasons for specific \
                     reasons {}",
                    crate::raft::reasons_text(reasons)
                ),
            );
            let list = reasons
                .iter()
                .map(|r| {
                    let mut v = serde_json::json!({ "Code": r.code });
                    if let Some(m) = &r.message {
                        v["Message"] = m.clone().into();
                    }
                    v
                })
                .collect();
            e.extra.insert("CancellationReasons".into(), serde_json::Value::Array(list));
            e
        }
        Error::IdempotentMismatch => DdbError::new(
            Kind::IdempotentParameterMismatch,
            "Request with the same client token was made with different parameters",
        ),
    }
}

impl From<Error> for DdbError {
    fn from(e: Error) -> DdbError {
        from_error(&e)
    }
}

impl From<ModelError> for DdbError {
    fn from(e: ModelError) -> DdbError {
        from_error(&Error::Model(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_name_the_type_after_the_dynamodb_prefix() {
        let e = DdbError::table_not_found("Music");
        assert_eq!(e.kind.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body(),
            serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                "message": "Requested resource not found: Table: Music not found"
            })
        );
        assert!(DdbError::invalid("x").message.starts_with("One or more parameter values"));
    }

    #[test]
    fn node_errors_map_to_dynamodb_types() {
        let kind = |e: Error| from_error(&e).kind;
        assert_eq!(kind(Error::TableNotFound("t".into())), Kind::ResourceNotFound);
        assert_eq!(kind(Error::TableExists("t".into())), Kind::ResourceInUse);
        assert_eq!(kind(Error::BadRequest("x".into())), Kind::Validation);
        assert_eq!(kind(Error::Model(ModelError::Invalid("x".into()))), Kind::Validation);
        let big = Error::Model(ModelError::ItemTooLarge { size: 1, limit: 0 });
        assert_eq!(from_error(&big).message, "Item size has exceeded the maximum allowed size");
    }

    #[test]
    fn only_what_certainly_did_not_happen_is_service_unavailable() {
        let kind = |e: Error| from_error(&e).kind;
        assert_eq!(kind(Error::NoLeader), Kind::ServiceUnavailable);
        let not_leader = Error::NotLeader { leader_id: 1, leader_addr: "a".into() };
        assert_eq!(kind(not_leader), Kind::ServiceUnavailable);
        // Refused before proposing (shutting down, quorum unreachable): not applied.
        assert_eq!(kind(Error::Unavailable("x".into())), Kind::ServiceUnavailable);
        // A proposed write whose outcome is unknown: 500, as DynamoDB's own "may or may
        // not have succeeded"; never the 503 that says "not applied".
        assert_eq!(kind(Error::WriteTimeout(5000)), Kind::InternalServerError);
        assert_eq!(kind(Error::OutcomeUnknown("x".into())), Kind::InternalServerError);
        assert_eq!(Kind::InternalServerError.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(Kind::ServiceUnavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
