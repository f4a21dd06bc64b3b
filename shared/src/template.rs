//! Message templates: the `TemplateStore` port, the built-in defaults
//! compiled from `templates/*.json`, the locale fallback chain, and rendering.
//!
//! Placeholders are named: `{{code}}`, `{{minutes}}`, `{{org}}`. In an SMS
//! the code is written as is. In SSML the code is read digit by digit with a
//! pause after each digit; templates say it twice. Every inserted value is
//! escaped for SSML. An unknown placeholder makes a template invalid; the
//! built-in default for the same locale is used instead.
//!
//! Lookup for a locale such as `es-MX` tries, in order: `es-MX`, `es`, a
//! built-in of the same language under another region (`pt-BR` for `pt-PT`),
//! then `DEFAULT_LOCALE` and its language. For each step the store (the DynamoDB
//! table, when configured) is asked first, then the built-ins. A user's own
//! language therefore wins over the default language, and an operator's
//! template wins over a built-in for the same locale.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::channel::Channel;
use crate::locale::Locale;
use crate::otp::Otp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TextType {
    Text,
    Ssml,
}

impl TextType {
    pub fn as_str(&self) -> &'static str {
        match self {
            TextType::Text => "TEXT",
            TextType::Ssml => "SSML",
        }
    }
}

/// One template for one locale and channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub locale: String,
    pub channel: Channel,
    pub body: String,
    pub text_type: TextType,
    /// Amazon Polly voice for voice messages.
    pub voice_id: Option<String>,
    pub language_code: Option<String>,
}

#[derive(Debug, Error)]
pub enum TemplateError {
    #[error("template store unavailable: {0}")]
    Store(String),
    #[error("template {locale}/{channel} is invalid: {reason}")]
    Invalid {
        locale: String,
        channel: Channel,
        reason: String,
    },
}

/// Where operator-managed templates live.
#[async_trait]
pub trait TemplateStore: Send + Sync + std::fmt::Debug {
    async fn get(&self, locale: &str, channel: Channel) -> Result<Option<Template>, TemplateError>;
}

/// A template store held in memory: for flow tests and local mode.
#[derive(Debug, Default)]
pub struct InMemoryTemplateStore {
    templates: std::sync::RwLock<HashMap<(String, Channel), Template>>,
}

impl InMemoryTemplateStore {
    pub fn put(&self, t: Template) {
        self.templates
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((t.locale.clone(), t.channel), t);
    }
}

#[async_trait]
impl TemplateStore for InMemoryTemplateStore {
    async fn get(&self, locale: &str, channel: Channel) -> Result<Option<Template>, TemplateError> {
        let map = self.templates.read().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(&(locale.to_owned(), channel)).cloned())
    }
}

// ------------------------------------------------------------- built-ins

/// The on-disk format of `templates/<locale>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateFile {
    pub locale: String,
    pub sms: SmsPart,
    pub voice: VoicePart,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SmsPart {
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VoicePart {
    pub body: String,
    pub voice_id: String,
    pub language_code: String,
    #[serde(default = "ssml")]
    pub text_type: TextType,
}

fn ssml() -> TextType {
    TextType::Ssml
}

impl TemplateFile {
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn templates(&self) -> [Template; 2] {
        [
            Template {
                locale: self.locale.clone(),
                channel: Channel::Sms,
                body: self.sms.body.clone(),
                text_type: TextType::Text,
                voice_id: None,
                language_code: None,
            },
            Template {
                locale: self.locale.clone(),
                channel: Channel::Voice,
                body: self.voice.body.clone(),
                text_type: self.voice.text_type,
                voice_id: Some(self.voice.voice_id.clone()),
                language_code: Some(self.voice.language_code.clone()),
            },
        ]
    }
}

/// The shipped template files, compiled in. A test checks this list against
/// the directory so a new file cannot be forgotten.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    ("ar.json", include_str!("../../templates/ar.json")),
    ("de.json", include_str!("../../templates/de.json")),
    ("en.json", include_str!("../../templates/en.json")),
    ("es.json", include_str!("../../templates/es.json")),
    ("fr.json", include_str!("../../templates/fr.json")),
    ("hi.json", include_str!("../../templates/hi.json")),
    ("it.json", include_str!("../../templates/it.json")),
    ("ja.json", include_str!("../../templates/ja.json")),
    ("ko.json", include_str!("../../templates/ko.json")),
    ("nl.json", include_str!("../../templates/nl.json")),
    ("pt-BR.json", include_str!("../../templates/pt-BR.json")),
    ("zh-CN.json", include_str!("../../templates/zh-CN.json")),
];

