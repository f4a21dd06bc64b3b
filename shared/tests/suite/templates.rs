//! The shipped templates: each locale renders SMS and voice, voice is valid
//! SSML that reads the code twice, SMS stays in one part where the script
//! allows, every voice exists in the SMS/voice API, and lookups fall back.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use aws_sdk_pinpointsmsvoicev2::types::VoiceId;
use telehook::domain::channel::Channel;
use telehook::domain::locale::Locale;
use telehook::domain::otp::Otp;
use telehook::templates::{
    BUILTIN_FILES, InMemoryTemplateStore, Template, TemplateFile, TemplateStore, Templates,
    TextType, gsm7_len,
};

const REQUIRED: &[&str] = &[
    "en", "es", "fr", "de", "it", "pt-BR", "nl", "ja", "ko", "zh-CN", "zh-Hant", "hi", "ar",
];
const LATIN: &[&str] = &["en", "es", "fr", "de", "it", "pt-BR", "nl"];

fn templates() -> Templates {
    Templates::new(None, Locale::parse("en").unwrap(), "Okta")
}

fn loc(s: &str) -> Locale {
    Locale::parse(s).unwrap()
}

#[test]
fn every_file_in_templates_is_compiled_in_and_well_formed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let compiled: Vec<String> = BUILTIN_FILES.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(on_disk, compiled);
    for (name, text) in BUILTIN_FILES {
        let file = TemplateFile::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(format!("{}.json", file.locale), *name);
        assert_eq!(
            Locale::parse(&file.locale).unwrap().as_str(),
            file.locale,
            "{name}: canonical tag"
        );
    }
    let locales = templates().builtin().locales();
    for l in REQUIRED {
        assert!(locales.contains(&(*l).to_owned()), "missing {l}");
    }
}

#[test]
fn every_voice_exists_in_the_sms_voice_api() {
    let known: Vec<&str> = VoiceId::values().to_vec();
    for (name, text) in BUILTIN_FILES {
        let file = TemplateFile::parse(text).unwrap();
        let voice = file.voice.voice_id.to_ascii_uppercase();
        assert!(
            known.contains(&voice.as_str()),
            "{name}: {voice} is not a SendVoiceMessage VoiceId"
        );
    }
}

