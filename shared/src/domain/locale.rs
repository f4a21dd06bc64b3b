//! Locales as BCP 47 language tags in canonical case (`en-US`, `zh-Hans-CN`).
//! Okta has sent `EN-US` and `en`; `en_US` shows up from other systems. The
//! template lookup walks from the full tag to its language to the default.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

const MAX_LEN: usize = 35;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LocaleError {
    #[error("locale is empty")]
    Empty,
    #[error("locale is not a language tag")]
    Invalid,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Locale {
    tag: String,
    language_len: usize,
}

impl Locale {
    pub fn parse(raw: &str) -> Result<Self, LocaleError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(LocaleError::Empty);
        }
        if raw.len() > MAX_LEN || !raw.is_ascii() {
            return Err(LocaleError::Invalid);
        }
        let mut parts = raw.split(['-', '_']);
        let language = parts.next().unwrap_or_default();
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(LocaleError::Invalid);
        }
        let mut tag = language.to_ascii_lowercase();
        let mut seen_region = false;
        for (i, part) in parts.enumerate() {
            if part.is_empty() || part.len() > 8 || !part.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(LocaleError::Invalid);
            }
            tag.push('-');
            let alpha = part.bytes().all(|b| b.is_ascii_alphabetic());
            if i == 0 && part.len() == 4 && alpha {
                // Script subtag: title case (`Hans`).
                tag.push_str(&part[..1].to_ascii_uppercase());
                tag.push_str(&part[1..].to_ascii_lowercase());
            } else if !seen_region && part.len() == 2 && alpha {
                seen_region = true;
                tag.push_str(&part.to_ascii_uppercase());
            } else if !seen_region && part.len() == 3 && part.bytes().all(|b| b.is_ascii_digit()) {
                seen_region = true;
                tag.push_str(part);
            } else if part.len() >= 4 {
                tag.push_str(&part.to_ascii_lowercase());
            } else {
                return Err(LocaleError::Invalid);
            }
        }
        Ok(Locale {
            language_len: language.len(),
            tag,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.tag
    }

    /// The primary language subtag (`es` for `es-MX`).
    pub fn language(&self) -> &str {
        &self.tag[..self.language_len]
    }

    /// The lookup chain for this locale: the full tag, then each shorter
    /// prefix down to the language (`zh-Hans-CN`, `zh-Hans`, `zh`).
    pub fn fallbacks(&self) -> Vec<&str> {
        let mut out = vec![self.tag.as_str()];
        let mut end = self.tag.len();
        while let Some(pos) = self.tag[..end].rfind('-') {
            end = pos;
            out.push(&self.tag[..end]);
        }
        out
    }
}

impl FromStr for Locale {
    type Err = LocaleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Locale::parse(s)
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag)
    }
}

impl fmt::Debug for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locale({})", self.tag)
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
        let l = Locale::parse("zh-Hans-CN").unwrap();
        assert_eq!(l.fallbacks(), vec!["zh-Hans-CN", "zh-Hans", "zh"]);
        assert_eq!(l.language(), "zh");
        assert_eq!(Locale::parse("en").unwrap().fallbacks(), vec!["en"]);
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
            "日本",
            "en;DROP",
            &"a".repeat(40),
        ] {
            assert_eq!(Locale::parse(bad), Err(LocaleError::Invalid), "{bad}");
        }
    }
}
