//! The Dockerfile cannot be built here (no container engine), so this checks
//! what can be checked without building it: every path it COPYs exists,
//! reaches the build context (.dockerignore) and lands where the workspace
//! expects it; every binary it names is a `[[bin]]` of the workspace; the
//! runtime stage sets only environment variables that the binaries read; and
//! the AgentCore Runtime contract: entry point `code-interpreter-agent serve`
//! on 0.0.0.0:8080, `EXPOSE 8080`, a non-root user. The tests at the end feed
//! it broken Dockerfiles to show that each check can fail.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------- Dockerfile

#[derive(Debug, Clone)]
struct Instr {
    line: usize,
    keyword: String,
    args: String,
}

/// Instructions with their first line number; comments dropped (also inside
/// continuations, as Docker does), `\` continuations joined.
fn parse_dockerfile(text: &str) -> Vec<Instr> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && cur.is_none()) {
            continue;
        }
        let (body, continued) = match trimmed.strip_suffix('\\') {
            Some(b) => (b.trim(), true),
            None => (trimmed, false),
        };
        let entry = cur.get_or_insert_with(|| (i + 1, String::new()));
        if !body.is_empty() {
            if !entry.1.is_empty() {
                entry.1.push(' ');
            }
            entry.1.push_str(body);
        }
        if !continued && let Some((line, s)) = cur.take() {
            let (kw, args) = s.split_once(char::is_whitespace).unwrap_or((&s, ""));
            out.push(Instr {
                line,
                keyword: kw.to_ascii_uppercase(),
                args: args.trim().to_string(),
            });
        }
    }
    out
}

/// Splits shell-form arguments on whitespace, honouring simple quotes.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Exec-form (JSON array) or shell-form arguments.
fn argv(args: &str) -> Vec<String> {
    if args.starts_with('[') {
        serde_json::from_str::<Vec<String>>(args).unwrap_or_default()
    } else {
        words(args)
    }
}

#[derive(Debug)]
struct Stage {
    name: Option<String>,
    image: String,
    line: usize,
    instrs: Vec<Instr>,
}

fn stages(instrs: &[Instr]) -> Vec<Stage> {
    let mut out: Vec<Stage> = Vec::new();
    for i in instrs {
        if i.keyword == "FROM" {
            let w: Vec<String> = words(&i.args)
                .into_iter()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match w.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.clone()),
                _ => None,
            };
            out.push(Stage {
                name,
                image: w.first().cloned().unwrap_or_default(),
                line: i.line,
                instrs: Vec::new(),
            });
        } else if let Some(stage) = out.last_mut() {
            stage.instrs.push(i.clone());
        }
    }
    out
}

#[derive(Debug)]
struct CopyInstr {
    line: usize,
    from: Option<String>,
    sources: Vec<String>,
    dest: String,
    /// The stage's WORKDIR when the COPY runs.
    workdir: String,
}

fn copies(stage: &Stage) -> Vec<Result<CopyInstr, String>> {
    let mut workdir = "/".to_string();
    let mut out = Vec::new();
    for i in &stage.instrs {
        match i.keyword.as_str() {
            "WORKDIR" => {
                let w = i.args.trim().trim_end_matches('/');
                workdir = if w.starts_with('/') {
                    w.to_string()
                } else {
                    format!("{}/{w}", workdir.trim_end_matches('/'))
                };
            }
            "COPY" | "ADD" => {
                let mut from = None;
                let mut rest = i.args.trim();
                while rest.starts_with("--") {
                    let (flag, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    if let Some(f) = flag.strip_prefix("--from=") {
                        from = Some(f.to_string());
                    }
                    rest = tail.trim_start();
                }
                let mut parts = argv(rest);
                match parts.pop() {
                    Some(dest) if !parts.is_empty() => out.push(Ok(CopyInstr {
                        line: i.line,
                        from,
                        sources: parts,
                        dest,
                        workdir: workdir.clone(),
                    })),
                    _ => out.push(Err(format!(
                        "line {}: {} needs a source and a destination",
                        i.line, i.keyword
                    ))),
                }
            }
            _ => {}
        }
    }
    out
}

/// `./a/b/` -> `a/b`; `.` -> ``.
fn norm(p: &str) -> String {
    p.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

// ------------------------------------------------------------- .dockerignore

/// .dockerignore rules in order: (negated, pattern segments).
struct Ignore(Vec<(bool, Vec<String>)>);

impl Ignore {
    fn parse(text: &str) -> Self {
        Ignore(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| {
                    let (neg, pat) = match l.strip_prefix('!') {
                        Some(p) => (true, p.trim()),
                        None => (false, l),
                    };
                    (neg, norm(pat).split('/').map(str::to_string).collect())
                })
                .collect(),
        )
    }

    /// Docker's rule: a path is excluded when the last pattern that matches
    /// it, or one of its parent directories, is not a `!` exception.
    fn excluded(&self, path: &str) -> bool {
        let path = norm(path);
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut excluded = false;
        for (neg, pat) in &self.0 {
            let pat: Vec<&str> = pat.iter().map(String::as_str).collect();
            if (1..=segs.len()).any(|n| match_segs(&pat, &segs[..n])) {
                excluded = !neg;
            }
        }
        excluded
    }
}

fn match_segs(pat: &[&str], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => {
            match_segs(rest, path) || (!path.is_empty() && match_segs(pat, &path[1..]))
        }
        Some((p, rest)) => {
            !path.is_empty()
                && glob(p.as_bytes(), path[0].as_bytes())
                && match_segs(rest, &path[1..])
        }
    }
}

