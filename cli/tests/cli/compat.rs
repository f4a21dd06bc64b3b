//! Real-world Okta bodies through `telehook invoke ingress`, each with the
//! exact answer Okta gets and the exact outbox line the handset would get.
//! The events are the files in `events/` that `sam local invoke` takes too.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::local_mode::{events_dir, temp_state_dir};

const BIN: &str = env!("CARGO_BIN_EXE_telehook");
const CORRELATION: &str = "reqRgSk8IBBRhuo0YdlEDTmUw";

/// Runs one ingress event; returns Okta's answer (the response body) and
/// the outbox lines written.
fn invoke(file: &str, env: &[(&str, &str)]) -> (Value, Vec<Value>) {
    invoke_event(&events_dir().join(file), env)
}

fn invoke_event(event: &Path, env: &[(&str, &str)]) -> (Value, Vec<Value>) {
    let file = event.display();
    let dir = temp_state_dir("compat");
    let mut cmd = Command::new(BIN);
    cmd.args(["invoke", "ingress"])
        .arg(event)
        .arg("--state-dir")
        .arg(&dir)
        .env_remove("TELEHOOK_BACKEND")
        .env("ALLOWED_COUNTRIES", "US,CA,GB");
    for var in [
        "SMS_TEXT",
        "OTP_LIFE_SECONDS",
        "GUARD_REFUSAL",
        "RATE_LIMIT_PER_IP",
        "FAST_PATH",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // stdout is the response alone; the outbox notices go to stderr.
    let resp: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(resp["statusCode"], 200, "{file}");
    let answer: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
    let lines = outbox(&dir.join("outbox.jsonl"));
    let _ = std::fs::remove_dir_all(dir);
    (answer, lines)
}

fn outbox(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn successful(message_id: &str, metadata: &str) -> Value {
    json!({"commands": [{"type": "com.okta.telephony.action", "value": [{
        "status": "SUCCESSFUL",
        "provider": "AWS End User Messaging",
        "transactionId": message_id,
        "transactionMetadata": metadata,
    }]}]})
}

fn sms_text(code: &str) -> String {
    format!(
        "{code} is your Okta verification code. Valid for 5 min. Never share this code with anyone."
    )
}

/// Checks the answer and the one outbox line exactly; the message id is the
/// provider's (random per send) and must be the same in both.
fn check(file: &str, env: &[(&str, &str)], event_id: &str, to: &str, body: &str, metadata: &str) {
    let (answer, lines) = invoke(file, env);
    assert_eq!(lines.len(), 1, "{file}: one message");
    let line = &lines[0];
    let message_id = line["messageId"].as_str().unwrap();
    assert!(message_id.starts_with("local-"), "{file}");
    assert_eq!(answer, successful(message_id, metadata), "{file}");
    let mut line = line.clone();
    assert!(line["sentAt"].as_str().is_some(), "{file}");
    line.as_object_mut().unwrap().remove("sentAt");
    assert_eq!(
        line,
        json!({"eventId": event_id, "channel": "sms", "to": to, "body": body,
               "voiceId": null, "messageId": message_id, "route": "own"}),
        "{file}"
    );
}

fn metadata(okta_request: &str) -> String {
    format!("channel=sms; attempt=1; okta_request={okta_request}")
}

#[test]
fn envelope_fields_of_any_type_are_ignored() {
    check(
        "ingress-typed-envelope.json",
        &[],
        "compatTypedEnvelope0001",
        "+14155552672",
        &sms_text("482915"),
        &metadata(CORRELATION),
    );
}

#[test]
fn a_numeric_user_id_is_read_as_text() {
    check(
        "ingress-numeric-user-id.json",
        &[],
        "compatNumericUserId0001",
        "+14155552673",
        &sms_text("603814"),
        &metadata(CORRELATION),
    );
}

#[test]
fn a_missing_request_type_is_delivered() {
    check(
        "ingress-missing-request-type.json",
        &[],
        "compatNoRequestType0001",
        "+14155552674",
        &sms_text("571046"),
        &metadata(CORRELATION),
    );
}

#[test]
fn a_missing_expiry_means_the_otp_life() {
    check(
        "ingress-missing-otp-expires.json",
        &[],
        "compatNoOtpExpires00001",
        "+14155552675",
        &sms_text("390277"),
        &metadata(CORRELATION),
    );
    // A longer configured life is what the message then says.
    let (_, lines) = invoke(
        "ingress-missing-otp-expires.json",
        &[("OTP_LIFE_SECONDS", "600")],
    );
    assert!(
        lines[0]["body"]
            .as_str()
            .unwrap()
            .contains("Valid for 10 min"),
        "{}",
        lines[0]["body"]
    );
}

#[test]
fn a_far_expiry_is_capped_at_the_otp_life_in_the_text() {
    // ingress-sms.json expires in 2030; the text says the OTP life.
    check(
        "ingress-sms.json",
        &[],
        "uS5871kJThSsU8qlA1LTcg",
        "+14155552671",
        &sms_text("739201"),
        &metadata(CORRELATION),
    );
}

#[test]
fn numbers_without_plus_are_national_first() {
    check(
        "ingress-national-number.json",
        &[],
        "compatNationalNumber001",
        "+16594821993",
        &sms_text("716530"),
        &metadata(CORRELATION),
    );
    check(
        "ingress-international-without-plus.json",
        &[],
        "compatIntlWithoutPlus01",
        "+447400123456",
        &sms_text("845102"),
        &metadata(CORRELATION),
    );
}

#[test]
fn a_byte_order_mark_is_json() {
    check(
        "ingress-byte-order-mark.json",
        &[],
        "compatByteOrderMark0001",
        "+14155552676",
        &sms_text("259384"),
        &metadata(CORRELATION),
    );
}

#[test]
fn null_context_and_odd_profile_still_deliver() {
    // No correlation id to pass on: the metadata says so by leaving it out.
    check(
        "ingress-null-context.json",
        &[],
        "compatNullContext000001",
        "+14155552677",
        &sms_text("947261"),
        "channel=sms; attempt=1",
    );
}

#[test]
fn ipv6_clients_and_their_correlation_id() {
    check(
        "ingress-ipv6-client.json",
        &[],
        "compatIpv6Client0000001",
        "+14155552678",
        &sms_text("318596"),
        &metadata("reqIpv6ClientCorrelation01"),
    );
}

#[test]
fn okta_text_is_sent_as_is_when_asked_for() {
    check(
        "ingress-typed-envelope.json",
        &[("SMS_TEXT", "okta")],
        "compatTypedEnvelope0001",
        "+14155552672",
        "Your code is 482915",
        &metadata(CORRELATION),
    );
}

#[test]
fn guard_refusals_fall_back_or_block_as_configured() {
    // Great Britain not allowed: by default Okta is told to use its own
    // providers, with the cause.
    let (answer, lines) = invoke(
        "ingress-international-without-plus.json",
        &[("ALLOWED_COUNTRIES", "US,CA")],
    );
    assert!(lines.is_empty());
    assert_eq!(
        answer,
        json!({"error": {"errorSummary": "Could not deliver the code", "errorCauses": [{
            "errorSummary": "Codes are not sent to this country",
            "reason": "COUNTRY_NOT_ALLOWED",
            "locationType": "body",
            "location": "data.messageProfile.phoneNumber",
            "domain": "policy",
        }]}})
    );
    // GUARD_REFUSAL=block: PENDING, so Okta does not fall back; nothing sent.
    let (answer, lines) = invoke(
        "ingress-international-without-plus.json",
        &[("ALLOWED_COUNTRIES", "US,CA"), ("GUARD_REFUSAL", "block")],
    );
    assert!(lines.is_empty());
    assert_eq!(
        answer,
        json!({"commands": [{"type": "com.okta.telephony.action", "value": [{
            "status": "PENDING",
            "provider": "AWS End User Messaging",
            "transactionMetadata": format!(
                "channel=sms; blocked by the toll-fraud guard; not sent; okta_request={CORRELATION}"
            ),
        }]}]})
    );
}

/// The process builds phone metadata only for the allow-list's calling
/// codes (here +1); a number of any other country is still refused as that
/// country, and an impossible one as invalid, as with the whole metadata.
#[test]
fn numbers_out_of_the_allow_lists_reach_get_the_same_refusals() {
    let template =
        std::fs::read_to_string(events_dir().join("ingress-international-without-plus.json"))
            .unwrap();
    let dir = temp_state_dir("reach");
    let refused_as_country = json!({"error": {"errorSummary": "Could not deliver the code", "errorCauses": [{
        "errorSummary": "Codes are not sent to this country",
        "reason": "COUNTRY_NOT_ALLOWED",
        "locationType": "body",
        "location": "data.messageProfile.phoneNumber",
        "domain": "policy",
    }]}});
    // Great Britain, Germany, a non-geographic number, and Jamaica (+1, so
    // read with its full metadata, and not on the list).
    for number in [
        "+447400123456",
        "+4915112345678",
        "+80012345678",
        "+18762345678",
        "447400123456",
    ] {
        let event = dir.join(format!("{number}.json"));
        std::fs::write(&event, template.replace("447400123456", number)).unwrap();
        let (answer, lines) = invoke_event(&event, &[("ALLOWED_COUNTRIES", "US,CA")]);
        assert!(lines.is_empty(), "{number}");
        assert_eq!(answer, refused_as_country, "{number}");
    }
    let event = dir.join("short.json");
    std::fs::write(&event, template.replace("447400123456", "+4912")).unwrap();
    let (answer, lines) = invoke_event(&event, &[("ALLOWED_COUNTRIES", "US,CA")]);
    assert!(lines.is_empty());
    assert_eq!(
        answer["error"]["errorCauses"][0]["location"], "data.messageProfile.phoneNumber",
        "{answer}"
    );
    assert_ne!(
        answer["error"]["errorCauses"][0]["reason"], "COUNTRY_NOT_ALLOWED",
        "{answer}"
    );
}

/// One precedence for every setting: the flag, then the environment, then
/// the default. `FAST_PATH=off` used to be overridden by the flag's default.
#[test]
fn fast_path_follows_flag_then_environment_then_default() {
    let status = |env: &[(&str, &str)], flag: Option<&str>| {
        let dir = temp_state_dir("precedence");
        let mut cmd = Command::new(BIN);
        cmd.args(["invoke", "ingress"])
            .arg(events_dir().join("ingress-sms.json"))
            .arg("--state-dir")
            .arg(&dir)
            .env_remove("TELEHOOK_BACKEND")
            .env_remove("FAST_PATH");
        if let Some(f) = flag {
            cmd.args(["--fast-path", f]);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let resp: Value = serde_json::from_str(&text).unwrap();
        let answer: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
        let _ = std::fs::remove_dir_all(dir);
        answer["commands"][0]["value"][0]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(status(&[], None), "SUCCESSFUL", "default: on");
    assert_eq!(
        status(&[("FAST_PATH", "off")], None),
        "PENDING",
        "environment"
    );
    assert_eq!(
        status(&[("FAST_PATH", "false")], None),
        "PENDING",
        "Lambda's spelling"
    );
    assert_eq!(
        status(&[("FAST_PATH", "off")], Some("on")),
        "SUCCESSFUL",
        "the flag wins"
    );
}

/// A start with a wrong configuration fails before taking any request and
/// names every problem at once, the AWS region included (without one,
/// `serve --aws` used to answer every hook "could not deliver").
#[test]
fn a_start_names_every_configuration_problem_at_once() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let dir = temp_state_dir("problems");
        let mut cmd = Command::new(BIN);
        // Nothing from this machine's environment: no region, no profile.
        cmd.env_clear()
            .args(args)
            .arg("--state-dir")
            .arg(&dir)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-credentials"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let _ = std::fs::remove_dir_all(dir);
        assert!(!out.status.success(), "{args:?} started");
        assert!(out.stdout.is_empty(), "{args:?} printed a result");
        String::from_utf8(out.stderr).unwrap()
    };
    let bad = [("RATE_LIMIT_PER_USER", "lots"), ("SMS_TEXT", "mine")];
    let event = events_dir().join("ingress-sms.json");
    let event = event.to_str().unwrap();
    for args in [
        &["invoke", "--aws", "ingress", event][..],
        &["serve", "--aws", "--port", "0"],
    ] {
        let err = run(args, &bad);
        for var in [
            "SMS_TEXT",
            "HASH_KEY",
            "ORIGINATION_IDENTITIES",
            "LEDGER_TABLE",
            "QUEUE_URL",
            "RATE_LIMIT_PER_USER",
            "AWS_REGION",
        ] {
            assert!(err.contains(var), "{args:?}: {var} not named in {err}");
        }
        assert!(err.contains("7 configuration problems"), "{args:?}: {err}");
    }
    // Local mode reads fewer variables, and lists its problems the same way.
    let err = run(
        &["invoke", "ingress", event],
        &[("RATE_LIMIT_PER_IP", "5"), ("DEFAULT_LOCALE", "english!")],
    );
    assert!(err.contains("2 configuration problems"), "{err}");
    assert!(err.contains("RATE_LIMIT_PER_IP is invalid"), "{err}");
    assert!(err.contains("DEFAULT_LOCALE is invalid"), "{err}");
}

/// `telehook token --event` fills a fresh token into an ingress event, and
/// that token is one the ingress configured by `sam-local-env.json`
/// accepts: its issuer, audience, client id and scope.
#[test]
fn token_event_fills_a_token_the_local_invoke_env_file_accepts() {
    use base64::Engine;
    let dir = temp_state_dir("token-event");
    let out = Command::new(BIN)
        .args(["token", "--event"])
        .arg(events_dir().join("ingress-sms.json"))
        .arg("--state-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let event: Value = serde_json::from_slice(&out.stdout).unwrap();
    let auth = event["headers"]["Authorization"].as_str().unwrap();
    let token = auth.strip_prefix("Bearer ").unwrap();
    assert!(!token.contains("{{"), "{auth}");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let env: Value = serde_json::from_str(
        &std::fs::read_to_string(events_dir().join("../sam-local-env.json")).unwrap(),
    )
    .unwrap();
    let ingress = &env["IngressFunction"];
    assert_eq!(claims["iss"], ingress["OKTA_ISSUER"]);
    assert_eq!(claims["aud"], ingress["OKTA_AUDIENCE"]);
    assert_eq!(claims["cid"], ingress["OKTA_CLIENT_IDS"]);
    assert!(
        claims["scp"]
            .as_array()
            .unwrap()
            .contains(&ingress["OKTA_REQUIRED_SCOPE"])
    );
    // An event without a placeholder is refused, not printed unchanged.
    let out = Command::new(BIN)
        .args(["token", "--event"])
        .arg(events_dir().join("dlq-replayer.json"))
        .arg("--state-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(dir);
}
