//! Reading JSON text without copying it: a string that borrows from the
//! text unless escapes forbid it ([`Text`]), and a value that may be one
//! string or a list of them ([`OneOrMany`]). The Lambda event's reader, the
//! token's claims and Okta's lenient fields read with them.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// A JSON string, borrowed from the text when it has no escapes.
#[derive(Debug)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A string or a list of strings (a JWT's `aud`, a header's values).
#[derive(Debug)]
pub enum OneOrMany<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl OneOrMany<'_> {
    /// Whether `value` is the string, or one of the list.
    pub fn contains(&self, value: &str) -> bool {
        match self {
            OneOrMany::One(s) => s == value,
            OneOrMany::Many(v) => v.iter().any(|s| s == value),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for OneOrMany<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                TextVisitor.visit_borrowed_str(v).map(OneOrMany::One)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                TextVisitor.visit_str(v).map(OneOrMany::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(Text(s)) = seq.next_element()? {
                    all.push(s);
                }
                Ok(OneOrMany::Many(all))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_borrows_unless_escaped_and_one_or_many_reads_both() {
        let t: Text<'_> = serde_json::from_str(r#""plain""#).unwrap();
        assert!(matches!(t.0, Cow::Borrowed("plain")));
        let t: Text<'_> = serde_json::from_str(r#""a\"b""#).unwrap();
        assert!(matches!(t.0, Cow::Owned(ref s) if s == "a\"b"));
        assert!(serde_json::from_str::<Text<'_>>("5").is_err());
        let one: OneOrMany<'_> = serde_json::from_str(r#""x""#).unwrap();
        let many: OneOrMany<'_> = serde_json::from_str(r#"["y","x"]"#).unwrap();
        assert!(one.contains("x") && many.contains("x") && !many.contains("z"));
        assert!(serde_json::from_str::<OneOrMany<'_>>("[1]").is_err());
        assert!(serde_json::from_str::<OneOrMany<'_>>("null").is_err());
    }
}
