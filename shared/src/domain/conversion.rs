//! What became of a code after it reached the phone: used to sign in
//! (`CONVERTED`) or left to expire (`UNUSED`), and the feedback End User
//! Messaging takes about it. Also the number prefix the learning guard
//! counts by.

use super::{PhoneNumber, RequestType};

/// The ledger's word on a sent code, once the sign-in or the expiry told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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

/// How Okta shows that a code was used. Each kind of code has its own
/// System Log event, read from Okta's event hook
/// (read by the `okta::events` module):
///
/// | request type | event | what it means |
/// |---|---|---|
/// | `mfa-verification` | `user.authentication.auth_via_mfa` (SUCCESS, SMS or voice factor) | the user verified with the code |
/// | `pre-enrollment` | `user.mfa.factor.activate` (a phone factor) | the enrollment finished: the code was typed in |
/// | `password-reset` | `user.account.reset_password` | the reset went through |
/// | `account-unlock` | `user.account.unlock` | the account was unlocked |
///
/// A request type Okta does not name (`unknown`, or a type this build does
/// not know) has no signal: its codes are never matched and never judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum UseSignal {
    SignIn,
    Enrollment,
    PasswordReset,
    Unlock,
}

impl UseSignal {
    pub const ALL: [UseSignal; 4] = [
        UseSignal::SignIn,
        UseSignal::Enrollment,
        UseSignal::PasswordReset,
        UseSignal::Unlock,
    ];

    /// The signal of a request type's codes, if Okta logs one.
    pub fn of(request_type: &RequestType) -> Option<Self> {
        match request_type {
            RequestType::MfaVerification => Some(UseSignal::SignIn),
            RequestType::PreEnrollment => Some(UseSignal::Enrollment),
            RequestType::PasswordReset => Some(UseSignal::PasswordReset),
            RequestType::AccountUnlock => Some(UseSignal::Unlock),
            RequestType::Other(_) | RequestType::Unknown => None,
        }
    }

    /// The short name stored on the ledger and shown in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            UseSignal::SignIn => "mfa",
            UseSignal::Enrollment => "enrollment",
            UseSignal::PasswordReset => "reset",
            UseSignal::Unlock => "unlock",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        UseSignal::ALL.into_iter().find(|u| u.as_str() == s)
    }

    /// The Okta request type whose codes it shows used.
    pub fn request_type(&self) -> RequestType {
        match self {
            UseSignal::SignIn => RequestType::MfaVerification,
            UseSignal::Enrollment => RequestType::PreEnrollment,
            UseSignal::PasswordReset => RequestType::PasswordReset,
            UseSignal::Unlock => RequestType::AccountUnlock,
        }
    }

    /// The System Log event that shows such a code used.
    pub fn event_type(&self) -> &'static str {
        match self {
            UseSignal::SignIn => "user.authentication.auth_via_mfa",
            UseSignal::Enrollment => "user.mfa.factor.activate",
            UseSignal::PasswordReset => "user.account.reset_password",
            UseSignal::Unlock => "user.account.unlock",
        }
    }

    /// Whether the person asking for the code also chose the number it
    /// goes to. Only enrollment: every other code goes to a number already
    /// on the user's profile. That is where SMS pumping through Okta goes,
    /// and what the learning guard judges by default.
    pub fn requester_chooses_number(&self) -> bool {
        matches!(self, UseSignal::Enrollment)
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
    fn every_okta_request_type_has_its_own_signal() {
        for signal in UseSignal::ALL {
            assert_eq!(UseSignal::of(&signal.request_type()), Some(signal));
            assert_eq!(UseSignal::parse(signal.as_str()), Some(signal));
        }
        assert_eq!(UseSignal::of(&RequestType::Unknown), None);
        assert_eq!(
            UseSignal::of(&RequestType::Other(
                "com.okta.user.telephony.something-new".into()
            )),
            None
        );
        let chooses: Vec<_> = UseSignal::ALL
            .into_iter()
            .filter(UseSignal::requester_chooses_number)
            .collect();
        assert_eq!(chooses, [UseSignal::Enrollment]);
    }

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
