//! `telehook`: the command-line front door. Local serving, event invocation
//! and operations subcommands build on the same handlers as the Lambdas.

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "telehook",
    version,
    about = "Okta OTPs by SMS and voice through your own AWS account"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate an Okta hook (a hook body, or an API Gateway event from events/) and print the normalised request, with the code and number masked.
    Check {
        /// Path to an Okta telephony hook body or an API Gateway proxy event.
        file: std::path::PathBuf,
        /// Region for numbers that are not in international form.
        #[arg(long, default_value = "US")]
        default_region: String,
        /// Locale used when the hook carries none.
        #[arg(long, default_value = "en")]
        default_locale: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            file,
            default_region,
            default_locale,
        } => check(&file, &default_region, &default_locale),
    }
}

fn check(file: &std::path::Path, region: &str, locale: &str) -> std::process::ExitCode {
    use telehook::okta::{HookDefaults, parse_hook};
    let (Ok(region), Ok(locale)) = (region.parse(), telehook::locale::Locale::parse(locale)) else {
        eprintln!("error: bad --default-region or --default-locale");
        return std::process::ExitCode::from(2);
    };
    let body = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return std::process::ExitCode::from(2);
        }
    };
    let body = hook_body(body);
    match parse_hook(&body, &HookDefaults { locale, region }) {
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
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&e.to_response()).unwrap_or_default()
            );
            std::process::ExitCode::from(1)
        }
    }
}

/// An API Gateway proxy event carries the hook in `body` (maybe base64);
/// anything else is taken to be the hook body itself.
fn hook_body(file: Vec<u8>) -> Vec<u8> {
    use base64::Engine;
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
