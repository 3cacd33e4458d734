//! File operations confined to a session's working directory.
//!
//! Every path from a tool call is resolved by the kernel beneath the working
//! directory (`openat2` with `RESOLVE_BENEATH`), so `..`, absolute paths and
//! symlinks that lead outside are refused even when code in the session
//! plants them between our check and our use. Where `openat2` is missing
//! (kernels before 5.6) paths are walked one component at a time and any
//! symlink is refused.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use crate::backend::{DirEntry, EntryKind, Listing};
use crate::error::Error;

pub struct ConfinedDir {
    root: OwnedFd,
    /// Owner given to files and directories the server creates (when it
    /// writes for a sandbox user other than itself).
    owner: Option<(u32, u32)>,
}

/// Checks a path from a tool call without touching the file system: it must be
/// relative, must not contain `..`, and must name something below the root.
/// Returns the normalised relative path (`./a//b` becomes `a/b`); an empty
/// result means the root itself.
pub fn normalize_rel(path: &str) -> Result<PathBuf, Error> {
    if path.contains('\0') {
        return Err(Error::invalid(format!("path {path:?} contains a NUL byte")));
    }
    let p = Path::new(path);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::invalid(format!(
                    "path {path:?} contains '..'; paths are relative to the session's working directory and cannot leave it"
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::invalid(format!(
                    "path {path:?} is absolute; give a path relative to the session's working directory"
                )));
            }
        }
    }
    Ok(out)
}

fn cstr(p: &Path) -> Result<CString, Error> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = if p.as_os_str().is_empty() {
        b".".as_slice()
    } else {
        p.as_os_str().as_bytes()
    };
    CString::new(bytes).map_err(|_| Error::invalid("path contains a NUL byte"))
}

fn last_os_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Explains an errno from a confined lookup in words a model can act on.
fn explain(path: &Path, e: &std::io::Error) -> String {
    let shown = if path.as_os_str().is_empty() {
        ".".to_string()
    } else {
        path.display().to_string()
    };
    match e.raw_os_error() {
        Some(libc::EXDEV) | Some(libc::ELOOP) => format!(
            "{shown}: refused, the path leads outside the session's working directory (through a symlink)"
        ),
        Some(libc::ENOENT) => format!("{shown}: no such file or directory"),
        Some(libc::ENOTDIR) => format!("{shown}: a component of the path is not a directory"),
        Some(libc::EISDIR) => format!("{shown}: is a directory"),
        Some(libc::EACCES) | Some(libc::EPERM) => format!("{shown}: permission denied"),
        _ => format!("{shown}: {e}"),
    }
}