/// One path segment against `*`, `?`, `[...]` (ranges, `^`/`!`) and `\`.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|k| glob(rest, &s[k..])),
        Some((b'?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((b'[', rest)) => {
            let Some(end) = rest.iter().position(|&c| c == b']') else {
                return false;
            };
            let (class, after) = (&rest[..end], &rest[end + 1..]);
            let (neg, class) = match class.split_first() {
                Some((b'^' | b'!', c)) => (true, c),
                _ => (false, class),
            };
            let Some(&c) = s.first() else { return false };
            let mut hit = false;
            let mut k = 0;
            while k < class.len() {
                if k + 2 < class.len() && class[k + 1] == b'-' {
                    hit |= class[k] <= c && c <= class[k + 2];
                    k += 3;
                } else {
                    hit |= class[k] == c;
                    k += 1;
                }
            }
            hit != neg && glob(after, &s[1..])
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            s.first() == rest.first() && glob(&rest[1..], &s[1..])
        }
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

// ------------------------------------------------------------------- Cargo

#[derive(Debug, Default)]
struct Manifest {
    package: Option<String>,
    /// (name, path) of each `[[bin]]`; the implicit one when there are none.
    bins: Vec<(String, String)>,
    /// Paths the build reads besides `src/**`: lib, build script, targets.
    paths: Vec<String>,
    members: Vec<String>,
    rust_version: Option<String>,
}

fn toml_str(value: &str) -> Option<String> {
    let v = value.trim();
    let v = v.strip_prefix('"')?;
    Some(v[..v.find('"')?].to_string())
}

/// A line-based reading of the few Cargo.toml keys this test needs.
fn parse_manifest(dir: &Path) -> Manifest {
    let text = read(&dir.join("Cargo.toml"));
    let mut m = Manifest::default();
    let mut section = String::new();
    let mut bin: Option<(Option<String>, Option<String>)> = None;
    let mut members_open = false;
    let flush_bin = |bin: &mut Option<(Option<String>, Option<String>)>, m: &mut Manifest| {
        if let Some((name, path)) = bin.take() {
            let name = name.unwrap_or_default();
            let path = path.unwrap_or_else(|| format!("src/bin/{name}.rs"));
            m.bins.push((name, path));
        }
    };
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or("").trim();
        if members_open {
            m.members.extend(
                line.split(',')
                    .filter_map(|s| toml_str(s.trim().trim_end_matches(']'))),
            );
            members_open = !line.contains(']');
            continue;
        }
        if line.starts_with('[') {
            flush_bin(&mut bin, &mut m);
            section = line.trim_matches(|c| c == '[' || c == ']').to_string();
            if line.starts_with("[[bin]]") {
                bin = Some((None, None));
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match (section.as_str(), key) {
            ("package", "name") => m.package = toml_str(value),
            ("package" | "workspace.package", "rust-version") => m.rust_version = toml_str(value),
            ("package", "build") => m.paths.extend(toml_str(value)),
            ("workspace", "members") => {
                let inner = value.trim_start_matches('[');
                m.members.extend(
                    inner
                        .split(',')
                        .filter_map(|s| toml_str(s.trim().trim_end_matches(']'))),
                );
                members_open = !value.contains(']');
            }
            ("bin", "name") => {
                if let Some(b) = bin.as_mut() {
                    b.0 = toml_str(value);
                }
            }
            ("bin", "path") => {
                if let Some(b) = bin.as_mut() {
                    b.1 = toml_str(value);
                }
            }
            ("lib" | "test" | "bench" | "example", "path") => m.paths.extend(toml_str(value)),
            _ => {}
        }
    }
    flush_bin(&mut bin, &mut m);
    if let Some(pkg) = &m.package {
        if m.bins.is_empty() && dir.join("src/main.rs").exists() {
            m.bins.push((pkg.clone(), "src/main.rs".into()));
        }
        for implicit in ["src/lib.rs", "build.rs"] {
            if dir.join(implicit).exists() {
                m.paths.push(implicit.into());
            }
        }
    }
    m
}

struct Workspace {
    /// Directory of each package, relative to the repository ("" for the root).
    packages: Vec<(String, Manifest)>,
    rust_version: Option<String>,
}

impl Workspace {
    fn load(root: &Path) -> Self {
        let top = parse_manifest(root);
        let rust_version = top.rust_version.clone();
        let mut packages = Vec::new();
        for member in top.members.clone() {
            let rel = norm(&member);
            if !rel.is_empty() {
                packages.push((rel.clone(), parse_manifest(&root.join(&rel))));
            }
        }
        packages.insert(0, (String::new(), top));
        Workspace {
            packages,
            rust_version,
        }
    }

    fn bin_names(&self) -> BTreeSet<String> {
        self.packages
            .iter()
            .flat_map(|(_, m)| m.bins.iter().map(|(n, _)| n.clone()))
            .collect()
    }

    fn package_names(&self) -> BTreeSet<String> {
        self.packages
            .iter()
            .filter_map(|(_, m)| m.package.clone())
            .collect()
    }

    /// Every file `cargo build` of the workspace reads from the repository.
    fn build_inputs(&self, root: &Path) -> Vec<String> {
        let join = |dir: &str, p: &str| norm(&format!("{dir}/{p}"));
        let mut files = vec!["Cargo.toml".to_string(), "Cargo.lock".to_string()];
        for (dir, m) in &self.packages {
            if m.package.is_none() {
                continue;
            }
            files.push(join(dir, "Cargo.toml"));
            files.extend(m.bins.iter().map(|(_, p)| join(dir, p)));
            files.extend(m.paths.iter().map(|p| join(dir, p)));
            for rs in rust_files(&root.join(dir).join("src")) {
                let rel = rs
                    .strip_prefix(root)
                    .unwrap_or(&rs)
                    .to_string_lossy()
                    .into_owned();
                for inc in included_files(&read(&rs)) {
                    let parent = Path::new(&rel).parent().unwrap_or(Path::new(""));
                    files.push(norm(&parent.join(inc).to_string_lossy()));
                }
                files.push(rel);
            }
        }
        files.sort();
        files.dedup();
        files
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// Arguments of `include_str!("…")` and `include_bytes!("…")`.
fn included_files(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for mac in ["include_str!(\"", "include_bytes!(\""] {
        let mut rest = src;
        while let Some(i) = rest.find(mac) {
            rest = &rest[i + mac.len()..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_string());
            }
        }
    }
    out
}

/// Whether some Rust source of the two binaries names `var` as a string
/// literal (clap's `env = "…"`, `std::env::var("…")`).
fn read_by_binaries(root: &Path, var: &str) -> bool {
    let needle = format!("\"{var}\"");
    ["src", "agent/src"]
        .iter()
        .flat_map(|d| rust_files(&root.join(d)))
        .any(|f| read(&f).contains(&needle))
}

/// Words of the form `code-interpreter-…` (binary and package names).
fn named_binaries(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("code-interpreter-") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(tail.len());
        out.push(tail[..end].trim_end_matches('-').to_string());
        rest = &tail[end..];
    }
    out
}

fn version_tuple(v: &str) -> Vec<u64> {
    v.split('.').map_while(|p| p.parse().ok()).collect()
}

// ------------------------------------------------------------------ checks

/// Everything wrong with `dockerfile` (with `dockerignore`) for the
/// repository at `root`; empty when it is fine.
fn check(root: &Path, dockerfile: &str, dockerignore: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let instrs = parse_dockerfile(dockerfile);
    let stages = stages(&instrs);
    let ignore = Ignore::parse(dockerignore);
    let ws = Workspace::load(root);
    let bins = ws.bin_names();
    let known_names: BTreeSet<String> = bins.union(&ws.package_names()).cloned().collect();

    let Some(last) = stages.last() else {
        return vec!["no FROM: not a Dockerfile".into()];
    };

    // The build context keeps build outputs and VCS data out.
    for big in ["target", "target-agent", ".git", ".ci/cache"] {
        if !ignore.excluded(big) {
            problems.push(format!(".dockerignore does not exclude {big}"));
        }
    }

    // COPY from the build context: sources exist, are sent, and land at
    // the same relative path under WORKDIR (the workspace layout).
    let mut in_context: Vec<String> = Vec::new();
    for stage in &stages {
        for c in copies(stage) {
            let c = match c {
                Ok(c) => c,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            if c.from.is_some() {
                continue;
            }
            let dest_abs = if c.dest.starts_with('/') {
                c.dest.clone()
            } else {
                format!("{}/{}", c.workdir.trim_end_matches('/'), c.dest)
            };
            let dest_rel = norm(
                dest_abs
                    .strip_prefix(c.workdir.trim_end_matches('/'))
                    .unwrap_or(&dest_abs),
            );
            let dir_like = c.dest.ends_with('/') || norm(&c.dest).is_empty() || c.sources.len() > 1;
            for src in &c.sources {
                let rel = norm(src);
                if src.contains(['*', '?', '[']) {
                    problems.push(format!(
                        "line {}: COPY {src}: name paths, not patterns",
                        c.line
                    ));
                    continue;
                }
                let path = root.join(&rel);
                if !path.exists() {
                    problems.push(format!("line {}: COPY source {src} does not exist", c.line));
                    continue;
                }
                if ignore.excluded(&rel) {
                    problems.push(format!(
                        "line {}: COPY source {src} is excluded by .dockerignore",
                        c.line
                    ));
                }
                let lands = if path.is_dir() || !dir_like {
                    dest_rel.clone()
                } else {
                    norm(&format!(
                        "{dest_rel}/{}",
                        path.file_name().unwrap_or_default().to_string_lossy()
                    ))
                };
                if lands != rel {
                    problems.push(format!(
                        "line {}: COPY {src} lands at {lands:?} under WORKDIR {}, not at {rel:?}: the workspace layout is lost",
                        c.line, c.workdir
                    ));
                }
                in_context.push(rel);
            }
        }
    }
    for file in ws.build_inputs(root) {
        let covered = in_context
            .iter()
            .any(|s| s.is_empty() || file == *s || file.starts_with(&format!("{s}/")));
        if !covered {
            problems.push(format!(
                "{file} is needed by the build but no COPY brings it in"
            ));
        } else if ignore.excluded(&file) {
            problems.push(format!(
                "{file} is needed by the build but .dockerignore excludes it"
            ));
        }
    }

    // The Rust image is new enough for the crates.
    let build_stage = stages.iter().find(|s| s.image.starts_with("rust:"));
    match (build_stage, &ws.rust_version) {
        (None, _) => problems.push("no build stage FROM rust:…".into()),
        (Some(s), Some(need)) => {
            let tag = s.image.trim_start_matches("rust:");
            let have = version_tuple(tag.split('-').next().unwrap_or(""));
            if have.is_empty() || have < version_tuple(need) {
                problems.push(format!(
                    "line {}: {} is older than the workspace's rust-version {need}",
                    s.line, s.image
                ));
            }
        }
        (Some(_), None) => problems.push("Cargo.toml has no rust-version".into()),
    }
    if stages.len() < 2 {
        problems.push("not a multi-stage build".into());
    }

    // Every binary the file names exists.
    for i in &instrs {
        for name in named_binaries(&i.args) {
            if !known_names.contains(&name) {
                problems.push(format!(
                    "line {}: {name} is not a [[bin]] or package of the workspace ({})",
                    i.line,
                    bins.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }

    // The runtime stage: both binaries installed from a build stage.
    let stage_names: BTreeSet<String> = stages.iter().filter_map(|s| s.name.clone()).collect();
    let mut installed: Vec<(String, String)> = Vec::new();
    for c in copies(last).into_iter().flatten() {
        let Some(from) = &c.from else { continue };
        if !stage_names.contains(from) {
            problems.push(format!(
                "line {}: COPY --from={from}: no such stage",
                c.line
            ));
        }
        let dir_like = c.dest.ends_with('/') || c.sources.len() > 1;
        for src in &c.sources {
            let base = src.rsplit('/').next().unwrap_or(src).to_string();
            let dest = if dir_like {
                format!("{}/{base}", c.dest.trim_end_matches('/'))
            } else {
                c.dest.clone()
            };
            installed.push((base, dest));
        }
    }
    let install_path = |bin: &str| {
        installed
            .iter()
            .find(|(b, _)| b == bin)
            .map(|(_, d)| d.clone())
    };
    for bin in ["code-interpreter-mcp", "code-interpreter-agent"] {
        if install_path(bin).is_none() {
            problems.push(format!(
                "the runtime stage does not COPY --from a build stage {bin}"
            ));
        }
    }

    // Entry point: exec form, `code-interpreter-agent serve`, its flags real,
    // listening on 0.0.0.0 at an exposed port.
    let exposed: Vec<String> = last
        .instrs
        .iter()
        .filter(|i| i.keyword == "EXPOSE")
        .flat_map(|i| words(&i.args))
        .map(|p| p.split('/').next().unwrap_or("").to_string())
        .collect();
    if !exposed.iter().any(|p| p == "8080") {
        problems.push("no EXPOSE 8080 (the AgentCore Runtime HTTP port)".into());
    }
    let agent_cli = read(&root.join("agent/src/cli.rs"));
    match last.instrs.iter().rfind(|i| i.keyword == "ENTRYPOINT") {
        None => problems.push("no ENTRYPOINT".into()),
        Some(e) if !e.args.starts_with('[') => problems.push(format!(
            "line {}: ENTRYPOINT in shell form: the agent would not get SIGTERM; use [\"…\", \"serve\"]",
            e.line
        )),
        Some(e) => {
            let a = argv(&e.args);
            let agent = install_path("code-interpreter-agent");
            let first_ok = a.first().is_some_and(|p| {
                Some(p) == agent.as_ref() || p == "code-interpreter-agent"
            });
            if !first_ok || a.get(1).map(String::as_str) != Some("serve") {
                problems.push(format!(
                    "line {}: ENTRYPOINT is {a:?}, not the installed code-interpreter-agent serve ({agent:?})",
                    e.line
                ));
            }
            let mut it = a.iter().skip(2).peekable();
            while let Some(arg) = it.next() {
                let Some(flag) = arg.strip_prefix("--") else { continue };
                let (flag, inline) = match flag.split_once('=') {
                    Some((f, v)) => (f, Some(v.to_string())),
                    None => (flag, None),
                };
                if !agent_cli.contains(&format!("pub {}:", flag.replace('-', "_"))) {
                    problems.push(format!(
                        "line {}: --{flag} is not a flag of code-interpreter-agent serve",
                        e.line
                    ));
                }
                if flag == "listen" {
                    let value = inline.or_else(|| it.next().cloned()).unwrap_or_default();
                    let (host, port) = value.rsplit_once(':').unwrap_or(("", ""));
                    if host != "0.0.0.0" || !exposed.iter().any(|p| p == port) {
                        problems.push(format!(
                            "line {}: --listen {value}: AgentCore Runtime needs 0.0.0.0 on the exposed port",
                            e.line
                        ));
                    }
                }
            }
        }
    }

    // A non-root user that exists.
    match last.instrs.iter().rfind(|i| i.keyword == "USER") {
        None => problems.push("no USER: the container would run as root".into()),
        Some(u) => {
            let user = u.args.split(':').next().unwrap_or("").trim();
            if user.is_empty() || user == "root" || user == "0" {
                problems.push(format!("line {}: USER {} is root", u.line, u.args));
            }
            let creates = last.instrs.iter().any(|i| {
                let w = words(&i.args);
                i.keyword == "RUN"
                    && w.iter().any(|x| x == "useradd" || x == "adduser")
                    && if user.chars().all(|c| c.is_ascii_digit()) {
                        w.windows(2)
                            .any(|p| (p[0] == "--uid" || p[0] == "-u") && p[1] == user)
                            || w.iter().any(|x| *x == format!("--uid={user}"))
                    } else {
                        w.iter().any(|x| x == user)
                    }
            });
            if !creates {
                problems.push(format!(
                    "line {}: USER {}: no RUN useradd in the runtime stage creates it",
                    u.line, u.args
                ));
            }
        }
    }

    // Environment: names the binaries read, selecting agentcore and Bedrock.
    let mut env: Vec<(String, String, usize)> = Vec::new();
    for i in last.instrs.iter().filter(|i| i.keyword == "ENV") {
        let w = words(&i.args);
        if w.len() >= 2 && !w[0].contains('=') {
            env.push((w[0].clone(), w[1..].join(" "), i.line));
        } else {
            for kv in w {
                let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
                env.push((k.to_string(), v.to_string(), i.line));
            }
        }
    }
    for (name, _, line) in &env {
        if !read_by_binaries(root, name) {
            problems.push(format!(
                "line {line}: ENV {name}: neither binary reads this variable (no \"{name}\" in src/ or agent/src/)"
            ));
        }
    }
    let value = |name: &str| {
        env.iter()
            .find(|(k, _, _)| k == name)
            .map(|(_, v, _)| v.as_str())
    };
    if value("CODE_INTERPRETER_BACKEND") != Some("agentcore") {
        problems.push("ENV CODE_INTERPRETER_BACKEND=agentcore is not set".into());
    }
    if value("CLAUDE_CODE_USE_BEDROCK") != Some("1") {
        problems.push("ENV CLAUDE_CODE_USE_BEDROCK=1 is not set (Claude through Bedrock)".into());
    }
    if let Some(bin) = value("CODE_INTERPRETER_MCP_BIN")
        && Some(bin.to_string()) != install_path("code-interpreter-mcp")
    {
        problems.push(format!(
            "ENV CODE_INTERPRETER_MCP_BIN={bin} is not where code-interpreter-mcp is installed ({:?})",
            install_path("code-interpreter-mcp")
        ));
    }
    if !last
        .instrs
        .iter()
        .any(|i| i.keyword == "RUN" && i.args.contains("ca-certificates"))
    {
        problems.push("the runtime stage does not install ca-certificates".into());
    }
    problems
}

fn repo_problems() -> Vec<String> {
    let root = repo();
    check(
        &root,
        &read(&root.join("Dockerfile")),
        &read(&root.join(".dockerignore")),
    )
}

#[test]
fn dockerfile_refers_only_to_what_exists() {
    let problems = repo_problems();
    assert!(
        problems.is_empty(),
        "Dockerfile:\n  {}",
        problems.join("\n  ")
    );
}

/// The build context (the COPYs, less .dockerignore) is a workspace cargo
/// can load: both packages and their binaries are found in it.
#[test]
fn the_build_context_is_a_loadable_workspace() {
    let root = repo();
    let stages = stages(&parse_dockerfile(&read(&root.join("Dockerfile"))));
    let ignore = Ignore::parse(&read(&root.join(".dockerignore")));
    let ctx = tempfile::tempdir().unwrap();
    fn copy_tree(src: &Path, dst: &Path, rel: &str, ignore: &Ignore) {
        if ignore.excluded(rel) {
            return;
        }
        if src.is_dir() {
            std::fs::create_dir_all(dst).unwrap();
            for e in std::fs::read_dir(src).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                copy_tree(
                    &e.path(),
                    &dst.join(&name),
                    &format!("{rel}/{name}"),
                    ignore,
                );
            }
        } else {
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(src, dst).unwrap();
        }
    }
    for stage in &stages {
        for c in copies(stage).into_iter().flatten() {
            if c.from.is_none() {
                for s in &c.sources {
                    let rel = norm(s);
                    copy_tree(&root.join(&rel), &ctx.path().join(&rel), &rel, &ignore);
                }
            }
        }
    }
    let cargo = std::env::var("CARGO")
        .ok()
        .or(option_env!("CARGO").map(str::to_string))
        .unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .arg("--manifest-path")
        .arg(ctx.path().join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo cannot load the workspace from the Dockerfile's build context:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bins: BTreeSet<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    for bin in ["code-interpreter-mcp", "code-interpreter-agent"] {
        assert!(
            bins.contains(bin),
            "{bin} missing from the build context's workspace: {bins:?}"
        );
    }
}

// ------------------------------------------------------- the checks can fail

/// The repository's Dockerfile with `from` replaced by `to`: the check must
/// then report a problem that mentions `expect`.
fn fails_with(from: &str, to: &str, expect: &str) {
    let root = repo();
    let original = read(&root.join("Dockerfile"));
    assert!(
        original.contains(from),
        "the Dockerfile no longer contains {from:?}"
    );
    let broken = original.replace(from, to);
    let problems = check(&root, &broken, &read(&root.join(".dockerignore")));
    assert!(
        problems.iter().any(|p| p.contains(expect)),
        "replacing {from:?} with {to:?} should report {expect:?}; got {problems:?}"
    );
}

#[test]
fn a_missing_copy_source_is_reported() {
    fails_with(
        "COPY src ./src",
        "COPY sources ./src",
        "sources does not exist",
    );
}

#[test]
fn a_copy_that_loses_the_layout_is_reported() {
    fails_with("COPY src ./src", "COPY src ./", "layout is lost");
}

#[test]
fn an_uncopied_build_input_is_reported() {
    fails_with(
        "COPY agent/Cargo.toml ./agent/Cargo.toml\n",
        "",
        "agent/Cargo.toml is needed by the build",
    );
}

#[test]
fn a_source_excluded_by_dockerignore_is_reported() {
    let root = repo();
    let ignore = format!("{}\nsrc/backend\n", read(&root.join(".dockerignore")));
    let problems = check(&root, &read(&root.join("Dockerfile")), &ignore);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("src/backend/") && p.contains(".dockerignore excludes it")),
        "{problems:?}"
    );
    let problems = check(&root, &read(&root.join("Dockerfile")), "# nothing\n");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("does not exclude target")),
        "{problems:?}"
    );
}

#[test]
fn an_unknown_binary_name_is_reported() {
    fails_with(
        "/out/code-interpreter-mcp /out/code-interpreter-agent /usr/local/bin/",
        "/out/code-interpreter-server /out/code-interpreter-agent /usr/local/bin/",
        "code-interpreter-server is not a [[bin]]",
    );
}

#[test]
fn a_wrong_entrypoint_is_reported() {
    fails_with(
        "\"serve\"",
        "\"run\"",
        "not the installed code-interpreter-agent serve",
    );
    fails_with("\"--listen\"", "\"--address\"", "--address is not a flag");
    fails_with("\"0.0.0.0:8080\"", "\"127.0.0.1:8080\"", "needs 0.0.0.0");
}

#[test]
fn a_missing_port_or_root_user_is_reported() {
    fails_with("EXPOSE 8080", "EXPOSE 9000", "no EXPOSE 8080");
    fails_with("USER 1000:1000", "USER root", "is root");
    fails_with("USER 1000:1000\n", "", "no USER");
    fails_with("--uid 1000", "--uid 1001", "no RUN useradd");
}

#[test]
fn an_environment_variable_nobody_reads_is_reported() {
    fails_with(
        "CODE_INTERPRETER_BACKEND=agentcore",
        "CODE_INTERPRETER_BACKNED=agentcore",
        "CODE_INTERPRETER_BACKNED: neither binary reads",
    );
    fails_with(
        "CODE_INTERPRETER_MCP_BIN=/usr/local/bin/code-interpreter-mcp",
        "CODE_INTERPRETER_MCP_BIN=/usr/bin/code-interpreter-mcp",
        "is not where code-interpreter-mcp is installed",
    );
}

#[test]
fn an_old_rust_image_is_reported() {
    fails_with(
        "FROM rust:1.95-slim-bookworm",
        "FROM rust:1.80-slim-bookworm",
        "older than",
    );
}

#[test]
fn dockerignore_patterns_match_as_docker_does() {
    let i = Ignore::parse("target*\n**/node_modules\n.ci/cache\n*.md\n!README.md\n");
    assert!(i.excluded("target"));
    assert!(i.excluded("target-agent/release/x"));
    assert!(i.excluded("agent/node_modules/a/b"));
    assert!(i.excluded("node_modules"));
    assert!(i.excluded(".ci/cache/npm"));
    assert!(!i.excluded(".ci/run"));
    assert!(i.excluded("NOTES.md"));
    assert!(!i.excluded("README.md"));
    assert!(!i.excluded("src/main.rs"));
    assert!(
        !i.excluded("agent/target"),
        "target* is anchored at the root"
    );
    assert!(glob(b"[a-c]x?", b"bxz"));
    assert!(!glob(b"[!a-c]x", b"bx"));
}
