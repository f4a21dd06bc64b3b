//! The unit tests of `okta::validate`.

use super::*;
use serde_json::json;

fn defaults() -> HookDefaults {
    HookDefaults::new(Locale::parse("en").unwrap(), "US".parse().unwrap())
}

fn arrived() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2022-01-28T21:43:41Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn parse(body: &[u8], d: &HookDefaults) -> Result<DeliveryRequest, InvalidHook> {
    parse_hook(body, d, arrived())
}

fn body(mp: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "eventId": "uS5871kJThSsU8qlA1LTcg",
        "eventTime": "2022-01-28T21:43:40.000Z",
        "eventType": "com.okta.telephony.provider",
        "requestType": "com.okta.user.telephony.mfa-verification",
        "data": { "userProfile": { "userId": "00uyxxSknGtK8022w0g3" }, "messageProfile": mp }
    }))
    .unwrap()
}

fn mp() -> serde_json::Value {
    json!({
        "msgTemplate": "Your code is 48213",
        "phoneNumber": "+14155552671",
        "otpExpires": "2022-01-28T21:48:34.321Z",
        "deliveryChannel": "SMS",
        "otpCode": "48213",
        "locale": "EN-US"
    })
}

fn with(key: &str, value: serde_json::Value) -> Vec<u8> {
    let mut m = mp();
    m[key] = value;
    body(m)
}

fn field_of(err: InvalidHook) -> String {
    err.location().to_owned()
}

#[test]
fn parses_the_documented_example() {
    let r = parse(&body(mp()), &defaults()).unwrap();
    assert_eq!(r.event_id.as_str(), "uS5871kJThSsU8qlA1LTcg");
    assert_eq!(r.request_type, RequestType::MfaVerification);
    assert_eq!(r.phone.e164(), "+14155552671");
    assert_eq!(r.otp.expose(), "48213");
    assert_eq!(r.channel, Channel::Sms);
    assert_eq!(r.locale.as_str(), "en-US");
    assert!(r.locale_from_request);
    assert_eq!(r.user_id, Some("00uyxxSknGtK8022w0g3".into()));
    assert_eq!(r.otp_expires.to_rfc3339(), "2022-01-28T21:48:34.321+00:00");
}

#[test]
fn every_channel_and_locale_variant() {
    for (ch, want) in [
        ("SMS", Channel::Sms),
        ("sms", Channel::Sms),
        ("CALL", Channel::Voice),
        ("call", Channel::Voice),
        ("voice call", Channel::Voice),
        ("Voice", Channel::Voice),
        ("VOICE", Channel::Voice),
    ] {
        let r = parse(&with("deliveryChannel", json!(ch)), &defaults()).unwrap();
        assert_eq!(r.channel, want, "{ch}");
    }
    for (loc, want) in [("EN-US", "en-US"), ("en", "en"), ("es-MX", "es-MX")] {
        let r = parse(&with("locale", json!(loc)), &defaults()).unwrap();
        assert_eq!(r.locale.as_str(), want);
    }
    let mut m = mp();
    m.as_object_mut().unwrap().remove("locale");
    let r = parse(&body(m), &defaults()).unwrap();
    assert_eq!(r.locale.as_str(), "en");
    assert!(!r.locale_from_request);
    let r = parse(&with("locale", json!("not a locale")), &defaults()).unwrap();
    assert_eq!(r.locale.as_str(), "en");
    for odd in [json!(7), json!({"lang": "en"}), json!(["en"])] {
        let r = parse(&with("locale", odd), &defaults()).unwrap();
        assert_eq!(r.locale.as_str(), "en");
    }
}

#[test]
fn phone_variants() {
    for p in [
        "+14155552671",
        "14155552671",
        "+1 415-555-2671",
        "415 555 2671",
    ] {
        let r = parse(&with("phoneNumber", json!(p)), &defaults()).unwrap();
        assert_eq!(r.phone.e164(), "+14155552671", "{p}");
    }
}

