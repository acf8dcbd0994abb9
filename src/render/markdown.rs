//! The editor's Markdown to HTML that is safe to put in front of readers, whatever was pasted.

use ammonia::UrlRelative;
use pulldown_cmark::{Options, Parser, html};

/// Renders Markdown (CommonMark with tables, strikethrough and smart punctuation) and
/// sanitizes the result: no scripts, no event handlers, no `javascript:` or `data:` links, no
/// styles or frames. Relative links become absolute under `base_url`, since an email has no
/// page to be relative to.
pub fn to_safe_html(markdown: &str, base_url: &url::Url) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_SMART_PUNCTUATION;
    let mut raw = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut raw, Parser::new_ext(markdown, options));
    ammonia::Builder::default()
        .url_relative(UrlRelative::RewriteWithBase(base_url.clone()))
        .clean(&raw)
        .to_string()
}

/// Sanitized HTML with the address of every http(s) link (`<a href>`) replaced by what
/// `rewrite` makes of it, in document order; images and other links are left alone.
pub fn rewrite_links(
    safe_html: &str,
    rewrite: impl Fn(&str) -> String + Send + Sync + 'static,
) -> String {
    ammonia::Builder::default()
        .url_relative(UrlRelative::PassThrough)
        .attribute_filter(move |element, attribute, value| {
            let web = value.starts_with("http://") || value.starts_with("https://");
            if element == "a" && attribute == "href" && web {
                Some(rewrite(value).into())
            } else {
                Some(value.into())
            }
        })
        .clean(safe_html)
        .to_string()
}

/// The plain-text reading of sanitized HTML: paragraphs wrapped at 72 columns, emphasis
/// kept as `*marks*`, thematic breaks as `* * *`, and each link numbered in the text and
/// listed with its address below.
pub fn to_text(safe_html: &str) -> String {
    // html2text drops thematic breaks; a section break stays visible as "* * *".
    let html = safe_html
        .replace("<hr>", "<p>* * *</p>")
        .replace("<hr />", "<p>* * *</p>");
    // Very deep nesting does not fit 72 columns; then the lines may run long rather than the
    // text being lost.
    html2text::config::plain()
        .string_from_read(html.as_bytes(), 72)
        .or_else(|_| html2text::config::plain().string_from_read(html.as_bytes(), 100_000))
        .unwrap_or_default()
        .trim_end()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(md: &str) -> String {
        to_safe_html(md, &"https://news.example.com".parse().unwrap())
    }

    #[test]
    fn hostile_markdown_comes_out_harmless() {
        let hostile = [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[click](javascript:alert(1))",
            "[click](JaVaScRiPt:alert(1))",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<div style=\"background:url(javascript:alert(1))\">x</div>",
            "<svg onload=alert(1)>",
            "![x](data:text/html;base64,PHNjcmlwdD4=)",
            "<form action=\"https://evil.example\"><input></form>",
            "<p onclick=\"steal()\">hi</p>",
            "<object data=\"x.swf\"></object>",
        ];
        for md in hostile {
            let html = render(md).to_lowercase();
            for banned in [
                "<script",
                "onerror",
                "onload",
                "onclick",
                "javascript:",
                "<iframe",
                "style=",
                "<svg",
                "data:text",
                "<form",
                "<object",
            ] {
                assert!(!html.contains(banned), "{md:?} gave {html:?}");
            }
        }
    }

    #[test]
    fn ordinary_markdown_survives() {
        let html = render(
            "# Title\n\nSome *emphasis*, a [link](https://example.com/a), ![chart](/c.png).\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        );
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<em>emphasis</em>"));
        assert!(html.contains("href=\"https://example.com/a\""));
        assert!(
            html.contains("src=\"https://news.example.com/c.png\""),
            "{html}"
        );
        assert!(html.contains("alt=\"chart\""));
        assert!(html.contains("<table>"));
    }

    #[test]
    fn deep_nesting_keeps_its_text() {
        let deep = format!("{}deep words", "> ".repeat(40));
        assert!(to_text(&render(&deep)).contains("deep words"));
    }

    #[test]
    fn a_thematic_break_stays_in_the_text() {
        let text = to_text(&render("Before.\n\n---\n\nAfter."));
        assert_eq!(text, "Before.\n\n* * *\n\nAfter.");
    }

    #[test]
    fn text_lists_the_links() {
        let text = to_text(&render("Read [the report](https://example.com/r) today."));
        assert!(text.contains("the report"), "{text}");
        assert!(text.contains("https://example.com/r"), "{text}");
    }
}
