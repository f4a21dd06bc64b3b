//! Two routes over the in-memory adapters: which route a code takes, the
//! second route when the first cannot deliver (and only then), a resend by
//! the other route, and one message per route at most.

use std::sync::Arc;

use telehook::domain::channel::Channel;
use telehook::domain::{DeliveryOutcome, Route};
use telehook::messenger::SendError;
use telehook::messenger::routes::Routes;
use telehook::testkit::{Scripted, ScriptedMessenger};
use tokio::time::Instant;

use crate::support::flow::*;

/// The harness with two routes, `first` then `second`; the scripted
/// messengers of the own and the Notify route.
fn two_routes(h: &mut Harness, first: Route) -> (Arc<ScriptedMessenger>, Arc<ScriptedMessenger>) {
    let own = h.messenger.clone();
    let notify = Arc::new(ScriptedMessenger::new());
    let (a, b): (Arc<ScriptedMessenger>, Arc<ScriptedMessenger>) = match first {
        Route::Own => (own.clone(), notify.clone()),
        Route::Notify => (notify.clone(), own.clone()),
    };
    let second = match first {
        Route::Own => Route::Notify,
        Route::Notify => Route::Own,
    };
    h.pipeline.routes = Routes::one(first, a).then(second, b);
    (own, notify)
}

fn route_failure() -> Scripted {
    Scripted::Fail(SendError::Permanent {
        code: "ConflictException".into(),
        reason: Some("REGISTRATION_NOT_COMPLETE".into()),
    })
}

const TO: &str = "+14155552671";

#[tokio::test(start_paused = true)]
async fn the_first_route_sends_and_the_ledger_names_it() {
    let mut h = harness(true);
    let (own, notify) = two_routes(&mut h, Route::Notify);
    let out = h
        .pipeline
        .handle_hook(request(&h, "evt-r1", TO, Channel::Sms), Instant::now())
        .await;
    assert!(matches!(out, DeliveryOutcome::Successful { .. }), "{out:?}");
    assert_eq!((notify.accepted().len(), own.attempts()), (1, 0));
    assert_eq!(h.record("evt-r1").await.route, Some(Route::Notify));
}

#[tokio::test(start_paused = true)]
async fn a_route_failure_goes_out_once_by_the_other_route_within_the_hook() {
    let mut h = harness(true);
    let (own, notify) = two_routes(&mut h, Route::Own);
    own.script_for(TO, [route_failure()]);
    let out = h
        .pipeline
        .handle_hook(request(&h, "evt-r2", TO, Channel::Sms), Instant::now())
        .await;
    let DeliveryOutcome::Successful { transaction_id, .. } = out else {
        panic!("{out:?}");
    };
    assert_eq!(notify.message_ids(), [transaction_id]);
    assert_eq!((own.attempts(), own.accepted().len()), (1, 0));
    let record = h.record("evt-r2").await;
    assert_eq!(record.route, Some(Route::Notify));
    // Okta's retry of the same hook is answered from the ledger: nothing
    // more goes out by either route.
    let again = h
        .pipeline
        .handle_hook(request(&h, "evt-r2", TO, Channel::Sms), Instant::now())
        .await;
    assert!(
        matches!(again, DeliveryOutcome::Successful { .. }),
        "{again:?}"
    );
    h.drain().await;
    assert_eq!((own.attempts(), notify.attempts()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_throttle_is_not_a_route_failure() {
    let mut h = harness(true);
    let (own, notify) = two_routes(&mut h, Route::Own);
    own.script_for(TO, [throttled()]);
    let out = h
        .pipeline
        .handle_hook(request(&h, "evt-r3", TO, Channel::Sms), Instant::now())
        .await;
    assert!(matches!(out, DeliveryOutcome::Pending { .. }), "{out:?}");
    assert_eq!(notify.attempts(), 0);
    // The dispatcher tries the same route again.
    h.drain().await;
    assert_eq!((own.accepted().len(), notify.attempts()), (1, 0));
    assert_eq!(h.record("evt-r3").await.route, Some(Route::Own));
}

#[tokio::test(start_paused = true)]
async fn a_refusal_about_the_person_is_not_routed_around() {
    let mut h = harness(true);
    let (own, notify) = two_routes(&mut h, Route::Own);
    own.script_for(TO, [opted_out()]);
    let out = h
        .pipeline
        .handle_hook(request(&h, "evt-r4", TO, Channel::Sms), Instant::now())
        .await;
    assert!(matches!(out, DeliveryOutcome::Failed { .. }), "{out:?}");
    assert_eq!(notify.attempts(), 0);
}

#[tokio::test(start_paused = true)]
async fn when_neither_route_can_deliver_the_code_fails() {
    let mut h = harness(true);
    let (own, notify) = two_routes(&mut h, Route::Own);
    own.script_for(TO, [route_failure()]);
    notify.script_for(
        TO,
        [Scripted::Fail(SendError::Permanent {
            code: "NotifyNotServed".into(),
            reason: Some("sms to US".into()),
        })],
    );
    let out = h
        .pipeline
        .handle_hook(request(&h, "evt-r5", TO, Channel::Sms), Instant::now())
        .await;
    assert!(matches!(out, DeliveryOutcome::Failed { .. }), "{out:?}");
    assert_eq!((own.attempts(), notify.attempts()), (1, 1));
    let failure = h.record("evt-r5").await.failure.unwrap_or_default();
    assert!(failure.contains("NotifyNotServed"), "{failure}");
}

#[tokio::test(start_paused = true)]
async fn a_resend_within_the_window_takes_the_other_route() {
    let mut h = harness(true);
    let (own, notify) = two_routes(&mut h, Route::Own);
    let send = |h: &Harness, id: &str| {
        let req = request(h, id, TO, Channel::Sms);
        let pipeline = h.pipeline.clone();
        async move { pipeline.handle_hook(req, Instant::now()).await }
    };
    send(&h, "evt-first").await;
    assert_eq!(h.record("evt-first").await.route, Some(Route::Own));
    // Thirty seconds later the person presses "resend".
    h.clock.advance(chrono::Duration::seconds(30));
    send(&h, "evt-resend").await;
    assert_eq!(h.record("evt-resend").await.route, Some(Route::Notify));
    // And again: back to the route the last code did not take.
    h.clock.advance(chrono::Duration::seconds(30));
    send(&h, "evt-third").await;
    assert_eq!(h.record("evt-third").await.route, Some(Route::Own));
    // After the window, the first route again.
    h.clock.advance(chrono::Duration::minutes(6));
    send(&h, "evt-later").await;
    assert_eq!(h.record("evt-later").await.route, Some(Route::Own));
    assert_eq!((own.accepted().len(), notify.accepted().len()), (3, 1));
    // Another person on the same number is not a resend of the first's.
    h.clock.advance(chrono::Duration::seconds(10));
    let mut other = request(&h, "evt-other-user", TO, Channel::Sms);
    other.user_id = Some("00u2".into());
    h.pipeline.handle_hook(other, Instant::now()).await;
    assert_eq!(h.record("evt-other-user").await.route, Some(Route::Own));
}

#[tokio::test(start_paused = true)]
async fn one_route_has_no_resend_rule() {
    let h = harness(true);
    for (i, id) in ["evt-one-a", "evt-one-b"].iter().enumerate() {
        if i > 0 {
            h.clock.advance(chrono::Duration::seconds(20));
        }
        h.pipeline
            .handle_hook(request(&h, id, TO, Channel::Sms), Instant::now())
            .await;
        assert_eq!(h.record(id).await.route, Some(Route::Own));
    }
    assert_eq!(h.messenger.accepted().len(), 2);
}
