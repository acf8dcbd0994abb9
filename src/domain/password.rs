//! Editor passwords: a length rule, and argon2id hashing (PHC strings) off the async threads.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use secrecy::{ExposeSecret, SecretString};

/// Fewest characters a password may have.
pub const MIN_CHARS: usize = 12;
/// Most characters a password may have (hashing cost stays bounded).
pub const MAX_CHARS: usize = 1024;

/// A password that meets the length rule; never printed.
pub struct Password(SecretString);

/// Why a password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than [`MIN_CHARS`].
    #[error("the password must have at least {MIN_CHARS} characters")]
    TooShort,
    /// Longer than [`MAX_CHARS`].
    #[error("the password must have at most {MAX_CHARS} characters")]
    TooLong,
}

impl Password {
    /// Checks the length rule.
    pub fn parse(raw: SecretString) -> Result<Password, PasswordError> {
        let n = raw.expose_secret().chars().count();
        if n < MIN_CHARS {
            Err(PasswordError::TooShort)
        } else if n > MAX_CHARS {
            Err(PasswordError::TooLong)
        } else {
            Ok(Password(raw))
        }
    }

    /// The argon2id PHC string of this password, with a fresh salt. CPU-heavy: call it from a
    /// blocking thread.
    pub fn hash(&self) -> String {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(self.0.expose_secret().as_bytes(), &salt)
            .expect("argon2 with default parameters cannot fail")
            .to_string()
    }
}

/// Whether `candidate` matches the PHC string `hash`. CPU-heavy: call it from a blocking thread.
pub fn verify(candidate: &SecretString, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(candidate.expose_secret().as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of nothing anyone can type, verified against when no account matches, so that an
/// unknown address takes as long to refuse as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| Password(SecretString::from("decoy password never used")).hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_overlong_passwords_are_refused() {
        assert_eq!(
            Password::parse("short".into()).err(),
            Some(PasswordError::TooShort)
        );
        assert_eq!(
            Password::parse("x".repeat(1025).into()).err(),
            Some(PasswordError::TooLong)
        );
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let password = Password::parse("correct horse battery".into()).unwrap();
        let (a, b) = (password.hash(), password.hash());
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify(&"correct horse battery".into(), &a));
        assert!(!verify(&"correct horse battery!".into(), &a));
        assert!(!verify(&"anything".into(), "not a phc string"));
    }
}
