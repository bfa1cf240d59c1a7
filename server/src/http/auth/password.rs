//! Password hashing with Argon2id (RFC 9106), stored as PHC strings so the
//! parameters travel with the hash and can be raised later without a migration.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The stored hash is not a PHC string this server understands.
    #[error("stored password hash is malformed: {0}")]
    MalformedHash(argon2::password_hash::Error),
    /// Argon2 refused the input (e.g. a password longer than the algorithm accepts).
    #[error("password hashing failed: {0}")]
    Hashing(argon2::password_hash::Error),
}

/// Argon2id with OWASP's second recommended setting (19 MiB, 2 passes, 1 lane):
/// a login costs tens of milliseconds here, which the login rate limit makes affordable.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` with a fresh random salt; returns a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(PasswordError::Hashing)
}

/// Checks `password` against a stored PHC string. A wrong password is `Ok(false)`;
/// only a hash this server cannot read is an error.
pub fn verify_password(password: &str, stored_phc: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(stored_phc).map_err(PasswordError::MalformedHash)?;
    match hasher().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(other) => Err(PasswordError::Hashing(other)),
    }
}

/// A hash of a password nobody knows, verified against when the login name is
/// unknown so that "no such user" and "wrong password" take the same time.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password("decoy password that no account has").unwrap_or_else(|_| String::new())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_password_verifies_and_wrong_one_does_not() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc).unwrap());
        assert!(!verify_password("correct hors", &phc).unwrap());
    }

    #[test]
    fn same_password_hashes_differently_each_time() {
        assert_ne!(hash_password("pw").unwrap(), hash_password("pw").unwrap());
    }

    #[test]
    fn malformed_stored_hash_is_an_error_not_a_mismatch() {
        assert!(matches!(
            verify_password("pw", "not-a-phc-string"),
            Err(PasswordError::MalformedHash(_))
        ));
    }
}
