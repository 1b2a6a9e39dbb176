//! Where the report goes: standard output, or with `-o FILE` a file replaced atomically.
//!
//! The report is written to a temporary file beside FILE and renamed over it only once it
//! is complete, so a reader (node_exporter's textfile collector, a dashboard) sees the old
//! report or the new one, never half of one; if writing fails, FILE is left as it was.
//! FILE keeps its owner, group and mode (as `sed -i` does); a symbolic link is followed and
//! its target replaced, the link kept. A FILE that is no regular file (`/dev/null`, a FIFO)
//! is written into as it is, never replaced, and one of the inputs is refused.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, BufWriter, Stdout, Write};
use std::os::unix::fs::{fchown, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context};

/// Names tried for the temporary file before giving up: another run writing the same
/// report may hold one, but a hundred taken means something else is wrong.
const TEMPORARY_NAME_ATTEMPTS: u32 = 100;

/// Temporary files not yet renamed, removed if the process is made to exit at once.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes the temporary files of reports not yet complete; called before an immediate exit.
pub(crate) fn remove_pending() {
    let pending = PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for path in pending.iter() {
        let _ = fs::remove_file(path);
    }
}

/// Symbolic links followed to the file they name before giving up, as the kernel does.
const MAX_LINKS: u32 = 40;

/// A regular file by device and inode: two names of one file are one `FileId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    device: u64,
    inode: u64,
}

impl FileId {
    /// The identity of the file `metadata` describes, if it is a regular file.
    pub(crate) fn of(metadata: &Metadata) -> Option<Self> {
        metadata.is_file().then(|| FileId {
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }

    /// The identity of the file at `path`, if it is a regular file.
    pub(crate) fn of_path(path: &Path) -> Option<Self> {
        FileId::of(&fs::metadata(path).ok()?)
    }
}

/// The report's destination.
pub(crate) enum Output {
    /// Standard output.
    Stdout(Stdout),
    /// A file, replaced when the report is complete.
    File(AtomicFile),
    /// A file that is not a regular one (a character device, a FIFO), written into as is.
    Device(File),
}

impl Output {
    /// Standard output, or the file `path` when given; refused when `path` is one of
    /// `inputs` (a name read, and its identity), as `cat` refuses "input file is output file".
    pub(crate) fn open(path: Option<&Path>, inputs: &[(String, FileId)]) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Output::Stdout(io::stdout()));
        };
        let target = follow_links(path);
        let Ok(existing) = fs::metadata(&target) else {
            return AtomicFile::create(&target).map(Output::File);
        };
        let shown = path.display();
        if let Some(id) = FileId::of(&existing) {
            if let Some((input, _)) = inputs.iter().find(|(_, input)| *input == id) {
                bail!("cannot write '{shown}': it is the input '{input}', which would be lost");
            }
            return AtomicFile::create(&target).map(Output::File);
        }
        if existing.is_dir() {
            bail!("cannot write '{shown}': it is a directory");
        }
        let device = OpenOptions::new()
            .write(true)
            .open(&target)
            .with_context(|| format!("cannot write '{shown}'"))?;
        Ok(Output::Device(device))
    }

    /// Finishes the report: for a file, puts it in place.
    pub(crate) fn commit(self) -> anyhow::Result<()> {
        match self {
            Output::Stdout(_) | Output::Device(_) => Ok(()),
            Output::File(file) => file.commit(),
        }
    }
}

/// Whether `a` and `b` name one file: the same device and inode when both exist, else the
/// same name once links are followed and the directory holding it is made absolute.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    let (a, b) = (follow_links(a), follow_links(b));
    match (fs::metadata(&a), fs::metadata(&b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => absolute_name(&a) == absolute_name(&b),
    }
}

/// `path` with its directory made canonical, for comparing names of files not created yet.
fn absolute_name(path: &Path) -> PathBuf {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match (fs::canonicalize(directory), path.file_name()) {
        (Ok(directory), Some(name)) => directory.join(name),
        _ => path.to_owned(),
    }
}

/// The file `path` names once symbolic links are followed (a link to a missing file
/// included, so the report is created where the link points).
fn follow_links(path: &Path) -> PathBuf {
    let mut path = path.to_owned();
    for _ in 0..MAX_LINKS {
        let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        let Some(points_to) = is_link.then(|| fs::read_link(&path).ok()).flatten() else {
            break;
        };
        path = match path.parent() {
            Some(parent) => parent.join(points_to),
            None => points_to,
        };
    }
    path
}

