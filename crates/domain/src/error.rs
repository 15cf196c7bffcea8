use thiserror::Error;

/// Raw input that does not make a valid domain value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {field}: {reason}")]
pub struct ValidationError {
    pub field: &'static str,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// A lifecycle move the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{entity} cannot go from {from} to {to}")]
pub struct InvalidTransition {
    pub entity: &'static str,
    pub from: &'static str,
    pub to: &'static str,
}
