//! TOTP second factor (RFC 6238: SHA-1, 6 digits, 30 s steps — what every
//! authenticator app speaks), with one step of clock skew allowed either way.

use totp_rs::{Algorithm, Secret, TOTP};

/// Why a TOTP secret could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    /// The stored secret is not valid base32.
    #[error("totp secret is not base32")]
    NotBase32,
    /// The secret decodes but is too short for RFC 4226 (at least 128 bits).
    #[error("totp secret is too short: {0}")]
    TooShort(String),
}

/// A user's TOTP generator.
#[derive(Debug)]
pub struct TotpFactor {
    totp: TOTP,
}

impl TotpFactor {
    /// Builds the factor from the base32 secret stored for the user.
    pub fn from_base32(secret: &str) -> Result<Self, TotpError> {
        let bytes = Secret::Encoded(secret.to_owned())
            .to_bytes()
            .map_err(|_| TotpError::NotBase32)?;
        let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes)
            .map_err(|e| TotpError::TooShort(e.to_string()))?;
        Ok(Self { totp })
    }

    /// A fresh random secret, base32 without padding, for enrolment.
    pub fn generate_secret() -> String {
        Secret::generate_secret().to_encoded().to_string()
    }

    /// Is `code` valid at `unix_seconds` (± one 30 s step)?
    pub fn check(&self, code: &str, unix_seconds: u64) -> bool {
        let code = code.trim();
        code.len() == 6 && self.totp.check(code, unix_seconds)
    }

    /// The code at `unix_seconds` (used by the demo and by tests acting as the phone).
    pub fn code_at(&self, unix_seconds: u64) -> String {
        self.totp.generate(unix_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B secret ("12345678901234567890") in base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn matches_rfc6238_test_vector() {
        let f = TotpFactor::from_base32(RFC_SECRET).unwrap();
        // RFC 6238 table: T = 59 s gives 94287082 (8 digits); the 6-digit code is its tail.
        assert_eq!(f.code_at(59), "287082");
        assert_eq!(f.code_at(1_111_111_109), "081804");
    }

    #[test]
    fn accepts_one_step_of_skew_but_not_two() {
        let f = TotpFactor::from_base32(RFC_SECRET).unwrap();
        let code = f.code_at(1_000_000_020);
        assert!(f.check(&code, 1_000_000_020 + 30));
        assert!(!f.check(&code, 1_000_000_020 + 90));
        assert!(!f.check("12345", 1_000_000_020));
    }

    #[test]
    fn rejects_short_and_malformed_secrets() {
        assert!(matches!(
            TotpFactor::from_base32("!!!"),
            Err(TotpError::NotBase32)
        ));
        assert!(matches!(
            TotpFactor::from_base32("GEZDGNBV"),
            Err(TotpError::TooShort(_))
        ));
        assert!(TotpFactor::from_base32(&TotpFactor::generate_secret()).is_ok());
    }
}
