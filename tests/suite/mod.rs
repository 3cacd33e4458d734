mod adversarial;
mod agentcore;
mod emulator;
mod exec;
mod files;
pub mod harness;
mod interop;
mod lifecycle;
mod progress;
