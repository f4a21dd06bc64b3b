//! Rendering one template: named placeholders, the code digit by digit in
//! SSML, escaping, and GSM-7 length for SMS.

use super::{Template, TemplateError, TextType};
use crate::domain::{Channel, Locale, OktaText, Otp};

/// Values available to templates.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    pub code: &'a Otp,
    /// Whole minutes until the code expires, at least 1.
    pub minutes: i64,
    pub org: &'a str,
}

/// A message ready for the provider: the template with its placeholders
/// filled in, read through `Deref`. `Debug` hides the body: it holds the
/// code.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered(Template);

impl std::ops::Deref for Rendered {
    type Target = Template;

    fn deref(&self) -> &Template {
        &self.0
    }
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("locale", &self.locale)
            .field("channel", &self.channel)
            .field("text_type", &self.text_type)
            .field("voice_id", &self.voice_id)
            .field("body_chars", &self.body.chars().count())
            .finish()
    }
}

impl Rendered {
    /// Okta's own SMS text (`msgTemplate`), sent as Okta wrote it.
    pub fn okta_sms(text: &OktaText, locale: &Locale) -> Self {
        Rendered(Template {
            locale: locale.to_string(),
            channel: Channel::Sms,
            body: text.expose().to_owned(),
            text_type: TextType::Text,
            voice_id: None,
            language_code: None,
        })
    }
}

/// Pause after each spoken digit; long enough to write it down.
const DIGIT_PAUSE: &str = r#"<break time="400ms"/>"#;

pub fn render(t: &Template, ctx: &RenderContext<'_>) -> Result<Rendered, TemplateError> {
    let invalid = |reason: String| TemplateError::Invalid {
        locale: t.locale.clone(),
        channel: t.channel,
        reason,
    };
    let ssml = t.text_type == TextType::Ssml;
    let mut out = String::with_capacity(t.body.len() + 64);
    let mut rest = t.body.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| invalid("unclosed placeholder".into()))?;
        let name = after[..end].trim();
        match (name, t.channel, ssml) {
            ("code", _, true) => {
                for d in ctx.code.expose().chars() {
                    out.push(d);
                    out.push_str(DIGIT_PAUSE);
                }
            }
            ("code", Channel::Voice, false) => {
                // Plain-text voice: commas make the engine pause per digit.
                let spaced: Vec<String> = ctx.code.expose().chars().map(String::from).collect();
                out.push_str(&spaced.join(", "));
            }
            ("code", _, false) => out.push_str(ctx.code.expose()),
            ("minutes", _, _) => out.push_str(&ctx.minutes.max(1).to_string()),
            ("org", _, true) => out.push_str(&escape_ssml(ctx.org)),
            ("org", _, false) => out.push_str(ctx.org),
            (other, _, _) => return Err(invalid(format!("unknown placeholder {other:?}"))),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if t.channel == Channel::Voice && t.voice_id.as_deref().unwrap_or_default().is_empty() {
        return Err(invalid("voice template has no voiceId".into()));
    }
    Ok(Rendered(Template {
        body: out,
        ..t.clone()
    }))
}

pub fn escape_ssml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
