//! The one-time passcode. It is the secret this whole service exists to move,
//! so the type makes leaking it awkward: `Debug` and `Display` print a fixed
//! mask, and the digits are only reachable through [`Otp::expose`].

use std::fmt;

use thiserror::Error;

pub const MIN_DIGITS: usize = 4;
pub const MAX_DIGITS: usize = 10;

/// Why a code was refused. Never carries the code itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OtpError {
    #[error("one-time code is missing")]
    Missing,
    #[error("one-time code must contain only the digits 0-9")]
    NotDigits,
    #[error("one-time code must be 4 to 10 digits long")]
    Length,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Otp(String);

impl Otp {
    /// Accepts 4–10 ASCII digits; surrounding whitespace is tolerated.
    pub fn parse(raw: &str) -> Result<Self, OtpError> {
        let code = raw.trim();
        if code.is_empty() {
            return Err(OtpError::Missing);
        }
        if !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OtpError::NotDigits);
        }
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&code.len()) {
            return Err(OtpError::Length);
        }
        Ok(Otp(code.to_owned()))
    }

    /// The digits, for rendering the message that goes to the handset only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Otp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Otp(<redacted>)")
    }
}

impl fmt::Display for Otp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_four_to_ten_digits() {
        assert_eq!(Otp::parse("1234").unwrap().expose(), "1234");
        assert_eq!(Otp::parse(" 0123456789 ").unwrap().expose(), "0123456789");
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(Otp::parse(""), Err(OtpError::Missing));
        assert_eq!(Otp::parse("123"), Err(OtpError::Length));
        assert_eq!(Otp::parse("12345678901"), Err(OtpError::Length));
        assert_eq!(Otp::parse("12a456"), Err(OtpError::NotDigits));
        assert_eq!(Otp::parse("١٢٣٤٥٦"), Err(OtpError::NotDigits));
        assert_eq!(Otp::parse("12 34"), Err(OtpError::NotDigits));
    }

    #[test]
    fn never_prints_its_digits() {
        let otp = Otp::parse("482916").unwrap();
        assert!(!format!("{otp:?}").contains("482916"));
        assert!(!otp.to_string().contains("482916"));
        assert!(!format!("{:?}", Some(&otp)).contains("482916"));
    }
}
