//! What a newcomer types, run exactly as printed: every command the embedded default's banner
//! prints and every command of README's tested block (the ```sh block after its
//! `<!-- cli-test` marker), each through `sh -c`, each exiting 0. The README's commands say
//! `motstream`, so `PATH` has the built binary's directory first (README says to
//! `cargo install` it) and `MOTSTREAM_SERVER` points them at this test's server; the banner's
//! need nothing. Commands that stream (`watch`, `alerts --follow`) are stopped with SIGINT
//! after a few seconds, as Ctrl-C would, and must exit 0 then too. On the way it checks the
//! dead letters: a text payload without content-type is rejected as neither JSON nor protobuf,
//! `motstream dlq tail`/`count` (the banner's) show it with its reason and payload, `/status`
//! counts it and the service logs a summary within its one-minute interval.
//!
//! Also `catalog check` on a file with five different problems: all five, each with file:line,
//! and JSON errors with `--json`. Bounded: at most about three minutes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use motstream_tests::service::{binary, free_port, http_get};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// The commands of README's tested block.
fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let after = text
        .split_once("<!-- cli-test")
        .map(|(_, rest)| rest)
        .expect("README has a <!-- cli-test --> block");
    let block = after
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(b, _)| b)
        .expect("a ```sh block after the marker");
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Whether a command streams until interrupted.
fn streams(cmd: &str) -> bool {
    cmd.contains(" watch ") || cmd.contains("--follow")
}

