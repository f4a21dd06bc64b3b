//! The End User Messaging stand-in (`telehook::testkit::sms_stub`, the one
//! `telehook sms-stub` serves) started in-process for a test, with a client
//! of the real SDK pointed at it.
#![allow(clippy::unwrap_used)]

pub use telehook::domain::Route;
pub use telehook::testkit::sms_stub::Fault;
use telehook::testkit::sms_stub::{ScheduledFault, SmsStub, StubOptions};

pub struct SmsVoiceStub(SmsStub);

impl SmsVoiceStub {
    pub async fn start() -> Self {
        let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        SmsVoiceStub(
            SmsStub::start(any_port, StubOptions::default())
                .await
                .unwrap(),
        )
    }

    /// Faults for the next sends, in order; the sends after them succeed.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.0
            .schedule(faults.into_iter().map(ScheduledFault::from));
    }

    /// Faults for the next sends of one route only.
    pub fn script_for(&self, route: Route, faults: impl IntoIterator<Item = Fault>) {
        self.0
            .schedule(faults.into_iter().map(|fault| ScheduledFault {
                route: Some(route),
                fault,
            }));
    }

    /// Every request so far: (operation, JSON body).
    pub fn requests(&self) -> Vec<(String, serde_json::Value)> {
        self.0.requests()
    }

    pub fn url(&self) -> String {
        self.0.url()
    }

    /// A client of the real SDK, with the project's retry and timeout
    /// settings, pointed at the stub.
    pub async fn client(&self) -> aws_sdk_pinpointsmsvoicev2::Client {
        let sdk = super::moto::sdk_config(&self.0.url()).await;
        aws_sdk_pinpointsmsvoicev2::Client::new(&sdk)
    }
}