#[tokio::test]
async fn every_locale_renders_sms_and_voice() {
    let t = templates();
    // Ten digits is the longest code Okta may send.
    let code = Otp::parse("4071935826").unwrap();
    for l in REQUIRED {
        let sms = t.render(&loc(l), Channel::Sms, &code, 5).await.unwrap();
        assert_eq!(sms.locale, *l, "{l}: its own template");
        assert!(sms.body.contains("4071935826"), "{l}: code in the SMS");
        assert!(sms.body.contains('5'), "{l}: minutes in the SMS");
        assert!(
            !sms.body.contains("{{") && !sms.body.contains("}}"),
            "{l}: placeholders left"
        );
        if LATIN.contains(l) {
            let septets =
                gsm7_len(&sms.body).unwrap_or_else(|| panic!("{l}: not GSM-7: {}", sms.body));
            assert!(septets <= 160, "{l}: {septets} septets");
        } else {
            // UCS-2 scripts: two parts at most (134 characters).
            let chars = sms.body.encode_utf16().count();
            assert!(chars <= 134, "{l}: {chars} UCS-2 units");
        }

        let voice = t.render(&loc(l), Channel::Voice, &code, 5).await.unwrap();
        assert_eq!(voice.text_type, TextType::Ssml);
        assert!(voice.voice_id.is_some());
        let doc = roxmltree::Document::parse(&voice.body)
            .unwrap_or_else(|e| panic!("{l}: SSML does not parse: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "speak");
        let spoken = "4<break time=\"400ms\"/>0<break time=\"400ms\"/>7<break time=\"400ms\"/>1";
        assert_eq!(
            voice.body.matches(spoken).count(),
            2,
            "{l}: the code is read digit by digit, twice"
        );
    }
}

#[tokio::test]
async fn org_names_are_escaped_in_ssml() {
    let t = Templates::new(None, loc("en"), "Smith & <Sons> \"Ltd\"");
    let code = Otp::parse("1234").unwrap();
    let voice = t
        .render(&loc("en"), Channel::Voice, &code, 5)
        .await
        .unwrap();
    roxmltree::Document::parse(&voice.body).unwrap();
    assert!(
        voice
            .body
            .contains("Smith &amp; &lt;Sons&gt; &quot;Ltd&quot;")
    );
    let sms = t.render(&loc("en"), Channel::Sms, &code, 5).await.unwrap();
    assert!(sms.body.contains("Smith & <Sons>"), "SMS is plain text");
}

#[tokio::test]
async fn missing_locales_fall_back() {
    let t = templates();
    let code = Otp::parse("1234").unwrap();
    for (asked, got) in [
        ("es-MX", "es"),
        ("EN-US", "en"),
        ("fr-CA", "fr"),
        ("pt-PT", "pt-BR"),
        ("zh-Hans-CN", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-SG", "zh-CN"),
        // Traditional Chinese readers get Traditional characters.
        ("zh-Hant-TW", "zh-Hant"),
        ("zh-TW", "zh-Hant"),
        ("zh-HK", "zh-Hant"),
        ("zh-Hant", "zh-Hant"),
        // Extensions name no language.
        ("de-DE-u-co-phonebk", "de"),
        ("ja-JP-u-ca-japanese", "ja"),
        ("en_GB", "en"),
        ("sv-SE", "en"),
        ("xx", "en"),
    ] {
        let r = t.render(&loc(asked), Channel::Sms, &code, 5).await.unwrap();
        assert_eq!(r.locale, got, "{asked}");
    }
    // The default locale comes before English.
    let t = Templates::new(None, loc("de"), "Okta");
    assert_eq!(
        t.render(&loc("sv"), Channel::Voice, &code, 5)
            .await
            .unwrap()
            .locale,
        "de"
    );
}

#[tokio::test]
async fn operator_templates_win_and_broken_ones_fall_back() {
    let store = Arc::new(InMemoryTemplateStore::default());
    for (locale, body) in [
        ("es-MX", "Clave {{code}} para {{org}}"),
        ("fr", "Code {{code}} pour {{user}}"),
    ] {
        let template = Template {
            locale: locale.into(),
            channel: Channel::Sms,
            body: body.into(),
            text_type: TextType::Text,
            voice_id: None,
            language_code: None,
        };
        store.put(&template).await.unwrap();
    }
    let t = Templates::new(Some(store), loc("en"), "Acme");
    let code = Otp::parse("1234").unwrap();
    assert_eq!(
        t.render(&loc("es-MX"), Channel::Sms, &code, 5)
            .await
            .unwrap()
            .body,
        "Clave 1234 para Acme"
    );
    // es (no operator template) still gets the built-in Spanish.
    assert_eq!(
        t.render(&loc("es"), Channel::Sms, &code, 5)
            .await
            .unwrap()
            .locale,
        "es"
    );
    // An unknown placeholder: the built-in French is used instead.
    let fr = t.render(&loc("fr"), Channel::Sms, &code, 5).await.unwrap();
    assert!(fr.body.starts_with("1234 est votre code"), "{}", fr.body);
}

/// How many SMS parts each built-in template costs with a six-digit code,
/// the org name `Okta` and five minutes (docs/cost-and-scale.md, "Cost, per 1,000 codes"):
/// GSM-7 fits 160 septets in one part (153 per part after), UCS-2 70
/// units (67 after). Arabic and Hindi take two parts; the rest one.
#[tokio::test]
async fn sms_parts_per_language_are_what_the_readme_says() {
    let t = templates();
    let code = Otp::parse("739201").unwrap();
    for l in REQUIRED {
        let sms = t.render(&loc(l), Channel::Sms, &code, 5).await.unwrap();
        let parts = telehook::domain::sms::sms_parts(&sms.body);
        let expected = if matches!(*l, "ar" | "hi") { 2 } else { 1 };
        assert_eq!(parts, expected, "{l}: {}", sms.body);
    }
}
