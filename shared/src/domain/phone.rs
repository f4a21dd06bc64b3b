//! Destination phone numbers: parsing and normalisation to E.164, the calling
//! country, and masking for anything that is printed or logged.
//!
//! Okta sends E.164 in real flows, sometimes without the `+`, and the admin
//! Preview tab sends a bare national number (`9876543210`). Validation uses
//! libphonenumber's metadata (the `rlibphonenumber` crate, a port that is
//! differentially tested against Google's C++ library) rather than
//! hand-written length rules, so new numbering plans arrive with a crate
//! update. The library's types stay inside this module.

use std::fmt;
use std::str::FromStr;

use rlibphonenumber::{
    NumberLengthType, PHONE_NUMBER_UTIL, PhoneNumberFormat, PhoneNumberType, Region as LibRegion,
    RegionStr,
};
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

/// Which reading of the raw number was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Written with `+`: international by definition.
    E164,
    /// No `+`; a valid (or, failing that, possible) national number of the
    /// default region.
    National,
    /// No `+`; not valid nationally, valid with a leading country code.
    International,
    /// No `+`; valid both ways with different results. The national reading
    /// was taken.
    Ambiguous,
}

impl Reading {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reading::E164 => "e164",
            Reading::National => "national",
            Reading::International => "international",
            Reading::Ambiguous => "ambiguous",
        }
    }
}

/// An ISO 3166-1 alpha-2 region known to the phone-number metadata (`US`, `DE`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region {
    id: LibRegion,
    text: RegionStr,
}

impl Region {
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    fn from_lib(id: LibRegion) -> Option<Self> {
        // The library's enum has a variant for every two letters; only
        // regions with a numbering plan in the metadata are regions here.
        PHONE_NUMBER_UTIL.get_country_code_for_region(id)?;
        Some(Region {
            id,
            text: id.as_region_str(),
        })
    }
}

impl FromStr for Region {
    type Err = PhoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LibRegion::from_code(s.trim())
            .ok()
            .and_then(Region::from_lib)
            .ok_or(PhoneError::Invalid)
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

/// What kind of line a number is, where the metadata can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberType {
    FixedLine,
    Mobile,
    /// Regions (the NANP) where the number cannot tell the two apart.
    FixedLineOrMobile,
    TollFree,
    PremiumRate,
    SharedCost,
    Voip,
    PersonalNumber,
    Pager,
    Uan,
    Voicemail,
    /// Not in any range the metadata lists (an unverified number).
    Unknown,
}

impl NumberType {
    fn from_lib(t: PhoneNumberType) -> Self {
        match t {
            PhoneNumberType::FixedLine => NumberType::FixedLine,
            PhoneNumberType::Mobile => NumberType::Mobile,
            PhoneNumberType::FixedLineOrMobile => NumberType::FixedLineOrMobile,
            PhoneNumberType::TollFree => NumberType::TollFree,
            PhoneNumberType::PremiumRate => NumberType::PremiumRate,
            PhoneNumberType::SharedCost => NumberType::SharedCost,
            PhoneNumberType::VoIP => NumberType::Voip,
            PhoneNumberType::PersonalNumber => NumberType::PersonalNumber,
            PhoneNumberType::Pager => NumberType::Pager,
            PhoneNumberType::UAN => NumberType::Uan,
            PhoneNumberType::VoiceMail => NumberType::Voicemail,
            _ => NumberType::Unknown,
        }
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
    kind: NumberType,
    verified: bool,
}

impl PhoneNumber {
    /// Parses what Okta sent; see [`PhoneNumber::read`] for the rule.
    pub fn parse(raw: &str, default_region: Region) -> Result<Self, PhoneError> {
        Self::read(raw, default_region).map(|(number, _)| number)
    }

