//! A subscriber's email address, parsed once and kept in one normal form: the text in Unicode
//! NFC, the domain lower-case and in its ASCII (IDNA) form, so that `ADA@Bücher.example` and
//! `ada@xn--bcher-kva.example` are one reader and the envelope names a domain DNS can find.
//! Invisible, control and direction-changing characters are refused rather than stripped: an
//! address that looks like another is how a list gets poisoned.

use std::str::FromStr;

use email_address::EmailAddress;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

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
    /// It holds a character that cannot be seen or that turns the text around.
    #[error(
        "That email address contains an invisible or direction-changing character; please type it again."
    )]
    Hidden,
}

/// Characters no address may hold besides spaces: every control, format (zero-width and
/// bidirectional controls, the soft hyphen, the byte-order mark), surrogate, private-use or
/// unassigned code point.
fn is_hidden(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Other || is_default_ignorable(c)
}

/// Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt; the property is stable):
/// characters a renderer shows as nothing, some outside the "Other" group (variation
/// selectors, the combining grapheme joiner, the Hangul fillers).
fn is_default_ignorable(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

impl SubscriberEmail {
    /// Trims, normalizes and checks `raw`: RFC 5322 syntax, a dotted domain name, no IP literal.
    pub fn parse(raw: &str) -> Result<SubscriberEmail, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Missing);
        }
        if trimmed.len() > 4 * MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err(EmailError::Invalid);
        }
        if trimmed.chars().any(is_hidden) {
            return Err(EmailError::Hidden);
        }
        let composed: String = trimmed.nfc().collect();
        let (local, domain) = composed.rsplit_once('@').ok_or(EmailError::Invalid)?;
        if local.is_empty() || domain.is_empty() || domain.starts_with('[') {
            return Err(EmailError::Invalid);
        }
        let domain = idna::domain_to_ascii_strict(domain).map_err(|_| EmailError::Invalid)?;
        let address = format!("{local}@{domain}");
        if address.len() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        EmailAddress::from_str(&address).map_err(|_| EmailError::Invalid)?;
        let labels_ok = domain
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
        if !domain.contains('.') || !labels_ok {
            return Err(EmailError::Invalid);
        }
        Ok(SubscriberEmail(address))
    }

    /// The address in its normal form: as typed (trimmed, NFC), the domain in ASCII lower case.
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
        assert_eq!(email.as_str(), "Ada.Lovelace+news@example.org");
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
    fn refuses_invisible_control_and_bidirectional_characters() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{202E}',
            '\u{2066}',
            '\u{2069}',
            '\u{061C}',
            '\u{00AD}',
            '\u{FEFF}',
            '\u{0007}',
            '\u{E000}',
            '\u{E0041}',
            // Invisible, though not in the "Other" group.
            '\u{FE0F}',
            '\u{034F}',
            '\u{3164}',
            '\u{115F}',
            '\u{FFA0}',
            '\u{180E}',
        ] {
            for raw in [format!("ad{c}a@example.com"), format!("ada@exa{c}mple.com")] {
                assert_eq!(
                    SubscriberEmail::parse(&raw),
                    Err(EmailError::Hidden),
                    "U+{:04X} in {raw:?}",
                    c as u32
                );
            }
        }
    }

    #[test]
    fn composes_to_nfc_and_writes_the_domain_in_ascii() {
        let decomposed = SubscriberEmail::parse("zoe\u{0301}@Bu\u{0308}cher.example").unwrap();
        let composed = SubscriberEmail::parse("zoé@bücher.example").unwrap();
        assert_eq!(decomposed, composed);
        assert_eq!(composed.as_str(), "zoé@xn--bcher-kva.example");
        let upper = SubscriberEmail::parse("ADA@Bücher.example").unwrap();
        let ascii = SubscriberEmail::parse("ada@xn--bcher-kva.example").unwrap();
        assert_eq!(upper.key(), ascii.key());
        assert_eq!(ascii.key(), "ada@xn--bcher-kva.example");
        for bad in [
            "ada@xn--a.example",
            "ada@exa_mple.com",
            "ada@bücher..example",
        ] {
            assert_eq!(
                SubscriberEmail::parse(bad),
                Err(EmailError::Invalid),
                "{bad}"
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
                prop_assert!(!email.as_str().chars().any(|c| is_hidden(c) || c.is_whitespace()));
                prop_assert!(email.as_str().len() <= 254);
                let domain = email.as_str().rsplit_once('@').unwrap().1;
                prop_assert!(domain.is_ascii() && domain == domain.to_ascii_lowercase());
                // The normal form is a fixed point.
                prop_assert_eq!(SubscriberEmail::parse(email.as_str()).unwrap(), email.clone());
            }
        }

        #[test]
        fn any_character_of_the_other_group_is_refused(c in any::<char>().prop_filter("Other", |c| is_hidden(*c) && !c.is_whitespace())) {
            prop_assert_eq!(SubscriberEmail::parse(&format!("a{c}b@example.com")), Err(EmailError::Hidden));
        }

        #[test]
        fn key_is_case_insensitive(local in "[a-zA-Z]{1,20}", domain in "[a-zA-Z]{1,20}\\.com") {
            let lower = SubscriberEmail::parse(&format!("{local}@{domain}").to_lowercase()).unwrap();
            let upper = SubscriberEmail::parse(&format!("{local}@{domain}").to_uppercase()).unwrap();
            prop_assert_eq!(lower.key(), upper.key());
        }
    }
}
