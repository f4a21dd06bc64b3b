//! The built-in templates, compiled from `templates/*.json`, and that
//! file format.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Template, TextType};
use crate::domain::Channel;

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
    ("ar.json", include_str!("../../../templates/ar.json")),
    ("de.json", include_str!("../../../templates/de.json")),
    ("en.json", include_str!("../../../templates/en.json")),
    ("es.json", include_str!("../../../templates/es.json")),
    ("fr.json", include_str!("../../../templates/fr.json")),
    ("hi.json", include_str!("../../../templates/hi.json")),
    ("it.json", include_str!("../../../templates/it.json")),
    ("ja.json", include_str!("../../../templates/ja.json")),
    ("ko.json", include_str!("../../../templates/ko.json")),
    ("nl.json", include_str!("../../../templates/nl.json")),
    ("pt-BR.json", include_str!("../../../templates/pt-BR.json")),
    ("zh-CN.json", include_str!("../../../templates/zh-CN.json")),
    (
        "zh-Hant.json",
        include_str!("../../../templates/zh-Hant.json"),
    ),
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
    /// for `pt-PT`: closer to the reader than the default language. Only
    /// one in the language's default script (`zh-CN` for `zh`, never
    /// `zh-Hant`): a tag in another script never reaches its bare language.
    pub fn sibling(&self, language: &str, channel: Channel) -> Option<&Template> {
        let names_a_script = |locale: &str| {
            locale
                .split('-')
                .nth(1)
                .is_some_and(|s| s.len() == 4 && s.bytes().all(|b| b.is_ascii_alphabetic()))
        };
        let mut found: Vec<&Template> = self
            .by_key
            .values()
            .filter(|t| {
                t.channel == channel
                    && t.locale.split('-').next() == Some(language)
                    && !names_a_script(&t.locale)
            })
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
