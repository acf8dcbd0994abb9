//! Tags on subscribers, and segments: which tagged readers an issue goes to.

use serde::{Deserialize, Serialize};

/// A tag as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tag {
    /// Row id.
    pub id: i64,
    /// The name as the editor wrote it.
    pub name: String,
    /// What the tag means, shown to readers when the tag is public.
    pub description: String,
    /// Readers may choose it for themselves on their manage page.
    pub public: bool,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The invisible characters a tag name may not hold (besides controls): the soft hyphen,
/// zero-width characters and marks, bidirectional embeddings, overrides and isolates, word
/// joiners and invisible operators, and the byte-order mark. As a regular-expression class body
/// for the API's document.
pub const INVISIBLE_CLASS: &str =
    "\u{ad}\u{200b}-\u{200f}\u{202a}-\u{202e}\u{2060}-\u{2064}\u{2066}-\u{2069}\u{feff}";

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// A tag with how many subscribers carry it.
#[derive(Debug, Clone)]
pub struct TagCount {
    /// The tag.
    pub tag: Tag,
    /// Subscribers (any status) carrying it.
    pub subscribers: i64,
}

/// A tag's name: one line of 1 to [`TagName::MAX`] characters, without commas or semicolons
/// (they separate tags in a CSV cell). Compared without regard to case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TagName(String);

impl TagName {
    /// Longest name.
    pub const MAX: usize = 50;

    /// Reads a name as typed.
    pub fn parse(raw: &str) -> Result<TagName, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("A tag needs a name.".into());
        }
        if name.chars().count() > TagName::MAX {
            return Err(format!(
                "The tag name {name:?} is too long ({} characters at most).",
                TagName::MAX
            ));
        }
        if name.contains([',', ';']) {
            return Err(format!(
                "The tag name {name:?} must not hold commas or semicolons."
            ));
        }
        if name.chars().any(|c| c.is_control() || is_invisible(c)) {
            return Err(format!(
                "The tag name {name:?} must be one line of visible characters."
            ));
        }
        Ok(TagName(name.to_owned()))
    }

    /// The names in a CSV cell or a form field: separated by commas or semicolons; blanks
    /// dropped, repeats (in any case) once.
    pub fn parse_list(raw: &str) -> Result<Vec<TagName>, String> {
        let mut names: Vec<TagName> = Vec::new();
        for part in raw.split([',', ';']) {
            if part.trim().is_empty() {
                continue;
            }
            let name = TagName::parse(part)?;
            if !names.iter().any(|n| n.key() == name.key()) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The unique key: lower case.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// How a segment uses a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentMode {
    /// The reader has at least one of these.
    Any,
    /// The reader has every one of these.
    All,
    /// The reader has none of these.
    None,
}

impl SegmentMode {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentMode::Any => "any",
            SegmentMode::All => "all",
            SegmentMode::None => "none",
        }
    }
}

impl TryFrom<String> for SegmentMode {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "any" => Ok(SegmentMode::Any),
            "all" => Ok(SegmentMode::All),
            "none" => Ok(SegmentMode::None),
            other => Err(format!("unknown segment mode {other:?}")),
        }
    }
}

/// Which readers an issue goes to: those with any of `any` (when it is not empty), all of
/// `all` and none of `none`. Empty everywhere: everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// At least one of these.
    pub any: Vec<Tag>,
    /// Every one of these.
    pub all: Vec<Tag>,
    /// None of these.
    pub none: Vec<Tag>,
}

impl Segment {
    /// Everyone: no tag condition at all.
    pub fn is_everyone(&self) -> bool {
        self.any.is_empty() && self.all.is_empty() && self.none.is_empty()
    }

    /// Each tag with its mode.
    pub fn entries(&self) -> impl Iterator<Item = (&Tag, SegmentMode)> {
        self.any
            .iter()
            .map(|t| (t, SegmentMode::Any))
            .chain(self.all.iter().map(|t| (t, SegmentMode::All)))
            .chain(self.none.iter().map(|t| (t, SegmentMode::None)))
    }

    /// A tag given more than one role (or twice in one), if any.
    pub fn repeated(&self) -> Option<&Tag> {
        let all: Vec<&Tag> = self.entries().map(|(t, _)| t).collect();
        all.iter()
            .enumerate()
            .find(|(i, t)| all[..*i].iter().any(|u| u.id == t.id))
            .map(|(_, t)| *t)
    }

    /// The segment in words: "everyone", or "readers tagged any of A, B; all of C; none of D".
    pub fn describe(&self) -> String {
        if self.is_everyone() {
            return "everyone".into();
        }
        let names = |tags: &[Tag]| {
            tags.iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        for (label, tags) in [
            ("any of", &self.any),
            ("all of", &self.all),
            ("none of", &self.none),
        ] {
            if !tags.is_empty() {
                parts.push(format!("{label} {}", names(tags)));
            }
        }
        format!("readers tagged {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(id: i64, name: &str) -> Tag {
        Tag {
            id,
            name: name.into(),
            description: String::new(),
            public: false,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn names_are_one_clean_line() {
        assert_eq!(
            TagName::parse("  Weekly Links ").unwrap().as_str(),
            "Weekly Links"
        );
        assert_eq!(TagName::parse("Weekly").unwrap().key(), "weekly");
        for bad in [
            "",
            "  ",
            "a,b",
            "a;b",
            "two\nlines",
            "zero\u{200b}width",
            &"x".repeat(51),
        ] {
            assert!(TagName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_cell_lists_each_tag_once() {
        let names = TagName::parse_list("vip; Weekly, ,weekly;VIP").unwrap();
        let names: Vec<&str> = names.iter().map(TagName::as_str).collect();
        assert_eq!(names, ["vip", "Weekly"]);
        assert!(TagName::parse_list("").unwrap().is_empty());
    }

    #[test]
    fn segments_read_in_words() {
        assert_eq!(Segment::default().describe(), "everyone");
        let segment = Segment {
            any: vec![tag(1, "A"), tag(2, "B")],
            all: vec![],
            none: vec![tag(3, "D")],
        };
        assert_eq!(segment.describe(), "readers tagged any of A, B; none of D");
        assert_eq!(segment.entries().count(), 3);
    }
}
