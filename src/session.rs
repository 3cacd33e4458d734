//! The session registry, above any backend: ids, the connection's default
//! session, idle and maximum lifetimes, and stopping everything on shutdown.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::{Backend, Session, SessionOptions};
use crate::error::Error;

/// How many ended session ids are remembered, to explain why they are gone.
const REMEMBER_ENDED: usize = 256;

#[derive(Debug, Clone)]
pub struct SessionLimits {
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    pub max_sessions: usize,
}

struct Entry {
    session: Arc<dyn Session>,
    created: Instant,
    last_used: Instant,
    in_flight: usize,
}

#[derive(Default)]
struct Inner {
    live: HashMap<String, Entry>,
    default_id: Option<String>,
    /// Why recently ended sessions ended, newest last.
    ended: VecDeque<(String, String)>,
    shut_down: bool,
}

pub struct Sessions {
    backend: Arc<dyn Backend>,
    limits: SessionLimits,
    inner: Mutex<Inner>,
    /// Serialises creation of the default session.
    default_lock: tokio::sync::Mutex<()>,
    /// Stops running in the background (expired or lost sessions), which
    /// shutdown waits for.
    stopping: Mutex<tokio::task::JoinSet<()>>,
}

/// A session in use by one call; the session counts as busy (never idle)
/// until the lease is dropped.
pub struct Lease {
    pub session: Arc<dyn Session>,
    /// Things the caller should be told (e.g. the default session was renewed).
    pub notes: Vec<String>,
    registry: Arc<Sessions>,
}

impl Lease {
    /// Passes a backend result through; a session the backend reports as
    /// gone is dropped from the registry.
    pub fn seen<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        if let Err(Error::SessionGone(_)) = &r {
            self.registry.lost(self.session.id());
        }
        r
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.registry.inner.lock()
            && let Some(e) = inner.live.get_mut(self.session.id())
        {
            e.in_flight = e.in_flight.saturating_sub(1);
            e.last_used = Instant::now();
        }
    }
}

/// What `start_session` reports.
pub struct Started {
    pub session_id: String,
}

impl Sessions {
    pub fn new(backend: Arc<dyn Backend>, limits: SessionLimits) -> Arc<Self> {
        Arc::new(Self {
            backend,
            limits,
            inner: Mutex::new(Inner::default()),
            default_lock: tokio::sync::Mutex::new(()),
            stopping: Mutex::new(tokio::task::JoinSet::new()),
        })
    }

