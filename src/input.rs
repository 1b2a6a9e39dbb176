//! Reading endpoint lists: opening the inputs, streaming their lines, and parsing each into a target.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Seek};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use anyhow::{bail, Context};
use tokio::sync::mpsc;

use crate::checks::{self, CheckEntry};
use crate::output::FileId;
use crate::probe::TargetSettings;
use crate::progress::Progress;
use crate::range::parse_range;
use crate::shard::ShardFilter;
use crate::target::{parse_target, redacted, Labels, Origin, Target, URL_SOURCE};

/// Longest line accepted; longer ones become `invalid` results without being held in memory.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;

/// How much of an over-long line is kept to show in its result.
const SHOWN_PREFIX_BYTES: usize = 80;

/// Lines read ahead of the scheduler: enough to keep it busy, small enough that memory stays flat.
const READ_AHEAD: usize = 1024;

/// Room the reader waits for once it has filled [`READ_AHEAD`].
const READ_BATCH: usize = READ_AHEAD / 4;

/// One line of input: where it came from, what was written, and what it means.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Where the line came from.
    pub(crate) origin: Origin,
    /// The target as written (for invalid lines, the offending text, lossily decoded).
    pub(crate) text: String,
    /// The target, or why the line is not one.
    pub(crate) target: Result<Target, String>,
    /// For an entry of a checks file: its name and tags.
    pub(crate) labels: Labels,
    /// How the target is probed: the command line's settings, or the entry's own.
    pub(crate) settings: Arc<TargetSettings>,
}

/// What the reader sends: an entry, or the error that stopped reading.
pub(crate) type Item = Result<Entry, anyhow::Error>;

/// An input opened before any probe starts.
enum Source {
    Stdin,
    File {
        name: Arc<str>,
        reader: BufReader<File>,
    },
    Checks {
        name: Arc<str>,
        file: File,
    },
    Urls(Vec<String>),
}

/// All inputs, opened and ready to stream.
pub(crate) struct Inputs {
    sources: Vec<Source>,
    /// The regular files among them, by name, so that the output cannot be one.
    files: Vec<(String, FileId)>,
}

impl Inputs {
    /// Opens every file named (and checks standard input), so that a bad name fails before
    /// probing; checks files are read through here, so a broken one does too.
    ///
    /// Entries come in this order: the lists, then the checks files, then `--url`.
    pub(crate) fn open(
        files: &[PathBuf],
        checks: &[PathBuf],
        urls: &[String],
    ) -> anyhow::Result<Self> {
        let mut sources = Vec::new();
        let mut regular = Vec::new();
        for path in files {
            if path.as_os_str() == "-" {
                sources.push(Source::Stdin);
                continue;
            }
            let name: Arc<str> = path.to_string_lossy().into();
            let file = File::open(path).with_context(|| format!("cannot open '{name}'"))?;
            let metadata = file
                .metadata()
                .with_context(|| format!("cannot read '{name}'"))?;
            if metadata.is_dir() {
                bail!("cannot read '{name}': it is a directory");
            }
            regular.extend(FileId::of(&metadata).map(|id| (name.to_string(), id)));
            let mut reader = BufReader::new(file);
            // Only regular files are peeked at: reading a FIFO here would wait for its writer.
            if metadata.is_file() {
                let start = reader
                    .fill_buf()
                    .with_context(|| format!("cannot read '{name}'"))?;
                if let Some(offset) = start.iter().position(|&b| b == 0) {
                    bail!(
                        "'{name}' looks like a binary file (NUL byte at offset {offset}), \
                         not an endpoint list"
                    );
                }
            }
            sources.push(Source::File { name, reader });
        }
        for path in checks {
            let (source, tls_files) = open_checks(path)?;
            sources.push(source);
            let name = path.to_string_lossy();
            for tls_file in tls_files {
                if let Some(id) = FileId::of_path(&tls_file) {
                    let shown = format!("{} (named in {name})", tls_file.display());
                    regular.push((shown, id));
                }
            }
            if let Some(id) = FileId::of_path(path) {
                regular.push((name.into_owned(), id));
            }
        }
        if files.is_empty() && checks.is_empty() && urls.is_empty() {
            if io::stdin().is_terminal() {
                bail!(
                    "no endpoints given: name a list file, pipe one in, or use --url \
                     (e.g. 'upcheck endpoints.txt'; see --help)"
                );
            }
            sources.push(Source::Stdin);
        }
        if !urls.is_empty() {
            sources.push(Source::Urls(urls.to_vec()));
        }
        if sources.iter().any(|source| matches!(source, Source::Stdin)) {
            regular.extend(stdin_file().map(|id| ("-".to_owned(), id)));
        }
        Ok(Inputs {
            sources,
            files: regular,
        })
    }

