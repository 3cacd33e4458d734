//! What only the agentcore backend does, through the real server, the real
//! AWS SDK for Rust and the emulator: retries, faults, expiry, session
//! hygiene and adoption.

use aws_sdk_bedrockagentcore as ac;
use serde_json::json;

use super::harness::*;

const CI: &str = "aws.codeinterpreter.v1";

/// A Rust SDK client of the emulator, to look behind the server's back.
fn sdk(e: &Emulator) -> ac::Client {
    let conf = ac::Config::builder()
        .behavior_version(ac::config::BehaviorVersion::latest())
        .region(ac::config::Region::new("us-west-2"))
        .credentials_provider(ac::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .endpoint_url(&e.url)
        .build();
    ac::Client::from_conf(conf)
}

/// A session started outside the server, as a caller who keeps it would.
async fn callers_session(c: &ac::Client) -> String {
    c.start_code_interpreter_session()
        .code_interpreter_identifier(CI)
        .name("caller")
        .send()
        .await
        .unwrap()
        .session_id()
        .to_string()
}

async fn ready_sessions(c: &ac::Client) -> Vec<String> {
    let out = c
        .list_code_interpreter_sessions()
        .code_interpreter_identifier(CI)
        .max_results(100)
        .status(ac::types::CodeInterpreterSessionStatus::Ready)
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|s| s.session_id().to_string())
        .collect()
}

#[tokio::test]
async fn throttling_is_retried_and_the_call_succeeds() {
    let s = Server::start_on(
        Backend::AgentCore,
        &[],
        &[],
        &["--fault", "executeCode:throttle:2"],
    )
    .await;
    let r = s.py("print(6 * 7)").await;
    assert_eq!(r["stdout"], "42\n", "{r}");
    assert_eq!(r["success"], true);
}

#[tokio::test]
async fn a_cut_stream_is_a_clear_error_and_the_code_ran_once() {
    let s = Server::start_on(
        Backend::AgentCore,
        &[],
        &[],
        &["--fault", "executeCode:cut:1"],
    )
    .await;
    let msg = s
        .err(
            "execute_code",
            json!({"code": "open('runs.log', 'a').write('ran\\n')"}),
        )
        .await;
    assert!(msg.contains("not sent again"), "{msg}");
    assert!(msg.contains("at most once"), "{msg}");
    // Give a run that was (wrongly) repeated time to land, then count.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = s.sh("wc -l < runs.log").await;
    assert_eq!(r["stdout"], "1\n", "the code must run exactly once: {r}");
}

#[tokio::test]
async fn an_expired_session_says_to_start_a_new_one() {
    let s = Server::start_on(Backend::AgentCore, &["--session-timeout", "2"], &[], &[]).await;
    let sid = s.ok("start_session", json!({})).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok("execute_code", json!({"session_id": sid, "code": "x = 1"}))
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let msg = s
        .err("execute_code", json!({"session_id": sid, "code": "x"}))
        .await;
    assert!(msg.contains("has ended"), "{msg}");
    assert!(msg.contains("start_session"), "{msg}");
    // The default session is replaced, with a note.
    s.py("y = 2").await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let r = s.py("print('fresh')").await;
    assert_eq!(r["stdout"], "fresh\n", "{r}");
    assert!(
        r["notes"].to_string().contains("new one"),
        "the caller is told the default session was replaced: {r}"
    );
}

#[tokio::test]
async fn sessions_started_by_the_server_are_stopped_when_the_client_leaves() {
    let s = Server::start_on(Backend::AgentCore, &[], &[], &[]).await;
    let e = s.emulator.as_ref().unwrap();
    let c = sdk(e);
    // A session started outside the server, adopted by passing its id.
    let theirs = callers_session(&c).await;
    let r = s
        .ok(
            "execute_code",
            json!({"session_id": theirs, "code": "print('adopted')"}),
        )
        .await;
    assert_eq!(r["stdout"], "adopted\n", "{r}");
    s.py("1").await;
    s.ok("start_session", json!({})).await;
    assert_eq!(ready_sessions(&c).await.len(), 3);

    let Server {
        client, emulator, ..
    } = s;
    client.cancel().await.unwrap();
    let c = sdk(emulator.as_ref().unwrap());
    let mut ready = ready_sessions(&c).await;
    for _ in 0..50 {
        if ready.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        ready = ready_sessions(&c).await;
    }
    assert_eq!(
        ready,
        vec![theirs],
        "only the caller's own session may be left READY"
    );
}

#[tokio::test]
async fn an_unknown_or_malformed_session_id_is_refused() {
    let s = Server::start_on(Backend::AgentCore, &[], &[], &[]).await;
    let msg = s
        .err(
            "execute_code",
            json!({"session_id": "01NOSUCHSESSION0000000000", "code": "1"}),
        )
        .await;
    assert!(msg.contains("start_session"), "{msg}");
    let msg = s
        .err(
            "execute_code",
            json!({"session_id": "../../x", "code": "1"}),
        )
        .await;
    assert!(msg.contains("Unknown session"), "{msg}");
}

