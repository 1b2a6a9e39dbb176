//! Checks files (`--checks FILE`): TOML with one `[[check]]` table per target, each able to
//! override the command-line defaults for its own target and to give it a name and tags.
//!
//! A file is read one `[[check]]` table at a time (each table is a TOML document of its
//! own once cut at its header line), so a file of a million entries needs the memory of
//! one. It is read through once before probing starts, to keep the promise that a file
//! that is not TOML at all is a usage error naming its line, and again as the entries
//! are probed; a bad entry becomes an `invalid` result naming its line, as a bad line of
//! a plain list does.

use std::collections::HashMap;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use reqwest::header::HeaderMap;
use reqwest::Method;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::probe::{Identity, IdentityFile, Roots, TargetSettings, TlsSettings};
use crate::range::parse_range;
use crate::target::{parse_target, Labels, Target};
use crate::values::{self, StatusSet};

/// The array of tables that holds the entries.
const CHECK_KEY: &str = "check";

/// What an entry shows as its target when it has no usable `url`.
const NO_URL: &str = "[[check]]";

/// Per-target settings; each one left unset keeps the command line's.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overrides {
    /// HTTP method.
    pub(crate) method: Option<Method>,
    /// Headers that replace the command line's headers of the same name; others are kept.
    pub(crate) headers: HeaderMap,
    /// Healthy status codes.
    pub(crate) expect_status: Option<StatusSet>,
    /// Text the body must contain.
    pub(crate) body_contains: Option<String>,
    /// Limit for one attempt.
    pub(crate) timeout: Option<Duration>,
    /// CAs to trust and the client certificate to present.
    pub(crate) tls: TlsSettings,
    /// Text a tcp:// target's banner must contain.
    pub(crate) banner_contains: Option<String>,
}

impl Overrides {
    /// Whether the entry sets nothing of its own, so the command line's settings serve as they are.
    pub(crate) fn is_empty(&self) -> bool {
        !self.any_http() && self.timeout.is_none() && self.banner_contains.is_none()
    }

    /// The command line's `defaults` with what this entry sets in their place.
    pub(crate) fn apply(&self, defaults: &TargetSettings) -> TargetSettings {
        TargetSettings {
            timeout: self.timeout.unwrap_or(defaults.timeout),
            method: self
                .method
                .clone()
                .unwrap_or_else(|| defaults.method.clone()),
            headers: merged_headers(&defaults.headers, &self.headers),
            expect_status: self
                .expect_status
                .clone()
                .unwrap_or_else(|| defaults.expect_status.clone()),
            body_contains: self
                .body_contains
                .clone()
                .or_else(|| defaults.body_contains.clone()),
            tls: self.tls.or(&defaults.tls),
            banner_contains: self
                .banner_contains
                .clone()
                .or_else(|| defaults.banner_contains.clone()),
        }
    }

    /// Whether any HTTP-only setting is given.
    fn any_http(&self) -> bool {
        self.method.is_some()
            || !self.headers.is_empty()
            || self.expect_status.is_some()
            || self.body_contains.is_some()
            || !self.tls.is_empty()
    }
}

/// One entry of a checks file, ready to become an input entry.
#[derive(Debug)]
pub(crate) struct CheckEntry {
    /// The line of its `url`, or for a bad entry, of what is wrong with it.
    pub(crate) line: u64,
    /// The `url` as written (for a bad entry without one, `[[check]]`).
    pub(crate) text: String,
    /// The target, or why the entry is not a valid one.
    pub(crate) target: Result<Target, String>,
    /// Name and tags; for a bad entry, those that are readable.
    pub(crate) labels: Labels,
    /// Settings for this target only.
    pub(crate) overrides: Overrides,
}

/// Reads a checks file's entries in file order, one `[[check]]` table at a time.
///
/// Errors only when the file as a whole is unusable: not TOML, or not shaped as `[[check]]`
/// tables. A bad entry is returned as an entry whose target is an error.
pub(crate) struct Reader<R> {
    name: String,
    input: R,
    /// The line number of the last line read.
    line: u64,
    /// A `[[check]]` header already read, which starts the next table.
    header: Option<String>,
    /// Where the part before the first header defined `check` some other way (an inline
    /// array, a `[check]` table): no `[[check]]` table may follow it.
    check_before_tables: Option<u64>,
    /// The TLS files entries name, each read once.
    files: TlsFiles,
}