/// The built-in defaults, keyed by locale and channel.
#[derive(Debug, Clone)]
pub struct BuiltinTemplates {
    by_key: HashMap<(String, Channel), Template>,
}

impl BuiltinTemplates {
    /// Parses the compiled-in files. They are checked by the test suite, so
    /// a broken file is a build defect; it is skipped with an error log
    /// rather than taking the service down.
    pub fn load() -> Self {
        let mut by_key = HashMap::new();
        for (name, text) in BUILTIN_FILES {
            match TemplateFile::parse(text) {
                Ok(file) => {
                    for t in file.templates() {
                        by_key.insert((t.locale.clone(), t.channel), t);
                    }
                }
                Err(e) => {
                    tracing::error!(file = name, error = %e, "built-in template file is invalid")
                }
            }
        }
        BuiltinTemplates { by_key }
    }

    pub fn get(&self, locale: &str, channel: Channel) -> Option<&Template> {
        self.by_key.get(&(locale.to_owned(), channel))
    }

    /// A built-in of the same language under another region, e.g. `pt-BR`
    /// for `pt-PT`: closer to the reader than the default language.
    pub fn sibling(&self, language: &str, channel: Channel) -> Option<&Template> {
        let mut found: Vec<&Template> = self
            .by_key
            .values()
            .filter(|t| t.channel == channel && t.locale.split('-').next() == Some(language))
            .collect();
        found.sort_by(|a, b| a.locale.cmp(&b.locale));
        found.first().copied()
    }

    pub fn locales(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_key.keys().map(|(l, _)| l.clone()).collect();
        v.sort();
        v.dedup();
        v
    }
}

// -------------------------------------------------------------- rendering

/// Values available to templates.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    pub code: &'a Otp,
    /// Whole minutes until the code expires, at least 1.
    pub minutes: i64,
    pub org: &'a str,
}

/// A message ready for the provider. `Debug` hides the body: it holds the code.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    pub locale: String,
    pub channel: Channel,
    pub body: String,
    pub text_type: TextType,
    pub voice_id: Option<String>,
    pub language_code: Option<String>,
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
    Ok(Rendered {
        locale: t.locale.clone(),
        channel: t.channel,
        body: out,
        text_type: t.text_type,
        voice_id: t.voice_id.clone(),
        language_code: t.language_code.clone(),
    })
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

/// Length of `s` in GSM 03.38 septets, or `None` if a character is outside
/// the GSM-7 alphabet (the message then goes as UCS-2, 70 characters a part).
pub fn gsm7_len(s: &str) -> Option<usize> {
    const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    const EXTENDED: &str = "^{}\\[~]|€\u{000C}";
    s.chars().try_fold(0usize, |n, c| {
        if BASIC.contains(c) {
            Some(n + 1)
        } else if EXTENDED.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    })
}

// ------------------------------------------------------------ resolution

/// Finds and renders the right template for a request.
#[derive(Debug, Clone)]
pub struct Templates {
    store: Option<Arc<dyn TemplateStore>>,
    builtin: Arc<BuiltinTemplates>,
    default_locale: Locale,
    org: String,
}

impl Templates {
    pub fn new(
        store: Option<Arc<dyn TemplateStore>>,
        default_locale: Locale,
        org: impl Into<String>,
    ) -> Self {
        Templates {
            store,
            builtin: Arc::new(BuiltinTemplates::load()),
            default_locale,
            org: org.into(),
        }
    }

