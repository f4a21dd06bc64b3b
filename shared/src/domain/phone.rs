//! Destination phone numbers: parsing and normalisation to E.164, the calling
//! country, and masking for anything that is printed or logged.
//!
//! Okta sends E.164 in real flows, sometimes without the `+`, and the admin
//! Preview tab sends a bare national number (`9876543210`). Validation uses
//! libphonenumber's metadata (the `phonenumber` crate) rather than hand-written
//! length rules, so new numbering plans arrive with a crate update.

use std::fmt;
use std::str::FromStr;

use phonenumber::country::Id;
use phonenumber::{Mode, Type};
use thiserror::Error;

/// Longest input we look at: E.164 has at most 15 digits, so anything much
/// longer after formatting characters are stripped is not a phone number.
const MAX_RAW_LEN: usize = 32;

/// Why a phone number was refused. Never carries the number itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PhoneError {
    #[error("phone number is missing")]
    Missing,
    #[error("phone number contains characters other than digits and a leading '+'")]
    BadCharacters,
    #[error("phone number is too long")]
    TooLong,
    #[error("phone number is not a valid number")]
    Invalid,
}

/// An ISO 3166-1 alpha-2 region known to the phone-number metadata (`US`, `DE`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(Id);

impl Region {
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    pub(crate) fn id(self) -> Id {
        self.0
    }
}

impl FromStr for Region {
    type Err = PhoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Id::from_str(&s.trim().to_ascii_uppercase())
            .map(Region)
            .map_err(|_| PhoneError::Invalid)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({})", self.as_str())
    }
}

/// A validated destination number in E.164 form.
///
/// `Display` and `Debug` print it masked (`+1******1212`): the full number is
/// only reachable through [`PhoneNumber::e164`], which is meant for the
/// provider request and for keyed hashing, never for logs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    e164: String,
    calling_code: u16,
    region: Option<Region>,
    kind: Type,
    verified: bool,
}

impl PhoneNumber {
    /// Parses what Okta sent. Spaces, dashes, dots and parentheses are
    /// formatting and are dropped. A number with `+` must be valid as an
    /// international number. Without `+`, it is first tried as international
    /// (E.164 minus the `+`), then as a national number of `default_region`.
    pub fn parse(raw: &str, default_region: Region) -> Result<Self, PhoneError> {
        let cleaned: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\t' | '\u{a0}'))
            .collect();
        if cleaned.is_empty() {
            return Err(PhoneError::Missing);
        }
        if cleaned.len() > MAX_RAW_LEN {
            return Err(PhoneError::TooLong);
        }
        let (plus, digits) = match cleaned.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, cleaned.as_str()),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::BadCharacters);
        }
        if digits.len() > 15 {
            return Err(PhoneError::TooLong);
        }

        let intl = format!("+{digits}");
        let region = Some(default_region.id());
        let strict = if plus {
            parse_checked(None, &intl, Check::Valid)
        } else {
            parse_checked(None, &intl, Check::Valid)
                .or_else(|| parse_checked(region, digits, Check::Valid))
        };
        // libphonenumber's ranges lag behind real allocations, and Okta's own
        // examples (`+15555551212`, the Preview tab's `9876543210`) are not in
        // them. A number of a possible length for its country is accepted and
        // marked unverified; the provider is the final judge of whether it
        // exists, and its refusal is a permanent failure Okta falls back on.
        let parsed = strict.or_else(|| {
            if plus {
                parse_checked(None, &intl, Check::Possible)
            } else {
                parse_checked(region, digits, Check::Possible)
            }
        });
        parsed.ok_or(PhoneError::Invalid)
    }

    /// Whether the number is in a range the metadata knows to be assigned.
    /// False for numbers accepted only because their length is possible.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// The full number, `+` and digits. Only for the provider request and for
    /// keyed hashing.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// The country calling code (`1` for NANP, `44` for the UK).
    pub fn calling_code(&self) -> u16 {
        self.calling_code
    }

    /// The ISO region the number belongs to, when the metadata can tell.
    pub fn region(&self) -> Option<&Region> {
        self.region.as_ref()
    }

    /// The number type from the metadata (mobile, fixed line, premium rate…).
    pub fn number_type(&self) -> Type {
        self.kind
    }

    /// The masked form: country code and last four digits, the rest starred.
    pub fn masked(&self) -> String {
        let cc = self.calling_code.to_string();
        let national = &self.e164[1 + cc.len()..];
        let keep = national.len().min(4);
        // Very short national numbers keep fewer digits so most stays hidden.
        let keep = if national.len() <= 6 {
            keep.min(2)
        } else {
            keep
        };
        let hidden = national.len() - keep;
        format!("+{cc}{}{}", "*".repeat(hidden), &national[hidden..])
    }
}

