//! Running the real binary and reading what it printed.

pub mod names;
pub mod server;

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::NamedTempFile;

pub use server::Server;

/// Longest any one run may take before the test calls it a hang.
pub const HANG_LIMIT: Duration = Duration::from_secs(60);

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

impl Run {
    /// Stdout as the `json` format's document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|err| {
            panic!("stdout is not one JSON document ({err}):\n{}", self.stdout)
        })
    }

    /// Stdout as the `json` format's document, checked against `schema.json`.
    pub fn document(&self) -> Value {
        let document = self.json();
        assert_matches_schema(&document, "document");
        document
    }

    /// The `json` document's results.
    pub fn results(&self) -> Vec<Value> {
        self.json()["results"]
            .as_array()
            .cloned()
            .expect("a results array")
    }

    /// Stdout as `jsonl`, one object per line.
    pub fn jsonl(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
            })
            .collect()
    }
}

/// Environment variables no run may inherit: a proxy could send test traffic off the
/// machine, and `NO_COLOR` would change the output.
const CLEARED_ENV: [&str; 7] = [
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_COLOR",
];

/// `program` with the [`CLEARED_ENV`] variables removed from its environment.
fn clean_command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for name in CLEARED_ENV {
        command.env_remove(name);
    }
    command
}

/// The binary, with an environment that cannot send test traffic anywhere but loopback.
/// For the few tests that need a raw child process (their own stdio, signals); the others
/// use [`Upcheck`].
pub fn command() -> Command {
    clean_command(env!("CARGO_BIN_EXE_upcheck"))
}

/// One run of the binary, described step by step and then [`run`](Upcheck::run) or
/// [`spawn`](Upcheck::spawn)ed, always with [`command`]'s environment:
///
/// ```text
/// Upcheck::new().format("json").args(["-t", "1s"]).urls(&targets).run()
/// ```
///
/// Arguments are passed in the order they are added.
#[derive(Debug, Default)]
#[must_use]
pub struct Upcheck {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    launcher: Vec<OsString>,
    stdin: Option<String>,
    terminal: bool,
}

impl Upcheck {
    /// A run with no arguments and nothing on standard input.
    pub fn new() -> Upcheck {
        Upcheck::default()
    }

    /// Adds `args` as they are.
    pub fn args<I, S>(mut self, args: I) -> Upcheck
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Adds `-f FORMAT`.
    pub fn format(self, format: &str) -> Upcheck {
        self.args(["-f", format])
    }

    /// Adds `-u TARGET` for each of `targets`.
    pub fn urls<I, S>(mut self, targets: I) -> Upcheck
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for target in targets {
            self = self.args([OsStr::new("-u"), target.as_ref()]);
        }
        self
    }

    /// Feeds `text` on standard input, then closes it (without this, it is empty).
    pub fn stdin(mut self, text: &str) -> Upcheck {
        self.stdin = Some(text.to_owned());
        self
    }

    /// Sets the environment variable `name` (which may be one [`command`] clears).
    pub fn env(mut self, name: &str, value: &str) -> Upcheck {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Starts the binary through `launcher`, a program and its first arguments, which is
    /// then given the binary's path and the arguments: `["setpriv", "--reuid=65534"]`, or
    /// `["sh", "-c", "ulimit -n 256 && exec \"$0\" \"$@\""]`. Empty, the binary runs
    /// directly.
    pub fn via<I, S>(mut self, launcher: I) -> Upcheck
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.launcher = launcher
            .into_iter()
            .map(|part| part.as_ref().to_owned())
            .collect();
        self
    }

    /// Runs on a pseudo-terminal (util-linux `script`): the run's `stdout` is everything
    /// the terminal showed, the binary's stdout and stderr together, and its `stderr` is
    /// `script`'s own.
    pub fn on_terminal(mut self) -> Upcheck {
        self.terminal = true;
        self
    }

    /// Runs to the end (at most [`HANG_LIMIT`]).
    pub fn run(self) -> Run {
        // script's own record of the terminal goes to a file of the test's, never /dev.
        let typescript = tempfile::tempdir().expect("a directory for script's record");
        finish(self.start(Some(&typescript.path().join("typescript"))))
    }

    /// Starts the run with piped stdout and stderr, for a test that reads or signals it
    /// before [`finish`]ing it.
    pub fn spawn(self) -> Child {
        self.start(None)
    }

    /// Starts the run; on a terminal, `script` records it into `typescript`.
    fn start(self, typescript: Option<&Path>) -> Child {
        let mut argv = self.launcher;
        argv.push(env!("CARGO_BIN_EXE_upcheck").into());
        argv.extend(self.args);
        let mut command = if self.terminal {
            // -e: script exits with the binary's status; -q: it adds no banner.
            let typescript = typescript.expect("a run on a terminal is started with run()");
            let mut command = clean_command("script");
            command.args([
                OsStr::new("-qec"),
                &shell_words(&argv),
                typescript.as_os_str(),
            ]);
            command
        } else {
            let mut command = clean_command(&argv[0]);
            command.args(&argv[1..]);
            command
        };
        command.envs(self.env);
        start(&mut command, self.stdin.as_deref())
    }
}