    /// The regular files read (standard input included, when it is one), by name.
    pub(crate) fn regular_files(&self) -> &[(String, FileId)] {
        &self.files
    }

    /// Streams every entry that `shard` keeps, in input order, from a thread of its own,
    /// counting each on the progress bar as it is read (so a short list's length is known
    /// at once).
    ///
    /// A plain thread rather than tokio's blocking pool: a read blocked on a terminal or
    /// a silent pipe must not keep the process from exiting when the run ends.
    pub(crate) fn stream(
        self,
        defaults: Arc<TargetSettings>,
        progress: Progress,
        shard: ShardFilter,
    ) -> mpsc::Receiver<Item> {
        let (sender, receiver) = mpsc::channel(READ_AHEAD);
        let outlet = Outlet {
            sender,
            shard,
            progress,
            defaults,
        };
        thread::spawn(move || {
            let mut numbering = Numbering::default();
            for source in self.sources {
                let sent = match source {
                    Source::Stdin => {
                        read_list("-".into(), io::stdin().lock(), &mut numbering, &outlet)
                    }
                    Source::File { name, reader } => {
                        read_list(name, reader, &mut numbering, &outlet)
                    }
                    Source::Checks { name, file } => {
                        read_checks(name, file, &mut numbering, &outlet)
                    }
                    // White space around a -u value is no part of it, as around a line.
                    Source::Urls(urls) => urls.into_iter().all(|url| {
                        outlet.targets(&mut numbering, URL_SOURCE.into(), None, url.trim())
                    }),
                };
                if !sent {
                    return;
                }
            }
        });
        receiver
    }
}

/// Standard input's identity, when it is a regular file (`upcheck -o list < list`).
fn stdin_file() -> Option<FileId> {
    let duplicate = io::stdin().as_fd().try_clone_to_owned().ok()?;
    FileId::of(&File::from(duplicate).metadata().ok()?)
}

/// Opens a checks file and, for a regular file, reads it through once, one table at a
/// time, so that a file that is not a checks file fails before probing without being
/// held in memory, and returns with it the TLS files its entries name. A pipe cannot be
/// read twice: it is read once, as it streams in.
fn open_checks(path: &Path) -> anyhow::Result<(Source, Vec<PathBuf>)> {
    if path.as_os_str() == "-" {
        bail!("--checks needs a file: standard input is read only as a plain list");
    }
    let name: Arc<str> = path.to_string_lossy().into();
    if path.is_dir() {
        bail!("cannot read '{name}': it is a directory");
    }
    let file = File::open(path).with_context(|| format!("cannot open '{name}'"))?;
    let regular = file
        .metadata()
        .with_context(|| format!("cannot read '{name}'"))?
        .is_file();
    if !regular {
        return Ok((Source::Checks { name, file }, Vec::new()));
    }
    let mut reader = checks::Reader::new(&name, BufReader::new(file));
    while reader.next_entries()?.is_some() {}
    let tls_files = reader.tls_files();
    let mut file = reader.into_inner().into_inner();
    file.rewind()
        .with_context(|| format!("cannot read '{name}' again"))?;
    Ok((Source::Checks { name, file }, tls_files))
}

