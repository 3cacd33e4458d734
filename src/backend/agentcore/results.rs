//! The service's result events, read into plain values: every content type
//! (text, image, resource with text or blob, resource_link) and the
//! structured content.

use aws_sdk_bedrockagentcore::types::{
    CodeInterpreterResult, ContentBlockType, ResourceContentType, TaskStatus,
};
use base64::Engine;

use crate::backend::{EntryKind, ExecError, Image, ReadFile};

/// Everything the result events of one call carried.
#[derive(Debug, Default)]
pub struct Gathered {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i32>,
    pub is_error: bool,
    /// Text blocks, in order.
    pub text: Vec<String>,
    pub images: Vec<Image>,
    /// Files from `resource` blocks: path and bytes.
    pub files: Vec<(String, Vec<u8>)>,
    /// Entries from `resource_link` blocks: name, kind, size.
    pub listing: Vec<(String, EntryKind, u64)>,
    /// Resources or links in an execute result, worth telling the caller.
    pub notes: Vec<String>,
}

impl From<&[CodeInterpreterResult]> for Gathered {
    fn from(results: &[CodeInterpreterResult]) -> Self {
        let mut g = Gathered::default();
        let mut structured_stdout = false;
        for r in results {
            g.is_error |= r.is_error().unwrap_or(false);
            if let Some(s) = r.structured_content() {
                if let Some(o) = s.stdout() {
                    structured_stdout = true;
                    g.stdout.push_str(o);
                }
                if let Some(e) = s.stderr() {
                    g.stderr.push_str(e);
                }
                if let Some(c) = s.exit_code() {
                    g.exit_code = Some(c);
                }
            }
            for b in r.content() {
                match b.r#type() {
                    ContentBlockType::Text => {
                        if let Some(t) = b.text() {
                            g.text.push(t.to_string());
                        }
                    }
                    ContentBlockType::Image => {
                        if let Some(data) = b.data() {
                            g.images.push(Image {
                                mime_type: b.mime_type().unwrap_or("image/png").to_string(),
                                data: base64::engine::general_purpose::STANDARD
                                    .encode(data.as_ref()),
                            });
                        }
                    }
                    ContentBlockType::EmbeddedResource => {
                        let Some(res) = b.resource() else { continue };
                        let uri = res.uri().or(b.uri()).unwrap_or("");
                        let bytes = match res.r#type() {
                            ResourceContentType::Blob => {
                                res.blob().map(|b| b.as_ref().to_vec()).unwrap_or_default()
                            }
                            _ => res.text().unwrap_or("").as_bytes().to_vec(),
                        };
                        g.notes
                            .push(format!("resource {uri} ({} bytes)", bytes.len()));
                        g.files.push((uri_path(uri), bytes));
                    }
                    ContentBlockType::ResourceLink => {
                        let uri = b.uri().unwrap_or("");
                        let name = b
                            .name()
                            .map(str::to_string)
                            .unwrap_or_else(|| base_name(&uri_path(uri)));
                        let dir = b
                            .description()
                            .is_some_and(|d| d.to_ascii_lowercase().contains("dir"))
                            || b.mime_type() == Some("inode/directory");
                        let kind = if dir { EntryKind::Dir } else { EntryKind::File };
                        g.notes.push(format!("file {uri}"));
                        g.listing
                            .push((name, kind, b.size().unwrap_or(0).max(0) as u64));
                    }
                    _ => {}
                }
            }
        }
        if !structured_stdout {
            // No structured stdout: the text blocks are the output.
            g.stdout = g.text.join("\n");
        }
        g
    }
}

impl Gathered {
    /// The output of a finished (or stopped) background task.
    pub fn from_task(t: &TaskState) -> Self {
        Gathered {
            stdout: t.stdout.clone(),
            stderr: t.stderr.clone(),
            exit_code: t.exit_code,
            is_error: matches!(t.status, Some(TaskStatus::Failed)),
            ..Default::default()
        }
    }

    /// What went wrong, for an isError result: the text, else stderr.
    pub fn message(&self) -> String {
        let text = self.text.join("\n");
        let m = if text.trim().is_empty() {
            self.stderr.trim()
        } else {
            text.trim()
        };
        if m.is_empty() {
            "no details given".into()
        } else {
            m.chars().take(2000).collect()
        }
    }
}

