//! What the embedded default prints at start: where everything listens, and commands to try
//! that run exactly as printed, pasted into a POSIX shell. `cargo run` does not put
//! `motstream` on PATH, so the commands name this binary by its own path.

use std::net::SocketAddr;

/// The addresses and names the banner shows.
#[derive(Debug, Clone)]
pub struct Banner<'a> {
    /// This binary, as the commands invoke it (see [`self_command`]).
    pub exe: &'a str,
    pub rate: f64,
    pub bootstrap: &'a str,
    pub topic: &'a str,
    pub dlq: &'a str,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
}

/// This binary's path, quoted for a POSIX shell when it needs it; `motstream` if the path is
/// unknown (then it must be on PATH).
pub fn self_command() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(shell_quote))
        .unwrap_or_else(|| "motstream".to_owned())
}

/// `s` as one shell word: as is when it has only safe characters, else single-quoted.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '/' | '.' | '_' | '-' | '+' | ':' | '@' | '%' | ',')
        });
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl Banner<'_> {
    /// The commands under "Try", one per line, each runnable as is (a `#` starts a shell
    /// comment). The ones that stream (`watch`, `alerts --follow`) run until Ctrl-C.
    pub fn commands(&self) -> Vec<String> {
        let Banner {
            exe,
            bootstrap,
            topic,
            dlq,
            http,
            grpc,
            ..
        } = self;
        vec![
            format!("curl -s 'http://{http}/status?window=1m'"),
            format!("{exe} experience get airline-departure --window 5m --server {grpc}"),
            format!("{exe} mot get bag-drop --window 5m --server {grpc}"),
            format!("{exe} mot top --by burn --server {grpc}"),
            format!("{exe} alerts --server {grpc}"),
            format!("{exe} alerts --active --server {grpc}"),
            format!("{exe} watch --server {grpc}   # live; Ctrl-C stops it"),
            format!("{exe} dlq count --brokers {bootstrap} --dlq-topic {dlq}"),
            format!("{exe} dlq tail --brokers {bootstrap} --dlq-topic {dlq}"),
            format!(
                "echo '{{\"mot_id\":\"bag-drop\",\"event_time_ms\":'$(date +%s%3N)',\"outcome\":\"failure\",\"failure_reason\":\"kiosk-offline\"}}' | kcat -P -b {bootstrap} -t {topic} -H content-type=application/json"
            ),
        ]
    }

    /// The whole banner.
    pub fn render(&self) -> String {
        let Banner {
            rate,
            bootstrap,
            topic,
            dlq,
            http,
            grpc,
            ..
        } = self;
        let mut out = format!(
            "\nmotstream is running on an embedded Kafka broker with simulated journeys ({rate} interactions/s).\n\
             \n  dashboard  http://{http}/   (open it in a browser)\
             \n  broker     {bootstrap}   (topic {topic}, dead letters {dlq})\
             \n  status     http://{http}/status?window=5m\
             \n  metrics    http://{http}/metrics   (Prometheus)\
             \n  health     http://{http}/healthz   readiness http://{http}/readyz\
             \n  gRPC       {grpc}   (motstream.v1.MotQuery, grpc.health.v1, reflection)\
             \n\nTry, in another terminal:\n"
        );
        for c in self.commands() {
            out.push_str("  ");
            out.push_str(&c);
            out.push('\n');
        }
        out.push_str("\nCtrl-C stops everything.\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_shell_characters_are_quoted_and_plain_ones_are_not() {
        assert_eq!(
            shell_quote("/home/a/target/release/motstream"),
            "/home/a/target/release/motstream"
        );
        assert_eq!(
            shell_quote("/tmp/my dir/motstream"),
            "'/tmp/my dir/motstream'"
        );
        assert_eq!(
            shell_quote("/tmp/it's/motstream"),
            r"'/tmp/it'\''s/motstream'"
        );
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn every_command_names_the_binary_or_a_standard_tool_and_the_servers_it_printed() {
        let b = Banner {
            exe: "'/tmp/a b/motstream'",
            rate: 100.0,
            bootstrap: "127.0.0.1:40000",
            topic: "mot.interactions",
            dlq: "mot.interactions.dlq",
            http: ([127, 0, 0, 1], 9464).into(),
            grpc: ([127, 0, 0, 1], 50051).into(),
        };
        let text = b.render();
        for c in b.commands() {
            assert!(text.contains(&format!("  {c}\n")), "{text}");
            let grpc = c.starts_with("'/tmp/a b/motstream' ")
                && (c.contains("--server 127.0.0.1:50051")
                    || c.contains(" dlq ") && c.contains("--brokers 127.0.0.1:40000"));
            let other = c.starts_with("curl -s 'http://127.0.0.1:9464/")
                || (c.starts_with("echo ")
                    && c.contains("kcat -P -b 127.0.0.1:40000 -t mot.interactions"));
            assert!(grpc || other, "{c}");
        }
        assert!(
            !text.contains("\n  motstream "),
            "no bare `motstream`: {text}"
        );
    }
}
