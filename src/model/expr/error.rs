//! The one error type of the expression module. Its `Display` is DynamoDB's message
//! text, word for word where DynamoDB's wording is known, so the protocol layer only
//! wraps it in a `ValidationException`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which request parameter an expression came from; it names the expression in
/// messages (`Invalid ConditionExpression: ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpressionKind {
    /// `ConditionExpression` (PutItem, UpdateItem, DeleteItem, transactions).
    Condition,
    /// `FilterExpression` (Query, Scan).
    Filter,
    /// `KeyConditionExpression` (Query).
    KeyCondition,
    /// `ProjectionExpression` (GetItem, Query, Scan, ...).
    Projection,
    /// `UpdateExpression` (UpdateItem).
    Update,
}

impl fmt::Display for ExpressionKind {
    /// The request parameter's name, e.g. `ConditionExpression`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExpressionKind::Condition => "ConditionExpression",
            ExpressionKind::Filter => "FilterExpression",
            ExpressionKind::KeyCondition => "KeyConditionExpression",
            ExpressionKind::Projection => "ProjectionExpression",
            ExpressionKind::Update => "UpdateExpression",
        })
    }
}

/// What went wrong with an expression, its parameters, or applying it to an item.
///
/// The first two variants are found when a request is validated (on the node that
/// received it); the others only when an update meets the stored item, which happens
/// at apply time in the state machine. All of them are the client's fault and map to
/// a `ValidationException`; none is a reason to crash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ExprError {
    /// One expression is malformed: syntax, an unknown function, a reserved word, an
    /// undefined `#name`/`:value`, overlapping paths, a bad operand type...
    #[error("Invalid {kind}: {message}")]
    Invalid {
        /// The expression's parameter.
        kind: ExpressionKind,
        /// DynamoDB's text after the `Invalid <kind>: ` prefix.
        message: String,
    },
    /// The request's parameters around the expressions are wrong: unused or malformed
    /// `ExpressionAttributeNames`/`Values`, a key condition that does not fit the key
    /// schema, a malformed legacy parameter (`KeyConditions`, `Expected`, ...).
    #[error("{0}")]
    Parameter(String),
    /// An update's path cannot be reached in the item (a missing parent map, a map
    /// where a list is needed, ...).
    #[error("The document path provided in the update expression is invalid for update")]
    InvalidUpdatePath,
    /// An update's operand has the wrong type for what is done with it (`a + :n` with
    /// `a` a string, `ADD` of a string set to a number set, ...).
    #[error("An operand in the update expression has an incorrect data type")]
    IncorrectOperandType,
    /// An update reads an attribute the item does not have (`SET a = b` without `b`).
    #[error("The provided expression refers to an attribute that does not exist in the item")]
    MissingAttribute,
    /// An arithmetic result is larger than DynamoDB can store.
    #[error(
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    )]
    NumberOverflow,
    /// An arithmetic result is non-zero but smaller than DynamoDB can store.
    #[error("Number underflow. Attempting to store a number with magnitude smaller than supported range")]
    NumberUnderflow,
    /// An arithmetic result needs more than 38 significant digits (never rounded).
    #[error("Attempting to store more than 38 significant digits in a Number")]
    NumberPrecision,
}

impl ExprError {
    /// An `Invalid <kind>: <message>` error.
    pub(crate) fn invalid(kind: ExpressionKind, message: impl Into<String>) -> ExprError {
        ExprError::Invalid { kind, message: message.into() }
    }

    /// Was this found when applying an update to an item (rather than when reading
    /// the request)? Such errors are decided identically on every replica.
    pub fn is_apply_time(&self) -> bool {
        !matches!(self, ExprError::Invalid { .. } | ExprError::Parameter(_))
    }
}

impl From<crate::model::number::ArithmeticError> for ExprError {
    fn from(e: crate::model::number::ArithmeticError) -> Self {
        use crate::model::number::ArithmeticError;
        match e {
            ArithmeticError::Overflow => ExprError::NumberOverflow,
            ArithmeticError::Underflow => ExprError::NumberUnderflow,
            ArithmeticError::Precision => ExprError::NumberPrecision,
        }
    }
}

/// The result of the module's fallible functions.
pub type Result<T, E = ExprError> = std::result::Result<T, E>;
