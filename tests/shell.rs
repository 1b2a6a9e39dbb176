use std::io::Write;
use std::process::{Command, Stdio};

use clap::CommandFactory;

use crate::support::upcheck;

/// Every long option of the real clap definition.
fn long_options() -> Vec<String> {
    let options: Vec<String> = upcheck::Cli::command()
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .map(|long| format!("--{long}"))
        .collect();
    assert!(options.contains(&"--concurrency".to_owned()), "{options:?}");
    options
}

#[test]
fn the_bash_completion_script_is_valid_bash_and_knows_every_option() {
    let run = upcheck(&["--completions", "bash"]);
    assert_eq!(run.code, Some(0), "needs no target: {}", run.stderr);
    for option in long_options() {
        assert!(run.stdout.contains(&option), "completion lacks {option}");
    }
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bash");
    bash.stdin
        .take()
        .unwrap()
        .write_all(run.stdout.as_bytes())
        .unwrap();
    let checked = bash.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "bash -n rejects the script: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn zsh_and_fish_scripts_are_printed_too() {
    let zsh = upcheck(&["--completions", "zsh"]);
    assert_eq!(zsh.code, Some(0), "{}", zsh.stderr);
    assert!(zsh.stdout.starts_with("#compdef upcheck"), "{}", zsh.stdout);
    assert!(zsh.stdout.contains("--concurrency"));
    let fish = upcheck(&["--completions", "fish"]);
    assert_eq!(fish.code, Some(0), "{}", fish.stderr);
    assert!(
        fish.stdout.contains("complete -c upcheck"),
        "{}",
        fish.stdout
    );
    assert!(fish.stdout.contains("-l concurrency"));
}

#[test]
fn the_man_page_is_roff_and_lists_every_option() {
    let run = upcheck(&["--man"]);
    assert_eq!(run.code, Some(0), "needs no target: {}", run.stderr);
    assert!(run.stdout.contains(".TH upcheck 1"), "{}", run.stdout);
    for option in long_options() {
        // roff writes a hyphen meant literally as \-.
        let roff = option.replace('-', "\\-");
        assert!(run.stdout.contains(&roff), "man page lacks {option}");
    }
}

#[test]
fn shell_integration_takes_no_other_arguments() {
    for args in [
        &["--completions", "bash", "list.txt"][..],
        &["--man", "-u", "http://127.0.0.1:1/"],
        &["--completions", "tcsh"],
    ] {
        let run = upcheck(args);
        assert_eq!(run.code, Some(2), "{args:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
}