/// `argv` as one POSIX shell command line, each word single-quoted.
fn shell_words(argv: &[OsString]) -> OsString {
    let words: Vec<String> = argv
        .iter()
        .map(|word| {
            let word = word
                .to_str()
                .expect("arguments run on a terminal are UTF-8");
            format!("'{}'", word.replace('\'', "'\\''"))
        })
        .collect();
    words.join(" ").into()
}

/// Runs the binary with `args` and no standard input: short for
/// `Upcheck::new().args(args).run()`.
pub fn upcheck(args: &[&str]) -> Run {
    Upcheck::new().args(args).run()
}

/// Starts `command` with piped output (and input when given).
fn start(command: &mut Command, input: Option<&str>) -> Child {
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {:?}: {err}", command.get_program()));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_owned();
        thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
    }
    child
}

/// Waits for `child` (at most [`HANG_LIMIT`]) and collects its output.
pub fn finish(mut child: Child) -> Run {
    let started = Instant::now();
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for upcheck") {
            break status;
        }
        if started.elapsed() > HANG_LIMIT {
            let _ = child.kill();
            panic!("upcheck did not finish within {HANG_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.code(),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// Starts the binary with `args` and a standard input the test holds open (stdout and
/// stderr piped), for what happens while input may still come.
pub fn with_open_stdin(args: &[&str]) -> (Child, ChildStdin) {
    let mut child = command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start upcheck");
    let stdin = child.stdin.take().expect("piped stdin");
    (child, stdin)
}

/// Makes a character device node `major:minor` at `path` (root only, in a temporary dir).
pub fn char_device(path: &Path, major: u32, minor: u32) {
    let name = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; mknod only creates the node it is asked for.
    let made = unsafe {
        libc::mknod(
            name.as_ptr(),
            libc::S_IFCHR | 0o666,
            libc::makedev(major, minor),
        )
    };
    assert_eq!(
        made,
        0,
        "mknod {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Polls `done` until it holds, failing the test if that takes longer than [`HANG_LIMIT`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < HANG_LIMIT,
            "waited too long until {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// A temporary endpoint list holding `lines`.
pub fn list_file(lines: &[String]) -> NamedTempFile {
    list_bytes(lines.join("\n").as_bytes())
}

/// A temporary endpoint list holding exactly `bytes`.
pub fn list_bytes(bytes: &[u8]) -> NamedTempFile {
    let mut file = NamedTempFile::new().expect("create a temporary list");
    file.write_all(bytes).expect("write the list");
    file.flush().expect("flush the list");
    file
}

/// A temporary checks file holding `text`.
pub fn checks_file(text: &str) -> NamedTempFile {
    list_bytes(text.as_bytes())
}

/// The path of a temporary file, as an argument.
pub fn path(file: &NamedTempFile) -> &str {
    file.path().to_str().expect("temporary paths are UTF-8")
}

/// A loopback port nobody listens on (bound, then released).
pub fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("a local address").port()
}

/// A host name that fails to resolve without any packet leaving the machine: glibc refuses
/// to encode a DNS label longer than 63 bytes, so the lookup fails before a query is sent.
pub fn unresolvable_host() -> String {
    format!("{}.invalid", "a".repeat(64))
}

/// Checks `value` against the `$defs` entry `definition` of the checked-in `schema.json`.
pub fn assert_matches_schema(value: &Value, definition: &str) {
    let schema: Value =
        serde_json::from_str(include_str!("../../schema.json")).expect("schema.json is JSON");
    let root = if definition == "document" {
        schema
    } else {
        serde_json::json!({ "$defs": schema["$defs"], "$ref": format!("#/$defs/{definition}") })
    };
    let validator = jsonschema::validator_for(&root).expect("schema.json is a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "output does not match schema.json ({definition}): {errors:?}\n{value:#}"
    );
}

/// The result in `results` whose target is `target`.
pub fn result_for<'a>(results: &'a [Value], target: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["target"] == target)
        .unwrap_or_else(|| panic!("no result for {target} in {results:#?}"))
}