#[test]
fn request_types() {
    for (t, known) in [
        ("com.okta.user.telephony.pre-enrollment", true),
        ("com.okta.user.telephony.mfa-verification", true),
        ("com.okta.user.telephony.account-unlock", true),
        ("com.okta.user.telephony.password-reset", true),
        ("com.okta.user.telephony.something-new", false),
    ] {
        let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
        v["requestType"] = json!(t);
        let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
        assert_eq!(r.request_type.as_str(), t);
        assert_eq!(r.request_type.is_known(), known);
    }
    for odd in [
        json!("com.example.other"),
        json!(5),
        json!("com.okta.user.telephony.bad value"),
    ] {
        let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
        v["requestType"] = odd;
        let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
        assert_eq!(r.request_type, RequestType::Unknown);
        assert!(r.context.notes.request_type_unreadable);
    }
    // Neither text nor a number: as if absent.
    let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
    v["requestType"] = json!({"x": 1});
    let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
    assert_eq!(r.request_type, RequestType::Unknown);
    assert!(!r.context.notes.request_type_unreadable);
}

#[test]
fn each_refusal_names_its_field() {
    let d = defaults();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (with("phoneNumber", json!("12")), P_PHONE),
        (with("phoneNumber", json!(null)), P_PHONE),
        (with("otpCode", json!("12ab5")), P_OTP),
        (with("otpCode", json!(48213)), P_OTP),
        (with("otpExpires", json!("tomorrow")), P_EXPIRES),
        (with("deliveryChannel", json!("fax")), P_CHANNEL),
        (body(json!(null)), P_MESSAGE_PROFILE),
    ];
    for (b, field) in cases {
        assert_eq!(field_of(parse(&b, &d).unwrap_err()), field);
    }
    let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
    v["eventType"] = json!("com.okta.event_hook");
    assert_eq!(
        field_of(parse(&serde_json::to_vec(&v).unwrap(), &d).unwrap_err()),
        P_EVENT_TYPE
    );
    v["eventType"] = json!(EVENT_TYPE);
    v["eventId"] = json!("has space");
    assert_eq!(
        field_of(parse(&serde_json::to_vec(&v).unwrap(), &d).unwrap_err()),
        P_EVENT_ID
    );
}

#[test]
fn refusals_never_quote_values() {
    let d = defaults();
    for b in [
        with("otpCode", json!(48213)),
        with("otpCode", json!("48x13")),
        with("phoneNumber", json!(14155552671u64)),
    ] {
        let err = parse(&b, &d).unwrap_err();
        let text = format!(
            "{err} {err:?} {}",
            serde_json::to_string(&err.to_response()).unwrap()
        );
        assert!(
            !text.contains("48213") && !text.contains("48x13") && !text.contains("4155552671"),
            "{text}"
        );
    }
    let err = parse(b"\"48213\"", &d).unwrap_err();
    assert!(matches!(err, InvalidHook::Malformed { .. }));
    assert!(!format!("{err:?}").contains("48213"));
}

#[test]
fn malformed_and_empty() {
    let d = defaults();
    assert_eq!(parse(b"  ", &d).unwrap_err(), InvalidHook::EmptyBody);
    assert!(matches!(
        parse(b"{\"eventId\":", &d).unwrap_err(),
        InvalidHook::Malformed { .. }
    ));
    assert!(matches!(
        parse(b"[1,2]", &d).unwrap_err(),
        InvalidHook::Malformed { .. }
    ));
}

