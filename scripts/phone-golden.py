#!/usr/bin/env python3
"""Writes the phone-number golden file: more than 10,000 numbers from every
region libphonenumber knows, each in three forms, with what our parser must
make of it.

Every expectation comes from Google's libphonenumber metadata through the
`phonenumbers` package, pinned in scripts/requirements-test.txt to the
metadata release the Rust `rlibphonenumber` crate embeds. The numbers:
for every supported region and every number type it has an example for, the
example, neighbours with other final digits (valid and invalid ones), and
the example one digit short and one digit long. Each number is written
- in E.164 (`+` and digits), read with its own region as DEFAULT_REGION;
- as E.164 digits without the `+`, read with its own region;
- in national format (trunk prefix included), read with its own region.

The expected columns apply our rule (docs/how-it-works.md, "Which number gets the code";
`domain::phone`) to libphonenumber's answers: with `+`, the international
reading; without, the national reading first and the international one only
when the national one is not valid; a number valid in neither reading is
still accepted, unverified, when its length is possible for the plan. For
each row: whether it is accepted, the E.164 form, the region, whether it is
valid (verified), and libphonenumber's number type (UNKNOWN when not valid).

Usage: scripts/phone-golden.py [--check] [OUT]
  --check  exit 1 if OUT differs from what would be written.
"""

import io
import sys

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult

OUT = "shared/tests/data/phone-golden.csv"
NEIGHBOURS = 9

TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "FIXED_LINE",
    PhoneNumberType.MOBILE: "MOBILE",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "FIXED_LINE_OR_MOBILE",
    PhoneNumberType.TOLL_FREE: "TOLL_FREE",
    PhoneNumberType.PREMIUM_RATE: "PREMIUM_RATE",
    PhoneNumberType.SHARED_COST: "SHARED_COST",
    PhoneNumberType.VOIP: "VOIP",
    PhoneNumberType.PERSONAL_NUMBER: "PERSONAL_NUMBER",
    PhoneNumberType.PAGER: "PAGER",
    PhoneNumberType.UAN: "UAN",
    PhoneNumberType.VOICEMAIL: "VOICEMAIL",
    PhoneNumberType.UNKNOWN: "UNKNOWN",
}
EXAMPLE_TYPES = [t for t in TYPE_NAMES if t != PhoneNumberType.UNKNOWN]


def checked(text, region, strict):
    """libphonenumber's reading of `text`: (e164, region, valid, type) or None."""
    try:
        n = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    valid = phonenumbers.is_valid_number(n)
    if strict:
        if not valid:
            return None
        home = phonenumbers.region_code_for_number(n)
    else:
        if phonenumbers.is_possible_number_with_reason(n) != ValidationResult.IS_POSSIBLE:
            return None
        home = phonenumbers.region_code_for_number(n) or phonenumbers.region_code_for_country_code(n.country_code)
    if home in (None, "ZZ", "001"):
        home = ""
    kind = TYPE_NAMES[phonenumbers.number_type(n)] if valid else "UNKNOWN"
    return (phonenumbers.format_number(n, PhoneNumberFormat.E164), home, valid, kind)


def expect(raw, region):
    plus = raw.startswith("+")
    digits = raw[1:] if plus else raw
    if not digits or len(digits) > 15:
        return None
    intl = "+" + digits
    if plus:
        found = checked(intl, None, True)
    else:
        national = checked(digits, region, True)
        found = national or checked(intl, None, True)
    if found:
        return found
    return checked(intl, None, False) if plus else checked(digits, region, False)


def numbers():
    """(home region, E.164 text) for every region and example type."""
    pool = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in EXAMPLE_TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            cc = str(example.country_code)
            nsn = phonenumbers.national_significant_number(example)
            candidates = [nsn, nsn[:-1], nsn + "7"]
            for i in range(1, NEIGHBOURS + 1):
                width = min(3, len(nsn) - 1)
                tail = f"{(i * 7919 + 123) % 10**width:0{width}d}"
                candidates.append(nsn[:-width] + tail)
            pool.extend((region, "+" + cc + c) for c in candidates if c)
    seen = set()
    return [(r, e) for r, e in pool if not (e in seen or seen.add(e))]


def national_form(e164, region):
    try:
        n = phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
    text = phonenumbers.format_number(n, PhoneNumberFormat.NATIONAL)
    digits = "".join(c for c in text if c.isdigit())
    return digits or None


def rows():
    pool = numbers()
    out = []
    for region, e164 in pool:
        forms = [("e164", e164), ("international-no-plus", e164[1:])]
        national = national_form(e164, region)
        if national:
            forms.append(("national", national))
        for form, raw in forms:
            want = expect(raw, region)
            if want is None:
                out.append((region, raw, form, "refused", "", "", "", ""))
            else:
                e, home, valid, kind = want
                out.append((region, raw, form, "accepted", e, home, "valid" if valid else "possible", kind))
    return pool, out


def render():
    pool, table = rows()
    buf = io.StringIO()
    buf.write(
        f"# generated by scripts/phone-golden.py from phonenumbers {phonenumbers.__version__}; "
        f"{len(pool)} numbers, {len({r for r, *_ in table})} regions, {len(table)} rows\n"
    )
    buf.write("default_region,input,form,outcome,e164,region,validity,type\n")
    for row in table:
        buf.write(",".join(row) + "\n")
    return buf.getvalue()


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    path = args[0] if args else OUT
    text = render()
    if check:
        with open(path, encoding="utf-8") as f:
            if f.read() != text:
                print(f"{path} is out of date: run scripts/phone-golden.py", file=sys.stderr)
                return 1
        return 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {path}: {text.splitlines()[0][2:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
