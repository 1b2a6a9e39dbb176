use crate::support::{checks_file, list_file, path, upcheck, Server};

#[test]
fn entries_override_the_command_line_for_their_target_only() {
    let server = Server::start();
    let checks = checks_file(&format!(
        r#"
[[check]]
name = "teapot"
url = "{teapot}"
expect_status = "418"
body_contains = "status"
tags = ["prod", "eu"]

[[check]]
name = "head with a token"
url = "{head}"
method = "PUT"
headers = {{ "X-Token" = "entry" }}
body_contains = "ok"

[[check]]
url = "{body}"
body_contains = "hello"

[[check]]
url = "{slow}"
timeout = "200ms"
"#,
        teapot = server.url("/status/418"),
        head = server.url("/ok?entry"),
        body = server.url("/body/hello-world"),
        slow = server.url("/slow/1500"),
    ));
    let run = upcheck(&[
        "-f",
        "json",
        "-t",
        "5s",
        "-H",
        "X-Token: cli",
        "-H",
        "X-Other: kept",
        "--body-contains",
        "never there",
        "--checks",
        path(&checks),
        "-u",
        &server.url("/body/plain"),
    ]);
    let document = run.document();
    let results = document["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);

    let teapot = &results[0];
    assert_eq!(teapot["ok"], true, "{teapot}");
    assert_eq!(teapot["name"], "teapot");
    assert_eq!(teapot["tags"], serde_json::json!(["prod", "eu"]));
    assert_eq!(teapot["source"], path(&checks));
    assert_eq!(teapot["line"], 4, "the line of the url");

    let head = &results[1];
    assert_eq!(head["name"], "head with a token");
    let seen = server.seen();
    let request = seen
        .requests
        .iter()
        .find(|r| r.path == "/ok?entry")
        .unwrap();
    assert_eq!(request.method, "PUT");
    assert_eq!(request.header("x-token"), Some("entry"));
    assert_eq!(request.header("x-other"), Some("kept"));

    assert_eq!(
        results[2]["ok"], true,
        "body_contains replaced: {}",
        results[2]
    );
    assert_eq!(results[3]["error_kind"], "timeout", "{}", results[3]);
    assert!(results[3]["error"].as_str().unwrap().contains("200ms"));

    // The --url target keeps the command-line settings, and has no name or tags.
    let plain = &results[4];
    assert_eq!(plain["source"], "--url");
    assert_eq!(plain["error_kind"], "body");
    assert!(plain["name"].is_null() && plain["tags"] == serde_json::json!([]));
    assert_eq!(run.code, Some(1));
}

#[test]
fn checks_files_combine_with_lists_and_urls_in_that_order() {
    let server = Server::start();
    let list = list_file(&[server.url("/ok?list")]);
    let one = checks_file(&format!("[[check]]\nurl = \"{}\"\n", server.url("/ok?one")));
    let two = checks_file(&format!(
        "check = [{{ url = \"{}\", name = \"db\" }}]\n",
        format_args!("tcp://{}", server.addr)
    ));
    let run = upcheck(&[
        "-f",
        "json",
        "-u",
        &server.url("/ok?url"),
        "--checks",
        path(&one),
        path(&list),
        "--checks",
        path(&two),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let targets: Vec<_> = run
        .results()
        .iter()
        .map(|r| r["target"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        targets,
        [
            server.url("/ok?list"),
            server.url("/ok?one"),
            format!("tcp://{}", server.addr),
            server.url("/ok?url"),
        ]
    );
}

#[test]
fn bad_entries_are_invalid_results_naming_file_and_line() {
    let server = Server::start();
    let checks = checks_file(&format!(
        r#"[[check]]
url = "{ok}"

[[check]]
url = "{ok}"
timeout = "soon"

[[check]]
name = "forgot the url"

[[check]]
url = "{ok}"
headers = {{ Authorization = "Bearer s3cret\u0001" }}
"#,
        ok = server.url("/ok"),
    ));
    let file = path(&checks);
    let run = upcheck(&["--checks", file]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stdout
            .contains(&format!("invalid: {file}:6: timeout: unknown unit 'soon'")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "[[check]] (forgot the url)  invalid: {file}:8: the entry has no url"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "invalid: {file}:13: headers: 'authorization: <redacted>'"
        )),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"));
    assert!(run.stdout.contains("4 checked"), "{}", run.stdout);
    assert_eq!(
        server.seen().requests.len(),
        1,
        "only the good entry is probed"
    );
}

#[test]
fn a_checks_file_that_is_not_toml_is_a_usage_error_before_probing() {
    let server = Server::start();
    let list = list_file(&[server.url("/ok")]);
    let broken = checks_file(&format!(
        "[[check]]\nurl = \"{}\"\n\n[[check]\nurl = \"x\"\n",
        server.url("/ok")
    ));
    let run = upcheck(&[path(&list), "--checks", path(&broken)]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains(&format!("{}:4: not valid TOML", path(&broken))),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
    assert_eq!(server.seen().connections, 0);

    let typo = checks_file("[[checks]]\nurl = \"http://127.0.0.1:1/\"\n");
    let run = upcheck(&["--checks", path(&typo)]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("unknown key 'checks'"),
        "{}",
        run.stderr
    );

    let run = upcheck(&["--checks", "/nonexistent/checks.toml"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("/nonexistent/checks.toml"));
}

#[test]
fn the_example_checks_file_is_valid() {
    // Every target in it is on loopback; what answers there does not matter, only that
    // each entry parses.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/checks.example.toml");
    let run = upcheck(&["-f", "json", "-t", "1s", "--checks", example]);
    assert_ne!(run.code, Some(2), "{}", run.stderr);
    let results = run.results();
    assert!(results.len() >= 4);
    for result in &results {
        assert_ne!(result["error_kind"], "invalid", "{result}");
    }
}

#[test]
fn white_space_around_a_url_is_no_part_of_it() {
    let server = Server::start();
    let url = server.url("/ok");
    let checks = checks_file(&format!("[[check]]\nurl = \"  {url}\\t\"\n"));
    let run = upcheck(&["-f", "json", "--checks", path(&checks)]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(run.results()[0]["target"], url.as_str());
}