#[test]
fn fields_we_do_not_use_are_never_type_checked() {
    let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
    v["eventTypeVersion"] = json!(1.0);
    v["cloudEventVersion"] = json!(0.1);
    v["source"] = json!({"id": "calz6lVQA77AwFeEe0g3"});
    v["eventTime"] = json!(1643406220);
    v["contentType"] = json!(null);
    v["data"]["userProfile"] = json!({"userId": 12345, "login": 7, "firstName": null});
    v["data"]["context"] = json!({"request": {"id": 99, "url": 5, "ipAddress": ["x"]}});
    let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
    assert_eq!(r.user_id, Some("12345".into()));
    assert_eq!(r.context.correlation_id.as_deref(), Some("99"));
    assert_eq!(r.context.client_ip, None);
    v["data"]["userProfile"] = json!("not an object");
    v["data"]["context"] = json!([1]);
    let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
    assert_eq!(r.user_id, None);
}

#[test]
fn missing_request_type_and_expiry_still_deliver() {
    let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
    v.as_object_mut().unwrap().remove("requestType");
    v["data"]["messageProfile"]
        .as_object_mut()
        .unwrap()
        .remove("otpExpires");
    let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
    assert_eq!(r.request_type, RequestType::Unknown);
    assert_eq!(r.request_type.short(), "unknown");
    assert_eq!(r.otp_expires, arrived() + chrono::Duration::minutes(5));
    assert!(r.context.notes.expiry_assumed);
    let mut d = defaults();
    d.otp_life = Duration::from_secs(600);
    let r = parse(&serde_json::to_vec(&v).unwrap(), &d).unwrap();
    assert_eq!(r.otp_expires, arrived() + chrono::Duration::minutes(10));
    // Far in the future: capped at the longest code life from arrival.
    let r = parse(&with("otpExpires", json!("2030-01-28T21:48:34.321Z")), &d).unwrap();
    assert_eq!(r.otp_expires, arrived() + chrono::Duration::hours(1));
    assert!(r.context.notes.expiry_capped);
    let r = parse(&body(mp()), &d).unwrap();
    assert!(!r.context.notes.expiry_capped);
    // Present but not a timestamp is still refused.
    assert_eq!(
        field_of(parse(&with("otpExpires", json!("soon")), &d).unwrap_err()),
        P_EXPIRES
    );
}

#[test]
fn byte_order_mark_is_json() {
    let mut b = b"\xEF\xBB\xBF".to_vec();
    b.extend(body(mp()));
    assert_eq!(parse(&b, &defaults()).unwrap().otp.expose(), "48213");
}

#[test]
fn context_gives_correlation_and_client_ip() {
    let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
    v["data"]["context"] =
        json!({"request": {"id": "reqRgSk8IBBRhuo0YdlEDTmUw", "ipAddress": " 2001:db8::7 "}});
    let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
    assert_eq!(
        r.context.correlation_id.as_deref(),
        Some("reqRgSk8IBBRhuo0YdlEDTmUw")
    );
    assert_eq!(r.context.client_ip, Some("2001:db8::7".parse().unwrap()));
    v["data"]["context"]["request"]["id"] = json!("has space");
    let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
    assert_eq!(r.context.correlation_id, None);
}

#[test]
fn okta_text_only_when_asked_for_sms_and_holding_the_code() {
    let mut d = defaults();
    let r = parse(&body(mp()), &d).unwrap();
    assert!(r.context.okta_text.is_none());
    d.okta_sms_text = true;
    let r = parse(&body(mp()), &d).unwrap();
    assert_eq!(
        r.context.okta_text.as_ref().map(|t| t.expose()),
        Some("Your code is 48213")
    );
    let r = parse(&with("msgTemplate", json!("Your code is 99999")), &d).unwrap();
    assert!(r.context.okta_text.is_none());
    let r = parse(&with("deliveryChannel", json!("voice")), &d).unwrap();
    assert!(r.context.okta_text.is_none());
}

#[test]
fn ambiguous_numbers_are_noted() {
    let r = parse(&with("phoneNumber", json!("6594821993")), &defaults()).unwrap();
    assert_eq!(r.phone.e164(), "+16594821993");
    assert!(r.context.notes.phone_ambiguous);
    let r = parse(&body(mp()), &defaults()).unwrap();
    assert!(!r.context.notes.phone_ambiguous);
}
