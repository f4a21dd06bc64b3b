//! What became of a code after it reached the phone: used to sign in
//! (`CONVERTED`) or left to expire (`UNUSED`), and the feedback End User
//! Messaging takes about it. Also the number prefix the learning guard
//! counts by.

use super::PhoneNumber;

/// The ledger's word on a sent code, once the sign-in or the expiry told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Conversion {
    /// The user signed in with a phone factor while the code was valid.
    Converted,
    /// The code's life ended and no sign-in came.
    Unused,
}

impl Conversion {
    pub fn as_str(&self) -> &'static str {
        match self {
            Conversion::Converted => "CONVERTED",
            Conversion::Unused => "UNUSED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CONVERTED" => Some(Conversion::Converted),
            "UNUSED" => Some(Conversion::Unused),
            _ => None,
        }
    }

    /// The message feedback status End User Messaging takes for it.
    pub fn feedback(&self) -> Feedback {
        match self {
            Conversion::Converted => Feedback::Received,
            Conversion::Unused => Feedback::Failed,
        }
    }
}

/// `PutMessageFeedback`'s two statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    Received,
    Failed,
}

impl Feedback {
    pub fn as_str(&self) -> &'static str {
        match self {
            Feedback::Received => "RECEIVED",
            Feedback::Failed => "FAILED",
        }
    }
}

/// The fewest and most digits a prefix may have. Six digits of an E.164
/// number name a country and an area or a mobile range; eight name a
/// block a carrier leases out, which is what pumping rents.
pub const PREFIX_DIGITS: std::ops::RangeInclusive<usize> = 6..=8;

/// The first `digits` digits of the E.164 number (country code included,
/// no `+`). Never the whole number: a prefix shorter than the number by at
/// least four digits, so it names a range of thousands of lines, not a
/// person.
pub fn prefix_of(phone: &PhoneNumber, digits: usize) -> String {
    let all: Vec<char> = phone.e164().chars().filter(char::is_ascii_digit).collect();
    let n = digits.min(all.len().saturating_sub(4)).max(1);
    all[..n.min(all.len())].iter().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prefixes_are_ranges_not_numbers() {
        let p = PhoneNumber::parse("+14155550100", "US".parse().unwrap()).unwrap();
        assert_eq!(prefix_of(&p, 7), "1415555");
        assert_eq!(prefix_of(&p, 6), "141555");
        // A short number still keeps four digits back.
        let short = PhoneNumber::parse("+3546111234", "US".parse().unwrap()).unwrap();
        assert_eq!(prefix_of(&short, 8), "354611");
    }

    #[test]
    fn words_round_trip() {
        for c in [Conversion::Converted, Conversion::Unused] {
            assert_eq!(Conversion::parse(c.as_str()), Some(c));
        }
        assert_eq!(Conversion::Converted.feedback().as_str(), "RECEIVED");
        assert_eq!(Conversion::Unused.feedback().as_str(), "FAILED");
    }
}
