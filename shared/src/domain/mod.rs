//! The domain: the values one OTP delivery is made of, as newtypes that
//! parse at the edge, keep their invariants and redact themselves when
//! printed. No I/O and no wire formats live here (the queued [`Job`] is our
//! own format, versioned, and owned here because every flow reads it).

pub mod channel;
pub mod conversion;
pub mod event;
pub mod job;
pub mod locale;
pub mod otp;
pub mod outcome;
pub mod phone;
pub mod problem;
pub mod receipt;
pub mod request;
pub mod route;
pub mod sms;

pub use channel::{Channel, ChannelError};
pub use conversion::{Conversion, Feedback, UseSignal, prefix_of};
pub use event::{EventId, RequestType};
pub use job::{Job, JobError};
pub use locale::{Locale, LocaleError};
pub use otp::{Otp, OtpError};
pub use outcome::{ActionStatus, DeliveryOutcome, FailureCause};
pub use phone::{NumberType, PhoneError, PhoneNumber, Reading, Region};
pub use problem::Problem;
pub use receipt::{DeliveryVerdict, Receipt};
pub use request::{DeliveryRequest, OktaText, ReadNotes, SignInContext, UserRef, ip_network};
pub use route::{Route, RoutePlan};