/// The national-number lengths any number type of this country can have.
/// The general descriptor's list is usually empty in the compiled metadata
/// (it is implied by the per-type lists), so the union is taken here.
fn possible_lengths(meta: &phonenumber::Metadata) -> Vec<u16> {
    let d = meta.descriptors();
    let mut out: Vec<u16> = d.general().possible_length().to_vec();
    for t in [
        Type::FixedLine,
        Type::Mobile,
        Type::TollFree,
        Type::PremiumRate,
        Type::SharedCost,
        Type::PersonalNumber,
        Type::Voip,
        Type::Pager,
        Type::Uan,
        Type::Voicemail,
    ] {
        if let Some(desc) = d.get(t) {
            out.extend_from_slice(desc.possible_length());
        }
    }
    out
}

/// Builds libphonenumber's metadata (hundreds of compiled patterns) now
/// rather than on the first number parsed. Lambda's init phase is the place
/// for it: otherwise the first hook of every cold instance pays for it inside
/// Okta's 3 seconds.
pub fn warm_up() {
    let us = Region(Id::US);
    let _ = PhoneNumber::parse("+14155552671", us);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// In a range the metadata lists for some number type.
    Valid,
    /// Only the length fits the country's numbering plan.
    Possible,
}

fn parse_checked(region: Option<Id>, text: &str, check: Check) -> Option<PhoneNumber> {
    let number = phonenumber::parse(region, text).ok()?;
    let code = number.code().value();
    let db = &*phonenumber::metadata::DATABASE;
    let verified = number.is_valid();
    let region = match check {
        Check::Valid if verified => number.country().id(),
        Check::Valid => return None,
        Check::Possible => {
            let metas = db.by_code(&code)?;
            let main = metas
                .iter()
                .find(|m| m.is_main_country_for_code())
                .or(metas.first())?;
            let national_len = number.national().to_string().len() as u16;
            if !possible_lengths(main).contains(&national_len) {
                return None;
            }
            number.country().id().or_else(|| main.id().parse().ok())
        }
    };
    let e164 = number.format().mode(Mode::E164).to_string();
    Some(PhoneNumber {
        calling_code: code,
        region: region.map(Region),
        kind: if verified {
            number.number_type(db)
        } else {
            Type::Unknown
        },
        verified,
        e164,
    })
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Region {
        "US".parse().unwrap()
    }

    #[test]
    fn e164_with_and_without_plus() {
        let a = PhoneNumber::parse("+1 (415) 555-2671", us()).unwrap();
        let b = PhoneNumber::parse("14155552671", us()).unwrap();
        assert_eq!(a.e164(), "+14155552671");
        assert_eq!(a, b);
        assert_eq!(a.calling_code(), 1);
        assert_eq!(a.region().map(|r| r.as_str()), Some("US"));
    }

    #[test]
    fn international_without_plus_wins_over_national() {
        let n = PhoneNumber::parse("442071838750", us()).unwrap();
        assert_eq!(n.e164(), "+442071838750");
        assert_eq!(n.region().map(|r| r.as_str()), Some("GB"));
        assert!(n.is_verified());
    }

    #[test]
    fn national_number_uses_default_region() {
        let n = PhoneNumber::parse("415-555-2671", us()).unwrap();
        assert_eq!(n.e164(), "+14155552671");
        let de: Region = "de".parse().unwrap();
        let n = PhoneNumber::parse("030 901820", de).unwrap();
        assert_eq!(n.e164(), "+4930901820");
    }

    #[test]
    fn okta_preview_and_example_numbers_are_accepted_unverified() {
        let n = PhoneNumber::parse("9876543210", us()).unwrap();
        assert_eq!(n.e164(), "+19876543210");
        assert_eq!(n.region().map(|r| r.as_str()), Some("US"));
        assert!(!n.is_verified());
        let n = PhoneNumber::parse("+15555551212", us()).unwrap();
        assert_eq!(n.region().map(|r| r.as_str()), Some("US"));
        assert_eq!(n.number_type(), Type::Unknown);
    }

    #[test]
    fn masks_all_but_country_code_and_last_four() {
        let n = PhoneNumber::parse("+15555551212", us()).unwrap();
        assert_eq!(n.to_string(), "+1******1212");
        assert_eq!(format!("{n:?}"), "PhoneNumber(+1******1212)");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(PhoneNumber::parse("", us()), Err(PhoneError::Missing));
        assert_eq!(PhoneNumber::parse("  - ", us()), Err(PhoneError::Missing));
        assert_eq!(
            PhoneNumber::parse("+1-800-CALL-NOW", us()),
            Err(PhoneError::BadCharacters)
        );
        assert_eq!(
            PhoneNumber::parse("++15555551212", us()),
            Err(PhoneError::BadCharacters)
        );
        assert_eq!(PhoneNumber::parse("+1234", us()), Err(PhoneError::Invalid));
        assert_eq!(
            PhoneNumber::parse("+1415555267", us()),
            Err(PhoneError::Invalid)
        );
        assert_eq!(PhoneNumber::parse("98765", us()), Err(PhoneError::Invalid));
        assert_eq!(
            PhoneNumber::parse("1".repeat(16).as_str(), us()),
            Err(PhoneError::TooLong)
        );
        assert_eq!(
            PhoneNumber::parse(&"1".repeat(40), us()),
            Err(PhoneError::TooLong)
        );
        assert_eq!(
            PhoneNumber::parse("+１５５５", us()),
            Err(PhoneError::BadCharacters)
        );
    }
}
