//! `-o` loses nothing: device nodes and FIFOs are written into, symbolic links kept, owner,
//! group and mode kept, and an output that is an input refused before anything is probed.
//! Device nodes and FIFOs are made in a temporary directory, never under /dev.

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::process::Stdio;
use std::thread;

use crate::support::{char_device, command, finish, upcheck, Server};

#[test]
fn device_nodes_are_written_into_and_stay_devices() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let null = dir.path().join("null");
    let full = dir.path().join("full");
    char_device(&null, 1, 3);
    char_device(&full, 1, 7);
    let run = upcheck(&["-o", null.to_str().unwrap(), "-u", &server.url("/ok")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(fs::metadata(&null).unwrap().file_type().is_char_device());
    let run = upcheck(&["-o", full.to_str().unwrap(), "-u", &server.url("/ok")]);
    assert_eq!(run.code, Some(2), "a full device is a write error: {run:?}");
    assert!(
        run.stderr.contains("cannot write results"),
        "{}",
        run.stderr
    );
    assert!(fs::metadata(&full).unwrap().file_type().is_char_device());
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
}

#[test]
fn a_fifo_is_written_into_and_its_reader_gets_the_report() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("report.fifo");
    let name = CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
    let reading = {
        let fifo = fifo.clone();
        thread::spawn(move || {
            let mut text = String::new();
            fs::File::open(fifo)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        })
    };
    let run = upcheck(&[
        "-f",
        "jsonl",
        "-o",
        fifo.to_str().unwrap(),
        "-u",
        &server.url("/ok"),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // Checked before waiting on the reader, which waits forever on a FIFO replaced.
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
    let report = reading.join().unwrap();
    assert!(report.contains("\"ok\":true"), "{report}");
}

#[test]
fn a_symlinked_report_keeps_its_link_and_its_target_is_replaced() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.prom");
    let link = dir.path().join("link.prom");
    fs::write(&real, "old\n").unwrap();
    symlink("real.prom", &link).unwrap();
    let dangling = dir.path().join("dangling.prom");
    symlink("created.prom", &dangling).unwrap();
    for output in [&link, &dangling] {
        let run = upcheck(&[
            "-f",
            "prometheus",
            "-o",
            output.to_str().unwrap(),
            "-u",
            &server.url("/ok"),
        ]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(fs::symlink_metadata(output)
            .unwrap()
            .file_type()
            .is_symlink());
    }
    assert!(fs::read_to_string(&real).unwrap().contains("probe_success"));
    let created = dir.path().join("created.prom");
    assert!(fs::read_to_string(created)
        .unwrap()
        .contains("probe_success"));
}

#[test]
fn the_report_keeps_its_owner_group_and_mode() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("upcheck.prom");
    fs::write(&report, "old\n").unwrap();
    std::os::unix::fs::chown(&report, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&report, fs::Permissions::from_mode(0o640)).unwrap();
    let run = upcheck(&[
        "-f",
        "prometheus",
        "-o",
        report.to_str().unwrap(),
        "-u",
        &server.url("/ok"),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let metadata = fs::metadata(&report).unwrap();
    assert_eq!((metadata.uid(), metadata.gid()), (65534, 65534));
    assert_eq!(metadata.mode() & 0o7777, 0o640);
    assert!(fs::read_to_string(&report)
        .unwrap()
        .contains("probe_success"));
}

#[test]
fn an_output_that_is_an_input_is_refused_before_probing() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    let list_text = format!("{}\n", server.url("/ok"));
    fs::write(&list, &list_text).unwrap();
    let checks = dir.path().join("c.toml");
    let checks_text = format!("[[check]]\nurl = \"{}\"\n", server.url("/ok"));
    fs::write(&checks, &checks_text).unwrap();
    let other_name = dir.path().join("same-list.txt");
    fs::hard_link(&list, &other_name).unwrap();
    let (list_arg, checks_arg) = (list.to_str().unwrap(), checks.to_str().unwrap());
    let other_arg = other_name.to_str().unwrap();
    for args in [
        vec!["-o", list_arg, list_arg],
        vec!["-o", other_arg, list_arg],
        vec!["--checks", checks_arg, "-o", checks_arg],
    ] {
        let run = upcheck(&args);
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.contains("is the input"), "{}", run.stderr);
    }
    let mut from_stdin = command();
    from_stdin
        .args(["-o", list_arg])
        .stdin(Stdio::from(fs::File::open(&list).unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let run = finish(from_stdin.spawn().unwrap());
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("is the input '-'"), "{}", run.stderr);
    assert_eq!(fs::read_to_string(&list).unwrap(), list_text);
    assert_eq!(fs::read_to_string(&checks).unwrap(), checks_text);
    assert!(server.seen().requests.is_empty(), "nothing was probed");
}

#[test]
fn an_output_over_a_file_another_option_reads_is_refused() {
    // The TLS files' case is in tls_trust.rs, which has certificates to read.
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("headers.txt");
    fs::write(&headers, "X-Token: secret\n").unwrap();
    let headers_arg = headers.to_str().unwrap();
    let header_option = format!("@{headers_arg}");
    let url = server.url("/ok");
    let run = upcheck(&["-H", &header_option, "-o", headers_arg, "-u", &url]);
    assert_eq!(run.code, Some(2), "{run:?}");
    let said = format!("it is the input '{headers_arg} (read by -H)'");
    assert!(run.stderr.contains(&said), "{}", run.stderr);
    assert_eq!(fs::read_to_string(&headers).unwrap(), "X-Token: secret\n");
    assert!(server.seen().requests.is_empty(), "nothing was probed");
}