impl<R: BufRead> Reader<R> {
    /// Reads the checks file `name` from `input`.
    pub(crate) fn new(name: &str, input: R) -> Self {
        Reader {
            name: name.to_owned(),
            input,
            line: 0,
            header: None,
            check_before_tables: None,
            files: TlsFiles::new(name),
        }
    }

    /// The input, to read again.
    pub(crate) fn into_inner(self) -> R {
        self.input
    }

    /// The TLS files (`ca_file`, `client_cert`, `client_key`) the entries read so far name.
    pub(crate) fn tls_files(&self) -> Vec<PathBuf> {
        let files = &self.files;
        let identities = files
            .identities
            .keys()
            .flat_map(|(cert, key)| std::iter::once(cert).chain(key));
        files.roots.keys().chain(identities).cloned().collect()
    }

    /// The entries of the next table (a table can hold none, or more when the file
    /// nests them in ways the cut does not see); `None` at the end of the file.
    pub(crate) fn next_entries(&mut self) -> anyhow::Result<Option<Vec<CheckEntry>>> {
        let mut starts_with_header = self.header.is_some();
        let first_line = self.line + 1 - u64::from(starts_with_header);
        let mut text = self.header.take().unwrap_or_default();
        let mut strings = Strings::default();
        let mut line = String::new();
        loop {
            line.clear();
            let read = match self.input.read_line(&mut line) {
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::InvalidData => bail!(
                    "cannot read '{}': line {} is not UTF-8 text",
                    self.name,
                    self.line + 1
                ),
                Err(err) => {
                    return Err(err).with_context(|| {
                        format!("cannot read '{}' after line {}", self.name, self.line)
                    })
                }
            };
            if read == 0 {
                break;
            }
            self.line += 1;
            if strings.outside() && is_check_header(&line) {
                if !text.is_empty() {
                    self.header = Some(line.clone());
                    break;
                }
                starts_with_header = true;
            }
            strings.scan(&line);
            text.push_str(&line);
        }
        if text.is_empty() {
            return Ok(None);
        }
        if starts_with_header {
            if let Some(defined) = self.check_before_tables {
                bail!(
                    "{}:{first_line}: not valid TOML: 'check' is already defined on line \
                     {defined}, so a [[check]] table cannot follow",
                    self.name
                );
            }
        }
        let lines = Lines::new(&text, first_line);
        let document = parse_document(&self.name, &text, &lines, &mut self.files)?;
        if !starts_with_header {
            self.check_before_tables = document.defined_at;
        }
        Ok(Some(document.entries))
    }
}

/// The entries of one piece of a checks file, and the line of its `check` key.
struct Document {
    entries: Vec<CheckEntry>,
    defined_at: Option<u64>,
}

