//! Runs every `events/dispatcher-*.json` SQS FIFO batch through the
//! dispatcher handler over the in-memory adapters and checks the outcome.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use crate::support::flow::*;
use aws_lambda_events::sqs::SqsEvent;
use telehook::flows::dispatch_batch;
use telehook::messenger::SendError;
use telehook::testkit::Scripted;

struct Expect {
    /// Message ids reported in `batchItemFailures`, in order.
    failed: &'static [&'static str],
    /// Event ids sent, in order, with their rendered locale.
    sent: &'static [(&'static str, &'static str)],
    /// A destination whose first send is throttled.
    throttle: Option<&'static str>,
}

fn expectations() -> Vec<(&'static str, Expect)> {
    vec![
        (
            "dispatcher-batch.json",
            Expect {
                failed: &[],
                sent: &[
                    ("dSp4tchSms0000000000001", "en"),
                    ("dSp4tchV0ice000000000002", "es"),
                ],
                throttle: None,
            },
        ),
        (
            "dispatcher-mixed-groups.json",
            Expect {
                failed: &[
                    "8b3d2e70-0001-4f9c-9d77-3c4d5e6f7001",
                    "8b3d2e70-0003-4f9c-9d77-3c4d5e6f7003",
                ],
                sent: &[
                    ("m1xedB1000000000000001", "ja"),
                    ("m1xedB2000000000000002", "ja"),
                ],
                throttle: Some("+12125550178"),
            },
        ),
        (
            "dispatcher-poison.json",
            Expect {
                failed: &[
                    "7a2c1d6f-0002-4e8b-8c66-2b3c4d5e6f02",
                    "7a2c1d6f-0003-4e8b-8c66-2b3c4d5e6f03",
                ],
                sent: &[("p0is0nBefore00000000001", "fr")],
                throttle: None,
            },
        ),
    ]
}

#[tokio::test(start_paused = true)]
async fn every_dispatcher_event_has_its_expected_outcome() {
    let dir = crate::support::events_dir();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("dispatcher-"))
        .collect();
    files.sort();
    let expectations = expectations();
    assert_eq!(
        files,
        expectations
            .iter()
            .map(|(n, _)| n.to_string())
            .collect::<Vec<_>>()
    );

    for (name, expect) in expectations {
        let h = harness(true);
        if let Some(to) = expect.throttle {
            h.messenger.script_for(
                to,
                [Scripted::Fail(SendError::Retryable {
                    code: "ThrottlingException".into(),
                })],
            );
        }
        let event: SqsEvent =
            serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap();
        let resp = dispatch_batch(&h.pipeline, event).await;
        let failed: Vec<&str> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, expect.failed, "{name}");
        let sent: Vec<(String, String)> = h
            .messenger
            .accepted()
            .iter()
            .map(|m| (m.event_id.to_string(), m.rendered.locale.clone()))
            .collect();
        let want: Vec<(String, String)> = expect
            .sent
            .iter()
            .map(|(e, l)| (e.to_string(), l.to_string()))
            .collect();
        assert_eq!(sent, want, "{name}");
        // The response is what Lambda expects from ReportBatchItemFailures.
        let json = serde_json::to_value(&resp).unwrap();
        assert!(json["batchItemFailures"].is_array(), "{name}");
    }
}