/// Sends every entry of a checks file, read again one table at a time; returns false
/// when reading must stop.
fn read_checks(name: Arc<str>, file: File, numbering: &mut Numbering, outlet: &Outlet) -> bool {
    let mut reader = checks::Reader::new(&name, BufReader::new(file));
    loop {
        match reader.next_entries() {
            Ok(Some(entries)) => {
                for entry in entries {
                    let origin = numbering.next(name.clone(), Some(entry.line));
                    if !outlet.entry(outlet.checks_entry(origin, entry)) {
                        return false;
                    }
                }
            }
            Ok(None) => return true,
            Err(err) => {
                outlet.error(err);
                return false;
            }
        }
    }
}

/// Where the reader's entries go: to the scheduler (and the progress bar), less those
/// another shard checks.
struct Outlet {
    sender: mpsc::Sender<Item>,
    shard: ShardFilter,
    progress: Progress,
    defaults: Arc<TargetSettings>,
}

impl Outlet {
    /// Passes on the entries of a target written as `text` in a plain list (or `--url`):
    /// one, or one per address of a range, each with the line's source and number, walked
    /// one at a time so that a range of any size keeps memory flat. False when reading
    /// must stop.
    fn targets(
        &self,
        numbering: &mut Numbering,
        source: Arc<str>,
        line: Option<u64>,
        text: &str,
    ) -> bool {
        match parse_range(text) {
            Some(Ok(range)) => range.targets().all(|(text, target)| {
                let origin = numbering.next(source.clone(), line);
                self.entry(self.invalid_or(origin, text, Ok(target)))
            }),
            parsed => {
                let target = match parsed {
                    Some(Err(invalid)) => Err(invalid),
                    _ => parse_target(text),
                };
                let origin = numbering.next(source, line);
                self.entry(self.invalid_or(origin, text.to_owned(), target))
            }
        }
    }

    /// The entry for a target, or a line that is not one, with the command line's settings.
    fn invalid_or(&self, origin: Origin, text: String, target: Result<Target, String>) -> Entry {
        Entry {
            origin,
            text,
            target,
            labels: Labels::default(),
            settings: self.defaults.clone(),
        }
    }

    /// The entry for a checks-file entry: its overrides applied to the command line's
    /// settings once, here, so no attempt works them out again.
    fn checks_entry(&self, origin: Origin, entry: CheckEntry) -> Entry {
        let settings = if entry.overrides.is_empty() {
            self.defaults.clone()
        } else {
            Arc::new(entry.overrides.apply(&self.defaults))
        };
        Entry {
            origin,
            text: entry.text,
            target: entry.target,
            labels: entry.labels,
            settings,
        }
    }

    /// Passes `entry` on if this shard checks it, its text now the one shown everywhere
    /// (a password redacted); false when reading must stop.
    fn entry(&self, mut entry: Entry) -> bool {
        if !self.shard.keeps(&entry.text) {
            return true;
        }
        if let Cow::Owned(shown) = redacted(&entry.text) {
            entry.text = shown;
        }
        self.progress.target_read();
        self.send(Ok(entry))
    }

    /// Passes on the error that stopped reading.
    fn error(&self, err: anyhow::Error) {
        self.send(Err(err));
    }

    /// Sends `item`, waiting first for room for a [`READ_BATCH`] when the scheduler is
    /// behind: waiting for a single free slot had the scheduler wake this thread for every
    /// entry it took. False when the scheduler has gone.
    fn send(&self, item: Item) -> bool {
        if self.sender.capacity() == 0 {
            // The room is only waited for: dropping the permits hands it back to the
            // channel, where this thread, the only sender, finds it.
            if futures::executor::block_on(self.sender.reserve_many(READ_BATCH)).is_err() {
                return false;
            }
        }
        self.sender.blocking_send(item).is_ok()
    }
}

