//! `--state FILE`: each target's health as the previous run left it, so this run can say
//! what changed since: results gain `previous_ok` and `changed_at`, and targets that left
//! the list are reported once as gone, then forgotten.
//!
//! Memory stays at one [`Known`] entry (16 bytes) per target of the previous run: the
//! previous file is read once at the start keeping only keys and verdicts, this run's
//! entries go straight to the new file as results arrive, and the text of the targets gone
//! is read from the previous file again at the end.
//!
//! The file (all integers little-endian): the line `upcheck-state`, the format version
//! (u32), then records, each starting with a tag byte. Tag 1 is an entry: the key (u64,
//! FNV-1a of the source, a NUL and the target as written), `ok` (u8), `changed_at` (u32
//! Unix seconds, 0 when unknown), then the source and the target, each a u32 length and
//! UTF-8 bytes. Tag 0 ends the file, followed by the number of entries (u64), so a file cut
//! short is told apart from a complete one. A key written twice (a target listed twice in
//! one source) keeps its first entry.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::calendar::unix_now;
use crate::outcome::TargetResult;
use crate::output::{FileId, Output};
use crate::shard::fnv1a_64;

/// The file's first bytes.
const MAGIC: &[u8] = b"upcheck-state\n";

/// The format this version writes and reads; another one is refused, not guessed at.
const VERSION: u32 = 1;

/// Tag of an entry record.
const ENTRY: u8 = 1;

/// Tag of the closing record.
const END: u8 = 0;

/// Longest source or target text accepted when reading: list lines are capped at 64 KiB,
/// so anything much longer means a damaged file, not a long target.
const MAX_TEXT: u32 = 1 << 20;

/// Flag: the target was healthy.
const OK: u8 = 1;
/// Flag: this run had a result for the target.
const SEEN: u8 = 2;
/// Flag: the end of the run has dealt with the target (reported gone, or carried over).
const SETTLED: u8 = 4;

/// One target as the previous run left it: 16 bytes, the whole of the state's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Known {
    key: u64,
    /// Unix seconds (good until 2106); 0 when unknown.
    changed_at: u32,
    flags: u8,
}

impl Known {
    fn ok(self) -> bool {
        self.flags & OK != 0
    }
}

/// How a target's health moved since the previous run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Healthy then, unhealthy now.
    WentDown,
    /// Unhealthy then, healthy now.
    Recovered,
    /// Not in the previous run.
    New,
}

impl Change {
    /// How the text report names the change.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Change::WentDown => "went down",
            Change::Recovered => "recovered",
            Change::New => "new",
        }
    }
}

/// How many targets changed since the previous run, and how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Changes {
    /// Healthy then, unhealthy now.
    pub(crate) went_down: u64,
    /// Unhealthy then, healthy now.
    pub(crate) recovered: u64,
    /// Not in the previous run.
    pub(crate) new: u64,
    /// In the previous run, no longer in the list.
    pub(crate) gone: u64,
}

impl Changes {
    /// Whether anything changed at all.
    pub(crate) fn any(&self) -> bool {
        self.went_down + self.recovered + self.new + self.gone > 0
    }

    fn count(&mut self, change: Change) {
        match change {
            Change::WentDown => self.went_down += 1,
            Change::Recovered => self.recovered += 1,
            Change::New => self.new += 1,
        }
    }
}

/// The previous run's verdicts, and this run's on their way to replace them.
pub(crate) struct StateFile {
    path: PathBuf,
    /// Sorted by key, one entry per key.
    previous: Vec<Known>,
    /// The previous file, read again at the end for the text of the targets gone.
    old: Option<File>,
    /// This run's file, replaced atomically on commit as `-o` is.
    new: Output,
    written: u64,
    changes: Changes,
}

impl StateFile {
    /// Reads the previous state from `path` (none when the file does not exist, or when
    /// `reset` asks to start afresh) and opens the file that will replace it, which must
    /// not be one of the `inputs`.
    pub(crate) fn open(
        path: &Path,
        reset: bool,
        inputs: &[(String, FileId)],
    ) -> anyhow::Result<Self> {
        let (previous, old) = if reset {
            (Vec::new(), None)
        } else {
            read_previous(path)?
        };
        let mut new = Output::open(Some(path), inputs)?;
        let shown = path.display();
        new.write_all(MAGIC)
            .and_then(|()| new.write_all(&VERSION.to_le_bytes()))
            .with_context(|| format!("cannot write the state file '{shown}'"))?;
        Ok(StateFile {
            path: path.to_owned(),
            previous,
            old,
            new,
            written: 0,
            changes: Changes::default(),
        })
    }

