//! A webhook receiver for tests: records every POST (path, headers, JSON body) and answers
//! 200. Plain std networking on a loopback port, one thread per connection.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::wait_for;

/// One request received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// The receiver; stops listening when the test process ends.
#[derive(Debug, Clone)]
pub struct Hooks {
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Hooks {
    pub fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind webhook receiver");
        let addr = l.local_addr().expect("addr");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let h = Arc::clone(&hits);
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let h = Arc::clone(&h);
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut w = match s.try_clone() {
                        Ok(w) => w,
                        Err(_) => return,
                    };
                    let mut r = BufReader::new(s);
                    // Keep-alive: serve requests until the client closes.
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                        let mut headers = BTreeMap::new();
                        loop {
                            let mut l = String::new();
                            if r.read_line(&mut l).unwrap_or(0) == 0 {
                                return;
                            }
                            let l = l.trim_end();
                            if l.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = l.split_once(':') {
                                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                            }
                        }
                        let n: usize = headers
                            .get("content-length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0; n];
                        if r.read_exact(&mut body).is_err() {
                            return;
                        }
                        h.lock().expect("hits").push(Hit {
                            path,
                            headers,
                            body,
                            at: Instant::now(),
                        });
                        if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Self { addr, hits }
    }

    /// `http://127.0.0.1:port`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }

    /// Polls until `done` holds for the hits so far, or panics after `timeout`.
    pub fn wait(&self, what: &str, timeout: Duration, done: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        wait_for(
            timeout,
            Duration::from_millis(100),
            || {
                let h = self.hits();
                if done(&h) { Ok(h) } else { Err(h) }
            },
            |h| {
                format!(
                    "{what}: not received within {timeout:?}; received:\n{}",
                    h.iter()
                        .map(|h| format!("{} {}", h.path, String::from_utf8_lossy(&h.body)))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            },
        )
    }
}
