//! Capped capture of a stream of output: the head and tail are kept in
//! memory, the cut is stated with the total size, and once the output is
//! larger than the cap all of it goes to a spill file the model can read.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a running call has printed so far, shared with whoever reports
/// progress: the byte count of stdout and stderr together, and the newest
/// bytes (for the last line).
#[derive(Debug, Default)]
pub struct LiveOutput {
    bytes: AtomicU64,
    recent: Mutex<Vec<u8>>,
    /// Everything printed (stdout and stderr interleaved as they arrived), up
    /// to [`MAX_TASK_LOG`], when the call may become a background task.
    log: Option<Mutex<Vec<u8>>>,
}

/// Largest log kept in memory for one background task.
pub const MAX_TASK_LOG: usize = 8 * 1024 * 1024;

impl LiveOutput {
    /// A live view that also keeps the whole output for paging.
    pub fn with_log() -> Self {
        Self {
            log: Some(Mutex::new(Vec::new())),
            ..Self::default()
        }
    }

    /// Up to `max` bytes of the log from byte offset `cursor`, cut at a
    /// character boundary, and the offset to continue from.
    pub fn log_page(&self, cursor: u64, max: usize) -> (String, u64) {
        let Some(log) = &self.log else {
            return (String::new(), cursor);
        };
        let Ok(log) = log.lock() else {
            return (String::new(), cursor);
        };
        let start = (cursor as usize).min(log.len());
        let mut end = (start + max).min(log.len());
        // Never end inside a UTF-8 sequence (unless the page would be empty).
        while end > start && end < log.len() && (log[end] & 0b1100_0000) == 0b1000_0000 {
            end -= 1;
        }
        (
            String::from_utf8_lossy(&log[start..end]).into_owned(),
            end as u64,
        )
    }

    /// Bytes in the log (at most [`MAX_TASK_LOG`]).
    pub fn log_len(&self) -> u64 {
        self.log
            .as_ref()
            .and_then(|l| l.lock().ok().map(|l| l.len() as u64))
            .unwrap_or(0)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The last non-empty line printed, at most 120 characters.
    pub fn last_line(&self) -> String {
        let recent = self.recent.lock().map(|r| r.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&recent);
        let line = text.trim_end().rsplit('\n').next().unwrap_or("").trim();
        line.chars().take(120).collect()
    }

    pub fn record(&self, chunk: &[u8]) {
        const KEEP: usize = 400;
        self.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if let Some(log) = &self.log
            && let Ok(mut l) = log.lock()
        {
            let room = MAX_TASK_LOG.saturating_sub(l.len());
            l.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        if let Ok(mut r) = self.recent.lock() {
            r.extend_from_slice(&chunk[chunk.len().saturating_sub(KEEP)..]);
            if r.len() > KEEP {
                let cut = r.len() - KEEP;
                r.drain(..cut);
            }
        }
    }
}

/// Largest spill file written for one stream of one call.
pub const MAX_SPILL_BYTES: u64 = 64 * 1024 * 1024;

/// What a caller gets back for one stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapturedOutput {
    /// The output, or its head and tail around a note saying what was cut.
    pub text: String,
    pub total_bytes: u64,
    pub truncated: bool,
    /// Path (relative to the session's working directory) of the full output.
    pub saved_to: Option<String>,
}

/// Opens the spill file on demand: returns the open file and the path to
/// report.
pub type SpillOpener = Box<dyn FnMut() -> Result<(std::fs::File, String), String> + Send>;

pub struct OutputCollector {
    cap: usize,
    /// Everything, while the total is within the cap; afterwards the head.
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
    spill: Option<(std::fs::File, String)>,
    spill_opener: Option<SpillOpener>,
    spill_error: Option<String>,
    spilled: u64,
    live: Option<std::sync::Arc<LiveOutput>>,
}

impl OutputCollector {
    pub fn new(cap: usize, spill_opener: Option<SpillOpener>) -> Self {
        Self {
            cap: cap.max(2),
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
            spill: None,
            spill_opener,
            spill_error: None,
            spilled: 0,
            live: None,
        }
    }

    /// Also reports every chunk to `live` (for progress notifications).
    pub fn with_live(mut self, live: Option<std::sync::Arc<LiveOutput>>) -> Self {
        self.live = live;
        self
    }

