//! The `telehook` binary's tests, in one test binary: local mode
//! (`serve`, `token`, `invoke`, `check`) and the operations commands
//! against the local AWS API emulator, and the README's commands as
//! written.

mod compat;
mod emulator;
mod local_mode;
mod ops;
mod readme_commands;
