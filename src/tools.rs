//! The MCP tool contract: parameter and result types (their `///` docs become
//! the schema descriptions the model reads) and the `tools/list` entries built
//! from them, kept small because every byte costs the model context.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend::{DirEntry, ExecError, Language, LimitHit, WrittenFile};

// ---------------------------------------------------------------- parameters

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSessionArgs {
    /// Optional label for the session.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopSessionArgs {
    /// Session to stop (default: the default session).
    #[serde(default)]
    pub session_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteCodeArgs {
    /// Source code to run.
    pub code: String,
    /// Default python.
    #[serde(default)]
    pub language: Language,
    #[serde(default)]
    pub session_id: Option<String>,
    /// Discard variables and imports before running.
    #[serde(default)]
    pub clear_context: bool,
    /// Interrupt after this many seconds (default 300).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteCommandArgs {
    /// Shell command, run with `bash -c`.
    pub command: String,
    #[serde(default)]
    pub session_id: Option<String>,
    /// Interrupt after this many seconds (default 300).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Return a task_id at once and run on; follow it with get_task.
    #[serde(default)]
    pub background: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetTaskArgs {
    pub task_id: String,
    /// The `cursor` of the previous get_task (default 0).
    #[serde(default)]
    pub cursor: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopTaskArgs {
    pub task_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileArg {
    /// Relative to the working directory.
    pub path: String,
    /// UTF-8 content.
    #[serde(default)]
    pub text: Option<String>,
    /// Binary content, base64 (instead of text).
    #[serde(default)]
    pub base64: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFilesArgs {
    pub files: Vec<FileArg>,
    #[serde(default)]
    pub session_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFilesArgs {
    /// Paths relative to the working directory.
    pub paths: Vec<String>,
    #[serde(default)]
    pub session_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListFilesArgs {
    /// Directory relative to the working directory (default ".").
    #[serde(default)]
    pub path: Option<String>,
    /// Include subdirectories.
    #[serde(default)]
    pub recursive: bool,
    #[serde(default)]
    pub session_id: Option<String>,
}

// ------------------------------------------------------------------- results

#[derive(Debug, Serialize, JsonSchema)]
pub struct StartSessionOutput {
    pub session_id: String,
    pub backend: String,
    pub idle_timeout_seconds: u64,
    pub max_lifetime_seconds: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StopSessionOutput {
    pub session_id: String,
    pub stopped: bool,
}

/// Where output that was cut in the result can be read in full.
#[derive(Debug, Serialize, JsonSchema, PartialEq)]
pub struct Truncation {
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_file: Option<String>,
}

/// The outcome of `execute_code` and `execute_command`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecOutput {
    pub session_id: String,
    /// False when the code raised, the command exited non-zero, or a limit stopped it.
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ExecError>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub images: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitHit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Set when the call continues as a background task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A background task: its output from `cursor` on and, once done, its result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct GetTaskOutput {
    pub task_id: String,
    pub session_id: String,
    /// `running` or `done`.
    pub status: String,
    pub elapsed_ms: u64,
    /// Output (stdout and stderr as they came) from the requested cursor.
    pub output: String,
    /// Pass as `cursor` to read on.
    pub cursor: u64,
    /// More output is already waiting past `cursor`.
    pub more: bool,
    /// The call's final result (as execute_code / execute_command gives it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StopTaskOutput {
    pub task_id: String,
    pub status: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WriteFilesOutput {
    pub session_id: String,
    pub files: Vec<WrittenFile>,
}

#[derive(Debug, Serialize, JsonSchema, Default)]
pub struct ReadFileOutput {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// The file is an image, returned as an image block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReadFilesOutput {
    pub session_id: String,
    pub files: Vec<ReadFileOutput>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListFilesOutput {
    pub session_id: String,
    pub path: String,
    pub entries: Vec<DirEntry>,
    pub truncated: bool,
}

// ----------------------------------------------------------------- tool list

/// A JSON schema for `T`, inlined and stripped of what costs bytes without
/// helping a model: `$schema`, titles, integer formats and bounds, defaults
/// (the descriptions state them), `additionalProperties` (unknown fields are
/// refused with a message naming them), null branches of optional fields
/// (optional fields are simply not required). Output schemas also lose their
/// descriptions, and objects nested in a top-level field are declared only as
/// objects: clients validate the shape, and the model reads the values.
fn schema<T: JsonSchema>(for_output: bool) -> Arc<JsonObject> {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    if for_output {
        settings = settings.for_serialize();
    }
    let root = settings.into_generator().into_root_schema_for::<T>();
    let mut v = serde_json::to_value(root).unwrap_or(Value::Null);
    clean(&mut v, for_output);
    if for_output && let Some(Value::Object(props)) = v.get_mut("properties") {
        for (_, p) in props.iter_mut() {
            let untyped = p.as_object().is_some_and(|o| o.is_empty());
            if untyped || p.get("type") == Some(&Value::String("object".into())) {
                *p = serde_json::json!({"type": "object"});
            }
        }
    }
    if for_output {
        only_required(&mut v);
    }
    match v {
        Value::Object(o) => Arc::new(o),
        _ => Arc::new(JsonObject::new()),
    }
}

/// Keeps in each object schema only the properties that are always present:
/// optional fields are still valid (JSON Schema allows properties it does not
/// list), and listing them would cost every client the bytes on each turn.
fn only_required(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let required: Vec<String> = o
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(Value::Object(props)) = o.get_mut("properties") {
                props.retain(|k, _| required.contains(k));
                if props.is_empty() {
                    o.remove("properties");
                }
            }
            for (_, child) in o.iter_mut() {
                only_required(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(only_required),
        _ => {}
    }
}

fn clean(v: &mut Value, strip_descriptions: bool) {
    match v {
        Value::Object(o) => {
            for k in [
                "$schema",
                "title",
                "format",
                "minimum",
                "default",
                "additionalProperties",
            ] {
                o.remove(k);
            }
            if strip_descriptions {
                o.remove("description");
            }
            if let Some(Value::Array(types)) = o.get("type") {
                let non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                if non_null.len() == 1 {
                    o.insert("type".into(), non_null[0].clone());
                }
            }
            // Option<Struct> becomes anyOf [struct, null]: keep the struct.
            if let Some(Value::Array(any)) = o.get("anyOf") {
                let non_null: Vec<Value> = any
                    .iter()
                    .filter(|s| s.get("type") != Some(&Value::String("null".into())))
                    .cloned()
                    .collect();
                if non_null.len() == 1
                    && let Value::Object(inner) = &non_null[0]
                {
                    let inner = inner.clone();
                    o.remove("anyOf");
                    for (k, val) in inner {
                        o.entry(k).or_insert(val);
                    }
                }
            }
            for (_, child) in o.iter_mut() {
                clean(child, strip_descriptions);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| clean(c, strip_descriptions)),
        _ => {}
    }
}

fn tool<I: JsonSchema, O: JsonSchema>(
    name: &'static str,
    description: &'static str,
    annotations: Option<ToolAnnotations>,
) -> Tool {
    let t =
        Tool::new(name, description, schema::<I>(false)).with_raw_output_schema(schema::<O>(true));
    match annotations {
        Some(a) => t.with_annotations(a),
        None => t,
    }
}

/// Every tool this server offers, in the order `tools/list` shows them.
/// Annotations are given only where they differ from the protocol's defaults
/// (not read-only, destructive).
pub fn all_tools() -> Vec<Tool> {
    let read_only = || Some(ToolAnnotations::new().read_only(true));
    vec![
        tool::<ExecuteCodeArgs, ExecOutput>(
            "execute_code",
            "Run code in the session's persistent interpreter (variables and imports persist). \
Returns stdout, stderr, a final expression's value as `result`, any exception with traceback, and matplotlib figures as images.",
            None,
        ),
        tool::<ExecuteCommandArgs, ExecOutput>(
            "execute_command",
            "Run a bash command in the session's working directory. A non-zero exit_code is reported, not an error.",
            None,
        ),
        tool::<GetTaskArgs, GetTaskOutput>(
            "get_task",
            "Follow a task (a call that returned status `running`): output from `cursor`, and the result when done.",
            read_only(),
        ),
        tool::<StopTaskArgs, StopTaskOutput>(
            "stop_task",
            "Stop a running task (interrupt, then kill).",
            None,
        ),
        tool::<WriteFilesArgs, WriteFilesOutput>(
            "write_files",
            "Create or overwrite files in the session (parent directories are made). Returns each file's bytes and sha256.",
            None,
        ),
        tool::<ReadFilesArgs, ReadFilesOutput>(
            "read_files",
            "Read files from the session: UTF-8 as text, other files as base64, images as image blocks.",
            read_only(),
        ),
        tool::<ListFilesArgs, ListFilesOutput>(
            "list_files",
            "List a directory of the session's working directory.",
            read_only(),
        ),
        tool::<StartSessionArgs, StartSessionOutput>(
            "start_session",
            "Start a new isolated session. Optional: calls without session_id use a default session.",
            Some(ToolAnnotations::new().destructive(false)),
        ),
        tool::<StopSessionArgs, StopSessionOutput>(
            "stop_session",
            "Stop a session: end its processes and delete its files.",
            None,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_have_no_null_branches_or_meta_keys() {
        let tools = all_tools();
        let text = serde_json::to_string(&tools).unwrap();
        assert!(!text.contains("$schema"));
        assert!(!text.contains("\"null\""), "{text}");
        assert!(!text.contains("\"title\""));
        for t in &tools {
            assert!(t.description.is_some());
            assert_eq!(
                t.input_schema.get("type"),
                Some(&Value::String("object".into()))
            );
        }
    }

    /// Every byte of tools/list is read by the model on every turn: hold the
    /// whole list to 6 KB.
    #[test]
    fn tools_list_fits_its_budget() {
        let list = rmcp::model::ListToolsResult::with_all_items(all_tools());
        let bytes = serde_json::to_vec(&list).unwrap().len();
        assert!(bytes <= 6000, "tools/list is {bytes} bytes");
    }

    #[test]
    fn language_is_an_inline_enum() {
        let s = schema::<ExecuteCodeArgs>(false);
        let lang = &s["properties"]["language"];
        assert_eq!(
            lang["enum"],
            serde_json::json!(["python", "javascript", "typescript"])
        );
        assert_eq!(s["required"], serde_json::json!(["code"]));
    }
}