    pub fn push(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        if let Some(live) = &self.live {
            live.record(chunk);
        }
        let before = self.total;
        self.total += chunk.len() as u64;
        if before as usize + chunk.len() <= self.cap && self.spill.is_none() {
            self.head.extend_from_slice(chunk);
            return;
        }
        if self.spill.is_none() && self.spill_error.is_none() {
            self.open_spill();
        }
        // Write the chunk to the spill file while it is within its limit.
        if let Some((file, _)) = self.spill.as_mut() {
            let room = MAX_SPILL_BYTES.saturating_sub(self.spilled) as usize;
            let part = &chunk[..chunk.len().min(room)];
            if !part.is_empty() {
                match file.write_all(part) {
                    Ok(()) => self.spilled += part.len() as u64,
                    Err(e) => {
                        self.spill_error = Some(format!("writing the full output failed: {e}"))
                    }
                }
            }
        }
        // Keep the head at half the cap and the newest bytes in the tail.
        let half = self.cap / 2;
        let mut rest = chunk;
        if self.head.len() < half {
            let take = (half - self.head.len()).min(rest.len());
            self.head.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        if self.head.len() > half {
            let overflow: Vec<u8> = self.head.drain(half..).collect();
            self.tail.extend(overflow);
        }
        self.tail.extend(rest.iter().copied());
        let keep = self.cap - half;
        while self.tail.len() > keep {
            let excess = self.tail.len() - keep;
            self.tail.drain(..excess);
        }
    }

    fn open_spill(&mut self) {
        let Some(opener) = self.spill_opener.as_mut() else {
            self.spill_error = Some("the full output was not kept".into());
            return;
        };
        match opener() {
            Ok((mut file, path)) => {
                // Everything so far is still in `head` (we are crossing the cap now).
                match file.write_all(&self.head) {
                    Ok(()) => {
                        self.spilled = self.head.len() as u64;
                        self.spill = Some((file, path));
                    }
                    Err(e) => {
                        self.spill_error = Some(format!("writing the full output failed: {e}"))
                    }
                }
            }
            Err(e) => self.spill_error = Some(e),
        }
    }

    pub fn finish(mut self) -> CapturedOutput {
        let truncated = self.total > self.cap as u64;
        if !truncated {
            return CapturedOutput {
                text: String::from_utf8_lossy(&self.head).into_owned(),
                total_bytes: self.total,
                truncated: false,
                saved_to: None,
            };
        }
        if let Some((file, _)) = self.spill.as_mut() {
            let _ = file.flush();
        }
        let head = utf8_prefix(&self.head);
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        let tail = utf8_suffix(&tail);
        let omitted = self.total - (head.len() + tail.len()) as u64;
        let saved_to = self.spill.as_ref().map(|(_, p)| p.clone());
        let where_ = match (&saved_to, &self.spill_error) {
            (Some(p), _) if self.spilled < self.total => format!(
                "the first {} bytes are saved in {p} (read it with read_files or execute_command)",
                self.spilled
            ),
            (Some(p), _) => {
                format!(
                    "the full output is saved in {p} (read it with read_files or execute_command)"
                )
            }
            (None, Some(e)) => e.clone(),
            (None, None) => "the full output was not kept".into(),
        };
        let text = format!(
            "{head}\n[... {omitted} bytes omitted of {} in total; {where_} ...]\n{tail}",
            self.total
        );
        CapturedOutput {
            text,
            total_bytes: self.total,
            truncated: true,
            saved_to,
        }
    }
}

/// The longest prefix of `b` that is valid UTF-8 up to a cut character.
fn utf8_prefix(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&b[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// `b` without the continuation bytes of a character cut at its start.
fn utf8_suffix(b: &[u8]) -> String {
    let start = b
        .iter()
        .take(3)
        .take_while(|&&c| (c & 0b1100_0000) == 0b1000_0000)
        .count();
    String::from_utf8_lossy(&b[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spill_to(dir: &std::path::Path) -> SpillOpener {
        let path = dir.join("spill.log");
        Box::new(move || {
            let f = std::fs::File::create(&path).map_err(|e| e.to_string())?;
            Ok((f, "spill.log".to_string()))
        })
    }

    #[test]
    fn small_output_is_kept_whole() {
        let mut c = OutputCollector::new(100, None);
        c.push(b"hello ");
        c.push(b"world\n");
        let out = c.finish();
        assert_eq!(out.text, "hello world\n");
        assert_eq!(out.total_bytes, 12);
        assert!(!out.truncated);
        assert_eq!(out.saved_to, None);
    }

    #[test]
    fn large_output_keeps_head_and_tail_and_spills_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = OutputCollector::new(100, Some(spill_to(dir.path())));
        let mut all = Vec::new();
        for i in 0..1000 {
            let line = format!("line {i}\n");
            all.extend_from_slice(line.as_bytes());
            c.push(line.as_bytes());
        }
        let out = c.finish();
        assert!(out.truncated);
        assert_eq!(out.total_bytes, all.len() as u64);
        assert!(out.text.starts_with("line 0\nline 1\n"), "{}", out.text);
        assert!(out.text.ends_with("line 999\n"), "{}", out.text);
        assert!(out.text.contains("bytes omitted"));
        assert_eq!(out.saved_to.as_deref(), Some("spill.log"));
        assert_eq!(std::fs::read(dir.path().join("spill.log")).unwrap(), all);
    }

    #[test]
    fn cut_never_splits_a_character() {
        let mut c = OutputCollector::new(11, None);
        c.push("ééééééééééééééééééé".as_bytes());
        let out = c.finish();
        assert!(out.truncated);
        assert!(!out.text.contains('\u{FFFD}'), "{}", out.text);
    }

    #[test]
    fn log_pages_never_split_a_character() {
        let live = LiveOutput::with_log();
        live.record("aé".as_bytes());
        live.record(b"bc");
        let (page, next) = live.log_page(0, 2);
        assert_eq!((page.as_str(), next), ("a", 1));
        let (page, next) = live.log_page(next, 10);
        assert_eq!((page.as_str(), next), ("ébc", 5));
        assert_eq!(live.log_page(next, 10), (String::new(), 5));
    }

    #[test]
    fn last_line_tracks_partial_lines() {
        let live = std::sync::Arc::new(LiveOutput::default());
        let mut c = OutputCollector::new(100, None).with_live(Some(live.clone()));
        c.push(b"one\ntw");
        c.push(b"o\n");
        assert_eq!(live.last_line(), "two");
        c.push(b"three");
        assert_eq!(live.last_line(), "three");
    }
}
