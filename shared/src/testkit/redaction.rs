//! Redaction checks that are exact rather than lucky.
//!
//! A test that proves "no code reached the logs" by searching the logs for
//! the code's digits only works if those digits cannot turn up there by
//! chance. Okta's codes may be 4 digits long, and a 4-digit string turns up
//! in timestamps, durations, ports and random ids often enough to fail a
//! run now and then. So the redaction checks use codes of the longest
//! length Okta sends, shaped so that nothing else a run prints can equal
//! them, and match them only where no digit touches them.

/// The longest code Okta sends (`domain::Otp` accepts 4 to 10 digits).
pub const CODE_DIGITS: usize = 10;

/// The `n`-th code no run prints by chance: ten digits, so a run of ten
/// digits standing alone is needed to match, and a leading `0`, so it is
/// never a Unix time, a port, a count or a duration (none of which is
/// printed with a leading zero and ten digits). Distinct for every `n`
/// below 10^6.
pub fn unmistakable_code(n: u32) -> String {
    format!("07{:08}", 31_000_000 + n % 1_000_000)
}

/// Whether `needle` occurs in `haystack` with no ASCII digit directly
/// before or after it (for a needle that starts with a digit; any other
/// needle matches anywhere). A longer number that merely contains the
/// needle's digits is not a match.
pub fn contains_standalone(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let h = haystack.as_bytes();
    let digit_edge = needle.as_bytes()[0].is_ascii_digit();
    haystack.match_indices(needle).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| h[j]);
        let after = h.get(i + needle.len()).copied();
        !digit_edge
            || (!before.is_some_and(|b| b.is_ascii_digit())
                && !after.is_some_and(|b| b.is_ascii_digit()))
    })
}

/// The hook body with its `otpCode` replaced by `code` everywhere the old
/// code stands alone (the field itself and Okta's `msgTemplate` text), the
/// rest of the body left byte for byte as it was (a byte-order mark, odd
/// field types, key order). A code Okta should not have sent (`12a4b6`)
/// is replaced too, so a test can keep it invalid. `None` when the body
/// has no code to replace, or when the old code also stands alone in another field (a
/// blind replacement would change that field too).
pub fn with_code(body: &str, code: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body.trim_start_matches('\u{feff}')).ok()?;
    let profile = &json["data"]["messageProfile"];
    let old = profile["otpCode"].as_str()?;
    if old.is_empty() {
        return None;
    }
    let in_template = profile["msgTemplate"]
        .as_str()
        .map_or(0, |t| standalone_count(t, old));
    // The field's value once, plus its mentions in the template: any other
    // standalone occurrence belongs to a field we must not touch.
    if standalone_count(body, old) != 1 + in_template {
        return None;
    }
    let mut out = String::with_capacity(body.len() + code.len() * (1 + in_template));
    let mut rest = body;
    while let Some(i) = find_standalone(rest, old) {
        out.push_str(&rest[..i]);
        out.push_str(code);
        rest = &rest[i + old.len()..];
    }
    out.push_str(rest);
    Some(out)
}

fn find_standalone(haystack: &str, needle: &str) -> Option<usize> {
    let h = haystack.as_bytes();
    haystack.match_indices(needle).map(|(i, _)| i).find(|&i| {
        let before = i.checked_sub(1).map(|j| h[j]);
        let after = h.get(i + needle.len()).copied();
        !before.is_some_and(|b| b.is_ascii_digit()) && !after.is_some_and(|b| b.is_ascii_digit())
    })
}

fn standalone_count(haystack: &str, needle: &str) -> usize {
    let mut n = 0;
    let mut rest = haystack;
    while let Some(i) = find_standalone(rest, needle) {
        n += 1;
        rest = &rest[i + needle.len()..];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_matches_only_a_whole_number() {
        assert!(contains_standalone("code 6613.", "6613"));
        assert!(contains_standalone("\"6613\"", "6613"));
        assert!(!contains_standalone("port 36613", "6613"));
        assert!(!contains_standalone("661300", "6613"));
        assert!(contains_standalone("x+14155552671y", "+14155552671"));
        assert!(!contains_standalone("anything", ""));
    }

    #[test]
    fn codes_are_ten_digits_distinct_and_valid() {
        let a = unmistakable_code(0);
        let b = unmistakable_code(1);
        assert_ne!(a, b);
        for c in [&a, &b, &unmistakable_code(999_999)] {
            assert_eq!(c.len(), CODE_DIGITS);
            assert!(c.starts_with('0') && c.bytes().all(|b| b.is_ascii_digit()));
            assert!(crate::domain::Otp::parse(c).is_ok());
        }
    }

    #[test]
    fn with_code_rewrites_the_field_and_the_template_only() {
        let body = "\u{feff}{\"eventTime\": 6613, \"data\": {\"messageProfile\": {\"msgTemplate\": \"Your code is 6613\", \"phoneNumber\": \"+1 303 555 0136\", \"otpCode\": \"6613\"}}}";
        // 6613 also stands alone in `eventTime`: refused, not rewritten.
        assert_eq!(with_code(body, "0731000000"), None);
        let body = body.replace("6613,", "1,");
        let out = with_code(&body, "0731000000").unwrap();
        assert!(out.starts_with('\u{feff}'));
        assert!(!contains_standalone(&out, "6613"));
        assert_eq!(out.matches("0731000000").count(), 2);
        assert!(out.contains("+1 303 555 0136"));
        assert_eq!(with_code("{\"data\":{}}", "0731000000"), None);
        assert_eq!(with_code("not json", "0731000000"), None);
        assert_eq!(
            with_code(
                "{\"data\":{\"messageProfile\":{\"otpCode\":\"12a4\"}}}",
                "07310000x"
            )
            .as_deref(),
            Some("{\"data\":{\"messageProfile\":{\"otpCode\":\"07310000x\"}}}")
        );
    }
}