    /// Fills in `result`'s `previous_ok` and `changed_at`, records its verdict for the
    /// next run, and says how its health changed; a result the run's stop left unchecked
    /// keeps what the state knew, and is no change.
    pub(crate) fn note(&mut self, result: &mut TargetResult) -> io::Result<Option<Change>> {
        let key = key_of(&result.source, &result.target);
        let known = match self.previous.binary_search_by_key(&key, |known| known.key) {
            Ok(at) => {
                self.previous[at].flags |= SEEN;
                Some(self.previous[at])
            }
            Err(_) => None,
        };
        result.previous_ok = known.map(Known::ok);
        let (changed_at, change) = match known {
            _ if result.is_skipped() => {
                result.changed_at = known.and_then(|known| unix_time(known.changed_at));
                if let Some(known) = known {
                    self.write(&known, &result.source, &result.target)?;
                }
                return Ok(None);
            }
            None => (0, Some(Change::New)),
            Some(known) if known.ok() == result.ok => (known.changed_at, None),
            Some(_) if result.ok => (now(), Some(Change::Recovered)),
            Some(_) => (now(), Some(Change::WentDown)),
        };
        result.changed_at = unix_time(changed_at);
        let entry = Known {
            key,
            changed_at,
            flags: if result.ok { OK } else { 0 },
        };
        self.write(&entry, &result.source, &result.target)?;
        if let Some(change) = change {
            self.changes.count(change);
        }
        Ok(change)
    }

    /// Deals with the previous run's targets this run had no result for: when the run
    /// read its whole input (`complete`) they left the list, so each is passed to `gone`
    /// (source, target) and forgotten; otherwise they may simply not have been reached, and
    /// are kept as they were.
    pub(crate) fn settle(
        &mut self,
        complete: bool,
        mut gone: impl FnMut(&str, &str),
    ) -> io::Result<()> {
        if let Some(old) = self.old.take() {
            let mut reader = BufReader::new(old);
            reader.seek(SeekFrom::Start(0))?;
            read_header(&mut reader)?;
            while let Some(Record {
                entry,
                source,
                target,
            }) = read_entry(&mut reader, true)?
            {
                let Ok(at) = self
                    .previous
                    .binary_search_by_key(&entry.key, |known| known.key)
                else {
                    continue;
                };
                if self.previous[at].flags & (SEEN | SETTLED) != 0 {
                    continue;
                }
                self.previous[at].flags |= SETTLED;
                if complete {
                    self.changes.gone += 1;
                    gone(&source, &target);
                } else {
                    self.write(&entry, &source, &target)?;
                }
            }
        }
        self.new.write_all(&[END])?;
        self.new.write_all(&self.written.to_le_bytes())
    }

    /// What changed, as counted so far.
    pub(crate) fn changes(&self) -> Changes {
        self.changes
    }

    /// Puts the new state in place of the old one.
    pub(crate) fn commit(self) -> anyhow::Result<()> {
        self.new
            .commit()
            .with_context(|| format!("cannot write the state file '{}'", self.path.display()))
    }

    fn write(&mut self, entry: &Known, source: &str, target: &str) -> io::Result<()> {
        let mut record = Vec::with_capacity(22 + source.len() + target.len());
        record.push(ENTRY);
        record.extend_from_slice(&entry.key.to_le_bytes());
        record.push(entry.flags & OK);
        record.extend_from_slice(&entry.changed_at.to_le_bytes());
        for text in [source, target] {
            let length = u32::try_from(text.len()).unwrap_or(u32::MAX).min(MAX_TEXT);
            record.extend_from_slice(&length.to_le_bytes());
            record.extend_from_slice(&text.as_bytes()[..length as usize]);
        }
        self.written += 1;
        self.new.write_all(&record).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!(
                    "cannot write the state file '{}': {err}",
                    self.path.display()
                ),
            )
        })
    }
}

/// The key of the target written `target` in `source`.
fn key_of(source: &str, target: &str) -> u64 {
    fnv1a_64(&[source.as_bytes(), b"\0", target.as_bytes()])
}

/// The current time as stored: Unix seconds, never 0 (which means unknown).
fn now() -> u32 {
    u32::try_from(unix_now()).unwrap_or(u32::MAX).max(1)
}

/// A stored time as Unix seconds; `None` when unknown.
fn unix_time(stored: u32) -> Option<i64> {
    (stored != 0).then_some(i64::from(stored))
}