/// Parses one piece of a checks file, `text`, whose lines `lines` numbers.
fn parse_document(
    name: &str,
    text: &str,
    lines: &Lines,
    files: &mut TlsFiles,
) -> anyhow::Result<Document> {
    let document = match DeTable::parse(text) {
        Ok(document) => document,
        Err(err) => {
            let line = lines.at(err.span().map_or(0, |span| span.start));
            bail!(
                "{name}:{line}: not valid TOML: {}",
                err.message().trim_end()
            );
        }
    };
    let mut checks = None;
    for (key, value) in document.get_ref() {
        if key.get_ref() != CHECK_KEY {
            bail!(
                "{name}:{}: unknown key '{}': a checks file holds only [[check]] tables",
                lines.at(key.span().start),
                key.get_ref()
            );
        }
        checks = Some((key, value));
    }
    let Some((key, checks)) = checks else {
        return Ok(Document {
            entries: Vec::new(),
            defined_at: None,
        });
    };
    let Some(tables) = checks.get_ref().as_array() else {
        bail!(
            "{name}:{}: 'check' must be an array of tables, written [[check]]",
            lines.at(checks.span().start)
        );
    };
    let entries = tables
        .iter()
        .map(|table| {
            let (mut entry, paths) = parse_entry(table, lines);
            entry.overrides.tls = files.load(&paths)?;
            Ok(entry)
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Document {
        entries,
        defined_at: Some(lines.at(key.span().start)),
    })
}

/// Whether `line` is the header of a `[[check]]` table, however spaced or quoted.
fn is_check_header(line: &str) -> bool {
    let code = line.split('#').next().unwrap_or_default();
    let squeezed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    matches!(
        squeezed.as_str(),
        "[[check]]" | "[[\"check\"]]" | "[['check']]"
    )
}

/// Whether the reader is inside a multi-line string, where a line that looks like a
/// header is text.
#[derive(Default)]
struct Strings {
    open: Option<&'static str>,
}

impl Strings {
    fn outside(&self) -> bool {
        self.open.is_none()
    }

    /// Follows the strings and comments of one line.
    fn scan(&mut self, line: &str) {
        let bytes = line.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            match self.open {
                Some(close) => {
                    if close == "\"\"\"" && bytes[at] == b'\\' {
                        at += 2;
                    } else if rest.starts_with(close.as_bytes()) {
                        // A closing delimiter may carry up to two more quotes of content.
                        at += close.len();
                        let quote = close.as_bytes()[0];
                        at += bytes[at..]
                            .iter()
                            .take(2)
                            .take_while(|&&b| b == quote)
                            .count();
                        self.open = None;
                    } else {
                        at += 1;
                    }
                }
                None => match rest[0] {
                    b'#' => return,
                    b'"' if rest.starts_with(b"\"\"\"") => {
                        self.open = Some("\"\"\"");
                        at += 3;
                    }
                    b'\'' if rest.starts_with(b"'''") => {
                        self.open = Some("'''");
                        at += 3;
                    }
                    b'"' => at += one_line_string(rest, true),
                    b'\'' => at += one_line_string(rest, false),
                    _ => at += 1,
                },
            }
        }
    }
}

/// The length of the one-line string `rest` starts with (to the end of the line if it
/// is never closed, which the parser reports).
fn one_line_string(rest: &[u8], escapes: bool) -> usize {
    let quote = rest[0];
    let mut at = 1;
    while at < rest.len() {
        match rest[at] {
            b'\\' if escapes => at += 2,
            b if b == quote => return at + 1,
            _ => at += 1,
        }
    }
    rest.len()
}

/// An entry's TLS files as written, each with the line that names it.
#[derive(Default)]
struct TlsPaths {
    ca_file: Option<(u64, String)>,
    client_cert: Option<(u64, String)>,
    client_key: Option<(u64, String)>,
}

/// Reads the TLS files entries name, each once, relative to the checks file's folder.
struct TlsFiles {
    name: String,
    folder: PathBuf,
    roots: HashMap<PathBuf, Arc<Roots>>,
    identities: HashMap<(PathBuf, Option<PathBuf>), Arc<Identity>>,
}

impl TlsFiles {
    fn new(name: &str) -> Self {
        TlsFiles {
            name: name.to_owned(),
            folder: Path::new(name)
                .parent()
                .map(Path::to_owned)
                .unwrap_or_default(),
            roots: HashMap::new(),
            identities: HashMap::new(),
        }
    }

    /// The settings `paths` name; an error names the checks file, the line and the key.
    fn load(&mut self, paths: &TlsPaths) -> anyhow::Result<TlsSettings> {
        let name = self.name.clone();
        let mut settings = TlsSettings::default();
        if let Some((line, path)) = &paths.ca_file {
            let path = self.folder.join(path);
            let roots = match self.roots.get(&path) {
                Some(roots) => roots.clone(),
                None => {
                    Roots::load(&path).map_err(|why| anyhow!("{name}:{line}: ca_file: {why}"))?
                }
            };
            self.roots.insert(path, roots.clone());
            settings.roots = Some(roots);
        }
        if let Some((cert_line, cert)) = &paths.client_cert {
            let cert = self.folder.join(cert);
            let key = paths
                .client_key
                .as_ref()
                .map(|(_, key)| self.folder.join(key));
            let id = (cert, key);
            let identity = match self.identities.get(&id) {
                Some(identity) => identity.clone(),
                None => Identity::load(&id.0, id.1.as_deref()).map_err(|(file, why)| {
                    match (file, &paths.client_key) {
                        (IdentityFile::Key, Some((key_line, _))) => {
                            anyhow!("{name}:{key_line}: client_key: {why}")
                        }
                        _ => anyhow!("{name}:{cert_line}: client_cert: {why}"),
                    }
                })?,
            };
            self.identities.insert(id, identity.clone());
            settings.identity = Some(identity);
        }
        Ok(settings)
    }
}

