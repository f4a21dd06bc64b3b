//! `telehook check`: validates a hook body, or the body inside an API
//! Gateway event, and prints the normalised request with the code and the
//! number masked.

use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use telehook::domain::Locale;
use telehook::domain::ip_network;
use telehook::okta::{HookDefaults, parse_hook};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Path to an Okta telephony hook body or an API Gateway proxy event;
    /// `-` reads it from standard input.
    file: PathBuf,
    /// Region for numbers that are not in international form.
    #[arg(long, default_value = "US")]
    default_region: String,
    /// Locale used when the hook carries none.
    #[arg(long, default_value = "en")]
    default_locale: String,
}

pub fn check(args: &CheckArgs) -> ExitCode {
    let (Ok(region), Ok(locale)) = (
        args.default_region.parse(),
        Locale::parse(&args.default_locale),
    ) else {
        eprintln!("error: bad --default-region or --default-locale");
        return ExitCode::from(2);
    };
    let read = if args.file.as_os_str() == "-" {
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut all).map(|_| all)
    } else {
        std::fs::read(&args.file)
    };
    let body = match read {
        Ok(b) => hook_body(b),
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    match parse_hook(
        &body,
        &HookDefaults::new(locale, region),
        chrono::Utc::now(),
    ) {
        Ok(r) => {
            let out = serde_json::json!({
                "eventId": r.event_id.as_str(),
                "requestType": r.request_type.as_str(),
                "channel": r.channel.as_str(),
                "locale": r.locale.as_str(),
                "to": r.phone.to_string(),
                "country": r.phone.region().map(|c| c.as_str().to_owned()),
                "verifiedNumber": r.phone.is_verified(),
                "otpDigits": r.otp.len(),
                "otpExpires": r.otp_expires.to_rfc3339(),
                "otpExpiresAssumed": r.context.notes.expiry_assumed,
                "otpExpiresCapped": r.context.notes.expiry_capped,
                "ambiguousNumber": r.context.notes.phone_ambiguous,
                "oktaRequest": r.context.correlation_id,
                "clientNetwork": r.context.client_ip.as_ref().map(ip_network),
            });
            print_json(&out, ExitCode::SUCCESS)
        }
        Err(e) => print_json(
            &serde_json::to_value(e.to_response()).unwrap_or_default(),
            ExitCode::from(1),
        ),
    }
}

/// Prints the document; a closed pipe (`| head`) ends the output quietly,
/// as everywhere in the CLI.
fn print_json(value: &serde_json::Value, code: ExitCode) -> ExitCode {
    let write = || -> Result<(), crate::local::Error> {
        outln!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
        Ok(())
    };
    match write() {
        Err(e) if !crate::is_closed_pipe(e.as_ref()) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        _ => code,
    }
}

/// An API Gateway proxy event carries the hook in `body` (maybe base64);
/// anything else is taken to be the hook body itself.
fn hook_body(file: Vec<u8>) -> Vec<u8> {
    let Ok(serde_json::Value::Object(event)) = serde_json::from_slice::<serde_json::Value>(&file)
    else {
        return file;
    };
    let (Some(_), Some(serde_json::Value::String(body))) =
        (event.get("httpMethod"), event.get("body"))
    else {
        return file;
    };
    if event
        .get("isBase64Encoded")
        .and_then(serde_json::Value::as_bool)
        == Some(true)
    {
        base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .unwrap_or_default()
    } else {
        body.clone().into_bytes()
    }
}
