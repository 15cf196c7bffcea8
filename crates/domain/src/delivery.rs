use std::fmt;

use chrono::{DateTime, Utc};

use crate::{InstallationId, ValidationError};

/// GitHub's `X-GitHub-Delivery` id: a GUID naming one delivery, the same on
/// every redelivery of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryId(String);

impl DeliveryId {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "delivery id",
                "must be 1 to 64 letters, digits or `-` (a GUID)",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::string_enum! {
    /// What ephemera made of a delivery.
    pub enum DeliveryOutcome ("delivery outcome") {
        /// The state change it implied was committed.
        Applied = "applied",
        /// Understood, and deliberately not acted on (the reason says why).
        Ignored = "ignored",
        /// A delivery id seen before: answered, nothing changed.
        Duplicate = "duplicate",
        /// It could not be applied (the reason holds the error); a
        /// redelivery of the same id is applied afresh.
        Failed = "failed",
    }
}

/// A delivery as the delivery log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub delivery_id: DeliveryId,
    pub event: String,
    pub action: Option<String>,
    pub repository: Option<String>,
    pub installation_id: Option<InstallationId>,
    pub outcome: DeliveryOutcome,
    pub reason: Option<String>,
    /// How many times GitHub sent this delivery id (redeliveries included).
    pub attempts: i32,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_guids() {
        assert!(DeliveryId::parse("72d3162e-cc78-11e3-81ab-4c9367dc0958").is_ok());
        assert!(DeliveryId::parse("").is_err());
        assert!(DeliveryId::parse("a b").is_err());
        assert!(DeliveryId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn outcomes_round_trip() {
        for outcome in DeliveryOutcome::ALL {
            assert_eq!(outcome.as_str().parse::<DeliveryOutcome>(), Ok(outcome));
        }
        assert!("done".parse::<DeliveryOutcome>().is_err());
    }
}
