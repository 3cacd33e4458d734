mod bedrock;
pub mod fake_agentcore;
pub mod fake_model;
pub mod harness;
mod manual;
mod run;
mod runtime;
pub mod script;
mod serve;