#[tokio::test]
async fn a_timeout_stops_waiting_and_says_the_code_may_still_run() {
    let s = Server::start_on(Backend::AgentCore, &[], &[], &[]).await;
    let started = std::time::Instant::now();
    let r = s
        .ok(
            "execute_code",
            json!({"code": "import time\ntime.sleep(3)", "timeout_seconds": 1}),
        )
        .await;
    assert!(started.elapsed().as_secs_f64() < 2.5);
    assert_eq!(r["limit"]["limit"], "wall_time", "{r}");
    assert_eq!(r["limit"]["action"], "abandoned", "{r}");
    assert_eq!(r["success"], false);
}

#[tokio::test]
async fn start_up_loads_no_aws_configuration() {
    // With no region anywhere, the server still starts and lists its tools;
    // the first session says what is missing.
    let s = Server::start_on(
        Backend::Local,
        &[],
        &[
            ("CODE_INTERPRETER_BACKEND", "agentcore"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_REGION", ""),
            ("AWS_DEFAULT_REGION", ""),
            ("AWS_PROFILE", ""),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        &[],
    )
    .await;
    let tools = s.client.list_all_tools().await.unwrap();
    assert!(tools.len() >= 7);
    let msg = s.err("execute_code", json!({"code": "1"})).await;
    assert!(msg.contains("region"), "{msg}");
}

#[tokio::test]
async fn doctor_checks_the_agentcore_backend_end_to_end() {
    let root = tempfile::tempdir().unwrap();
    let e = Emulator::start(root.path(), &[]);
    let out = std::process::Command::new(server_bin())
        .args(["doctor", "--backend", "agentcore", "--endpoint-url", &e.url])
        .envs(e.server_env())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("printed 42"), "{text}");
    assert!(text.contains("the agentcore backend is ready"), "{text}");
    // The doctor's session is gone afterwards.
    assert!(ready_sessions(&sdk(&e)).await.is_empty());
}

#[tokio::test]
async fn a_start_whose_answer_is_lost_is_retried_into_the_same_session() {
    // The emulator starts the session, then cuts the response: the retry
    // carries the same client token, so it gets that session back instead
    // of starting a second one that nobody would stop.
    let s = Server::start_on(Backend::AgentCore, &[], &[], &["--fault", "start:cut:1"]).await;
    let sid = s.ok("start_session", json!({})).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let ready = ready_sessions(&sdk(s.emulator.as_ref().unwrap())).await;
    assert_eq!(ready, vec![sid.clone()], "exactly one session was started");
    let r = s
        .ok(
            "execute_code",
            json!({"session_id": sid, "code": "print(1)"}),
        )
        .await;
    assert_eq!(r["stdout"], "1\n", "{r}");
}

#[tokio::test]
async fn a_background_task_past_its_timeout_is_stopped_and_says_so() {
    let s = Server::on(Backend::AgentCore).await;
    let started = std::time::Instant::now();
    let r = s
        .ok(
            "execute_command",
            json!({"command": "echo begun; sleep 30", "background": true, "timeout_seconds": 1}),
        )
        .await;
    let task_id = r["task_id"].as_str().unwrap().to_string();
    let mut done = None;
    for _ in 0..100 {
        let g = s.ok("get_task", json!({"task_id": task_id})).await;
        if g["status"] == "done" {
            done = Some(g);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let g = done.expect("the task ends at its timeout");
    assert!(started.elapsed().as_secs() < 8, "{:?}", started.elapsed());
    let result = &g["result"];
    assert_eq!(result["limit"]["limit"], "wall_time", "{g}");
    assert_eq!(result["limit"]["action"], "stopped", "{g}");
    assert_eq!(result["success"], false, "{g}");
    assert!(result["exit_code"].is_null(), "{g}");
}

#[tokio::test]
async fn an_adopted_session_let_go_when_idle_is_adopted_again() {
    let s = Server::start_on(Backend::AgentCore, &["--idle-timeout", "1"], &[], &[]).await;
    let c = sdk(s.emulator.as_ref().unwrap());
    let theirs = callers_session(&c).await;
    s.ok(
        "execute_code",
        json!({"session_id": theirs, "code": "v = 'theirs'"}),
    )
    .await;
    // Past the idle timeout the server lets it go (without stopping it)...
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(ready_sessions(&c).await, vec![theirs.clone()]);
    // ... and naming it again adopts it again, state and all.
    let r = s
        .ok(
            "execute_code",
            json!({"session_id": theirs, "code": "print(v)"}),
        )
        .await;
    assert_eq!(r["stdout"], "theirs\n", "{r}");
}