    pub fn backend_kind(&self) -> &'static str {
        self.backend.kind()
    }

    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-update; the
        // map itself is still consistent enough to keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn start(self: &Arc<Self>, opts: SessionOptions) -> Result<Started, Error> {
        {
            let inner = self.lock();
            if inner.shut_down {
                return Err(Error::backend("the server is shutting down"));
            }
            if inner.live.len() >= self.limits.max_sessions {
                return Err(Error::Limit(format!(
                    "{} sessions are already running, the most this server allows; stop one with stop_session first",
                    inner.live.len()
                )));
            }
        }
        let session = self.backend.start_session(opts).await?;
        let id = session.id().to_string();
        if let Err(e) = self.register(session.clone()) {
            let _ = session.stop().await;
            return Err(e);
        }
        Ok(Started { session_id: id })
    }

    /// Adds a session to the registry, unless the server is shutting down
    /// or is at its session limit.
    fn register(&self, session: Arc<dyn Session>) -> Result<(), Error> {
        let mut inner = self.lock();
        if inner.shut_down {
            return Err(Error::backend("the server is shutting down"));
        }
        let id = session.id().to_string();
        if inner.live.contains_key(&id) {
            return Ok(());
        }
        if inner.live.len() >= self.limits.max_sessions {
            return Err(Error::Limit(format!(
                "{} sessions are already running, the most this server allows; stop one with stop_session first",
                inner.live.len()
            )));
        }
        let now = Instant::now();
        inner.live.insert(
            id,
            Entry {
                session,
                created: now,
                last_used: now,
                in_flight: 0,
            },
        );
        Ok(())
    }

    /// Stops `session` in the background; [`Self::shutdown`] waits for it.
    fn stop_in_background(&self, session: Arc<dyn Session>) {
        let mut set = self.stopping.lock().unwrap_or_else(|p| p.into_inner());
        while set.try_join_next().is_some() {}
        set.spawn(async move {
            let _ = session.stop().await;
        });
    }

    /// The session a call runs in: `id`, or the default session (started on
    /// first use, and again if it ended).
    pub async fn acquire(self: &Arc<Self>, id: Option<&str>) -> Result<Lease, Error> {
        match id.map(str::trim).filter(|s| !s.is_empty()) {
            Some(id) => match self.lease(id, Vec::new()) {
                Ok(l) => Ok(l),
                Err(e) if self.ended_reason(id).is_some() => Err(e),
                Err(e) => match self.backend.adopt(id).await? {
                    Some(session) => self.adopted(session),
                    None => Err(e),
                },
            },
            None => {
                let _guard = self.default_lock.lock().await;
                let mut notes = Vec::new();
                let current = self.lock().default_id.clone();
                if let Some(id) = current {
                    match self.lease(&id, Vec::new()) {
                        Ok(l) => return Ok(l),
                        Err(_) => {
                            let why = self.ended_reason(&id).unwrap_or_else(|| "it ended".into());
                            notes.push(format!(
                                "The previous default session ended ({why}); this call runs in a new one, so earlier variables and files are gone."
                            ));
                        }
                    }
                }
                let started = self.start(SessionOptions::default()).await?;
                self.lock().default_id = Some(started.session_id.clone());
                self.lease(&started.session_id, notes)
            }
        }
    }

    /// Registers a session taken over from outside (see [`Backend::adopt`]).
    fn adopted(self: &Arc<Self>, session: Arc<dyn Session>) -> Result<Lease, Error> {
        let id = session.id().to_string();
        self.register(session)?;
        self.lease(&id, Vec::new())
    }

    /// Forgets a session the backend reports as gone (an AgentCore session
    /// that reached its timeout), so the default session is replaced and
    /// later calls are told why. One this process started is also stopped,
    /// in case the backend was wrong about it (stopping an ended one is
    /// harmless).
    pub fn lost(&self, id: &str) {
        let mut inner = self.lock();
        if let Some(e) = inner.live.remove(id) {
            remember(&mut inner, id, "the backend ended it");
            if e.session.owned() {
                self.stop_in_background(e.session);
            }
        }
    }

    fn lease(self: &Arc<Self>, id: &str, notes: Vec<String>) -> Result<Lease, Error> {
        let mut inner = self.lock();
        // Past its lifetime (for AgentCore, the service's session timeout):
        // expire it now rather than send a call the backend will refuse.
        // (An adopted session's lifetime is its owner's business.)
        if inner.live.get(id).is_some_and(|e| {
            e.session.owned() && e.in_flight == 0 && e.created.elapsed() >= self.limits.max_lifetime
        }) && let Some(e) = inner.live.remove(id)
        {
            let why = format!(
                "it reached the maximum lifetime of {}",
                fmt_duration(self.limits.max_lifetime)
            );
            remember(&mut inner, id, &why);
            self.stop_in_background(e.session);
        }
        if let Some(e) = inner.live.get_mut(id) {
            e.in_flight += 1;
            e.last_used = Instant::now();
            return Ok(Lease {
                session: e.session.clone(),
                notes,
                registry: self.clone(),
            });
        }
        Err(gone(&inner, id))
    }

    fn ended_reason(&self, id: &str) -> Option<String> {
        ended_why(&self.lock(), id).map(str::to_string)
    }

    /// Stops a session (the default one when `id` is None).
    pub async fn stop(&self, id: Option<&str>) -> Result<String, Error> {
        let entry = {
            let mut inner = self.lock();
            let id = match id.map(str::trim).filter(|s| !s.is_empty()) {
                Some(i) => i.to_string(),
                None => match inner.default_id.clone() {
                    Some(i) => i,
                    None => {
                        return Err(Error::SessionGone(
                            "There is no default session to stop (none was started).".into(),
                        ));
                    }
                },
            };
            match inner.live.remove(&id) {
                Some(e) => {
                    remember(&mut inner, &id, "stopped by stop_session");
                    if inner.default_id.as_deref() == Some(id.as_str()) {
                        inner.default_id = None;
                    }
                    (id, e.session)
                }
                None => return Err(gone(&inner, &id)),
            }
        };
        // The session is gone from here either way; a stop that could not
        // be confirmed is reported.
        entry.1.stop().await?;
        Ok(entry.0)
    }

    /// Stops sessions idle past the idle timeout or older than the maximum
    /// lifetime. Returns how many were stopped.
    pub async fn reap(&self) -> usize {
        let now = Instant::now();
        let expired: Vec<(Arc<dyn Session>, String)> = {
            let mut inner = self.lock();
            let ids: Vec<(String, String)> = inner
                .live
                .iter()
                .filter_map(|(id, e)| {
                    if now.duration_since(e.created) >= self.limits.max_lifetime {
                        Some((
                            id.clone(),
                            format!(
                                "it reached the maximum lifetime of {}",
                                fmt_duration(self.limits.max_lifetime)
                            ),
                        ))
                    } else if e.in_flight == 0
                        && now.duration_since(e.last_used) >= self.limits.idle_timeout
                    {
                        Some((
                            id.clone(),
                            format!(
                                "it was idle for more than {}",
                                fmt_duration(self.limits.idle_timeout)
                            ),
                        ))
                    } else {
                        None
                    }
                })
                .collect();
            ids.into_iter()
                .filter_map(|(id, why)| {
                    let e = inner.live.remove(&id)?;
                    // default_id keeps pointing at an expired default
                    // session, so the next call can say what happened. An
                    // adopted session is only let go, not ended: its owner
                    // keeps it, and naming it again adopts it again.
                    if e.session.owned() {
                        remember(&mut inner, &id, &why);
                    }
                    Some((e.session, why))
                })
                .collect()
        };
        let n = expired.len();
        for (s, why) in expired {
            tracing::info!(session = s.id(), reason = %why, owned = s.owned(), "session expired");
            if s.owned() {
                self.stop_in_background(s);
            }
        }
        n
    }

    /// Runs [`Self::reap`] periodically until `shutdown` fires.
    pub async fn reap_forever(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let period = (self.limits.idle_timeout / 4)
            .clamp(Duration::from_millis(200), Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => { self.reap().await; }
            }
        }
    }

    /// Stops every session; later calls fail with a clear error.
    pub async fn shutdown(&self) {
        let all: Vec<Arc<dyn Session>> = {
            let mut inner = self.lock();
            inner.shut_down = true;
            let ids: Vec<String> = inner.live.keys().cloned().collect();
            ids.iter()
                .filter_map(|id| {
                    let e = inner.live.remove(id)?;
                    remember(&mut inner, id, "the server shut down");
                    Some(e.session)
                })
                .collect()
        };
        // Adopted sessions belong to whoever started them: they are left running.
        futures::future::join_all(all.iter().filter(|s| s.owned()).map(|s| s.stop())).await;
        // And the stops already under way (expired or lost sessions).
        let mut stopping =
            std::mem::take(&mut *self.stopping.lock().unwrap_or_else(|p| p.into_inner()));
        while stopping.join_next().await.is_some() {}
    }

    pub fn live_count(&self) -> usize {
        self.lock().live.len()
    }
}

/// Why the session `id` ended, if it did recently.
fn ended_why<'a>(inner: &'a Inner, id: &str) -> Option<&'a str> {
    inner
        .ended
        .iter()
        .rev()
        .find(|(i, _)| i == id)
        .map(|(_, w)| w.as_str())
}

/// The error for a session id that is not live: ended (and why) or unknown.
fn gone(inner: &Inner, id: &str) -> Error {
    let msg = match ended_why(inner, id) {
        Some(why) => format!(
            "Session {id} has ended ({why}). Start a new one with start_session, or omit session_id to use the default session."
        ),
        None => format!(
            "Unknown session {id:?}. Use a session_id returned by start_session, or omit session_id to use the default session."
        ),
    };
    Error::SessionGone(msg)
}

fn remember(inner: &mut Inner, id: &str, why: &str) {
    if inner.ended.len() >= REMEMBER_ENDED {
        inner.ended.pop_front();
    }
    inner.ended.push_back((id.to_string(), why.to_string()));
}

pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}
