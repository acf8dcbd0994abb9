//! The issue editor's form: the fields, the links as repeated rows, and the button pressed.
//! Links are added, reordered and removed by plain form buttons, so no JavaScript is needed.

use crate::domain::{IssueInput, IssueLink, MAX_LINKS};
use crate::web::error::WebError;

/// What the editor asked for with the button they pressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Save (also what Enter in a field does).
    Save,
    /// Move link `n` (0-based) up one place.
    Up(usize),
    /// Move link `n` down one place.
    Down(usize),
    /// Remove link `n`.
    Remove(usize),
    /// Add saved link `id` from the links inbox to the end of the roundup.
    Add(i64),
}

impl Action {
    fn parse(raw: &str) -> Result<Action, WebError> {
        let bad = || WebError::BadRequest(format!("Unknown editor action {raw:?}."));
        if raw.is_empty() || raw == "save" {
            return Ok(Action::Save);
        }
        let (verb, n) = raw.split_once('-').ok_or_else(bad)?;
        let n = n.parse::<usize>().map_err(|_| bad())?;
        match verb {
            "up" => Ok(Action::Up(n)),
            "down" => Ok(Action::Down(n)),
            "remove" => Ok(Action::Remove(n)),
            "add" => Ok(Action::Add(i64::try_from(n).map_err(|_| bad())?)),
            _ => Err(bad()),
        }
    }
}

/// The submitted form.
#[derive(Debug)]
pub struct IssueForm {
    /// Every field, links in row order; rows left entirely blank are dropped.
    pub input: IssueInput,
    /// The button pressed.
    pub action: Action,
}

impl IssueForm {
    /// Reads an `application/x-www-form-urlencoded` body. The link fields repeat, one of each
    /// per row, so the n-th `link_url` belongs with the n-th `link_title`.
    pub fn parse(body: &[u8]) -> Result<IssueForm, WebError> {
        let mut input = IssueInput::default();
        let mut action = String::new();
        let mut columns: [Vec<String>; 4] = Default::default();
        for (key, value) in url::form_urlencoded::parse(body) {
            let value = value.into_owned();
            match key.as_ref() {
                "subject" => input.subject = value,
                "slug" => input.slug = value,
                "preheader" => input.preheader = value,
                "body" => input.body = value,
                "links_heading" => input.links_heading = value,
                "action" => action = value,
                "link_title" => columns[0].push(value),
                "link_url" => columns[1].push(value),
                "link_source" => columns[2].push(value),
                "link_note" => columns[3].push(value),
                _ => {}
            }
        }
        let rows = columns.iter().map(Vec::len).max().unwrap_or(0);
        if rows > MAX_LINKS + 1 {
            return Err(WebError::BadRequest(format!(
                "Too many links ({MAX_LINKS} at most)."
            )));
        }
        let cell = |c: usize, r: usize| columns[c].get(r).cloned().unwrap_or_default();
        input.links = (0..rows)
            .map(|r| IssueLink {
                title: cell(0, r),
                url: cell(1, r),
                source: cell(2, r),
                note: cell(3, r),
            })
            .filter(|l| {
                [&l.title, &l.url, &l.source, &l.note]
                    .iter()
                    .any(|f| !f.trim().is_empty())
            })
            .collect();
        Ok(IssueForm {
            input,
            action: Action::parse(&action)?,
        })
    }

    /// Applies a reordering or removal to the links; out-of-range rows change nothing.
    pub fn apply_action(&mut self) {
        let links = &mut self.input.links;
        match self.action {
            Action::Save => {}
            Action::Up(n) if n > 0 && n < links.len() => links.swap(n - 1, n),
            Action::Down(n) if n + 1 < links.len() => links.swap(n, n + 1),
            Action::Remove(n) if n < links.len() => {
                links.remove(n);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> IssueForm {
        IssueForm::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn rows_line_up_and_blank_rows_drop() {
        let f = form(
            "subject=S&link_title=A&link_url=https%3A%2F%2Fa.example&link_source=&link_note=\
             &link_title=&link_url=&link_source=&link_note=\
             &link_title=B&link_url=https%3A%2F%2Fb.example&link_source=Src&link_note=Why",
        );
        assert_eq!(f.input.links.len(), 2);
        assert_eq!(f.input.links[1].title, "B");
        assert_eq!(f.input.links[1].note, "Why");
        assert_eq!(f.action, Action::Save);
    }

    #[test]
    fn buttons_reorder_and_remove() {
        let body =
            "subject=S&link_title=A&link_url=u&link_title=B&link_url=u&link_title=C&link_url=u";
        let titles = |f: &IssueForm| {
            f.input
                .links
                .iter()
                .map(|l| l.title.clone())
                .collect::<String>()
        };
        let mut f = form(&format!("{body}&action=up-2"));
        f.apply_action();
        assert_eq!(titles(&f), "ACB");
        let mut f = form(&format!("{body}&action=down-0"));
        f.apply_action();
        assert_eq!(titles(&f), "BAC");
        let mut f = form(&format!("{body}&action=remove-1"));
        f.apply_action();
        assert_eq!(titles(&f), "AC");
        let mut f = form(&format!("{body}&action=down-2"));
        f.apply_action();
        assert_eq!(titles(&f), "ABC");
    }

    #[test]
    fn unknown_actions_are_refused() {
        for bad in ["explode", "up-x", "up"] {
            assert!(IssueForm::parse(format!("action={bad}").as_bytes()).is_err());
        }
    }
}
