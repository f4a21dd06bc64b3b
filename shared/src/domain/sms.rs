//! How an SMS text is counted: GSM-7 septets or UCS-2 units, and the
//! parts a carrier bills for.

/// Length of `s` in GSM 03.38 septets, or `None` if a character is outside
/// the GSM-7 alphabet (the message then goes as UCS-2, 70 characters a part).
pub fn gsm7_len(s: &str) -> Option<usize> {
    const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    const EXTENDED: &str = "^{}\\[~]|€\u{000C}";
    s.chars().try_fold(0usize, |n, c| {
        if BASIC.contains(c) {
            Some(n + 1)
        } else if EXTENDED.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    })
}

/// The parts an SMS of `s` takes: 160 GSM-7 septets in one part, 153 a
/// part when split; otherwise UCS-2, 70 UTF-16 units in one part, 67 a
/// part when split.
pub fn sms_parts(s: &str) -> usize {
    let (len, single, multi) = match gsm7_len(s) {
        Some(n) => (n, 160, 153),
        None => (s.encode_utf16().count(), 70, 67),
    };
    if len <= single {
        1
    } else {
        len.div_ceil(multi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_by_alphabet() {
        assert_eq!(sms_parts(&"a".repeat(160)), 1);
        assert_eq!(sms_parts(&"a".repeat(161)), 2);
        assert_eq!(sms_parts(&"a".repeat(306)), 2);
        assert_eq!(sms_parts(&"a".repeat(307)), 3);
        assert_eq!(sms_parts(&"€".repeat(80)), 1, "two septets each");
        assert_eq!(sms_parts(&"認".repeat(70)), 1);
        assert_eq!(sms_parts(&"認".repeat(134)), 2);
        assert_eq!(sms_parts(&"認".repeat(135)), 3);
    }
}
