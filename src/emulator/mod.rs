//! An offline emulator of the AgentCore Code Interpreter data-plane API.

use crate::cli::EmulatorArgs;

pub async fn run(_args: EmulatorArgs) -> anyhow::Result<()> {
    anyhow::bail!("the emulator is not built yet")
}