/// Turns one `[[check]]` table into an entry, and the TLS files it names.
fn parse_entry(table: &Spanned<DeValue<'_>>, lines: &Lines) -> (CheckEntry, TlsPaths) {
    let header_line = lines.at(table.span().start);
    let mut tls = TlsPaths::default();
    let Some(fields) = table.get_ref().as_table() else {
        let entry = CheckEntry {
            line: header_line,
            text: NO_URL.to_owned(),
            target: Err(format!(
                "an entry must be a table, found {}",
                table.get_ref().type_str()
            )),
            labels: Labels::default(),
            overrides: Overrides::default(),
        };
        return (entry, tls);
    };
    let mut fields: Vec<_> = fields.iter().collect();
    fields.sort_by_key(|(key, _)| key.span().start);

    let (mut labels, mut overrides) = (Labels::default(), Overrides::default());
    let mut url: Option<(u64, String)> = None;
    // Fields are in file order, so the first error is the one nearest the top.
    let mut first_error: Option<(u64, String)> = None;
    for (key, value) in fields {
        let line = lines.at(key.span().start);
        let key = key.get_ref().as_ref();
        let value = value.get_ref();
        let parsed = match key {
            // White space around it is no part of it, as around a list line.
            "url" => string(value).map(|text| url = Some((line, text.trim().to_owned()))),
            "name" => label(value).map(|name| labels.name = Some(name)),
            "tags" => tags(value).map(|tags| labels.tags = tags),
            "method" => string(value)
                .and_then(values::parse_method)
                .map(|method| overrides.method = Some(method)),
            "headers" => headers(value).map(|headers| overrides.headers = headers),
            "expect_status" => expect_status(value)
                .map(|expect_status| overrides.expect_status = Some(expect_status)),
            "body_contains" => {
                string(value).map(|text| overrides.body_contains = Some(text.to_owned()))
            }
            "timeout" => timeout(value).map(|timeout| overrides.timeout = Some(timeout)),
            "ca_file" => path(value).map(|path| tls.ca_file = Some((line, path))),
            "client_cert" => path(value).map(|path| tls.client_cert = Some((line, path))),
            "client_key" => path(value).map(|path| tls.client_key = Some((line, path))),
            "banner_contains" => {
                string(value).map(|text| overrides.banner_contains = Some(text.to_owned()))
            }
            _ => Err(
                "unknown key (use url, name, method, headers, expect_status, body_contains, \
                 banner_contains, timeout, tags, ca_file, client_cert or client_key)"
                    .to_owned(),
            ),
        };
        if let Err(message) = parsed {
            first_error.get_or_insert_with(|| (line, format!("{key}: {message}")));
        }
    }

    if let (Some((line, _)), None) = (&tls.client_key, &tls.client_cert) {
        first_error.get_or_insert_with(|| (*line, "client_key: needs client_cert".to_owned()));
    }
    let any_http = overrides.any_http()
        || tls.ca_file.is_some()
        || tls.client_cert.is_some()
        || tls.client_key.is_some();
    let (line, target) = match (first_error, &url) {
        (Some((line, message)), _) => (line, Err(message)),
        (None, None) => (header_line, Err("the entry has no url".to_owned())),
        (None, Some((line, text))) if parse_range(text).is_some() => (
            *line,
            Err(
                "url: address ranges are read from lists and --url, not from checks files"
                    .to_owned(),
            ),
        ),
        (None, Some((line, text))) => match parse_target(text) {
            Err(reason) => (*line, Err(format!("url: {reason}"))),
            Ok(Target::Tcp { .. } | Target::Icmp { .. }) if any_http => (
                *line,
                Err(
                    "method, headers, expect_status, body_contains, ca_file, client_cert and \
                     client_key apply only to http:// and https:// targets"
                        .to_owned(),
                ),
            ),
            Ok(Target::Http(_) | Target::Icmp { .. }) if overrides.banner_contains.is_some() => (
                *line,
                Err("banner_contains applies only to tcp:// targets".to_owned()),
            ),
            Ok(target) => (*line, Ok(target)),
        },
    };
    let entry = CheckEntry {
        line,
        text: url.map_or_else(|| NO_URL.to_owned(), |(_, text)| text),
        target,
        labels,
        overrides,
    };
    (entry, tls)
}