/// Hands out positions in the whole input.
#[derive(Default)]
struct Numbering {
    next_seq: u64,
}

impl Numbering {
    fn next(&mut self, source: Arc<str>, line: Option<u64>) -> Origin {
        let seq = self.next_seq;
        self.next_seq += 1;
        Origin { seq, source, line }
    }
}

/// Sends every entry of one list; returns false when reading must stop.
fn read_list(
    name: Arc<str>,
    mut reader: impl BufRead,
    numbering: &mut Numbering,
    outlet: &Outlet,
) -> bool {
    let mut buffer = Vec::new();
    let mut line_number = 0u64;
    loop {
        let line = match read_capped_line(&mut reader, &mut buffer) {
            Ok(Some(line)) => line,
            Ok(None) => return true,
            Err(err) => {
                let err = anyhow::Error::new(err)
                    .context(format!("error reading '{name}' after line {line_number}"));
                outlet.error(err);
                return false;
            }
        };
        line_number += 1;
        let bytes = if line_number == 1 {
            buffer.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buffer)
        } else {
            &buffer
        };
        let entry = match (line, std::str::from_utf8(bytes)) {
            (Line::TooLong, _) => {
                let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN_PREFIX_BYTES)]);
                outlet.invalid_or(
                    numbering.next(name.clone(), Some(line_number)),
                    format!("{}...", shown.trim_start()),
                    Err(format!("line is longer than {} KiB", MAX_LINE_BYTES / 1024)),
                )
            }
            (Line::Complete, Err(_)) => outlet.invalid_or(
                numbering.next(name.clone(), Some(line_number)),
                String::from_utf8_lossy(bytes).trim().to_owned(),
                Err("line is not valid UTF-8".to_owned()),
            ),
            (Line::Complete, Ok(text)) => match strip_comment(text) {
                Some(target) => {
                    if !outlet.targets(numbering, name.clone(), Some(line_number), target) {
                        return false;
                    }
                    continue;
                }
                None => continue,
            },
        };
        if !outlet.entry(entry) {
            return false;
        }
    }
}

/// Whether a line fitted in the limit.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Complete,
    TooLong,
}

/// Reads one line into `buffer` (without its line ending), keeping at most a little more than
/// [`MAX_LINE_BYTES`] of it; `None` at the end of input.
fn read_capped_line(reader: &mut impl BufRead, buffer: &mut Vec<u8>) -> io::Result<Option<Line>> {
    buffer.clear();
    let mut seen_any = false;
    let mut too_long = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            break;
        }
        seen_any = true;
        let (chunk, consumed, ended) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], end + 1, true),
            None => (available, available.len(), false),
        };
        if !too_long {
            let room = MAX_LINE_BYTES + 1 - buffer.len().min(MAX_LINE_BYTES + 1);
            buffer.extend_from_slice(&chunk[..chunk.len().min(room)]);
            too_long = buffer.len() > MAX_LINE_BYTES;
        }
        reader.consume(consumed);
        if ended {
            break;
        }
    }
    if !seen_any {
        return Ok(None);
    }
    if buffer.last() == Some(&b'\r') {
        buffer.pop();
    }
    Ok(Some(if too_long {
        Line::TooLong
    } else {
        Line::Complete
    }))
}

