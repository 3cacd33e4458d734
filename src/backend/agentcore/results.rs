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

/// Bytes of payload a result event carries (text, data, resources and the
/// structured output), to bound what one answer may hold in memory.
pub fn payload_bytes(r: &CodeInterpreterResult) -> usize {
    let blocks: usize = r
        .content()
        .iter()
        .map(|b| {
            b.text().map_or(0, str::len)
                + b.data().map_or(0, |d| d.as_ref().len())
                + b.resource().map_or(0, |res| {
                    res.text().map_or(0, str::len) + res.blob().map_or(0, |d| d.as_ref().len())
                })
        })
        .sum();
    let structured = r.structured_content().map_or(0, |s| {
        s.stdout().map_or(0, str::len) + s.stderr().map_or(0, str::len)
    });
    blocks + structured
}

/// `./a//b/./c` → `a/b/c`: the spelling differences that do not change
/// which file a path names.
fn clean_path(p: &str) -> String {
    let absolute = p.starts_with('/');
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Pairs the files the service returned with the paths asked for: exact
/// paths first; then the unused file that ends with the path and has the
/// fewest extra components (the service may answer with absolute paths;
/// the file at the path's own position wins a tie); last, when the counts
/// agree, the file at the same position.
pub fn match_files(paths: &[String], files: Vec<(String, Vec<u8>)>) -> Vec<ReadFile> {
    let want: Vec<String> = paths.iter().map(|p| clean_path(p)).collect();
    let have: Vec<String> = files.iter().map(|(p, _)| clean_path(p)).collect();
    let ends_with = |j: usize, w: &str| have[j] == w || have[j].ends_with(&format!("/{w}"));
    let mut pick: Vec<Option<usize>> = vec![None; paths.len()];
    let mut used = vec![false; files.len()];
    for (i, w) in want.iter().enumerate() {
        if let Some(j) = (0..have.len()).find(|&j| !used[j] && have[j] == *w) {
            (used[j], pick[i]) = (true, Some(j));
        }
    }
    // The most specific paths choose first, so `sub/b.txt` is placed
    // before `b.txt` could take it.
    let mut order: Vec<usize> = (0..want.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(want[i].matches('/').count()));
    for i in order {
        if pick[i].is_some() {
            continue;
        }
        let w = &want[i];
        let found = (0..have.len())
            .filter(|&j| !used[j] && ends_with(j, w))
            .min_by_key(|&j| (have[j].matches('/').count(), j != i));
        if let Some(j) = found {
            (used[j], pick[i]) = (true, Some(j));
        }
    }
    if files.len() == paths.len() {
        for i in 0..paths.len() {
            if pick[i].is_none() && !used[i] {
                (used[i], pick[i]) = (true, Some(i));
            }
        }
    }
    let mut bytes: Vec<Option<Vec<u8>>> = files.into_iter().map(|(_, b)| Some(b)).collect();
    paths
        .iter()
        .zip(pick)
        .map(|(p, j)| ReadFile {
            path: p.clone(),
            result: j
                .and_then(|j| bytes[j].take())
                .ok_or_else(|| "AgentCore returned no content for this file".to_string()),
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
        let out = match_files(&["a.txt".into(), "b.bin".into(), "c".into()], files);
        assert_eq!(out[0].result, Ok(vec![1]));
        assert_eq!(out[1].result, Ok(vec![2]));
        assert!(out[2].result.is_err());
    }

    #[test]
    fn payload_bytes_counts_every_carrier_of_data() {
        use aws_sdk_bedrockagentcore::types::{
            CodeInterpreterResult, ContentBlock, ResourceContent, ToolResultStructuredContent,
        };
        let blob = aws_smithy_types::Blob::new(vec![0u8; 1000]);
        let r = CodeInterpreterResult::builder()
            .content(
                ContentBlock::builder()
                    .r#type(ContentBlockType::Text)
                    .text("x".repeat(10))
                    .build()
                    .unwrap(),
            )
            .content(
                ContentBlock::builder()
                    .r#type(ContentBlockType::Image)
                    .data(blob.clone())
                    .build()
                    .unwrap(),
            )
            .content(
                ContentBlock::builder()
                    .r#type(ContentBlockType::EmbeddedResource)
                    .resource(
                        ResourceContent::builder()
                            .r#type(ResourceContentType::Blob)
                            .blob(blob)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .structured_content(
                ToolResultStructuredContent::builder()
                    .stdout("y".repeat(100))
                    .stderr("z".repeat(5))
                    .build(),
            )
            .build()
            .unwrap();
        assert_eq!(payload_bytes(&r), 10 + 1000 + 1000 + 100 + 5);
    }

    #[test]
    fn a_deeper_file_with_the_same_name_is_not_taken_for_a_shallower_one() {
        // Answered in another order, with absolute paths: b.txt must not get
        // sub/b.txt because that one also ends with /b.txt.
        let files = vec![
            ("/opt/work/sub/b.txt".to_string(), vec![2]),
            ("/opt/work/b.txt".to_string(), vec![1]),
        ];
        let out = match_files(&["b.txt".into(), "sub/b.txt".into()], files);
        assert_eq!(out[0].result, Ok(vec![1]));
        assert_eq!(out[1].result, Ok(vec![2]));
        let files = vec![("a/b.txt".to_string(), vec![3])];
        let out = match_files(&["./a//b.txt".into()], files);
        assert_eq!(out[0].result, Ok(vec![3]), "spelling does not matter");
    }
}