/// A file path: a string that is not empty.
fn path(value: &DeValue<'_>) -> Result<String, String> {
    match string(value)? {
        "" => Err("must not be empty".to_owned()),
        text => Ok(text.to_owned()),
    }
}

/// The command line's headers with those an entry sets replaced by its own.
fn merged_headers(defaults: &HeaderMap, own: &HeaderMap) -> HeaderMap {
    let mut headers = defaults.clone();
    for name in own.keys() {
        headers.remove(name);
    }
    for (name, value) in own {
        headers.append(name, value.clone());
    }
    headers
}

fn string<'a>(value: &'a DeValue<'_>) -> Result<&'a str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("expected a string, found {}", value.type_str()))
}

/// A name or tag: printed in every format, so it must be one line of visible text.
fn label(value: &DeValue<'_>) -> Result<String, String> {
    let text = string(value)?;
    if text.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    if text.chars().any(char::is_control) {
        return Err("must not hold control characters (newlines, tabs, escapes)".to_owned());
    }
    Ok(text.to_owned())
}

fn tags(value: &DeValue<'_>) -> Result<Vec<String>, String> {
    let Some(items) = value.as_array() else {
        return Err(format!(
            "expected an array of strings, found {}",
            value.type_str()
        ));
    };
    items.iter().map(|item| label(item.get_ref())).collect()
}

/// Headers as a table of name to value; a rejected value is never quoted.
fn headers(value: &DeValue<'_>) -> Result<HeaderMap, String> {
    let Some(table) = value.as_table() else {
        return Err(format!(
            "expected a table of name = \"value\", found {}",
            value.type_str()
        ));
    };
    let mut map = HeaderMap::new();
    for (name, value) in table {
        let Some(value) = value.get_ref().as_str() else {
            return Err(format!(
                "the value of a header must be a string, found {}",
                value.get_ref().type_str()
            ));
        };
        let (name, value) =
            values::parse_header(name.get_ref(), value).map_err(|e| e.to_string())?;
        map.append(name, value);
    }
    Ok(map)
}

/// `"200,204,300-399"` or a single code as a number.
fn expect_status(value: &DeValue<'_>) -> Result<StatusSet, String> {
    match value {
        DeValue::String(text) => StatusSet::parse(text),
        DeValue::Integer(code) => {
            let code = i64::from_str_radix(code.as_str(), code.radix())
                .map_err(|_| "is out of range".to_owned())?;
            StatusSet::parse(&code.to_string())
        }
        other => Err(format!(
            "expected a string like \"200-299,404\" or a status code, found {}",
            other.type_str()
        )),
    }
}

/// `"2s"` as on the command line, or a number of seconds.
fn timeout(value: &DeValue<'_>) -> Result<Duration, String> {
    let seconds = match value {
        DeValue::String(text) => return values::parse_timer(text),
        DeValue::Integer(number) => i64::from_str_radix(number.as_str(), number.radix())
            .map_err(|_| "is out of range".to_owned())? as f64,
        DeValue::Float(number) => number
            .as_str()
            .parse::<f64>()
            .map_err(|_| "is not a number".to_owned())?,
        other => {
            return Err(format!(
                "expected a duration like \"2s\" or a number of seconds, found {}",
                other.type_str()
            ))
        }
    };
    if !seconds.is_finite() {
        return Err("is not a number of seconds".to_owned());
    }
    if seconds <= 0.0 {
        return Err("must be greater than zero".to_owned());
    }
    values::timer(values::seconds(seconds)?)
}

/// Byte offsets in a piece of the file to the file's 1-based line numbers.
struct Lines {
    starts: Vec<usize>,
    /// The file's line number of the piece's first line.
    first: u64,
}

