//! A subscriber's optional display name.

/// Longest name kept, in characters.
const MAX_CHARS: usize = 100;

/// A trimmed, printable, non-empty name of at most 100 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberName(String);

/// Why a name was refused; the text is shown to the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Over the length limit.
    #[error("That name is too long (100 characters at most).")]
    TooLong,
    /// Holds control characters or characters that break email headers.
    #[error("That name contains characters we cannot use.")]
    Invalid,
}

impl SubscriberName {
    /// Reads an optional name: blank means none.
    pub fn parse_optional(raw: Option<&str>) -> Result<Option<SubscriberName>, NameError> {
        let Some(trimmed) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        if trimmed.chars().count() > MAX_CHARS {
            return Err(NameError::TooLong);
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() || matches!(c, '<' | '>' | '"'))
        {
            return Err(NameError::Invalid);
        }
        Ok(Some(SubscriberName(trimmed.to_owned())))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn blank_means_no_name() {
        assert_eq!(SubscriberName::parse_optional(None), Ok(None));
        assert_eq!(SubscriberName::parse_optional(Some("   ")), Ok(None));
    }

    #[test]
    fn keeps_unicode_names_trimmed() {
        let name = SubscriberName::parse_optional(Some("  Zoë Ōkubo "))
            .unwrap()
            .unwrap();
        assert_eq!(name.as_str(), "Zoë Ōkubo");
    }

    #[test]
    fn refuses_long_names_and_header_breakers() {
        assert_eq!(
            SubscriberName::parse_optional(Some(&"a".repeat(101))),
            Err(NameError::TooLong)
        );
        assert_eq!(
            SubscriberName::parse_optional(Some("Ada\r\nBcc: x")),
            Err(NameError::Invalid)
        );
        assert_eq!(
            SubscriberName::parse_optional(Some("<script>")),
            Err(NameError::Invalid)
        );
    }

    proptest! {
        #[test]
        fn accepted_names_are_short_and_printable(raw in "\\PC{0,120}") {
            if let Ok(Some(name)) = SubscriberName::parse_optional(Some(&raw)) {
                prop_assert!(name.as_str().chars().count() <= 100);
                prop_assert!(!name.as_str().chars().any(char::is_control));
                prop_assert_eq!(name.as_str().trim(), name.as_str());
            }
        }
    }
}
