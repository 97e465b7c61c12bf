//! The hosted widgets (API.md "Hosted widgets"): their pages, script and style,
//! the browser SDK and the dev-only demo, all served from the binary; the
//! appearance a host page may set; the status codes; the headers. No I/O here:
//! the routes are in `api::widgets`.

use std::fmt::Write as _;

use crate::domain::token::TokenError;

// Each page: the shared head, the widgets' stylesheet and script, then its own title and body.
pub const PIN_SET_HTML: &str = concat!(
    include_str!("head.html"),
    include_str!("widget-head.html"),
    include_str!("pin-set.html")
);
pub const PIN_REVEAL_HTML: &str = concat!(
    include_str!("head.html"),
    include_str!("widget-head.html"),
    include_str!("pin-reveal.html")
);
pub const WIDGET_JS: &str = include_str!("widget.js");
pub const WIDGET_CSS: &str = include_str!("widget.css");
pub const SDK_JS: &str = include_str!("sdk.js");
pub const DEMO_HTML: &str = concat!(include_str!("head.html"), include_str!("demo.html"));
pub const DEMO_JS: &str = include_str!("demo.js");
pub const DEMO_CSS: &str = include_str!("demo.css");

/// The status codes a widget reports to its host (API.md "Hosted widgets").
pub mod code {
    pub const OK: i32 = 0;
    /// The page was opened without a token (Spidr's -1).
    pub const NO_TOKEN: i32 = -1;
    pub const TOKEN_INVALID: i32 = -10;
    pub const TOKEN_SUPERSEDED: i32 = -11;
    pub const TOKEN_EXHAUSTED: i32 = -12;
    pub const REVEAL_DISABLED: i32 = -30;
}

/// The code a widget shows for a token that cannot be redeemed.
pub fn token_code(e: TokenError) -> i32 {
    match e {
        TokenError::Invalid | TokenError::Expired | TokenError::Used => code::TOKEN_INVALID,
        TokenError::Superseded => code::TOKEN_SUPERSEDED,
        TokenError::Exhausted => code::TOKEN_EXHAUSTED,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Widget {
    PinSet,
    PinReveal,
}

impl Widget {
    pub fn name(self) -> &'static str {
        match self {
            Widget::PinSet => "pin-set",
            Widget::PinReveal => "pin-reveal",
        }
    }
    fn template(self) -> &'static str {
        match self {
            Widget::PinSet => PIN_SET_HTML,
            Widget::PinReveal => PIN_REVEAL_HTML,
        }
    }
}

/// What a host page may change in a widget's look: a few CSS custom
/// properties, each checked strictly (here and again in the page), so nothing
/// but a colour, a length or a list of font names reaches the style sheet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appearance {
    values: Vec<(&'static str, String)>,
}

/// An appearance field: form or query name, CSS custom property, checker.
pub type AppearanceField = (&'static str, &'static str, fn(&str) -> bool);

pub const APPEARANCE: &[AppearanceField] = &[
    ("font_family", "--pv-font-family", is_font_family),
    ("color_text", "--pv-color-text", is_color),
    ("color_background", "--pv-color-background", is_color),
    ("color_accent", "--pv-color-accent", is_color),
    ("color_error", "--pv-color-error", is_color),
    ("radius", "--pv-radius", is_radius),
];

/// The OpenAPI patterns of the appearance fields (the checkers accept no more).
pub const FONT_FAMILY_PATTERN: &str = "^[A-Za-z0-9 ,-]{1,100}$";
pub const COLOR_PATTERN: &str = "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$";
pub const RADIUS_PATTERN: &str = "^[0-9]{1,2}px$";

