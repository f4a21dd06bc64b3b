//! The delivery channel. Okta has documented and sent several spellings over
//! the years (`SMS`, `CALL`, `voice call`, `voice`, `Voice`); all of them map
//! onto two values here.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChannelError {
    #[error("delivery channel is missing")]
    Missing,
    #[error("delivery channel is not SMS or voice")]
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Voice,
}

impl Channel {
    /// Case-insensitive; `_` and `-` count as spaces and runs of spaces
    /// collapse, so `Voice_Call` and `voice  call` are the same as `voice call`.
    pub fn parse(raw: &str) -> Result<Self, ChannelError> {
        let words: Vec<String> = raw
            .split(|c: char| c.is_whitespace() || c == '_' || c == '-')
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        match words
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] => Err(ChannelError::Missing),
            ["sms"] => Ok(Channel::Sms),
            ["call"] | ["voice"] | ["voice", "call"] | ["voicecall"] => Ok(Channel::Voice),
            _ => Err(ChannelError::Unknown),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_spelling() {
        for s in ["SMS", "sms", "Sms", " sms "] {
            assert_eq!(Channel::parse(s), Ok(Channel::Sms), "{s}");
        }
        for s in [
            "CALL",
            "call",
            "voice call",
            "Voice",
            "VOICE",
            "VOICE CALL",
            "voice_call",
        ] {
            assert_eq!(Channel::parse(s), Ok(Channel::Voice), "{s}");
        }
    }

    #[test]
    fn refuses_unknown() {
        assert_eq!(Channel::parse(""), Err(ChannelError::Missing));
        assert_eq!(Channel::parse("email"), Err(ChannelError::Unknown));
        assert_eq!(Channel::parse("sms call"), Err(ChannelError::Unknown));
    }
}
