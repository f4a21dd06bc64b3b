//! A clock that flow tests move by hand.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::clock::Clock;

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(start))
    }

    /// A clock at the start of the current hour. Rate limits and the
    /// learning guard count in windows of up to an hour that start on the
    /// hour; a test that starts at wall-clock time and moves a few minutes
    /// would cross a window's end whenever it runs just before one, and its
    /// counts would fall apart by the time of day. From here, any test that
    /// moves less than an hour stays in one window.
    pub fn at_hour_start() -> Self {
        let now = Utc::now().timestamp();
        let start =
            DateTime::from_timestamp(now - now.rem_euclid(3600), 0).unwrap_or_else(Utc::now);
        ManualClock::new(start)
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
