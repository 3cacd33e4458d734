//! An offline emulator of the AgentCore Code Interpreter data-plane API
//! (`code-interpreter-mcp emulator`), served over HTTP on top of the embedded
//! local backend.
//!
//! It speaks the service's wire protocol (restJson1, the same paths, JSON
//! field names, ISO-8601 timestamps and event-stream framing), so the AWS
//! SDKs (boto3, the Rust SDK) talk to it unchanged with `endpoint_url` set
//! to the URL it prints. Each session is a local backend session, sandboxed
//! like any other.
//!
//! **For loopback development and tests only.** It accepts any
//! `Authorization`/SigV4 signature and any credentials: it is not a security
//! boundary. Anyone who can reach the port can run code in its sessions.
//!
//! Operations:
//! - `PUT /code-interpreters/{id}/sessions/start`: `name`, `sessionTimeoutSeconds`
//!   (1..=28800, default 900), `clientToken` (a repeated token returns the same
//!   session). `certificates`/`filesystemConfigurations` are accepted and ignored.
//! - `POST /code-interpreters/{id}/tools/invoke`: see [`invoke`].
//! - `PUT /code-interpreters/{id}/sessions/stop?sessionId=`: stops a READY
//!   session. Stopping a TERMINATED or unknown session is a 404
//!   ResourceNotFoundException, except a retry with the same `clientToken`
//!   as the stop that ended it, which gets the same answer again.
//! - `GET /code-interpreters/{id}/sessions/get?sessionId=`: READY or TERMINATED.
//! - `POST /code-interpreters/{id}/sessions/list`: newest first, `maxResults`
//!   1..=100 (default 10), `nextToken`, `status`.
//!
//! Sessions belong to the interpreter id they were started on (any id of a
//! sane shape is accepted: `aws.codeinterpreter.v1` or a custom one); another
//! id does not see them (404). A session ends when stopped or when its
//! `sessionTimeoutSeconds` pass (busy or not); its metadata stays visible to
//! get and list, as TERMINATED, for an hour. At most [`MAX_SESSIONS`] are
//! READY at once (ServiceQuotaExceededException beyond). Request bodies are
//! capped at 100 MB, the service's payload limit.
//!
//! Errors before a response starts are HTTP errors with the service's status
//! codes, an `x-amzn-errortype` header and a `{"message"}` body; errors while
//! an invocation runs are exception frames in its event stream.
//!
//! On SIGTERM or SIGINT every session is stopped (processes killed,
//! directories removed) before the process exits.

mod faults;
mod invoke;
mod wire;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::backend::local::LocalBackend;
use crate::backend::{Backend, Session, SessionOptions};
use crate::cli::{EmulatorArgs, SandboxMode};
use faults::Faults;
use invoke::Task;
use wire::{ApiError, ErrorKind, iso8601, json_response};

/// Most sessions READY at once.
pub const MAX_SESSIONS: usize = 64;
/// Largest request body (the service's payload limit is 100 MB).
const MAX_BODY: usize = 100 * 1024 * 1024;
/// Stdout and stderr returned per call: the service returns full output.
const OUTPUT_LIMIT: usize = 10 * 1024 * 1024;
/// Largest file readFiles returns.
const MAX_READ: u64 = 64 * 1024 * 1024;
/// How long a TERMINATED session stays visible to get and list.
const KEEP_TERMINATED: Duration = Duration::from_secs(3600);
/// Most TERMINATED sessions kept (the oldest go first).
const MAX_TERMINATED: usize = 1000;
/// Time limits of the backend's own work.
const START_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the emulator until SIGTERM or SIGINT.
pub async fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    let faults = Faults::parse(&args.faults).map_err(anyhow::Error::msg)?;
    let mut cfg = args.local.local_config(OUTPUT_LIMIT);
    cfg.max_read_bytes = MAX_READ;
    // One answer carries at most the service's payload size.
    cfg.max_read_total = MAX_BODY as u64;
    cfg.max_list_entries = 10_000;
    let local = LocalBackend::new(cfg)?;
    local.prewarm();
    if args.local.sandbox == SandboxMode::None {
        tracing::warn!(
            "--sandbox none: session code runs UNCONFINED, as this user, with full access to this machine"
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let url = format!("http://{shown}");
    {
        // The URL is the one line this command writes to stdout.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{url}")?;
        out.flush()?;
    }
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the emulator accepts any credentials; listening beyond loopback lets anyone who can reach it run code");
    }
    if !faults.is_empty() {
        tracing::warn!(faults = ?args.faults, "fault injection is on");
    }
    tracing::info!(%url, "AgentCore Code Interpreter emulator listening (loopback development only: any credentials are accepted)");

    let shutdown = CancellationToken::new();
    let emu = Arc::new(Emulator {
        backend: Arc::new(local),
        sessions: Mutex::new(HashMap::new()),
        starting: AtomicUsize::new(0),
        ids: wire::UlidGen::default(),
        faults,
    });
    tokio::spawn(emu.clone().reap_forever(shutdown.clone()));

    let mut app = router(emu.clone());
    if addr.ip().is_loopback() {
        app = app.layer(axum::middleware::from_fn(loopback_host_only));
    }
    // Small frames go out at once: without TCP_NODELAY, Nagle and the
    // client's delayed ACK add about 40 ms to every streamed answer.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
    });
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .into_future(),
    );

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = sigint.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
    let n = emu.stop_all().await;
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!("server: {e}"),
        Ok(Err(e)) => tracing::warn!("server task: {e}"),
        Err(_) => tracing::warn!("open connections did not close within 5 s; exiting anyway"),
    }
    tracing::info!(sessions = n, "stopped");
    Ok(())
}

