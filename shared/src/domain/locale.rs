//! Locales as BCP 47 language tags in canonical case (`en-US`, `zh-Hans-CN`),
//! read by ICU4X's parser (`icu_locale_core`). Okta has sent `EN-US` and
//! `en`; `en_US` shows up from other systems; a browser's tag may carry
//! extensions (`de-DE-u-co-phonebk`), which say nothing about the
//! language of a message and are dropped.
//!
//! The template lookup walks from the full tag towards its language, by
//! script: Chinese written in Traditional characters (`zh-Hant`, and
//! `zh-TW`, `zh-HK`, `zh-MO`, whose likely script it is) never falls to
//! plain `zh`, which is Simplified; it stops at `zh-Hant`, then the
//! default locale.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Longer than any tag a person's profile holds; a bound on the parse.
const MAX_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LocaleError {
    #[error("locale is empty")]
    Empty,
    #[error("locale is not a language tag")]
    Invalid,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Locale {
    /// The canonical tag (no extensions) first, then its fallbacks.
    chain: Vec<String>,
    language_len: usize,
}

/// Languages whose script changes what a reader can read, with the
/// regions whose likely script is not the language's default (CLDR's
/// likely subtags): `(language, default script, other script, regions)`.
const SCRIPTS: &[(&str, &str, &str, &[&str])] = &[("zh", "Hans", "Hant", &["TW", "HK", "MO"])];

/// The script a bare language tag means, for the languages of the built-in
/// templates and those written in more than one script (CLDR's likely
/// subtags). A tag naming another script does not fall back to the bare
/// language; for a language not listed, it does.
const DEFAULT_SCRIPTS: &[(&str, &str)] = &[
    ("ar", "Arab"),
    ("de", "Latn"),
    ("en", "Latn"),
    ("es", "Latn"),
    ("fr", "Latn"),
    ("hi", "Deva"),
    ("it", "Latn"),
    ("ja", "Jpan"),
    ("ko", "Kore"),
    ("nl", "Latn"),
    ("pt", "Latn"),
    ("sr", "Cyrl"),
    ("uz", "Latn"),
    ("zh", "Hans"),
];

impl Locale {
    pub fn parse(raw: &str) -> Result<Self, LocaleError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(LocaleError::Empty);
        }
        if raw.len() > MAX_LEN || !raw.is_ascii() {
            return Err(LocaleError::Invalid);
        }
        // Okta sends `en_US` as often as `en-US`; copied only to replace.
        let tag = if raw.contains('_') {
            std::borrow::Cow::Owned(raw.replace('_', "-"))
        } else {
            std::borrow::Cow::Borrowed(raw)
        };
        let parsed =
            icu_locale_core::Locale::try_from_str(&tag).map_err(|_| LocaleError::Invalid)?;
        let id = parsed.id;
        let language = id.language.as_str();
        // ISO 639 codes only: BCP 47's 5-to-8-letter languages are
        // reserved, and `und` names none.
        if !(2..=3).contains(&language.len()) || id.language.is_unknown() {
            return Err(LocaleError::Invalid);
        }
        let region = id.region.as_ref().map(|r| r.as_str());
        let script = id.script.as_ref().map(|s| s.as_str());
        let mut chain = Vec::with_capacity(4);
        chain.push(id.to_string());
        let mut push = |parts: &[Option<&str>]| {
            let mut tag = String::with_capacity(16);
            for part in parts.iter().flatten() {
                if !tag.is_empty() {
                    tag.push('-');
                }
                tag.push_str(part);
            }
            if !chain.contains(&tag) {
                chain.push(tag);
            }
        };
        let lang = Some(language);
        push(&[lang, script, region]);
        let likely = script.or_else(|| likely_script(language, region));
        push(&[lang, likely, region]);
        push(&[lang, likely]);
        let default_script = DEFAULT_SCRIPTS
            .iter()
            .find(|(l, _)| *l == language)
            .map(|(_, d)| *d);
        // A region or the bare language stand for the default script only.
        if default_script.is_none() || likely.is_none() || likely == default_script {
            push(&[lang, region]);
            push(&[lang]);
        }
        Ok(Locale {
            chain,
            language_len: language.len(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.chain[0]
    }

    /// The primary language subtag (`es` for `es-MX`).
    pub fn language(&self) -> &str {
        &self.chain[0][..self.language_len]
    }

    /// The lookup chain for this locale: the full tag, then shorter tags
    /// of the same script down to the language (`zh-Hans-CN`, `zh-Hans`,
    /// `zh-CN`, `zh`; `zh-TW`, `zh-Hant-TW`, `zh-Hant`).
    pub fn fallbacks(&self) -> Vec<&str> {
        self.chain.iter().map(String::as_str).collect()
    }
}

/// The script a language is likely written in, where it matters
/// ([`SCRIPTS`]): Chinese in Taiwan, Hong Kong and Macao is Traditional,
/// elsewhere Simplified.
fn likely_script(language: &str, region: Option<&str>) -> Option<&'static str> {
    let (_, default, other, regions) = SCRIPTS.iter().find(|(l, ..)| *l == language)?;
    Some(match region {
        Some(r) if regions.contains(&r) => other,
        _ => default,
    })
}

impl FromStr for Locale {
    type Err = LocaleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Locale::parse(s)
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locale({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_case() {
        assert_eq!(Locale::parse("EN-US").unwrap().as_str(), "en-US");
        assert_eq!(Locale::parse("en").unwrap().as_str(), "en");
        assert_eq!(Locale::parse("es-mx").unwrap().as_str(), "es-MX");
        assert_eq!(Locale::parse("pt_BR").unwrap().as_str(), "pt-BR");
        assert_eq!(Locale::parse("ZH-hant-tw").unwrap().as_str(), "zh-Hant-TW");
        assert_eq!(Locale::parse("es-419").unwrap().as_str(), "es-419");
    }

    #[test]
    fn fallback_chain() {
        let chain = |tag: &str| Locale::parse(tag).unwrap().fallbacks().join(" ");
        assert_eq!(chain("zh-Hans-CN"), "zh-Hans-CN zh-Hans zh-CN zh");
        assert_eq!(Locale::parse("zh-Hans-CN").unwrap().language(), "zh");
        assert_eq!(chain("en"), "en");
        assert_eq!(chain("pt-BR"), "pt-BR pt");
        assert_eq!(chain("zh-CN"), "zh-CN zh-Hans-CN zh-Hans zh");
        // Traditional Chinese never falls to plain `zh` (Simplified).
        assert_eq!(chain("zh-Hant-TW"), "zh-Hant-TW zh-Hant");
        assert_eq!(chain("zh-TW"), "zh-TW zh-Hant-TW zh-Hant");
        assert_eq!(chain("zh-HK"), "zh-HK zh-Hant-HK zh-Hant");
        assert_eq!(chain("zh-Hant"), "zh-Hant");
        assert_eq!(chain("pt-Latn-BR"), "pt-Latn-BR pt-Latn pt-BR pt");
        // Serbian is Cyrillic by default: Latin script stays Latin.
        assert_eq!(chain("sr-Latn-RS"), "sr-Latn-RS sr-Latn");
        assert_eq!(chain("tl-Latn-PH"), "tl-Latn-PH tl-Latn tl-PH tl");
    }

    /// Extensions and private use say nothing about the message's language.
    #[test]
    fn extensions_are_dropped() {
        let chain = |tag: &str| Locale::parse(tag).unwrap().fallbacks().join(" ");
        assert_eq!(chain("de-DE-u-co-phonebk"), "de-DE de");
        assert_eq!(chain("en-US-x-twain"), "en-US en");
        assert_eq!(chain("ja-JP-u-ca-japanese-hc-h24"), "ja-JP ja");
        assert_eq!(chain("es-419-u-nu-latn"), "es-419 es");
        assert_eq!(chain("de-CH-1996"), "de-CH-1996 de-CH de");
    }

    #[test]
    fn refuses_non_tags() {
        assert_eq!(Locale::parse(""), Err(LocaleError::Empty));
        for bad in [
            "e",
            "english",
            "en--US",
            "en-U",
            "en-US-",
            "und",
            "und-US",
            "日本",
            "en;DROP",
            &"a".repeat(70),
        ] {
            assert_eq!(Locale::parse(bad), Err(LocaleError::Invalid), "{bad}");
        }
    }
}