    /// Parses what Okta sent and says which reading was taken. Spaces,
    /// dashes, dots and parentheses are formatting and are dropped.
    ///
    /// With `+`, the number must be international (E.164). Without `+`, it
    /// is read as a national number of `default_region` first, and as
    /// international (a leading country code, E.164 minus the `+`) only when
    /// the national reading is not a valid number and the international one
    /// is. Reading international first sends a US login's code abroad:
    /// `6594821993` is a valid US number and, read with `65`, a Singapore
    /// mobile. When both readings are valid the national one wins and the
    /// reading is [`Reading::Ambiguous`], for the caller to count and log.
    pub fn read(raw: &str, default_region: Region) -> Result<(Self, Reading), PhoneError> {
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
        let region = Some(default_region.id);
        let strict = if plus {
            parse_checked(None, &intl, Check::Valid).map(|n| (n, Reading::E164))
        } else {
            let national = parse_checked(region, digits, Check::Valid);
            let international = parse_checked(None, &intl, Check::Valid);
            match (national, international) {
                (Some(n), Some(i)) if n.e164 != i.e164 => Some((n, Reading::Ambiguous)),
                (Some(n), _) => Some((n, Reading::National)),
                (None, Some(i)) => Some((i, Reading::International)),
                (None, None) => None,
            }
        };
        if let Some(found) = strict {
            return Ok(found);
        }
        // libphonenumber's ranges lag behind real allocations, and Okta's own
        // examples (`+15555551212`, the Preview tab's `9876543210`) are not in
        // them. A number of a possible length for its country is accepted and
        // marked unverified; the provider is the final judge of whether it
        // exists, and its refusal is a permanent failure Okta falls back on.
        // Without `+` only the national reading is tried here: a guess at a
        // foreign country code for an unverifiable number is the one mistake
        // that sends a code abroad.
        let possible = if plus {
            parse_checked(None, &intl, Check::Possible).map(|n| (n, Reading::E164))
        } else {
            parse_checked(region, digits, Check::Possible).map(|n| (n, Reading::National))
        };
        possible.ok_or(PhoneError::Invalid)
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
    pub fn number_type(&self) -> NumberType {
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

/// Builds libphonenumber's metadata (hundreds of compiled patterns) now
/// rather than on the first number parsed. Lambda's init phase is the place
/// for it: otherwise the first hook of every cold instance pays for it inside
/// Okta's 3 seconds.
pub fn warm_up() {
    let _ = PHONE_NUMBER_UTIL.parse("+14155552671", None);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// In a range the metadata lists for some number type.
    Valid,
    /// Only the length fits the country's numbering plan.
    Possible,
}

fn parse_checked(region: Option<LibRegion>, text: &str, check: Check) -> Option<PhoneNumber> {
    let number = PHONE_NUMBER_UTIL.parse(text, region).ok()?;
    let verified = number.is_valid();
    let region = match check {
        Check::Valid if verified => number.get_region_code(),
        Check::Valid => return None,
        Check::Possible => {
            // A full-length number only: a local-only length (a number
            // without its area code) cannot be dialled from abroad.
            if !matches!(
                number.is_possible_with_reason(),
                Ok(NumberLengthType::IsPossible)
            ) {
                return None;
            }
            number
                .get_region_code()
                .or_else(|| PHONE_NUMBER_UTIL.get_region_for_country_code(number.country_code))
        }
    };
    let e164 = number.format_as(PhoneNumberFormat::E164).into_owned();
    Some(PhoneNumber {
        calling_code: u16::try_from(number.country_code).ok()?,
        region: region.and_then(Region::from_lib),
        kind: if verified {
            NumberType::from_lib(number.get_type())
        } else {
            NumberType::Unknown
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
    fn international_without_plus_only_when_national_is_invalid() {
        let (n, how) = PhoneNumber::read("442071838750", us()).unwrap();
        assert_eq!(n.e164(), "+442071838750");
        assert_eq!(n.region().map(|r| r.as_str()), Some("GB"));
        assert!(n.is_verified());
        assert_eq!(how, Reading::International);
        // Valid in the US and, read with a country code, in Singapore,
        // Norway and the Netherlands: the US reading wins, and says so.
        for (raw, want) in [
            ("6594821993", "+16594821993"),
            ("4797465075", "+14797465075"),
            ("3109090588", "+13109090588"),
        ] {
            let (n, how) = PhoneNumber::read(raw, us()).unwrap();
            assert_eq!((n.e164(), how), (want, Reading::Ambiguous), "{raw}");
        }
        // E.164 minus `+` of the default region is the same number both ways.
        let (n, how) = PhoneNumber::read("14155552671", us()).unwrap();
        assert_eq!((n.e164(), how), ("+14155552671", Reading::National));
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
        assert_eq!(n.number_type(), NumberType::Unknown);
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