fn router(emu: Arc<Emulator>) -> Router {
    Router::new()
        .route("/code-interpreters/{id}/sessions/start", put(start))
        .route("/code-interpreters/{id}/sessions/stop", put(stop))
        .route("/code-interpreters/{id}/sessions/get", get(get_session))
        .route("/code-interpreters/{id}/sessions/list", post(list))
        .route("/code-interpreters/{id}/tools/invoke", post(invoke::invoke))
        .fallback(|| async {
            ApiError::new(
                ErrorKind::ResourceNotFound,
                "Unknown operation: the emulator serves the Code Interpreter data-plane paths under /code-interpreters/{id}/",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(add_request_id))
        .with_state(emu)
}

/// On a loopback listener, answers only requests addressed to a loopback
/// host: a web page that points a name it controls at 127.0.0.1 (DNS
/// rebinding) could otherwise drive the emulator from a browser.
async fn loopback_host_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if is_loopback_host(host) {
        next.run(req).await
    } else {
        ApiError::new(
            ErrorKind::AccessDenied,
            format!(
                "Host {host:?} is not a loopback address: the emulator answers only requests addressed to 127.0.0.1, ::1 or localhost"
            ),
        )
        .into_response()
    }
}

/// `127.0.0.1:8900`, `[::1]:8900`, `localhost` and the like.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn add_request_id(mut r: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&wire::request_id()) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    r
}

pub(crate) struct Emulator {
    backend: Arc<dyn Backend>,
    /// Every session, READY or TERMINATED, by session id.
    sessions: Mutex<HashMap<String, Arc<EmuSession>>>,
    /// Sessions being started (they count against the cap).
    starting: AtomicUsize,
    ids: wire::UlidGen,
    faults: Faults,
}

/// One emulated session.
pub(crate) struct EmuSession {
    ident: String,
    id: String,
    name: Option<String>,
    client_token: Option<String>,
    created_at: SystemTime,
    timeout_secs: u64,
    deadline: Instant,
    /// Cancelled when the session ends: ends its calls and tasks.
    cancel: CancellationToken,
    inner: Mutex<Inner>,
}

struct Inner {
    /// The local session while READY.
    backend: Option<Arc<dyn Session>>,
    terminated_at: Option<Instant>,
    /// The clientToken of the stop that ended it (a retry gets the same answer).
    stop_token: Option<String>,
    last_updated: SystemTime,
    tasks: HashMap<String, Arc<Task>>,
}

impl EmuSession {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn status(&self) -> &'static str {
        if self.lock().backend.is_some() {
            "READY"
        } else {
            "TERMINATED"
        }
    }

    /// The local session, or 404 when the session has ended.
    pub(crate) fn live(&self) -> Result<Arc<dyn Session>, ApiError> {
        self.lock().backend.clone().ok_or_else(|| {
            ApiError::not_found(format!(
                "Session {} is terminated; start a new session",
                self.id
            ))
        })
    }

    /// Marks the session TERMINATED and ends its calls; returns the local
    /// session to stop (None when it had already ended).
    fn terminate(&self, stop_token: Option<String>) -> Option<Arc<dyn Session>> {
        let mut inner = self.lock();
        let backend = inner.backend.take()?;
        inner.terminated_at = Some(Instant::now());
        inner.stop_token = stop_token;
        inner.last_updated = SystemTime::now();
        drop(inner);
        self.cancel.cancel();
        Some(backend)
    }
}

