//! The `telehook` binary's tests, in one test binary: local mode
//! (`serve`, `token`, `invoke`, `check`) and the operations commands
//! against the local AWS API emulator, and the commands of the README and docs/ as
//! written.

mod compat;
mod emulator;
mod local_mode;
mod messages;
mod ops;
mod readme_commands;