impl Write for Output {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(out) => out.write(bytes),
            Output::File(file) => file.out.write(bytes),
            Output::Device(device) => device.write(bytes),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.write_all(bytes),
            Output::File(file) => file.out.write_all(bytes),
            Output::Device(device) => device.write_all(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            // Written to disk at commit; flushing every batch would only cost time.
            // A device is written unbuffered.
            Output::File(_) | Output::Device(_) => Ok(()),
        }
    }
}

/// A temporary file that becomes `target` on commit, and disappears if dropped before.
pub(crate) struct AtomicFile {
    out: BufWriter<File>,
    temporary: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temporary file beside `target`, with `target`'s owner, group and
    /// permissions if it exists.
    pub(crate) fn create(target: &Path) -> anyhow::Result<Self> {
        let shown = target.display();
        let Some(file_name) = target.file_name() else {
            bail!("cannot write '{shown}': not a file name");
        };
        if target.is_dir() {
            bail!("cannot write '{shown}': it is a directory");
        }
        let directory = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let existing = fs::metadata(target).ok();
        let mut attempt = 0u32;
        let (file, temporary) = loop {
            let mut name = std::ffi::OsString::from(".");
            name.push(file_name);
            name.push(format!(".{}.{attempt}.tmp", std::process::id()));
            let temporary = directory.join(name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temporary)
            {
                Ok(file) => break (file, temporary),
                Err(err)
                    if err.kind() == io::ErrorKind::AlreadyExists
                        && attempt < TEMPORARY_NAME_ATTEMPTS =>
                {
                    attempt += 1;
                }
                Err(err) => {
                    return Err(err).with_context(|| {
                        format!(
                            "cannot write '{shown}': cannot create a temporary file in '{}'",
                            directory.display()
                        )
                    })
                }
            }
        };
        PENDING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(temporary.clone());
        let file = AtomicFile {
            out: BufWriter::new(file),
            temporary,
            target: target.to_owned(),
            committed: false,
        };
        if let Some(existing) = existing {
            // Owner first: changing it may clear the set-id bits that the mode then restores.
            // Only root may give a file away; others keep what they can.
            let _ = fchown(
                file.out.get_ref(),
                Some(existing.uid()),
                Some(existing.gid()),
            );
            let _ = file.out.get_ref().set_permissions(existing.permissions());
        }
        Ok(file)
    }

    /// Writes out what is buffered, syncs it, and renames the file over the target.
    pub(crate) fn commit(mut self) -> anyhow::Result<()> {
        let shown = self.target.display().to_string();
        self.out
            .flush()
            .and_then(|()| self.out.get_ref().sync_all())
            .with_context(|| format!("cannot write '{shown}'"))?;
        fs::rename(&self.temporary, &self.target)
            .with_context(|| format!("cannot write '{shown}': cannot replace it"))?;
        self.committed = true;
        self.forget();
        Ok(())
    }

    fn forget(&self) {
        PENDING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|path| path != &self.temporary);
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temporary);
            self.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "upcheck-output-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_file_appears_whole_on_commit_and_not_before() {
        let dir = dir();
        let target = dir.join("report.prom");
        fs::write(&target, "old\n").unwrap();
        let mut output = Output::open(Some(&target), &[]).unwrap();
        output.write_all(b"new\n").unwrap();
        output.flush().unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "old\n");
        assert_eq!(entries(&dir).len(), 2);
        output.commit().unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(entries(&dir), ["report.prom"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_abandoned_report_leaves_the_old_file_and_no_litter() {
        let dir = dir();
        let target = dir.join("report.prom");
        fs::write(&target, "old\n").unwrap();
        let mut output = Output::open(Some(&target), &[]).unwrap();
        output.write_all(b"half").unwrap();
        drop(output);
        assert_eq!(fs::read_to_string(&target).unwrap(), "old\n");
        assert_eq!(entries(&dir), ["report.prom"]);
        assert!(!PENDING.lock().unwrap().iter().any(|p| p.starts_with(&dir)));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_or_missing_parent_is_refused() {
        let dir = dir();
        assert!(Output::open(Some(&dir), &[]).is_err());
        assert!(Output::open(Some(&dir.join("missing/report.prom")), &[]).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