/// The target part of a line, or `None` for blank and comment lines.
fn strip_comment(line: &str) -> Option<&str> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line
        .char_indices()
        .find(|&(i, c)| c == '#' && line[..i].ends_with(char::is_whitespace))
        .map_or(line.len(), |(i, _)| i);
    Some(line[..end].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads all of a small reader into entries; used by tests of the line format.
    fn entries_of(input: &[u8]) -> Vec<Entry> {
        let (sender, mut receiver) = mpsc::channel(4096);
        let outlet = Outlet {
            sender,
            shard: ShardFilter::default(),
            progress: Progress::new(crate::progress::ProgressWhen::Never),
            defaults: Arc::new(TargetSettings::example()),
        };
        assert!(read_list(
            "t".into(),
            input,
            &mut Numbering::default(),
            &outlet
        ));
        drop(outlet);
        let mut entries = Vec::new();
        while let Ok(item) = receiver.try_recv() {
            entries.push(item.expect("in-memory reads cannot fail"));
        }
        entries
    }

    #[test]
    fn comments_blank_lines_bom_and_crlf_are_skipped() {
        let input = b"\xEF\xBB\xBFhttp://a.test/\r\n\n   # comment\r\n  tcp://b.test:5432  # db\n\t\nhttp://c.test/x#frag # note";
        let entries = entries_of(input);
        let seen: Vec<_> = entries
            .iter()
            .map(|e| (e.origin.line, e.text.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (Some(1), "http://a.test/"),
                (Some(4), "tcp://b.test:5432"),
                (Some(6), "http://c.test/x#frag"),
            ]
        );
        assert!(entries.iter().all(|e| e.target.is_ok()));
        assert_eq!(
            entries[1].target,
            Ok(Target::Tcp {
                host: "b.test".into(),
                port: 5432
            })
        );
    }

    #[test]
    fn invalid_lines_become_entries_with_a_reason() {
        let mut input = b"ftp://x.test/\nexample.com\ntcp://host\nhttp://\n\xff\xfe\n".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES + 10));
        input.extend(b"\nhttp://ok.test/\n");
        let entries = entries_of(&input);
        let reasons: Vec<_> = entries
            .iter()
            .map(|e| e.target.as_ref().err().cloned().unwrap_or_default())
            .collect();
        assert!(reasons[0].contains("unknown scheme 'ftp'"), "{reasons:?}");
        assert!(reasons[1].contains("needs a scheme"), "{reasons:?}");
        assert!(reasons[2].contains("needs a port"), "{reasons:?}");
        assert!(reasons[3].contains("not a valid URL") || reasons[3].contains("no host"));
        assert!(reasons[4].contains("UTF-8"), "{reasons:?}");
        assert!(reasons[5].contains("longer than 64 KiB"), "{reasons:?}");
        assert!(entries[5].text.len() < 100);
        assert_eq!(entries[6].origin.line, Some(7));
        assert!(entries[6].target.is_ok());
    }

    #[test]
    fn a_range_line_is_one_entry_per_address_with_the_line_s_position() {
        let entries =
            entries_of(b"icmp://127.0.0.0/30\ntcp://127.0.0.1-2:9 # two\nicmp://10.0.0.0/7\n");
        let seen: Vec<_> = entries
            .iter()
            .map(|e| (e.origin.seq, e.origin.line, e.text.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (0, Some(1), "icmp://127.0.0.1"),
                (1, Some(1), "icmp://127.0.0.2"),
                (2, Some(2), "tcp://127.0.0.1:9"),
                (3, Some(2), "tcp://127.0.0.2:9"),
                (4, Some(3), "icmp://10.0.0.0/7"),
            ]
        );
        assert!(entries[4].target.as_ref().unwrap_err().contains("33554432"));
    }

    #[test]
    fn positions_run_on_across_entries() {
        let entries = entries_of(b"http://a.test/\nhttp://a.test/\n");
        assert_eq!(entries[0].origin.seq, 0);
        assert_eq!(entries[1].origin.seq, 1);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_bytes_give_at_most_one_entry_per_line(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
                let entries = entries_of(&bytes);
                let lines = bytes.split(|&b| b == b'\n').count() as u64;
                prop_assert!(entries.len() as u64 <= lines);
                for entry in &entries {
                    prop_assert!(entry.origin.line.is_some_and(|line| line >= 1 && line <= lines));
                    if let Err(reason) = &entry.target {
                        prop_assert!(!reason.is_empty());
                    }
                }
            }
        }
    }
}