impl ConfinedDir {
    pub fn open(root: &Path) -> Result<Self, Error> {
        let c = cstr(root)?;
        // SAFETY: plain syscall on a valid C string; the fd is owned below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(Error::io(
                format!("opening working directory {}", root.display()),
                last_os_error(),
            ));
        }
        // SAFETY: fd was just returned by open and is not owned elsewhere.
        Ok(Self {
            root: unsafe { OwnedFd::from_raw_fd(fd) },
            owner: None,
        })
    }

    /// Files and directories created from now on belong to `uid:gid`
    /// (when that is not already the server's own user).
    pub fn with_owner(mut self, (uid, gid): (u32, u32)) -> Self {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != uid {
            self.owner = Some((uid, gid));
        }
        self
    }

    /// Gives `name` in `dir` to the configured owner, if any.
    fn chown_at(&self, dir: &OwnedFd, name: &CString) -> Result<(), Error> {
        if let Some((uid, gid)) = self.owner {
            // SAFETY: valid dirfd and C string; no symlink is followed.
            let r = unsafe {
                libc::fchownat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    uid,
                    gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            if r != 0 {
                return Err(Error::io(
                    "giving a file to the sandbox user",
                    last_os_error(),
                ));
            }
        }
        Ok(())
    }

    /// Opens `rel` (already normalised) beneath the root.
    fn open_beneath(&self, rel: &Path, flags: i32, mode: u32) -> std::io::Result<OwnedFd> {
        let c = cstr(rel).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (flags | libc::O_CLOEXEC) as u64;
        how.mode = if flags & libc::O_CREAT != 0 {
            mode as u64
        } else {
            0
        };
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: openat2 with a valid dirfd, C string and open_how of the right size.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.root.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: a new fd owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        let err = last_os_error();
        if err.raw_os_error() == Some(libc::ENOSYS) {
            return self.open_walking(rel, flags, mode);
        }
        Err(err)
    }

    /// The fallback for kernels without openat2: one component at a time,
    /// never following a symlink.
    fn open_walking(&self, rel: &Path, flags: i32, mode: u32) -> std::io::Result<OwnedFd> {
        let comps: Vec<_> = rel.components().collect();
        // SAFETY: dup of our own valid fd.
        let mut cur = unsafe {
            OwnedFd::from_raw_fd(libc::fcntl(self.root.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0))
        };
        if comps.is_empty() {
            let c =
                CString::new(".").map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
            // SAFETY: valid dirfd and C string.
            let fd =
                unsafe { libc::openat(cur.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC, mode) };
            if fd < 0 {
                return Err(last_os_error());
            }
            // SAFETY: new fd.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        for (i, comp) in comps.iter().enumerate() {
            let c = cstr(Path::new(comp.as_os_str()))
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
            let last = i + 1 == comps.len();
            let f = if last {
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC
            } else {
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC
            };
            // SAFETY: valid dirfd and C string.
            let fd = unsafe { libc::openat(cur.as_raw_fd(), c.as_ptr(), f, mode) };
            if fd < 0 {
                return Err(last_os_error());
            }
            // SAFETY: new fd.
            cur = unsafe { OwnedFd::from_raw_fd(fd) };
        }
        Ok(cur)
    }

    /// Opens the parent directory of `rel`, creating missing directories
    /// (like `mkdir -p`), and returns it with the final name.
    fn parent_dir(&self, rel: &Path, create: bool) -> Result<(OwnedFd, CString), Error> {
        let name = rel.file_name().ok_or_else(|| {
            Error::invalid("the path names the working directory itself, not a file")
        })?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        if create {
            let mut prefix = PathBuf::new();
            for comp in parent.components() {
                let dir = self
                    .open_beneath(&prefix, libc::O_PATH | libc::O_DIRECTORY, 0)
                    .map_err(|e| Error::invalid(explain(&prefix, &e)))?;
                let c = cstr(Path::new(comp.as_os_str()))?;
                // SAFETY: valid dirfd and C string.
                let r = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) };
                if r == 0 {
                    self.chown_at(&dir, &c)?;
                }
                if r < 0 {
                    let e = last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        prefix.push(comp);
                        return Err(Error::invalid(explain(&prefix, &e)));
                    }
                }
                prefix.push(comp);
            }
        }
        let dir = self
            .open_beneath(parent, libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|e| Error::invalid(explain(parent, &e)))?;
        Ok((dir, cstr(Path::new(name))?))
    }

    /// Checks that `rel` could be written: its parent chain stays beneath the
    /// root and it is not a directory. Creates nothing.
    pub fn check_writable(&self, rel: &Path) -> Result<(), Error> {
        let mut prefix = PathBuf::new();
        let parent = rel.parent().unwrap_or(Path::new(""));
        if rel.file_name().is_none() {
            return Err(Error::invalid(
                "the path names the working directory itself, not a file",
            ));
        }
        for comp in parent.components() {
            prefix.push(comp);
            match self.open_beneath(&prefix, libc::O_PATH, 0) {
                Ok(fd) => {
                    if !is_dir(&fd) {
                        return Err(Error::invalid(format!(
                            "{}: exists and is not a directory",
                            prefix.display()
                        )));
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                Err(e) => return Err(Error::invalid(explain(&prefix, &e))),
            }
        }
        match self.open_beneath(rel, libc::O_PATH, 0) {
            Ok(fd) if is_dir(&fd) => {
                Err(Error::invalid(format!("{}: is a directory", rel.display())))
            }
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            // A symlink as the last component is replaced, not followed.
            Err(e)
                if e.raw_os_error() == Some(libc::EXDEV)
                    || e.raw_os_error() == Some(libc::ELOOP) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::invalid(explain(rel, &e))),
        }
    }

    /// Writes `bytes` to `rel` atomically: a temporary file beside it, then a
    /// rename over it (a symlink at `rel` is replaced, never followed).
    pub fn write_atomic(&self, rel: &Path, bytes: &[u8]) -> Result<(), Error> {
        let (dir, name) = self.parent_dir(rel, true)?;
        let tmp_name = format!(
            ".{}.tmp-{}",
            rel.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            crate::ids::random_token(8)
        );
        let tmp = cstr(Path::new(&tmp_name))?;
        // SAFETY: valid dirfd and C string.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                tmp.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd < 0 {
            return Err(Error::invalid(explain(rel, &last_os_error())));
        }
        // SAFETY: new fd owned by the File.
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        if let Err(e) = self.chown_at(&dir, &tmp) {
            // SAFETY: valid dirfd and C string.
            unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
            return Err(e);
        }
        let unlink_tmp = || {
            // SAFETY: valid dirfd and C string.
            unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
        };
        if let Err(e) = file.write_all(bytes) {
            unlink_tmp();
            return Err(Error::io(format!("writing {}", rel.display()), e));
        }
        drop(file);
        // SAFETY: valid dirfds and C strings.
        let r = unsafe {
            libc::renameat(
                dir.as_raw_fd(),
                tmp.as_ptr(),
                dir.as_raw_fd(),
                name.as_ptr(),
            )
        };
        if r < 0 {
            let e = last_os_error();
            unlink_tmp();
            return Err(Error::invalid(explain(rel, &e)));
        }
        Ok(())
    }

    /// Creates (or truncates) `rel` for writing, for files the server itself
    /// produces in the session (spilled output).
    pub fn create(&self, rel: &Path) -> Result<std::fs::File, Error> {
        let (dir, name) = self.parent_dir(rel, true)?;
        // SAFETY: valid dirfd and C string.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd < 0 {
            return Err(Error::invalid(explain(rel, &last_os_error())));
        }
        // SAFETY: new fd owned by the File.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        self.chown_at(&dir, &name)?;
        Ok(file)
    }

    /// Reads a regular file of at most `max` bytes.
    pub fn read(&self, rel: &Path, max: u64) -> Result<Vec<u8>, String> {
        if rel.as_os_str().is_empty() {
            return Err(". is the working directory; use list_files to see what it holds".into());
        }
        // O_NONBLOCK so that opening a FIFO planted by code cannot hang us.
        let fd = self
            .open_beneath(rel, libc::O_RDONLY | libc::O_NONBLOCK, 0)
            .map_err(|e| explain(rel, &e))?;
        let mut file = std::fs::File::from(fd);
        let meta = file.metadata().map_err(|e| explain(rel, &e))?;
        if meta.is_dir() {
            return Err(format!("{}: is a directory; use list_files", rel.display()));
        }
        if !meta.is_file() {
            return Err(format!("{}: not a regular file", rel.display()));
        }
        if meta.len() > max {
            return Err(format!(
                "{}: {} bytes is more than the {} byte read limit; read a part of it with execute_command (head, tail, split) or compress it first",
                rel.display(),
                meta.len(),
                max
            ));
        }
        let mut buf = Vec::with_capacity(meta.len() as usize);
        Read::by_ref(&mut file)
            .take(max + 1)
            .read_to_end(&mut buf)
            .map_err(|e| explain(rel, &e))?;
        if buf.len() as u64 > max {
            return Err(format!(
                "{}: grew past the {max} byte read limit while being read",
                rel.display()
            ));
        }
        Ok(buf)
    }

    /// Lists `rel` (one level, or the whole tree), at most `max` entries.
    pub fn list(&self, rel: &Path, recursive: bool, max: usize) -> Result<Listing, Error> {
        let mut entries = Vec::new();
        let mut truncated = false;
        let mut stack = vec![rel.to_path_buf()];
        while let Some(dir_rel) = stack.pop() {
            let fd = self
                .open_beneath(&dir_rel, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|e| Error::invalid(explain(&dir_rel, &e)))?;
            // Our own fd, named through /proc so std can iterate it.
            let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            let rd = std::fs::read_dir(&proc_path)
                .map_err(|e| Error::io(format!("listing {}", dir_rel.display()), e))?;
            let mut names: Vec<_> = rd.filter_map(|e| e.ok()).collect();
            names.sort_by_key(|e| e.file_name());
            for e in names {
                if entries.len() >= max {
                    truncated = true;
                    break;
                }
                let Ok(meta) = e.metadata() else { continue };
                let ft = meta.file_type();
                let kind = if ft.is_symlink() {
                    EntryKind::Symlink
                } else if ft.is_dir() {
                    EntryKind::Dir
                } else if ft.is_file() {
                    EntryKind::File
                } else {
                    EntryKind::Other
                };
                let path = dir_rel.join(e.file_name());
                if recursive && kind == EntryKind::Dir {
                    stack.push(path.clone());
                }
                entries.push(DirEntry {
                    path: path.to_string_lossy().into_owned(),
                    kind,
                    bytes: if kind == EntryKind::File {
                        meta.len()
                    } else {
                        0
                    },
                });
            }
            if truncated {
                break;
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Listing { entries, truncated })
    }

    /// Removes a file, a symlink (not its target) or an empty directory.
    pub fn remove(&self, rel: &Path) -> Result<(), Error> {
        let (dir, name) = self.parent_dir(rel, false)?;
        // SAFETY: valid dirfd and C string.
        let r = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
        if r == 0 {
            return Ok(());
        }
        let e = last_os_error();
        if e.raw_os_error() == Some(libc::EISDIR) {
            // SAFETY: valid dirfd and C string.
            let r = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) };
            if r == 0 {
                return Ok(());
            }
            let e = last_os_error();
            if e.raw_os_error() == Some(libc::ENOTEMPTY) {
                return Err(Error::invalid(format!(
                    "{}: directory is not empty; use execute_command with rm -r",
                    rel.display()
                )));
            }
            return Err(Error::invalid(explain(rel, &e)));
        }
        Err(Error::invalid(explain(rel, &e)))
    }
}