/// The exception of a failed code cell, read from its traceback (the last
/// `Name: message` line), as the local backend reports it.
pub fn exec_error(g: &Gathered) -> ExecError {
    let source = if g.stderr.trim().is_empty() {
        g.message()
    } else {
        g.stderr.clone()
    };
    // Python ends its traceback with `Name: message`; Node starts its stack
    // with it and indents the frames below. Take the last unindented line of
    // that form, else the last line.
    let is_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            && n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
    };
    let named = source
        .lines()
        .rev()
        .filter(|l| !l.starts_with([' ', '\t']))
        .find_map(|l| l.split_once(": ").filter(|(n, _)| is_name(n)));
    let (name, message) = match named {
        Some((n, m)) => (n.to_string(), m.trim().to_string()),
        None => (
            "Error".to_string(),
            source
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("Error")
                .to_string(),
        ),
    };
    ExecError {
        name,
        message,
        traceback: source,
    }
}

/// Pairs the files the service returned with the paths asked for.
pub fn match_files(paths: &[String], files: &[(String, Vec<u8>)]) -> Vec<ReadFile> {
    let mut used = vec![false; files.len()];
    paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let want = p.trim_start_matches("./");
            let found = files
                .iter()
                .enumerate()
                .find(|(j, (path, _))| {
                    !used[*j] && (path == want || path.ends_with(&format!("/{want}")))
                })
                .map(|(j, _)| j)
                // Same count and order, but paths the service spells its way.
                .or_else(|| (files.len() == paths.len() && !used[i]).then_some(i));
            match found {
                Some(j) => {
                    used[j] = true;
                    ReadFile {
                        path: p.clone(),
                        result: Ok(files[j].1.clone()),
                    }
                }
                None => ReadFile {
                    path: p.clone(),
                    result: Err("AgentCore returned no content for this file".into()),
                },
            }
        })
        .collect()
}

/// The state of a background task, from startCommandExecution or getTask.
#[derive(Debug, Default)]
pub struct TaskState {
    pub task_id: Option<String>,
    pub status: Option<TaskStatus>,
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i32>,
}

impl TaskState {
    pub fn finished(&self) -> bool {
        matches!(
            self.status,
            Some(TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Canceled)
        )
    }
}

impl From<&[CodeInterpreterResult]> for TaskState {
    fn from(results: &[CodeInterpreterResult]) -> Self {
        let mut t = TaskState::default();
        for r in results {
            if let Some(s) = r.structured_content() {
                if let Some(id) = s.task_id() {
                    t.task_id = Some(id.to_string());
                }
                if let Some(st) = s.task_status() {
                    t.status = Some(st.clone());
                }
                if let Some(o) = s.stdout() {
                    t.stdout = o.to_string();
                }
                if let Some(e) = s.stderr() {
                    t.stderr = e.to_string();
                }
                if let Some(c) = s.exit_code() {
                    t.exit_code = Some(c);
                }
            }
        }
        t
    }
}

/// `file:///work/a.txt` → `/work/a.txt`; a plain path stays as it is.
fn uri_path(uri: &str) -> String {
    uri.strip_prefix("file://").unwrap_or(uri).to_string()
}

fn base_name(p: &str) -> String {
    p.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(p)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_read_from_the_last_traceback_line() {
        let g = Gathered {
            stderr: "Traceback (most recent call last):\n  File \"<cell>\", line 1\nZeroDivisionError: division by zero\n".into(),
            is_error: true,
            ..Default::default()
        };
        let e = exec_error(&g);
        assert_eq!(e.name, "ZeroDivisionError");
        assert_eq!(e.message, "division by zero");
    }

    #[test]
    fn files_match_by_path_suffix() {
        let files = vec![
            ("/opt/work/b.bin".to_string(), vec![2]),
            ("/opt/work/a.txt".to_string(), vec![1]),
        ];
        let out = match_files(&["a.txt".into(), "b.bin".into(), "c".into()], &files);
        assert_eq!(out[0].result, Ok(vec![1]));
        assert_eq!(out[1].result, Ok(vec![2]));
        assert!(out[2].result.is_err());
    }
}