impl Lines {
    fn new(text: &str, first: u64) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Lines { starts, first }
    }

    fn at(&self, offset: usize) -> u64 {
        self.starts.partition_point(|&start| start <= offset) as u64 + self.first - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry of the checks file `name` holding `text`.
    fn parse(name: &str, text: &str) -> anyhow::Result<Vec<CheckEntry>> {
        let mut reader = Reader::new(name, text.as_bytes());
        let mut entries = Vec::new();
        while let Some(more) = reader.next_entries()? {
            entries.extend(more);
        }
        Ok(entries)
    }

    #[test]
    fn entry_headers_replace_those_of_the_same_name() {
        use reqwest::header::HeaderValue;
        let mut defaults = HeaderMap::new();
        defaults.insert("x-a", HeaderValue::from_static("cli"));
        defaults.insert("x-b", HeaderValue::from_static("cli"));
        let mut own = HeaderMap::new();
        own.append("x-b", HeaderValue::from_static("entry"));
        let merged = merged_headers(&defaults, &own);
        assert_eq!(merged["x-a"], "cli");
        assert_eq!(merged.get_all("x-b").iter().count(), 1);
        assert_eq!(merged["x-b"], "entry");
        assert_eq!(merged_headers(&defaults, &HeaderMap::new()), defaults);
    }

    fn reasons(entries: &[CheckEntry]) -> Vec<(u64, String)> {
        entries
            .iter()
            .map(|e| (e.line, e.target.as_ref().err().cloned().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn entries_carry_their_settings_and_the_line_of_their_url() {
        let text = r#"
# the API
[[check]]
name = "api"
url = "https://api.test/health"
method = "head"
headers = { Authorization = "Bearer s3cret", "X-Trace" = "1" }
expect_status = "200,204"
body_contains = "up"
timeout = "1.5s"
tags = ["prod", "eu"]

[[check]]
url = "tcp://db.test:5432"
timeout = 3

[[check]]
url = "http://b.test/"
expect_status = 404
timeout = 0.25
"#;
        let entries = parse("c.toml", text).unwrap();
        assert_eq!(entries.len(), 3);
        let api = &entries[0];
        assert_eq!(
            (api.line, api.text.as_str()),
            (5, "https://api.test/health")
        );
        assert!(api.target.is_ok());
        assert_eq!(api.labels.name.as_deref(), Some("api"));
        assert_eq!(api.labels.tags, ["prod", "eu"]);
        let overrides = &api.overrides;
        assert_eq!(overrides.method, Some(Method::HEAD));
        assert_eq!(overrides.headers["authorization"], "Bearer s3cret");
        assert_eq!(overrides.headers["x-trace"], "1");
        assert!(overrides.expect_status.as_ref().unwrap().contains(204));
        assert_eq!(overrides.body_contains.as_deref(), Some("up"));
        assert_eq!(overrides.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(entries[1].line, 14);
        assert_eq!(entries[1].overrides.timeout, Some(Duration::from_secs(3)));
        let b = &entries[2].overrides;
        assert!(b.expect_status.as_ref().unwrap().contains(404));
        assert_eq!(b.timeout, Some(Duration::from_millis(250)));
    }

    #[test]
    fn bad_entries_name_the_line_of_what_is_wrong() {
        let text = r#"[[check]]
url = "ftp://x.test/"

[[check]]
name = "no url"

[[check]]
url = "http://a.test/"
timeout = "5x"

[[check]]
url = "http://a.test/"
timout = "5s"

[[check]]
url = "tcp://db.test:5432"
method = "POST"

[[check]]
url = "http://a.test/"
headers = { Authorization = "Bearer s3cret\u007f" }

[[check]]
url = "http://a.test/"
name = "two\nlines"

[[check]]
url = "http://ok.test/"
"#;
        let entries = parse("c.toml", text).unwrap();
        let reasons = reasons(&entries);
        assert_eq!(reasons[0].0, 2);
        assert!(reasons[0].1.contains("unknown scheme 'ftp'"), "{reasons:?}");
        assert_eq!(reasons[1], (4, "the entry has no url".to_owned()));
        assert_eq!(entries[1].labels.name.as_deref(), Some("no url"));
        assert_eq!(reasons[2].0, 9);
        assert!(reasons[2].1.starts_with("timeout: unknown unit 'x'"));
        assert_eq!(reasons[3].0, 13);
        assert!(reasons[3].1.starts_with("timout: unknown key"));
        assert_eq!(reasons[4].0, 16);
        assert!(reasons[4].1.contains("only to http://"));
        assert_eq!(reasons[5].0, 21);
        assert!(reasons[5]
            .1
            .contains("'authorization: <redacted>' has characters"));
        assert!(!reasons[5].1.contains("s3cret"));
        assert_eq!(reasons[6].0, 25);
        assert!(reasons[6].1.starts_with("name: must not hold control"));
        assert_eq!(reasons[7], (28, String::new()));
        assert!(entries[7].target.is_ok());
    }

    #[test]
    fn a_file_that_is_not_toml_is_an_error_naming_its_line() {
        let err = parse("c.toml", "[[check]]\nurl = \"http://a.test/\"\nname = \n").unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("c.toml:3: not valid TOML"), "{message}");
        let err = parse("c.toml", "[[checks]]\nurl = \"http://a.test/\"\n").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("c.toml:1: unknown key 'checks'"));
        let err = parse("c.toml", "check = \"http://a.test/\"\n").unwrap_err();
        assert!(err.to_string().contains("array of tables"));
    }

    #[test]
    fn secrets_in_broken_toml_are_not_echoed() {
        let err = parse("c.toml", "[[check]]\nheaders = { A = \"s3cret\n").unwrap_err();
        assert!(!format!("{err:#}").contains("s3cret"), "{err:#}");
    }

    #[test]
    fn an_empty_file_has_no_entries() {
        assert!(parse("c.toml", "# nothing yet\n").unwrap().is_empty());
        let inline = parse("c.toml", "check = [{ url = \"http://a.test/\" }]").unwrap();
        assert_eq!(inline[0].line, 1);
    }

    #[test]
    fn tables_are_cut_only_at_headers_outside_strings() {
        let text = r#"# entries
[[check]]
url = "http://a.test/"
body_contains = """
[[check]]
"""
[[ check ]] # spaced
url = 'http://b.test/'
name = '''
[[check]]'''
[check.headers]
X-A = "1"
[[check]]
url = "tcp://c.test:1"
"#;
        let entries = parse("c.toml", text).unwrap();
        assert_eq!(entries.len(), 3, "{entries:?}");
        assert_eq!(
            entries[0].overrides.body_contains.as_deref(),
            Some("[[check]]\n")
        );
        assert_eq!(
            (entries[1].line, entries[1].text.as_str()),
            (8, "http://b.test/")
        );
        assert_eq!(entries[1].labels.name.as_deref(), Some("[[check]]"));
        assert_eq!(entries[1].overrides.headers["x-a"], "1");
        assert_eq!(entries[2].line, 14);
    }

    #[test]
    fn errors_in_later_tables_name_their_line() {
        let text =
            "[[check]]\nurl = \"http://a.test/\"\n\n[[check]]\nurl = \"http://b.test/\"\nname = \n";
        let err = parse("c.toml", text).unwrap_err();
        assert!(
            err.to_string().starts_with("c.toml:6: not valid TOML"),
            "{err}"
        );
        let text = "[[check]]\nurl = \"http://a.test/\"\n[other]\nx = 1\n";
        let err = parse("c.toml", text).unwrap_err();
        assert!(
            err.to_string().starts_with("c.toml:3: unknown key 'other'"),
            "{err}"
        );
        let text = "check = [{ url = \"http://a.test/\" }]\n[[check]]\nurl = \"http://b.test/\"\n";
        let err = parse("c.toml", text).unwrap_err();
        assert!(
            err.to_string().starts_with("c.toml:2: not valid TOML"),
            "{err}"
        );
        let mut reader = Reader::new("c.toml", &b"[[check]]\nurl = \"\xff\"\n"[..]);
        let err = reader.next_entries().unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read 'c.toml': line 2 is not UTF-8 text"
        );
    }

    #[test]
    fn lines_count_from_one() {
        let lines = Lines::new("a\nbb\n\nc", 1);
        assert_eq!(
            [0, 1, 2, 4, 5, 6].map(|at| lines.at(at)),
            [1, 1, 2, 2, 3, 4]
        );
        let lines = Lines::new("a\nbb", 10);
        assert_eq!([0, 2].map(|at| lines.at(at)), [10, 11]);
    }
}
