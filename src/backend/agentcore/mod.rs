//! The agentcore backend: sessions on Amazon Bedrock AgentCore Code Interpreter.

use std::sync::Arc;

use async_trait::async_trait;

use crate::backend::{Backend, Session, SessionOptions};
use crate::cli::AgentCoreArgs;
use crate::error::Error;

pub struct AgentCoreBackend {
    args: AgentCoreArgs,
    output_limit: usize,
}

impl AgentCoreBackend {
    pub fn new(args: AgentCoreArgs, output_limit: usize) -> Self {
        Self { args, output_limit }
    }
}

#[async_trait]
impl Backend for AgentCoreBackend {
    fn kind(&self) -> &'static str {
        "agentcore"
    }
    async fn start_session(&self, _opts: SessionOptions) -> Result<Arc<dyn Session>, Error> {
        let _ = (&self.args, self.output_limit);
        Err(Error::backend("not built yet"))
    }
}