/// `#rgb` or `#rrggbb`.
pub fn is_color(s: &str) -> bool {
    s.strip_prefix('#').is_some_and(|hex| {
        (hex.len() == 3 || hex.len() == 6) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Font family names separated by commas: letters, digits, spaces and hyphens
/// only (no quotes, semicolons, parentheses or URLs), at most 100 characters.
pub fn is_font_family(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b',' || b == b'-')
}

/// `0px` to `99px`.
pub fn is_radius(s: &str) -> bool {
    s.strip_suffix("px")
        .is_some_and(|n| (1..=2).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
}

impl Appearance {
    /// From the request's fields (`name`, value); unknown names are not
    /// appearance and are ignored here. An invalid value is an error naming it.
    pub fn parse<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut values = Vec::new();
        for (name, value) in fields {
            let Some((_, prop, check)) = APPEARANCE.iter().find(|(n, _, _)| *n == name) else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            if !check(value) {
                return Err(format!(
                    "`{name}` is not a valid value (colours #rgb or #rrggbb, radius 0px to 99px, font names of letters, digits, spaces, hyphens and commas)"
                ));
            }
            values.retain(|(p, _)| p != prop);
            values.push((*prop, value.to_owned()));
        }
        Ok(Appearance { values })
    }
}

/// Everything a widget page needs, given to its script as `data-` attributes
/// (the CSP forbids inline script).
#[derive(Debug)]
pub struct Page<'a> {
    pub widget: Widget,
    /// The control token, when it may still be redeemed (else `None` and `status`).
    pub token: Option<&'a str>,
    pub card_id: Option<&'a str>,
    /// The code to show at once (the token cannot be used), if any.
    pub status: Option<i32>,
    pub pin_length_min: u8,
    pub pin_length_max: u8,
    pub reveal_display_s: u32,
    /// The server's clock (Unix seconds), for the `iat` of the encrypted PIN.
    pub now: i64,
    /// The host's origin, only when the program allows it to frame the widgets.
    pub parent_origin: Option<&'a str>,
    pub appearance: &'a Appearance,
}

/// HTML-escapes text for an attribute value in double quotes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

impl Page<'_> {
    pub fn render(&self) -> String {
        let mut attrs = String::new();
        let mut attr = |name: &str, value: &str| {
            let _ = write!(attrs, " data-{name}=\"{}\"", escape(value));
        };
        if let Some(t) = self.token {
            attr("token", t);
        }
        if let Some(c) = self.card_id {
            attr("card-id", c);
        }
        if let Some(s) = self.status {
            attr("initial-status", &s.to_string());
        }
        attr("pin-min", &self.pin_length_min.to_string());
        attr("pin-max", &self.pin_length_max.to_string());
        attr("display-s", &self.reveal_display_s.to_string());
        attr("now", &self.now.to_string());
        if let Some(o) = self.parent_origin {
            attr("parent-origin", o);
        }
        for (prop, value) in &self.appearance.values {
            // `--pv-color-text` → `data-appearance-color-text`
            attr(
                &format!("appearance-{}", prop.trim_start_matches("--pv-")),
                value,
            );
        }
        self.widget
            .template()
            .replace("{{attrs}}", &attrs)
            .replace("{{pin_min}}", &self.pin_length_min.to_string())
            .replace("{{pin_max}}", &self.pin_length_max.to_string())
    }
}

/// The Content-Security-Policy of a widget page: its own script, style and API
/// only, and framed only by the program's `widget_allowed_origins` (by nobody
/// where there are none, or where the token names no program).
pub fn csp(frame_ancestors: &[String]) -> String {
    let ancestors = if frame_ancestors.is_empty() {
        "'none'".to_owned()
    } else {
        frame_ancestors.join(" ")
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appearance_values_are_checked_strictly() {
        let ok = Appearance::parse([
            ("color_text", "#112233"),
            ("color_accent", "#abc"),
            ("radius", "8px"),
            ("font_family", "Helvetica Neue, Arial, sans-serif"),
            ("controlId", "ignored"),
        ])
        .unwrap();
        assert_eq!(ok.values.len(), 4);
        for (name, bad) in [
            ("color_text", "red"),
            ("color_text", "#12345"),
            ("color_text", "#1234567"),
            ("color_background", "#fff;}body{"),
            ("radius", "8"),
            ("radius", "100px"),
            ("radius", "1em"),
            ("font_family", "a\"b"),
            ("font_family", "x;y"),
            ("font_family", "url(x)"),
            ("font_family", &"a".repeat(101)),
        ] {
            assert!(Appearance::parse([(name, bad)]).is_err(), "{name}={bad}");
        }
    }

    #[test]
    fn pages_escape_what_they_embed() {
        let appearance = Appearance::default();
        let page = Page {
            widget: Widget::PinSet,
            token: Some("pct_\"><script>"),
            card_id: Some("card_x"),
            status: None,
            pin_length_min: 4,
            pin_length_max: 6,
            reveal_display_s: 60,
            now: 1,
            parent_origin: Some("https://app.example"),
            appearance: &appearance,
        };
        let html = page.render();
        assert!(!html.contains("\"><script>"));
        assert!(html.contains("data-token=\"pct_&quot;&gt;&lt;script&gt;\""));
        assert!(html.contains("data-parent-origin=\"https://app.example\""));
        assert!(!html.contains("{{"));
    }

    #[test]
    fn csp_frame_ancestors() {
        assert!(csp(&[]).ends_with("frame-ancestors 'none'"));
        let c = csp(&["https://a.example".into(), "http://localhost:3000".into()]);
        assert!(c.ends_with("frame-ancestors https://a.example http://localhost:3000"));
        assert!(c.contains("default-src 'none'"));
    }
}