/// The previous file's entries, sorted by key, and the file itself for the end of the run;
/// nothing when it does not exist.
fn read_previous(path: &Path) -> anyhow::Result<(Vec<Known>, Option<File>)> {
    let shown = path.display();
    let hint = "--state-reset starts it afresh, reporting every target as new";
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(err) => {
            return Err(err)
                .with_context(|| format!("cannot read the state file '{shown}' ({hint})"))
        }
    };
    let mut reader = BufReader::new(file);
    let mut previous = Vec::new();
    let read = read_header(&mut reader).and_then(|()| {
        while let Some(record) = read_entry(&mut reader, false)? {
            previous.push(record.entry);
        }
        Ok(())
    });
    read.with_context(|| format!("cannot use the state file '{shown}' ({hint})"))?;
    // Stable, so of a key written twice the first entry stays.
    previous.sort_by_key(|known: &Known| known.key);
    previous.dedup_by_key(|known| known.key);
    previous.shrink_to_fit();
    Ok((previous, Some(reader.into_inner())))
}

fn damaged(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_owned())
}

/// Reads exactly `buffer.len()` bytes; a file that ends first is damaged.
fn read_exact(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<()> {
    reader.read_exact(buffer).map_err(|err| match err.kind() {
        io::ErrorKind::UnexpectedEof => damaged("it is cut short"),
        _ => err,
    })
}

fn read_header(reader: &mut impl Read) -> io::Result<()> {
    let mut magic = [0; MAGIC.len()];
    let read = reader.read_exact(&mut magic);
    match read {
        Err(err) if err.kind() != io::ErrorKind::UnexpectedEof => return Err(err),
        Err(_) => return Err(damaged("it is not an upcheck state file")),
        Ok(()) if magic != MAGIC => return Err(damaged("it is not an upcheck state file")),
        Ok(()) => {}
    }
    let mut version = [0; 4];
    read_exact(reader, &mut version)?;
    match u32::from_le_bytes(version) {
        VERSION => Ok(()),
        other => Err(damaged(&format!(
            "it was written by another version of upcheck (state format {other}; this one \
             reads format {VERSION})"
        ))),
    }
}

/// One entry as read from the file.
struct Record {
    entry: Known,
    /// The source and the target as written; empty when they were skipped.
    source: String,
    target: String,
}

/// The next entry, with its source and target when `with_texts` (else they are skipped);
/// `None` at the closing record.
fn read_entry<R: BufRead + Seek>(reader: &mut R, with_texts: bool) -> io::Result<Option<Record>> {
    let mut tag = [0; 1];
    read_exact(reader, &mut tag)?;
    if tag[0] == END {
        let mut count = [0; 8];
        read_exact(reader, &mut count)?;
        return Ok(None);
    }
    if tag[0] != ENTRY {
        return Err(damaged("it holds a record of an unknown kind"));
    }
    let mut fixed = [0; 13];
    read_exact(reader, &mut fixed)?;
    let (key, rest) = fixed.split_at(8);
    let (flags, changed_at) = rest.split_at(1);
    let entry = Known {
        key: u64::from_le_bytes(key.try_into().unwrap_or_default()),
        changed_at: u32::from_le_bytes(changed_at.try_into().unwrap_or_default()),
        flags: flags[0] & OK,
    };
    let mut texts = [String::new(), String::new()];
    for text in &mut texts {
        let mut length = [0; 4];
        read_exact(reader, &mut length)?;
        let length = u32::from_le_bytes(length);
        if length > MAX_TEXT {
            return Err(damaged("it holds a target longer than any list line"));
        }
        if with_texts {
            let mut bytes = vec![0; length as usize];
            read_exact(reader, &mut bytes)?;
            *text = String::from_utf8_lossy(&bytes).into_owned();
        } else {
            reader.seek_relative(i64::from(length))?;
        }
    }
    let [source, target] = texts;
    Ok(Some(Record {
        entry,
        source,
        target,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Known>(), 16);
    }

    #[test]
    fn keys_tell_sources_apart() {
        assert_ne!(key_of("a.txt", "http://x/"), key_of("b.txt", "http://x/"));
        assert_ne!(key_of("a", "bhttp://x/"), key_of("ab", "http://x/"));
        // Pinned: the key is in the file, so it must not change between versions.
        assert_eq!(key_of("-", "tcp://127.0.0.1:1"), 0x1aef_9e50_563e_037f);
    }
}