/// Runs `cmd` with `sh -c` in the repo root; a streaming one gets SIGINT after 4 s. Panics
/// unless it exits 0 within 30 s.
fn run(cmd: &str, env: &[(&str, String)]) -> Output {
    // `exec` so that SIGINT reaches the command itself, not the shell (a pipeline is not
    // `exec`ed and never streams).
    let line = if cmd.contains('|') {
        cmd.to_owned()
    } else {
        format!("exec {cmd}")
    };
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(&line)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("sh");
    let start = Instant::now();
    let mut interrupted = false;
    loop {
        if let Some(_status) = child.try_wait().expect("try_wait") {
            break;
        }
        if streams(cmd) && !interrupted && start.elapsed() > Duration::from_secs(4) {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            interrupted = true;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("`{cmd}` did not finish in 30 s: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "`{cmd}` failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn every_command_the_banner_and_readme_print_runs_as_printed() {
    let port = free_port();
    let grpc_port = free_port();
    let log = std::env::temp_dir().join(format!("motstream-cli-{}.log", std::process::id()));
    let mut child = Command::new(binary())
        .env("MOTSTREAM_METRICS_LISTEN", format!("127.0.0.1:{port}"))
        .env("MOTSTREAM_GRPC_LISTEN", format!("127.0.0.1:{grpc_port}"))
        .env_remove("MOTSTREAM_BROKERS")
        .env_remove("MOTSTREAM_CONFIG")
        .env_remove("MOTSTREAM_SERVER")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("starting motstream");
    let stop = |child: &mut std::process::Child| {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        child.wait().expect("waiting for motstream")
    };
    // The banner, line by line, until its last line.
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !banner
        .iter()
        .any(|l: &String| l.contains("Ctrl-C stops everything"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => banner.push(l),
            Err(_) => {
                stop(&mut child);
                panic!("no banner in 60 s: {banner:#?}");
            }
        }
    }
    let commands: Vec<String> = banner
        .iter()
        .skip_while(|l| !l.starts_with("Try"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .collect();
    let broker = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("broker"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a broker line")
        .to_owned();
    assert!(
        commands.len() >= 8 && commands.iter().any(|c| c.contains(" dlq tail ")),
        "{banner:#?}"
    );
    let addr = ([127, 0, 0, 1], port).into();
    // Data first: the commands should show something, not only exit 0.
    let ready = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, s)) = http_get(addr, "/status?window=1m")
            && s["mots"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["amount"].as_u64() > Some(0))
        {
            break;
        }
        assert!(Instant::now() < ready, "no traffic in /status within 60 s");
        std::thread::sleep(Duration::from_millis(500));
    }

    // A text line with no content-type: neither JSON nor protobuf.
    let reject = run(
        &format!(
            "printf 'bag-drop,failure,kiosk-offline' | kcat -P -b {broker} -t mot.interactions -k j-reject"
        ),
        &[],
    );
    assert!(reject.status.success());
    let counted = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, s) = http_get(addr, "/status?window=1m").expect("/status");
        assert_eq!(code, 200);
        if s["health"]["rejected"]["unrecognised_payload"].as_u64() >= Some(1) {
            break;
        }
        assert!(
            Instant::now() < counted,
            "/status never counted the reject: {}",
            s["health"]
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    for cmd in &commands {
        let out = run(cmd, &[]);
        let text = String::from_utf8_lossy(&out.stdout);
        if cmd.contains(" dlq tail ") {
            assert!(
                text.contains("(unrecognised_payload)")
                    && text.contains("neither JSON nor protobuf")
                    && text.contains("payload  30 bytes: bag-drop,failure,kiosk-offline")
                    && text.contains("from mot.interactions["),
                "`{cmd}` shows the reject with its reason and payload:\n{text}"
            );
        }
        if cmd.contains(" dlq count ") {
            assert!(
                text.lines()
                    .any(|l| l.starts_with("unrecognised_payload") && l.contains(" 1 ")),
                "`{cmd}` counts it by reason:\n{text}"
            );
        }
    }
    let readme = readme_commands();
    assert!(readme.len() >= 8, "{readme:?}");
    let bin_dir = binary().parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [
        ("PATH", path),
        ("MOTSTREAM_SERVER", format!("127.0.0.1:{grpc_port}")),
    ];
    for cmd in &readme {
        let out = run(cmd, &env);
        if cmd.contains("experience get") {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("in flight") && text.contains("stalled after a failure"),
                "{text}"
            );
        }
    }
    // The reject summary is logged at the end of the minute in which it happened.
    let logged = Instant::now() + Duration::from_secs(75);
    let summary = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text
            .lines()
            .find(|l| l.contains("rejected to the dead-letter topic in the last"))
        {
            break l.to_owned();
        }
        if Instant::now() > logged {
            stop(&mut child);
            panic!("no reject summary in the log within 75 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(summary.contains("unrecognised_payload 1"), "{summary}");
    let status = stop(&mut child);
    assert!(status.success(), "Ctrl-C stops it cleanly: {status}");
}

#[test]
fn catalog_check_reports_five_different_problems_each_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("motstream-catalog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "\
version: 1
defaults:
  target: high
  owner: { name: N, team: t, contact: c }
experiences:
  - id: e
    name: E
    manager: { name: M, team: t, contact: c }
    sco: z
    mots:
      - id: a
        name: A
        targt: 0.9
      - id: b
        smoto: { max_duration: soon }
",
    )
    .expect("write catalog");
    let f = file.display().to_string();
    let out = Command::new(binary())
        .args(["catalog", "check", &f])
        .output()
        .expect("catalog check");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for (line, field) in [
        (3, "defaults.target: must be a number"),
        (9, "experiences[0].sco:"),
        (13, "experiences[0].mots[0].targt: unknown field"),
        (14, "experiences[0].mots[1].name: missing"),
        (15, "experiences[0].mots[1].smoto.max_duration:"),
    ] {
        assert!(
            err.contains(&format!("{f}:{line}: {field}")),
            "{f}:{line}: {field}\n{err}"
        );
    }
    assert!(err.contains("5 problems in"), "{err}");
    assert!(
        !err.contains("f64") && !err.contains("invalid type"),
        "{err}"
    );

    let out = Command::new(binary())
        .args(["catalog", "check", "--json", &f])
        .output()
        .expect("catalog check --json");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["valid"], false, "{v}");
    let problems = v["problems"].as_array().expect("problems");
    let lines: Vec<u64> = problems.iter().filter_map(|p| p["line"].as_u64()).collect();
    assert_eq!(lines, vec![3, 9, 13, 14, 15], "{v:#}");
    assert!(
        problems
            .iter()
            .all(|p| p["file"] == f.as_str() && p["message"].is_string()),
        "{v:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