    pub fn builtin(&self) -> &BuiltinTemplates {
        &self.builtin
    }

    fn candidates<'a>(&'a self, locale: &'a Locale) -> Vec<&'a str> {
        let mut out: Vec<&str> = locale.fallbacks();
        for c in self.default_locale.fallbacks() {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        if !out.contains(&"en") {
            out.push("en");
        }
        out
    }

    /// The template for `locale` and `channel`, following the chain.
    pub async fn resolve(&self, locale: &Locale, channel: Channel) -> Option<Template> {
        let mut store_ok = true;
        for cand in self.candidates(locale) {
            if let (Some(store), true) = (&self.store, store_ok) {
                match store.get(cand, channel).await {
                    Ok(Some(t)) => return Some(t),
                    Ok(None) => {}
                    Err(e) => {
                        // A template table outage must not stop codes going
                        // out: fall back to the built-ins for this request.
                        tracing::warn!(error = %e, "template store failed; using built-in templates");
                        store_ok = false;
                    }
                }
            }
            if let Some(t) = self.builtin.get(cand, channel) {
                return Some(t.clone());
            }
            if cand == locale.language()
                && let Some(t) = self.builtin.sibling(cand, channel)
            {
                return Some(t.clone());
            }
        }
        None
    }

    /// Renders the message for a code. Falls back to the built-in template
    /// when an operator template does not render.
    pub async fn render(
        &self,
        locale: &Locale,
        channel: Channel,
        code: &Otp,
        minutes: i64,
    ) -> Result<Rendered, TemplateError> {
        let ctx = RenderContext {
            code,
            minutes,
            org: &self.org,
        };
        let template =
            self.resolve(locale, channel)
                .await
                .ok_or_else(|| TemplateError::Invalid {
                    locale: locale.to_string(),
                    channel,
                    reason: "no template and no built-in default".into(),
                })?;
        match render(&template, &ctx) {
            Ok(r) => Ok(r),
            Err(e) => {
                tracing::warn!(error = %e, "template does not render; using the built-in one");
                let builtin = self
                    .candidates(locale)
                    .into_iter()
                    .find_map(|c| self.builtin.get(c, channel))
                    .ok_or(e)?;
                render(builtin, &ctx)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn otp(s: &str) -> Otp {
        Otp::parse(s).unwrap()
    }

    #[test]
    fn placeholders_and_escaping() {
        let t = Template {
            locale: "en".into(),
            channel: Channel::Voice,
            body: "<speak>{{org}}: {{ code }}, {{minutes}} min</speak>".into(),
            text_type: TextType::Ssml,
            voice_id: Some("Joanna".into()),
            language_code: Some("en-US".into()),
        };
        let code = otp("4071");
        let r = render(
            &t,
            &RenderContext {
                code: &code,
                minutes: 0,
                org: "A&B <Corp>",
            },
        )
        .unwrap();
        assert_eq!(
            r.body,
            "<speak>A&amp;B &lt;Corp&gt;: 4<break time=\"400ms\"/>0<break time=\"400ms\"/>7<break time=\"400ms\"/>1<break time=\"400ms\"/>, 1 min</speak>"
        );
        assert!(!format!("{r:?}").contains("4071") && !format!("{r:?}").contains("4<break"));
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let t = Template {
            locale: "en".into(),
            channel: Channel::Sms,
            body: "{{code}} {{name}}".into(),
            text_type: TextType::Text,
            voice_id: None,
            language_code: None,
        };
        let code = otp("4071");
        assert!(
            render(
                &t,
                &RenderContext {
                    code: &code,
                    minutes: 5,
                    org: "x"
                }
            )
            .is_err()
        );
    }

    #[test]
    fn gsm7_counts() {
        assert_eq!(gsm7_len("Hello €"), Some(8));
        assert_eq!(gsm7_len("código"), None);
        assert_eq!(gsm7_len("código".replace('ó', "o").as_str()), Some(6));
    }
}
