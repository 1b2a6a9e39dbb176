use crate::support::{list_file, path, upcheck, Server, Upcheck};

/// Runs with a bad option and checks that nothing was probed and the option is named.
fn assert_usage_error(args: &[&str], names: &str) {
    let server = Server::start();
    let url = server.url("/ok");
    let mut all = vec!["-u", url.as_str()];
    all.extend_from_slice(args);
    let run = upcheck(&all);
    assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
    assert!(
        run.stderr.contains(names),
        "{args:?} should name {names}: {}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
    assert_eq!(server.seen().connections, 0, "{args:?} probed something");
}

#[test]
fn bad_option_values_are_usage_errors_that_name_the_option() {
    assert_usage_error(&["-c", "0"], "--concurrency");
    assert_usage_error(&["--per-host", "none"], "--per-host");
    assert_usage_error(&["--rate", "0"], "--rate");
    assert_usage_error(&["--rate", "fast"], "--rate");
    assert_usage_error(&["--shard", "4/4"], "--shard");
    assert_usage_error(&["--shard", "1"], "--shard");
    assert_usage_error(&["--shard", "0/0"], "--shard");
    assert_usage_error(&["-t", "5 parsecs"], "--timeout");
    assert_usage_error(&["-d", "0s"], "--deadline");
    assert_usage_error(&["--retries", "many"], "--retries");
    assert_usage_error(&["-X", "GE T"], "--method");
    assert_usage_error(&["--expect-status", "2xx"], "--expect-status");
    assert_usage_error(&["--max-body", "1 lot"], "--max-body");
    assert_usage_error(&["-f", "xml"], "--format");
    assert_usage_error(&["--progress", "sometimes"], "--progress");
    assert_usage_error(&["--bogus"], "--bogus");
    assert_usage_error(&["--slow", "0"], "--slow");
    assert_usage_error(&["--cert-min-days", "soon"], "--cert-min-days");
    assert_usage_error(&["-f", "prometheus", "-o", "/"], "'/'");
}

#[test]
fn a_header_without_a_colon_is_a_usage_error_that_hides_the_value() {
    assert_usage_error(&["-H", "Authorization Bearer s3cret"], "--header");
    let run = upcheck(&[
        "-u",
        "http://127.0.0.1:1/",
        "-H",
        "Authorization Bearer s3cret",
    ]);
    assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
}

#[test]
fn files_are_all_opened_before_probing() {
    let server = Server::start();
    let good = list_file(&[server.url("/ok")]);
    let run = upcheck(&[path(&good), "/nonexistent/list.txt"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("/nonexistent/list.txt"),
        "{}",
        run.stderr
    );
    assert_eq!(server.seen().connections, 0);
}

#[test]
fn a_directory_is_not_a_list() {
    let dir = tempfile::tempdir().unwrap();
    let run = upcheck(&[dir.path().to_str().unwrap()]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("is a directory"), "{}", run.stderr);
}

#[test]
fn a_list_without_targets_is_a_usage_error() {
    let empty = list_file(&[]);
    let comments = list_file(&[
        "# nothing here".into(),
        "".into(),
        "   # still nothing".into(),
    ]);
    for run in [
        upcheck(&[path(&empty)]),
        upcheck(&[path(&comments), path(&empty)]),
        Upcheck::new().stdin("\n# x\n").run(),
    ] {
        assert_eq!(run.code, Some(2));
        assert!(run.stderr.contains("no targets"), "{}", run.stderr);
        assert_eq!(run.stdout, "");
    }
}

#[test]
fn a_read_error_after_probing_began_keeps_the_results_and_exits_two() {
    let server = Server::start();
    let good = list_file(&[server.url("/ok")]);
    // Standard input opened on a directory: it opens, but reading it fails (EISDIR), and
    // it is read only after the first list has been probed.
    let directory = std::fs::File::open(std::env::temp_dir()).unwrap();
    let mut command = crate::support::command();
    command
        .args(["-f", "json", path(&good), "-"])
        .stdin(directory)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let run = crate::support::finish(command.spawn().unwrap());
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("error reading '-'"), "{}", run.stderr);
    assert_eq!(run.results().len(), 1);
    assert_eq!(run.results()[0]["ok"], true);
}

#[test]
fn no_input_on_a_terminal_is_a_usage_error_with_a_hint() {
    let run = Upcheck::new().on_terminal().run();
    assert_eq!(run.code, Some(2), "{}", run.stdout);
    assert!(
        run.stdout.contains("--url"),
        "the hint names a way to give endpoints: {}",
        run.stdout
    );
}

#[test]
fn help_in_the_readme_matches_the_binary() {
    let run = upcheck(&["--help"]);
    assert_eq!(run.code, Some(0));
    let readme = include_str!("../README.md");
    let start = readme
        .find("```text\nCheck many")
        .expect("README shows the --help text")
        + "```text\n".len();
    let end = start + readme[start..].find("```").expect("the help block ends");
    assert_eq!(
        readme[start..end].trim_end(),
        run.stdout.trim_end(),
        "README's usage block differs from --help"
    );
}

#[test]
fn version_is_printed() {
    let run = upcheck(&["--version"]);
    assert_eq!(run.code, Some(0));
    assert!(run.stdout.starts_with("upcheck "));
}