fn is_dir(fd: &OwnedFd) -> bool {
    // SAFETY: fstat on a valid fd into a zeroed stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
    r == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFDIR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_refuses_escapes() {
        assert!(normalize_rel("../x").is_err());
        assert!(normalize_rel("a/../../x").is_err());
        assert!(normalize_rel("/etc/passwd").is_err());
        assert_eq!(normalize_rel("./a//b/").unwrap(), PathBuf::from("a/b"));
        assert_eq!(normalize_rel(".").unwrap(), PathBuf::new());
    }

    #[test]
    fn symlinks_leading_outside_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s3cret").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
        std::os::unix::fs::symlink("inside.txt", root.path().join("ok")).unwrap();
        std::fs::write(root.path().join("inside.txt"), b"fine").unwrap();
        let d = ConfinedDir::open(root.path()).unwrap();
        let err = d.read(Path::new("out/secret"), 100).unwrap_err();
        assert!(err.contains("outside"), "{err}");
        assert!(d.write_atomic(Path::new("out/new"), b"x").is_err());
        assert!(!outside.path().join("new").exists());
        assert_eq!(d.read(Path::new("ok"), 100).unwrap(), b"fine");
    }

    #[test]
    fn write_creates_parents_and_replaces_symlinks_without_following() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, b"original").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&target, root.path().join("link")).unwrap();
        let d = ConfinedDir::open(root.path()).unwrap();
        d.write_atomic(Path::new("link"), b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"original");
        d.write_atomic(Path::new("a/b/c.txt"), b"deep").unwrap();
        assert_eq!(
            std::fs::read(root.path().join("a/b/c.txt")).unwrap(),
            b"deep"
        );
    }

    #[test]
    fn list_and_remove() {
        let root = tempfile::tempdir().unwrap();
        let d = ConfinedDir::open(root.path()).unwrap();
        d.write_atomic(Path::new("x/y.txt"), b"12345").unwrap();
        let l = d.list(Path::new(""), true, 100).unwrap();
        let paths: Vec<_> = l.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["x", "x/y.txt"]);
        assert_eq!(l.entries[1].bytes, 5);
        assert!(d.remove(Path::new("x")).is_err());
        d.remove(Path::new("x/y.txt")).unwrap();
        d.remove(Path::new("x")).unwrap();
        assert!(d.list(Path::new(""), true, 100).unwrap().entries.is_empty());
    }
}
