//! Background tasks: calls that outlive the client's patience.
//!
//! Every `execute_code` / `execute_command` runs as a spawned task. The call
//! waits for it up to the foreground budget; a task still running then (or
//! started with `background: true`) is registered here and followed with
//! `get_task` (status, output paged by cursor, the final result) or ended with
//! `stop_task`. The work is never killed for taking long: only its own
//! timeout, `stop_task`, or the end of its session stop it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::CallToolResult;
use tokio_util::sync::CancellationToken;

use crate::output::LiveOutput;

/// Finished tasks are kept this long for `get_task`.
const KEEP_FINISHED: Duration = Duration::from_secs(3600);
/// Most tasks kept at once (the oldest finished ones go first).
const MAX_TASKS: usize = 100;

pub struct Task {
    pub id: String,
    pub session_id: String,
    /// What runs: `python`, `javascript`, `typescript` or `command`.
    pub what: &'static str,
    pub started: Instant,
    pub live: Arc<LiveOutput>,
    pub cancel: CancellationToken,
    done: tokio::sync::watch::Sender<bool>,
    result: Mutex<Option<(CallToolResult, Instant)>>,
}

impl Task {
    pub fn new(session_id: String, what: &'static str, live: Arc<LiveOutput>) -> Arc<Self> {
        Arc::new(Self {
            id: format!("task-{}", crate::ids::random_token(16)),
            session_id,
            what,
            started: Instant::now(),
            live,
            cancel: CancellationToken::new(),
            done: tokio::sync::watch::Sender::new(false),
            result: Mutex::new(None),
        })
    }

    pub fn finish(&self, result: CallToolResult) {
        if let Ok(mut r) = self.result.lock() {
            *r = Some((result, Instant::now()));
        }
        self.done.send_replace(true);
    }

    /// The final result, once the task has finished.
    pub fn result(&self) -> Option<CallToolResult> {
        self.result.lock().ok()?.as_ref().map(|(r, _)| r.clone())
    }

    fn finished_at(&self) -> Option<Instant> {
        self.result.lock().ok()?.as_ref().map(|(_, t)| *t)
    }

    /// Waits until the task has finished and returns its result.
    pub async fn wait(&self) -> CallToolResult {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|d| *d).await;
        self.result().unwrap_or_else(|| {
            CallToolResult::error(vec![rmcp::model::ContentBlock::text(
                "the task ended without a result",
            )])
        })
    }
}

#[derive(Default)]
pub struct Tasks {
    map: Mutex<HashMap<String, Arc<Task>>>,
}

impl Tasks {
    pub fn insert(&self, task: Arc<Task>) {
        let Ok(mut map) = self.map.lock() else { return };
        map.retain(|_, t| t.finished_at().is_none_or(|f| f.elapsed() < KEEP_FINISHED));
        while map.len() >= MAX_TASKS {
            // Drop the oldest finished task; if none has finished, the oldest.
            let victim = map
                .values()
                .filter(|t| t.finished_at().is_some())
                .min_by_key(|t| t.started)
                .or_else(|| map.values().min_by_key(|t| t.started))
                .map(|t| t.id.clone());
            match victim {
                Some(id) => {
                    if let Some(t) = map.remove(&id) {
                        t.cancel.cancel();
                    }
                }
                None => break,
            }
        }
        map.insert(task.id.clone(), task);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Task>> {
        self.map.lock().ok()?.get(id).cloned()
    }
}
