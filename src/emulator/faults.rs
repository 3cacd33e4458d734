//! Fault injection for tests (`--fault OPERATION:FAULT[:COUNT]`).
//!
//! - OPERATION: a tool name (`executeCode`, `writeFiles`, ...), `start`,
//!   `stop`, `get`, `list`, or `*` (every call).
//! - FAULT: `throttle` (429 ThrottlingException before anything runs),
//!   `internal` (500 InternalServerException before anything runs), `cut`
//!   (the call runs, then the response is cut: the status line, headers and
//!   half of the body or first event frame are sent and the connection is
//!   broken), `delay-MS` (sleep MS milliseconds before handling).
//! - COUNT: how many matching calls get the fault (default 1).
//!
//! Per call: every matching `delay` applies (they add up); then the first
//! matching `throttle`/`internal` ends the call (later faults are not used
//! up); otherwise the first matching `cut` applies. Each fault that applies
//! counts down by one.

use std::sync::Mutex;
use std::time::Duration;

use super::wire::{ApiError, ErrorKind};

/// Operations a fault can name (besides `*`).
pub const OPERATIONS: &[&str] = &[
    "start",
    "stop",
    "get",
    "list",
    "executeCode",
    "executeCommand",
    "readFiles",
    "writeFiles",
    "listFiles",
    "removeFiles",
    "startCommandExecution",
    "getTask",
    "stopTask",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Throttle,
    Internal,
    Cut,
    Delay(Duration),
}

#[derive(Debug)]
struct Fault {
    op: String,
    kind: Kind,
    remaining: u64,
}

#[derive(Debug, Default)]
pub struct Faults {
    list: Mutex<Vec<Fault>>,
}

/// What the faults do to one call.
#[derive(Debug, Default)]
pub struct Applied {
    pub delay: Duration,
    pub error: Option<ApiError>,
    pub cut: bool,
}

fn parse_one(spec: &str) -> Result<Fault, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(format!(
            "--fault {spec:?}: expected OPERATION:FAULT[:COUNT], e.g. executeCode:throttle:2"
        ));
    }
    let op = parts[0];
    if op != "*" && !OPERATIONS.contains(&op) {
        return Err(format!(
            "--fault {spec:?}: unknown operation {op:?}; use one of *, {}",
            OPERATIONS.join(", ")
        ));
    }
    let kind = match parts[1] {
        "throttle" => Kind::Throttle,
        "internal" => Kind::Internal,
        "cut" => Kind::Cut,
        other => match other.strip_prefix("delay-").map(str::parse::<u64>) {
            Some(Ok(ms)) if ms <= 3_600_000 => Kind::Delay(Duration::from_millis(ms)),
            _ => {
                return Err(format!(
                    "--fault {spec:?}: unknown fault {other:?}; use throttle, internal, cut or delay-MS (MS at most 3600000)"
                ));
            }
        },
    };
    let remaining = match parts.get(2) {
        None => 1,
        Some(c) => match c.parse::<u64>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(format!(
                    "--fault {spec:?}: COUNT must be a whole number of calls, at least 1"
                ));
            }
        },
    };
    Ok(Fault {
        op: op.to_string(),
        kind,
        remaining,
    })
}

impl Faults {
    pub fn parse(specs: &[String]) -> Result<Self, String> {
        let list = specs
            .iter()
            .map(|s| parse_one(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            list: Mutex::new(list),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.list.lock().map(|l| l.is_empty()).unwrap_or(true)
    }

    /// Uses up the faults that apply to one call of `op`.
    pub fn take(&self, op: &str) -> Applied {
        let mut applied = Applied::default();
        let Ok(mut list) = self.list.lock() else {
            return applied;
        };
        let matches = |f: &Fault| f.remaining > 0 && (f.op == "*" || f.op == op);
        for f in list.iter_mut().filter(|f| matches(f)) {
            if let Kind::Delay(d) = f.kind {
                applied.delay += d;
                f.remaining -= 1;
            }
        }
        if let Some(f) = list
            .iter_mut()
            .find(|f| matches(f) && matches!(f.kind, Kind::Throttle | Kind::Internal))
        {
            f.remaining -= 1;
            applied.error = Some(if f.kind == Kind::Throttle {
                ApiError::new(
                    ErrorKind::Throttling,
                    format!("Rate exceeded for {op} (injected fault)"),
                )
            } else {
                ApiError::internal(format!("Internal server error in {op} (injected fault)"))
            });
        } else if let Some(f) = list.iter_mut().find(|f| matches(f) && f.kind == Kind::Cut) {
            f.remaining -= 1;
            applied.cut = true;
        }
        if applied.delay > Duration::ZERO || applied.error.is_some() || applied.cut {
            tracing::info!(op, delay_ms = applied.delay.as_millis() as u64, error = ?applied.error.as_ref().map(|e| e.kind.type_name()), cut = applied.cut, "fault injected");
        }
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(specs: &[&str]) -> Faults {
        Faults::parse(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn parses_and_rejects() {
        for bad in [
            "executeCode",
            "nope:throttle",
            "executeCode:boom",
            "executeCode:throttle:0",
            "executeCode:throttle:x",
            "executeCode:delay-x",
            "a:b:c:d",
        ] {
            assert!(
                Faults::parse(&[bad.to_string()]).is_err(),
                "{bad} should be refused"
            );
        }
        assert!(faults(&[]).is_empty());
    }

    #[test]
    fn counts_down_per_matching_call() {
        let f = faults(&["executeCode:throttle:2", "*:delay-5:1", "start:cut"]);
        let a = f.take("executeCode");
        assert_eq!(a.delay, Duration::from_millis(5));
        assert_eq!(a.error.unwrap().kind, ErrorKind::Throttling);
        assert!(f.take("writeFiles").error.is_none());
        assert_eq!(f.take("executeCode").delay, Duration::ZERO);
        assert!(f.take("executeCode").error.is_none());
        let s = f.take("start");
        assert!(s.cut && s.error.is_none());
        assert!(!f.take("start").cut);
    }

    #[test]
    fn an_error_fault_leaves_cut_for_later() {
        let f = faults(&["executeCode:cut:1", "executeCode:internal:1"]);
        let a = f.take("executeCode");
        assert_eq!(a.error.unwrap().kind, ErrorKind::InternalServer);
        assert!(!a.cut);
        assert!(f.take("executeCode").cut);
    }
}
