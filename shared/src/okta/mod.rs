//! Okta's telephony inline hook: [`wire`] holds the request and response
//! types as they travel, [`validate`] turns a request into the domain's
//! `DeliveryRequest`. [`events`] reads Okta's event hook (sign-ins, for
//! conversion).

pub mod events;
pub mod validate;
pub mod wire;

pub use validate::{HookDefaults, InvalidHook, parse_hook, validate};
pub use wire::{
    ActionStatus, ActionValue, COMMAND_TYPE, Command, ContextRequest, EVENT_TYPE, ErrorCause,
    ErrorObject, HookContext, HookData, HookRequest, HookResponse, MessageProfile, PROVIDER_NAME,
    SUMMARY_INVALID, SUMMARY_NOT_DELIVERED, UserProfile,
};
