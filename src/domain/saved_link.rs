//! The links inbox: links the editor saves between issues, each known by its normalized
//! address, so one link is kept once however it was shared.

use chrono::{DateTime, Utc};

/// Longest address kept.
pub const MAX_URL: usize = 2000;
/// Longest title.
pub const MAX_TITLE: usize = 300;
/// Longest source.
pub const MAX_SOURCE: usize = 100;
/// Longest note.
pub const MAX_NOTE: usize = 500;

/// Query parameters that only say where a click came from, dropped for comparison.
fn is_tracking_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("utm_") || name == "fbclid" || name == "gclid"
}

/// Whether `raw` starts with `http://` or `https://` in any case (the URL parser alone would
/// also take `http:/host` and `http:host`).
pub fn has_web_scheme(raw: &str) -> bool {
    let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// An address as the editor saved it, and the key it is compared by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkAddress {
    /// The address, trimmed, as given.
    pub url: String,
    /// The address normalized: scheme and host in lower case, no default port, no fragment,
    /// no `utm_*`, `fbclid` or `gclid` parameter.
    pub key: String,
}

impl LinkAddress {
    /// Reads an http(s) address with a host, at most [`MAX_URL`] bytes, with no control
    /// characters (which the parser would drop silently).
    pub fn parse(raw: &str) -> Result<LinkAddress, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("A link needs an address.".into());
        }
        if raw.len() > MAX_URL {
            return Err(format!(
                "The address is too long ({MAX_URL} bytes at most)."
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err("An address is one line, without control characters.".into());
        }
        if !has_web_scheme(raw) {
            return Err("A link is a full http:// or https:// address.".into());
        }
        let mut url =
            url::Url::parse(raw).map_err(|e| format!("{raw:?} is not an address: {e}."))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err("A link is a full http:// or https:// address.".into());
        }
        url.set_fragment(None);
        // The other parameters are kept as written (no re-encoding), in their order.
        let query = url.query().unwrap_or_default().to_owned();
        let kept: Vec<&str> = query
            .split('&')
            .filter(|part| !part.is_empty())
            .filter(|part| {
                let name = part.split('=').next().unwrap_or_default();
                let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
                !is_tracking_parameter(&name.replace('+', " "))
            })
            .collect();
        url.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
        Ok(LinkAddress {
            url: raw.to_owned(),
            key: url.to_string(),
        })
    }
}

/// One line of text, trimmed, at most `max` characters, without control characters.
pub fn one_line(field: &str, raw: &str, max: usize) -> Result<String, String> {
    let text = raw.trim();
    if text.chars().count() > max {
        return Err(format!(
            "The {field} is too long ({max} characters at most)."
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("The {field} must be one line."));
    }
    Ok(text.to_owned())
}

/// A link to save, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSavedLink {
    /// Where it points.
    pub address: LinkAddress,
    /// Its title (empty: not known yet).
    pub title: String,
    /// Who published it.
    pub source: String,
    /// The editor's note.
    pub note: String,
}

impl NewSavedLink {
    /// Checks each field.
    pub fn parse(url: &str, title: &str, source: &str, note: &str) -> Result<NewSavedLink, String> {
        Ok(NewSavedLink {
            address: LinkAddress::parse(url)?,
            title: one_line("title", title, MAX_TITLE)?,
            source: one_line("source", source, MAX_SOURCE)?,
            note: one_line("note", note, MAX_NOTE)?,
        })
    }
}

/// A saved link.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SavedLink {
    /// Row id.
    pub id: i64,
    /// The address as saved.
    pub url: String,
    /// The title.
    pub title: String,
    /// Who published it.
    pub source: String,
    /// The editor's note.
    pub note: String,
    /// When it was first saved.
    pub saved_at: DateTime<Utc>,
    /// When it was last saved or changed.
    pub updated_at: DateTime<Utc>,
}

impl SavedLink {
    /// The link as a roundup entry (its address standing in for a title not known yet).
    pub fn into_issue_link(self) -> crate::domain::IssueLink {
        crate::domain::IssueLink {
            title: if self.title.is_empty() {
                self.url.chars().take(MAX_TITLE).collect()
            } else {
                self.title
            },
            url: self.url,
            source: self.source,
            note: self.note,
        }
    }
}

