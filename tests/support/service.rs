//! The `motstream` binary run as a separate process, as an operator runs it, so that tests can
//! SIGTERM it, or `kill -9` it mid-stream.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::wait_for;

/// The binary built by `cargo build -p motstream` (scripts/test builds it first), found next
/// to this test's own executable.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>/motstream
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("motstream"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p motstream` first (scripts/test does)",
        bin.display()
    );
    bin
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A test's own events and dead-letter topics, and consumer group.
#[derive(Debug)]
pub struct Topics {
    pub events: String,
    pub dlq: String,
    pub group: String,
}

impl Topics {
    /// Fresh names from `name`; creates the events topic with `partitions` and a one-partition
    /// dead-letter topic.
    pub async fn create(name: &str, partitions: i32) -> Self {
        let t = Self {
            events: super::unique(name),
            dlq: super::unique(&format!("{name}-dlq")),
            group: super::unique(&format!("{name}-group")),
        };
        super::create_topic(&t.events, partitions).await;
        super::create_topic(&t.dlq, 1).await;
        t
    }
}

/// A running `motstream run`.
#[derive(Debug)]
pub struct ServiceProcess {
    pub child: Child,
    pub http: SocketAddr,
    pub log: PathBuf,
}

impl ServiceProcess {
    /// Starts `motstream run` against the test broker with `args` added, logging as JSON to a
    /// file in the temp dir.
    pub fn start(name: &str, args: &[&str]) -> Self {
        let port = free_port();
        let http: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = std::env::temp_dir().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary())
            // `--log-format` after `run`: before it, clap rejects it as conflicting with the
            // subcommand (`args_conflicts_with_subcommands`).
            .args([
                "run",
                "--log-format",
                "json",
                "--brokers",
                &super::brokers(),
            ])
            .args([
                "--metrics-listen",
                &http.to_string(),
                "--grpc-listen",
                "127.0.0.1:0",
            ])
            .args(args)
            // A topic of its own for alert transitions unless the test names one: the default
            // topic would carry other tests' alerts, which the service replays at start.
            .args(if args.contains(&"--alerts-topic") {
                Vec::new()
            } else {
                vec!["--alerts-topic".to_owned(), super::unique("alerts")]
            })
            .env_remove("MOTSTREAM_CONFIG")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("starting motstream");
        let s = Self { child, http, log };
        s.wait_http(Duration::from_secs(30));
        s
    }

    /// [`ServiceProcess::start`] consuming `t`'s events topic in its group, dead-lettering to
    /// its dead-letter topic.
    pub fn start_on(name: &str, t: &Topics) -> Self {
        Self::start_on_with(name, t, &[])
    }

    /// [`Self::start_on`] with `extra` arguments after the topics.
    pub fn start_on_with(name: &str, t: &Topics, extra: &[&str]) -> Self {
        let mut args = vec![
            "--topics",
            &t.events,
            "--dlq-topic",
            &t.dlq,
            "--group-id",
            &t.group,
        ];
        args.extend_from_slice(extra);
        Self::start(name, &args)
    }

    fn wait_http(&self, timeout: Duration) {
        wait_for(
            timeout,
            Duration::from_millis(100),
            || TcpStream::connect(self.http).map(drop),
            |e| {
                format!(
                    "motstream did not listen on {} within {timeout:?} ({e}); log:\n{}",
                    self.http,
                    self.log_tail()
                )
            },
        );
    }

    /// The gRPC address the service bound (it is started on port 0), read from its log.
    pub fn grpc_addr(&self) -> SocketAddr {
        wait_for(
            Duration::from_secs(30),
            Duration::from_millis(100),
            || {
                let text = std::fs::read_to_string(&self.log).unwrap_or_default();
                text.lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .find_map(|v| v["grpc_addr"].as_str().and_then(|a| a.parse().ok()))
                    .ok_or(())
            },
            |()| {
                format!(
                    "motstream logged no gRPC address within 30 s; log:\n{}",
                    self.log_tail()
                )
            },
        )
    }

    /// The last lines of the service's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// GET a path; (status code, JSON body).
    pub fn get(&self, path: &str) -> (u16, Value) {
        http_get(self.http, path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}; log:\n{}", self.log_tail()))
    }

    /// `/status?window=...`.
    pub fn status(&self, window: &str) -> Value {
        let (code, v) = self.get(&format!("/status?window={window}"));
        assert_eq!(code, 200, "{v}");
        v
    }

    /// Polls until `done` holds for the status, or panics after `timeout` with the last one.
    pub fn wait_status(
        &self,
        window: &str,
        timeout: Duration,
        mut done: impl FnMut(&Value) -> bool,
    ) -> Value {
        wait_for(
            timeout,
            Duration::from_millis(250),
            || {
                let v = self.status(window);
                if done(&v) { Ok(v) } else { Err(v) }
            },
            |v| {
                format!(
                    "status never reached the expected state within {timeout:?}; last:\n{v:#}\nlog:\n{}",
                    self.log_tail()
                )
            },
        )
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(
                    status.success(),
                    "motstream exited with {status}; log:\n{}",
                    self.log_tail()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "motstream did not stop within 30 s of SIGTERM; log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `kill -9`: no shutdown, no final commit.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET; (status code, JSON body).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, Value), String> {
    let (code, body) = http_text(addr, path)?;
    let v = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    Ok((code, v))
}

/// A minimal HTTP/1.1 GET, enough for the service's and Prometheus' endpoints; (status code,
/// body as text, de-chunked).
pub fn http_text(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status code")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((code, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