async fn stop_backend(id: &str, s: Arc<dyn Session>) {
    if tokio::time::timeout(STOP_TIMEOUT, s.stop()).await.is_err() {
        tracing::warn!(session = id, "stopping the local session took over 30 s");
    }
}

impl Emulator {
    /// A session of interpreter `ident`, READY or TERMINATED; 404 otherwise.
    pub(crate) fn find(&self, ident: &str, id: &str) -> Result<Arc<EmuSession>, ApiError> {
        let found = self
            .sessions
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .filter(|s| s.ident == ident);
        found.ok_or_else(|| {
            ApiError::not_found(format!(
                "Session {id} not found for code interpreter {ident}"
            ))
        })
    }

    fn all(&self) -> Vec<Arc<EmuSession>> {
        self.sessions
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    async fn reap_forever(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = Instant::now();
            for s in self.all() {
                if s.deadline <= now
                    && let Some(b) = s.terminate(None)
                {
                    tracing::info!(session = %s.id, timeout_s = s.timeout_secs, "session timed out");
                    let id = s.id.clone();
                    tokio::spawn(async move { stop_backend(&id, b).await });
                }
            }
            self.prune(now);
        }
    }

    /// Forgets TERMINATED sessions older than [`KEEP_TERMINATED`], and the
    /// oldest beyond [`MAX_TERMINATED`].
    fn prune(&self, now: Instant) {
        let Ok(mut map) = self.sessions.lock() else {
            return;
        };
        let mut ended: Vec<(Instant, String)> = map
            .values()
            .filter_map(|s| s.lock().terminated_at.map(|t| (t, s.id.clone())))
            .collect();
        ended.sort();
        let excess = ended.len().saturating_sub(MAX_TERMINATED);
        for (i, (t, id)) in ended.iter().enumerate() {
            if i < excess || now.duration_since(*t) > KEEP_TERMINATED {
                map.remove(id);
            }
        }
    }

    /// Stops every READY session; returns how many there were.
    async fn stop_all(&self) -> usize {
        let live: Vec<(String, Arc<dyn Session>)> = self
            .all()
            .iter()
            .filter_map(|s| s.terminate(None).map(|b| (s.id.clone(), b)))
            .collect();
        let n = live.len();
        let all = futures::future::join_all(live.into_iter().map(|(id, b)| async move {
            stop_backend(&id, b).await;
        }));
        if tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .is_err()
        {
            tracing::warn!("stopping sessions took longer than 10 s; exiting anyway");
        }
        n
    }
}

/// The interpreter id from the path, checked.
pub(crate) fn identifier(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::validation(format!("Bad path: {e}")))?;
    if !wire::valid_identifier(&id) {
        return Err(ApiError::validation(format!(
            "codeInterpreterIdentifier {id:?} is not valid: use aws.codeinterpreter.v1 or the id of a code interpreter (letters, digits and . _ - : /, at most 256)"
        )));
    }
    Ok(id)
}

/// The JSON body as `T`; an empty body reads as `{}`.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => ApiError::validation(format!(
            "The request body is too large or could not be read (at most {} MB): {e}",
            MAX_BODY >> 20
        )),
        other => ApiError::validation(format!("The request body could not be read: {other}")),
    })?;
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &body
    };
    serde_json::from_slice(body).map_err(|e| {
        ApiError::cannot_parse(format!(
            "The request body is not valid JSON of the expected shape: {e}"
        ))
    })
}

/// The `sessionId` query parameter, checked.
fn session_id_param(
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<String, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::validation(format!("Bad query string: {e}")))?;
    let id = q
        .get("sessionId")
        .ok_or_else(|| ApiError::validation("The sessionId query parameter is required"))?;
    check_session_id(id)?;
    Ok(id.clone())
}

pub(crate) fn check_session_id(id: &str) -> Result<(), ApiError> {
    if wire::valid_session_id(id) {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "sessionId {id:?} is not valid: it must match [0-9a-zA-Z]{{1,40}}"
        )))
    }
}