/// An issue a link went out in.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SentIn {
    /// The issue's id.
    pub issue_id: i64,
    /// Its subject.
    pub subject: String,
    /// Where it lives in the archive.
    pub slug: String,
    /// When it went out.
    pub published_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        LinkAddress::parse(raw).unwrap().key
    }

    #[test]
    fn addresses_that_are_one_link_have_one_key() {
        for (a, b) in [
            ("https://example.com/a", "HTTPS://EXAMPLE.COM/a"),
            ("https://example.com/a", "https://Example.com:443/a"),
            ("http://example.com/a", "http://example.com:80/a"),
            ("https://example.com/a", "https://example.com/a#section-2"),
            (
                "https://example.com/a",
                "https://example.com/a?utm_source=x&utm_medium=y",
            ),
            (
                "https://example.com/a?id=7",
                "https://example.com/a?utm_campaign=z&id=7",
            ),
            (
                "https://example.com/a?id=7",
                "https://example.com/a?id=7&fbclid=abc",
            ),
            (
                "https://example.com/a?id=7",
                "https://example.com/a?gclid=1&id=7#top",
            ),
            (
                "https://example.com/a",
                "https://example.com/a?UTM_Source=x",
            ),
            ("https://example.com", "https://example.com/"),
            ("https://example.com/a", "  https://example.com/a  "),
            ("https://bücher.example/", "https://xn--bcher-kva.example/"),
            (
                "https://e.com/?next=/b",
                "https://e.com/?next=/b&utm_source=x",
            ),
            (
                "https://e.com/?q=a%20b",
                "https://e.com/?q=a%20b&utm_source=x",
            ),
            ("https://e.com/?t=1:30", "https://e.com/?gclid=1&t=1:30"),
            ("https://e.com/?amp", "https://e.com/?amp&fbclid=1"),
            (
                "https://e.com/?a=1&b=2",
                "https://e.com/?a=1&utm_term=q&b=2",
            ),
            ("https://e.com/a", "https://e.com/a?utm%5Fsource=x"),
        ] {
            assert_eq!(key(a), key(b), "{a} and {b}");
        }
    }

    #[test]
    fn different_links_keep_different_keys() {
        for (a, b) in [
            ("https://example.com/a", "https://example.com/A"),
            ("https://example.com/a", "http://example.com/a"),
            ("https://example.com/a", "https://example.com:8443/a"),
            ("https://example.com/a", "https://www.example.com/a"),
            ("https://example.com/a?id=7", "https://example.com/a?id=8"),
            (
                "https://example.com/a?id=7&p=2",
                "https://example.com/a?id=7",
            ),
            ("https://example.com/a", "https://example.com/a/"),
            ("https://example.com/a?ref=x", "https://example.com/a"),
            ("https://e.com/?a=1&b=2", "https://e.com/?b=2&a=1"),
            ("https://e.com/?amp", "https://e.com/?amp="),
        ] {
            assert_ne!(key(a), key(b), "{a} and {b}");
        }
    }

    #[test]
    fn only_full_web_addresses_are_links() {
        for bad in [
            "",
            "example.com/a",
            "ftp://example.com/",
            "mailto:desk@example.com",
            "javascript:alert(1)",
            "https://",
            "https://e.com/a\tb",
            "http:/e.com/a",
            "http:e.com/a",
            "https://e.com/a\nb",
        ] {
            assert!(LinkAddress::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert!(LinkAddress::parse(&long).is_err());
        let wide = format!("https://example.com/{}", "é".repeat(MAX_URL / 2));
        assert!(LinkAddress::parse(&wide).is_err(), "bytes are counted");
    }

    #[test]
    fn the_address_is_kept_as_given() {
        let a = LinkAddress::parse(" https://Example.com/a?utm_source=x#f ").unwrap();
        assert_eq!(a.url, "https://Example.com/a?utm_source=x#f");
        assert_eq!(a.key, "https://example.com/a");
    }

    #[test]
    fn fields_are_single_lines_within_their_limits() {
        assert!(NewSavedLink::parse("https://e.com/", "T", "S", "N").is_ok());
        assert!(NewSavedLink::parse("https://e.com/", "two\nlines", "", "").is_err());
        assert!(NewSavedLink::parse("https://e.com/", "", &"s".repeat(101), "").is_err());
        assert!(NewSavedLink::parse("https://e.com/", "", "", &"n".repeat(501)).is_err());
    }
}
