//! Resolves the owner of a reading: the loan active at its measurement time.

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::storage::{LoanRecord, PatientId};

/// Why a reading has no owner; each is a dead-letter reason.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum OwnerError {
    #[error("device {device} has no loan active at {at}")]
    NoActiveLoan { device: String, at: DateTime<Utc> },
    #[error("patient of device {device} has no monitoring consent in force at {at}")]
    NoConsent { device: String, at: DateTime<Utc> },
    #[error("device {device} reported user {reported} but is lent to user {lent}")]
    DeviceUserMismatch {
        device: String,
        reported: u8,
        lent: u8,
    },
}

impl OwnerError {
    /// The dead-letter reason label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoActiveLoan { .. } => "no_active_loan",
            Self::NoConsent { .. } => "no_consent",
            Self::DeviceUserMismatch { .. } => "device_user_mismatch",
        }
    }
}

/// Every loan, indexed by device. Rebuilt from storage when it may be stale.
#[derive(Clone, Debug, Default)]
pub struct LoanBook {
    /// Sorted by (device_id, lent_from).
    loans: Vec<LoanRecord>,
}

impl LoanBook {
    pub fn new(mut loans: Vec<LoanRecord>) -> Self {
        loans.sort_by(|a, b| (&a.device_id, a.lent_from).cmp(&(&b.device_id, b.lent_from)));
        Self { loans }
    }

    /// Whether the book knows any loan of `device` (a miss may mean the book is stale).
    pub fn knows_device(&self, device: &str) -> bool {
        self.device_loans(device).next().is_some()
    }

    fn device_loans<'a>(&'a self, device: &'a str) -> impl Iterator<Item = &'a LoanRecord> {
        let start = self
            .loans
            .partition_point(|l| l.device_id.as_str() < device);
        self.loans[start..]
            .iter()
            .take_while(move |l| l.device_id == device)
    }

    /// The patient `device` was lent to at `at`, provided the patient's monitoring consent was in
    /// force then and a shared device's user slot (when reported) is the loan's.
    pub fn owner<'a>(
        &'a self,
        device: &'a str,
        at: DateTime<Utc>,
        device_user: Option<u8>,
    ) -> Result<&'a PatientId, OwnerError> {
        let loan = self
            .device_loans(device)
            .filter(|l| l.lent_from <= at && l.lent_until.is_none_or(|until| at < until))
            .last()
            .ok_or_else(|| OwnerError::NoActiveLoan {
                device: device.to_owned(),
                at,
            })?;
        let consented = loan.consent_monitoring_at.is_some_and(|from| from <= at)
            && loan
                .consent_monitoring_withdrawn_at
                .is_none_or(|withdrawn| at < withdrawn);
        if !consented {
            return Err(OwnerError::NoConsent {
                device: device.to_owned(),
                at,
            });
        }
        if let (Some(lent), Some(reported)) = (loan.device_user, device_user)
            && lent != reported
        {
            return Err(OwnerError::DeviceUserMismatch {
                device: device.to_owned(),
                reported,
                lent,
            });
        }
        Ok(&loan.patient_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn loan(device: &str, patient: &str, from: &str, until: Option<&str>) -> LoanRecord {
        LoanRecord {
            device_id: device.into(),
            patient_id: patient.into(),
            device_user: None,
            lent_from: t(from),
            lent_until: until.map(t),
            consent_monitoring_at: Some(t("2026-01-01T00:00:00Z")),
            consent_monitoring_withdrawn_at: None,
        }
    }

    #[test]
    fn reading_belongs_to_the_loan_active_at_measurement_time() {
        let book = LoanBook::new(vec![
            loan("cuff:1", "p-b", "2026-06-01T00:00:00Z", None),
            loan(
                "cuff:1",
                "p-a",
                "2026-02-01T00:00:00Z",
                Some("2026-06-01T00:00:00Z"),
            ),
        ]);
        // Uploaded today, measured while lent to p-a.
        assert_eq!(
            book.owner("cuff:1", t("2026-05-31T23:00:00Z"), None)
                .unwrap(),
            "p-a"
        );
        assert_eq!(
            book.owner("cuff:1", t("2026-06-01T00:00:00Z"), None)
                .unwrap(),
            "p-b"
        );
        assert_eq!(
            book.owner("cuff:1", t("2026-01-15T00:00:00Z"), None)
                .unwrap_err()
                .reason(),
            "no_active_loan"
        );
        assert_eq!(
            book.owner("cuff:2", t("2026-07-01T00:00:00Z"), None)
                .unwrap_err()
                .reason(),
            "no_active_loan"
        );
    }

    #[test]
    fn no_consent_and_withdrawn_consent_refuse() {
        let mut l = loan("ox:1", "p", "2025-01-01T00:00:00Z", None);
        l.consent_monitoring_withdrawn_at = Some(t("2026-03-01T00:00:00Z"));
        let book = LoanBook::new(vec![l]);
        assert!(book.owner("ox:1", t("2026-02-01T00:00:00Z"), None).is_ok());
        assert_eq!(
            book.owner("ox:1", t("2025-06-01T00:00:00Z"), None)
                .unwrap_err()
                .reason(),
            "no_consent"
        );
        assert_eq!(
            book.owner("ox:1", t("2026-03-02T00:00:00Z"), None)
                .unwrap_err()
                .reason(),
            "no_consent"
        );
    }

    #[test]
    fn shared_cuff_user_must_match_the_loan() {
        let mut l = loan("cuff:1", "p", "2026-01-01T00:00:00Z", None);
        l.device_user = Some(2);
        let book = LoanBook::new(vec![l]);
        let at = t("2026-02-01T00:00:00Z");
        assert!(book.owner("cuff:1", at, Some(2)).is_ok());
        assert!(book.owner("cuff:1", at, None).is_ok());
        assert_eq!(
            book.owner("cuff:1", at, Some(1)).unwrap_err().reason(),
            "device_user_mismatch"
        );
    }
}
