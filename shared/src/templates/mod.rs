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

pub mod builtin;
pub mod dynamo;
pub mod memory;
pub mod render;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::{Channel, Locale, Otp};

pub use crate::domain::sms::gsm7_len;
pub use builtin::{BUILTIN_FILES, BuiltinTemplates, TemplateFile};
pub use dynamo::DynamoTemplateStore;
pub use memory::InMemoryTemplateStore;
pub use render::{RenderContext, Rendered, escape_ssml, render};

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

    /// Writes one template, replacing the one of its locale and channel
    /// (`telehook templates push`).
    async fn put(&self, t: &Template) -> Result<(), TemplateError>;

    /// Every template, ordered by locale and channel (`telehook templates list`).
    async fn list(&self) -> Result<Vec<Template>, TemplateError>;
}

/// The order `list` returns templates in.
pub fn sort_templates(templates: &mut [Template]) {
    templates.sort_by(|a, b| (&a.locale, a.channel.as_str()).cmp(&(&b.locale, b.channel.as_str())));
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