/// Applies the faults of `op`: sleeps, and returns the injected error or
/// whether to cut the response.
pub(crate) async fn faults_for(emu: &Emulator, op: &str) -> Result<bool, ApiError> {
    let applied = emu.faults.take(op);
    if !applied.delay.is_zero() {
        tokio::time::sleep(applied.delay).await;
    }
    match applied.error {
        Some(e) => Err(e),
        None => Ok(applied.cut),
    }
}

fn respond(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartRequest {
    name: Option<String>,
    session_timeout_seconds: Option<i64>,
    client_token: Option<String>,
    certificates: Option<Value>,
    filesystem_configurations: Option<Value>,
}

fn check_client_token(t: &Option<String>) -> Result<(), ApiError> {
    match t {
        Some(t) if !(33..=256).contains(&t.len()) => Err(ApiError::validation(format!(
            "clientToken must be 33 to 256 characters long (got {})",
            t.len()
        ))),
        _ => Ok(()),
    }
}

async fn start(
    State(emu): State<Arc<Emulator>>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(start_inner(&emu, path, body).await)
}

fn start_response(s: &EmuSession, cut: bool) -> Response {
    json_response(
        &json!({
            "codeInterpreterIdentifier": s.ident,
            "sessionId": s.id,
            "createdAt": iso8601(s.created_at),
        }),
        cut,
    )
}

async fn start_inner(
    emu: &Arc<Emulator>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let ident = identifier(path)?;
    let req: StartRequest = json_body(body)?;
    if let Some(n) = &req.name
        && !(1..=100).contains(&n.chars().count())
    {
        return Err(ApiError::validation(
            "name must be 1 to 100 characters long",
        ));
    }
    let timeout_secs = req.session_timeout_seconds.unwrap_or(900);
    if !(1..=28_800).contains(&timeout_secs) {
        return Err(ApiError::validation(format!(
            "sessionTimeoutSeconds must be between 1 and 28800 (got {timeout_secs})"
        )));
    }
    check_client_token(&req.client_token)?;
    if req.certificates.is_some() || req.filesystem_configurations.is_some() {
        tracing::warn!("certificates and filesystemConfigurations are ignored by the emulator");
    }
    let cut = faults_for(emu, "start").await?;

    // A repeated clientToken gets the session it started.
    if let Some(token) = &req.client_token {
        let same = emu
            .all()
            .into_iter()
            .find(|s| s.ident == ident && s.client_token.as_deref() == Some(token.as_str()));
        if let Some(s) = same {
            if s.name != req.name || s.timeout_secs != timeout_secs as u64 {
                return Err(ApiError {
                    reason: "IdempotentParameterMismatchException",
                    ..ApiError::validation(
                        "clientToken was already used for a session started with other parameters",
                    )
                });
            }
            return Ok(start_response(&s, cut));
        }
    }

    // Reserve a place under the cap.
    let live = emu.all().iter().filter(|s| s.status() == "READY").count();
    let starting = emu.starting.fetch_add(1, Ordering::AcqRel);
    struct Release<'a>(&'a AtomicUsize);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let _release = Release(&emu.starting);
    if live + starting >= MAX_SESSIONS {
        return Err(ApiError::new(
            ErrorKind::ServiceQuotaExceeded,
            format!(
                "At most {MAX_SESSIONS} sessions can be active at once; stop one (StopCodeInterpreterSession) and retry"
            ),
        ));
    }
    let opts = SessionOptions {
        name: req.name.clone(),
    };
    let backend = match tokio::time::timeout(START_TIMEOUT, emu.backend.start_session(opts)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            tracing::error!("starting a local session failed: {e}");
            return Err(ApiError::internal(format!(
                "The session could not be started: {}",
                e.tool_message()
            )));
        }
        Err(_) => {
            return Err(ApiError::internal(
                "The session could not be started within 120 s",
            ));
        }
    };
    let now = SystemTime::now();
    let s = Arc::new(EmuSession {
        ident: ident.clone(),
        id: emu.ids.next(),
        name: req.name,
        client_token: req.client_token,
        created_at: now,
        timeout_secs: timeout_secs as u64,
        deadline: Instant::now() + Duration::from_secs(timeout_secs as u64),
        cancel: CancellationToken::new(),
        inner: Mutex::new(Inner {
            backend: Some(backend.clone()),
            terminated_at: None,
            stop_token: None,
            last_updated: now,
            tasks: HashMap::new(),
        }),
    });
    let inserted = match emu.sessions.lock() {
        Ok(mut m) => {
            m.insert(s.id.clone(), s.clone());
            true
        }
        Err(_) => false,
    };
    if !inserted {
        stop_backend(&s.id, backend).await;
        return Err(ApiError::internal("session registry unavailable"));
    }
    tracing::info!(session = %s.id, local = backend.id(), interpreter = %ident, timeout_s = timeout_secs, "session started");
    Ok(start_response(&s, cut))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopRequest {
    client_token: Option<String>,
}

