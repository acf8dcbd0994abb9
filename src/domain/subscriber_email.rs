//! A subscriber's email address, parsed once.

use std::str::FromStr;

use email_address::EmailAddress;

/// The longest address SMTP can carry (RFC 5321 path limit less the brackets).
const MAX_LEN: usize = 254;

/// A syntactically valid, deliverable-looking email address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberEmail(String);

/// Why a string is not an acceptable address; the text is shown to the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing was entered.
    #[error("Please enter your email address.")]
    Missing,
    /// Longer than any deliverable address.
    #[error("That email address is too long (254 characters at most).")]
    TooLong,
    /// Not an address at all.
    #[error("That does not look like an email address; please check it.")]
    Invalid,
}

impl SubscriberEmail {
    /// Trims and checks `raw`: RFC 5322 syntax, a dotted domain name, no IP literal.
    pub fn parse(raw: &str) -> Result<SubscriberEmail, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Missing);
        }
        if trimmed.len() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::Invalid);
        }
        let parsed = EmailAddress::from_str(trimmed).map_err(|_| EmailError::Invalid)?;
        let domain = parsed.domain();
        let labels_ok = domain
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
        if !domain.contains('.') || domain.starts_with('[') || !labels_ok {
            return Err(EmailError::Invalid);
        }
        Ok(SubscriberEmail(trimmed.to_owned()))
    }

    /// The address as the reader typed it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address folded to lower case: one subscriber per key, whatever the case.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl AsRef<str> for SubscriberEmail {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_addresses_and_trims_them() {
        let email = SubscriberEmail::parse("  Ada.Lovelace+news@Example.org ").unwrap();
        assert_eq!(email.as_str(), "Ada.Lovelace+news@Example.org");
        assert_eq!(email.key(), "ada.lovelace+news@example.org");
    }

    #[test]
    fn rejects_empty_and_blank_input() {
        assert_eq!(SubscriberEmail::parse(""), Err(EmailError::Missing));
        assert_eq!(SubscriberEmail::parse("   "), Err(EmailError::Missing));
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "ada",
            "ada@",
            "@example.com",
            "ada@@example.com",
            "ada@example",
            "ada@[127.0.0.1]",
            "ada @example.com",
            "ada@exa mple.com",
            "ada@-example.com",
            "ada@example..com",
            "ada@example.com\r\nBcc: x@y.z",
            "<ada@example.com>",
        ] {
            assert_eq!(
                SubscriberEmail::parse(bad),
                Err(EmailError::Invalid),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_over_long_addresses() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(SubscriberEmail::parse(&long), Err(EmailError::TooLong));
    }

    proptest! {
        #[test]
        fn generated_simple_addresses_parse(local in "[a-z0-9]{1,30}", domain in "[a-z]{1,20}\\.[a-z]{2,6}") {
            let raw = format!("{local}@{domain}");
            let parsed = SubscriberEmail::parse(&raw).unwrap();
            prop_assert_eq!(parsed.as_str(), raw.as_str());
        }

        #[test]
        fn parsing_never_panics_and_never_keeps_whitespace(raw in "\\PC{0,80}") {
            if let Ok(email) = SubscriberEmail::parse(&raw) {
                prop_assert!(!email.as_str().chars().any(char::is_whitespace));
                prop_assert!(email.as_str().len() <= 254);
            }
        }

        #[test]
        fn key_is_case_insensitive(local in "[a-zA-Z]{1,20}", domain in "[a-zA-Z]{1,20}\\.com") {
            let lower = SubscriberEmail::parse(&format!("{local}@{domain}").to_lowercase()).unwrap();
            let upper = SubscriberEmail::parse(&format!("{local}@{domain}").to_uppercase()).unwrap();
            prop_assert_eq!(lower.key(), upper.key());
        }
    }
}