async fn stop(
    State(emu): State<Arc<Emulator>>,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        async {
            let ident = identifier(path)?;
            let id = session_id_param(q)?;
            let req: StopRequest = json_body(body)?;
            check_client_token(&req.client_token)?;
            let cut = faults_for(&emu, "stop").await?;
            let s = emu.find(&ident, &id)?;
            match s.terminate(req.client_token.clone()) {
                Some(b) => {
                    stop_backend(&s.id, b).await;
                    tracing::info!(session = %s.id, "session stopped");
                }
                None => {
                    let inner = s.lock();
                    let retry = req.client_token.is_some() && inner.stop_token == req.client_token;
                    if !retry {
                        return Err(ApiError::not_found(format!(
                            "Session {id} is already terminated"
                        )));
                    }
                }
            }
            let last = s.lock().last_updated;
            Ok(json_response(
                &json!({
                    "codeInterpreterIdentifier": s.ident,
                    "sessionId": s.id,
                    "lastUpdatedAt": iso8601(last),
                }),
                cut,
            ))
        }
        .await,
    )
}

async fn get_session(
    State(emu): State<Arc<Emulator>>,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    respond(
        async {
            let ident = identifier(path)?;
            let id = session_id_param(q)?;
            let cut = faults_for(&emu, "get").await?;
            let s = emu.find(&ident, &id)?;
            let mut v = json!({
                "codeInterpreterIdentifier": s.ident,
                "sessionId": s.id,
                "createdAt": iso8601(s.created_at),
                "sessionTimeoutSeconds": s.timeout_secs,
                "status": s.status(),
            });
            if let Some(n) = &s.name {
                v["name"] = json!(n);
            }
            Ok(json_response(&v, cut))
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListRequest {
    max_results: Option<i64>,
    next_token: Option<String>,
    status: Option<String>,
}

async fn list(
    State(emu): State<Arc<Emulator>>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        async {
            let ident = identifier(path)?;
            let req: ListRequest = json_body(body)?;
            let max = req.max_results.unwrap_or(10);
            if !(1..=100).contains(&max) {
                return Err(ApiError::validation(format!(
                    "maxResults must be between 1 and 100 (got {max})"
                )));
            }
            if let Some(st) = &req.status
                && st != "READY"
                && st != "TERMINATED"
            {
                return Err(ApiError::validation(format!(
                    "status must be READY or TERMINATED (got {st:?})"
                )));
            }
            // The token is the id of the last item of the previous page.
            if let Some(t) = &req.next_token
                && !wire::valid_session_id(t)
            {
                return Err(ApiError::validation("nextToken is not valid"));
            }
            let cut = faults_for(&emu, "list").await?;
            let mut all: Vec<(Arc<EmuSession>, &'static str)> = emu
                .all()
                .into_iter()
                .filter(|s| s.ident == ident)
                .map(|s| {
                    let st = s.status();
                    (s, st)
                })
                .filter(|(_, st)| req.status.as_deref().is_none_or(|want| want == *st))
                .filter(|(s, _)| req.next_token.as_deref().is_none_or(|t| s.id.as_str() < t))
                .collect();
            // Ids are ULIDs: descending id is newest first.
            all.sort_by(|a, b| b.0.id.cmp(&a.0.id));
            let more = all.len() > max as usize;
            all.truncate(max as usize);
            let items: Vec<Value> = all
                .iter()
                .map(|(s, st)| {
                    let mut v = json!({
                        "codeInterpreterIdentifier": s.ident,
                        "sessionId": s.id,
                        "status": st,
                        "createdAt": iso8601(s.created_at),
                        "lastUpdatedAt": iso8601(s.lock().last_updated),
                    });
                    if let Some(n) = &s.name {
                        v["name"] = json!(n);
                    }
                    v
                })
                .collect();
            let mut v = json!({ "items": items });
            if more && let Some((last, _)) = all.last() {
                v["nextToken"] = json!(last.id);
            }
            Ok(json_response(&v, cut))
        }
        .await,
    )
}
