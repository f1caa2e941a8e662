//! The command-line clients: of the gRPC query service (`mot get`, `mot top`, `experience
//! get`, `watch`, `alerts` and `unidentified`; human tables by default, `--output json` for
//! scripts), and of the dead-letter topic ([`dlq`], for `motstream dlq`).

mod alerts;
pub mod dlq;
mod render;
mod watch;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use motstream_proto::v1 as pb;
use motstream_proto::v1::mot_query_client::MotQueryClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// The client's type, with the bearer token (if any) added to every call.
pub type Client = MotQueryClient<InterceptedService<Channel, AddToken>>;

/// How answers are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// JSON (one document; one line per message when streaming).
    Json,
}

/// Where the server is and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// The gRPC server: host:port (plaintext), or a URL, https:// for TLS.
    #[arg(long, env = "MOTSTREAM_SERVER", default_value = "127.0.0.1:50051")]
    pub server: String,
    /// PEM CA certificate to trust for an https:// server; unset: the system's roots are not
    /// loaded, so set it for TLS.
    #[arg(long, env = "MOTSTREAM_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// File holding the bearer token, when the server asks for one.
    #[arg(long, env = "MOTSTREAM_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Deadline of each unary call.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Which MOTs (all unset: every MOT).
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Only this experience's MOTs.
    #[arg(long)]
    pub experience: Option<String>,
    /// Only MOTs of this owner (name or contact).
    #[arg(long)]
    pub owner: Option<String>,
    /// Only MOTs of this team.
    #[arg(long)]
    pub team: Option<String>,
    /// Only MOTs in this alert state (firing, pending, inactive; for alerts: pending, firing,
    /// resolved).
    #[arg(long)]
    pub state: Option<String>,
}

impl FilterArgs {
    fn proto(&self) -> Option<pb::MotFilter> {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        Some(pb::MotFilter {
            experience_id: s(&self.experience),
            owner: s(&self.owner),
            team: s(&self.team),
            alert_state: s(&self.state),
        })
    }
}

/// `motstream mot ...`.
#[derive(Debug, Subcommand)]
pub enum MotCmd {
    /// One MOT's status over one or more windows.
    Get(MotGet),
    /// MOTs ranked: the worst first.
    Top(MotTop),
}

#[derive(Debug, Args)]
pub struct MotGet {
    /// The MOT id, e.g. bag-drop.
    pub mot_id: String,
    /// Window (repeatable), e.g. 5m, 1h, 3d.
    #[arg(long = "window", default_value = "5m")]
    pub windows: Vec<String>,
    #[command(flatten)]
    pub conn: Conn,
}

/// Ranking keys of `mot top`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum By {
    /// Highest burn rate first.
    Burn,
    /// Lowest SMOTO rate first.
    Smoto,
    /// Highest impact first.
    Impact,
    /// Highest amount first.
    Amount,
}

#[derive(Debug, Args)]
pub struct MotTop {
    /// What to rank by.
    #[arg(long, value_enum, default_value_t = By::Burn)]
    pub by: By,
    /// Window, e.g. 5m.
    #[arg(long, default_value = "5m")]
    pub window: String,
    /// How many MOTs (1 to 1000).
    #[arg(long, default_value_t = 10)]
    pub limit: i32,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub conn: Conn,
}

/// `motstream experience ...`.
#[derive(Debug, Subcommand)]
pub enum ExperienceCmd {
    /// An experience's SCO rate, journeys and MOT table.
    Get(ExperienceGet),
}

#[derive(Debug, Args)]
pub struct ExperienceGet {
    /// The experience id, e.g. airline-departure.
    pub experience_id: String,
    /// Window, e.g. 1h (the same default as `mot top` and `watch`).
    #[arg(long, default_value = "5m")]
    pub window: String,
    #[command(flatten)]
    pub conn: Conn,
}

/// `motstream watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Window, e.g. 5m.
    #[arg(long, default_value = "5m")]
    pub window: String,
    /// At most one update per MOT per interval (100ms to 1h).
    #[arg(long, default_value = "1s")]
    pub interval: String,
    /// Stop after this long (default: until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub conn: Conn,
}

/// `motstream alerts`.
#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// How many past transitions (1 to 1000), newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: i32,
    /// Then keep printing new transitions as they happen (Ctrl-C stops).
    #[arg(long, conflicts_with = "active")]
    pub follow: bool,
    /// What is active now instead: each pending or firing alert once, with how long it has
    /// been in that state (`--state firing` for firing only).
    #[arg(long)]
    pub active: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub conn: Conn,
}

/// `motstream unidentified`.
#[derive(Debug, Args)]
pub struct UnidentifiedArgs {
    #[command(flatten)]
    pub conn: Conn,
}

/// Adds `authorization: Bearer <token>` when a token is configured.
#[derive(Debug, Clone)]
pub struct AddToken(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for AddToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// `--server` as a URL: `host:port` (what the service prints as its gRPC address) means
/// plaintext `http://host:port`.
pub fn server_url(server: &str) -> String {
    let s = server.trim();
    if s.contains("://") {
        s.to_owned()
    } else {
        format!("http://{s}")
    }
}

/// Connects to `conn.server`.
pub async fn connect(conn: &Conn) -> anyhow::Result<Client> {
    let url = server_url(&conn.server);
    let mut ep = Endpoint::from_shared(url.clone())
        .with_context(|| format!("--server: {:?} is not host:port or a URL", conn.server))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &conn.ca_cert {
            let pem = std::fs::read(ca)
                .with_context(|| format!("--ca-cert: reading {}", ca.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        ep = ep
            .tls_config(tls)
            .context("--ca-cert: not a usable certificate")?;
    }
    let token = match &conn.token_file {
        Some(p) => {
            let t = std::fs::read_to_string(p)
                .with_context(|| format!("--token-file: reading {}", p.display()))?;
            Some(
                format!("Bearer {}", t.trim())
                    .parse()
                    .context("--token-file: the token is not printable ASCII")?,
            )
        }
        None => None,
    };
    let channel = ep
        .connect()
        .await
        .with_context(|| format!("connecting to {url} (is `motstream run` serving gRPC there?)"))?;
    Ok(MotQueryClient::with_interceptor(channel, AddToken(token))
        .max_decoding_message_size(64 << 20))
}

/// A request with the call deadline set.
fn request<T>(conn: &Conn, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(conn.timeout);
    r
}

/// The server's error, as the user should read it.
fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("server answered {:?}: {}", s.code(), s.message())
}

fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    print(&format!(
        "{}\n",
        serde_json::to_string_pretty(v).context("encoding JSON")?
    ))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `motstream mot get|top`.
pub fn mot(cmd: &MotCmd) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match cmd {
            MotCmd::Get(a) => {
                let mut c = connect(&a.conn).await?;
                let req = pb::GetMotRequest {
                    mot_id: a.mot_id.clone(),
                    windows: a.windows.clone(),
                };
                let r = c
                    .get_mot(request(&a.conn, req))
                    .await
                    .map_err(status)?
                    .into_inner();
                match a.conn.output {
                    Output::Table => print(&render::get_mot(&r))?,
                    Output::Json => print_json(&render::get_mot_json(&r))?,
                }
            }
            MotCmd::Top(a) => {
                let mut c = connect(&a.conn).await?;
                let order_by = match a.by {
                    By::Burn => pb::OrderBy::BurnRate,
                    By::Smoto => pb::OrderBy::SmotoRate,
                    By::Impact => pb::OrderBy::Impact,
                    By::Amount => pb::OrderBy::Amount,
                };
                let req = pb::ListMotsRequest {
                    filter: a.filter.proto(),
                    order_by: order_by.into(),
                    window: a.window.clone(),
                    page_size: a.limit,
                    page_token: String::new(),
                };
                let r = c
                    .list_mots(request(&a.conn, req))
                    .await
                    .map_err(status)?
                    .into_inner();
                match a.conn.output {
                    Output::Table => {
                        let rows: Vec<_> = r.mots.iter().map(render::status_row).collect();
                        print(&render::table(render::STATUS_HEADER, &rows))?
                    }
                    Output::Json => print_json(&serde_json::json!({
                        "mots": r.mots.iter().map(render::status_json).collect::<Vec<_>>(),
                        "next_page_token": r.next_page_token,
                    }))?,
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `motstream experience get`.
pub fn experience(cmd: &ExperienceCmd) -> anyhow::Result<ExitCode> {
    let ExperienceCmd::Get(a) = cmd;
    runtime()?.block_on(async {
        let mut c = connect(&a.conn).await?;
        let req = pb::GetExperienceRequest {
            experience_id: a.experience_id.clone(),
            window: a.window.clone(),
        };
        let r = c
            .get_experience(request(&a.conn, req))
            .await
            .map_err(status)?
            .into_inner();
        match a.conn.output {
            Output::Table => print(&render::experience(&r))?,
            Output::Json => print_json(&render::experience_json(&r))?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `motstream unidentified`.
pub fn unidentified(a: &UnidentifiedArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut c = connect(&a.conn).await?;
        let r = c
            .list_unidentified_mots(request(&a.conn, pb::ListUnidentifiedMotsRequest {}))
            .await
            .map_err(status)?
            .into_inner();
        match a.conn.output {
            Output::Table => print(&render::unidentified(&r))?,
            Output::Json => print_json(&render::unidentified_json(&r))?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `motstream alerts [--active] [--follow]`.
pub fn alerts(a: &AlertsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(alerts::run(a))
}

/// `motstream watch`.
pub fn watch(a: &WatchArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(watch::run(a))
}

/// Resolves on SIGINT: a streaming command stops cleanly.
async fn signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Wall-clock milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_accepts_host_port_and_urls() {
        assert_eq!(server_url("127.0.0.1:50051"), "http://127.0.0.1:50051");
        assert_eq!(server_url(" localhost:7000 "), "http://localhost:7000");
        assert_eq!(
            server_url("http://127.0.0.1:50051"),
            "http://127.0.0.1:50051"
        );
        assert_eq!(
            server_url("https://mot.example:443"),
            "https://mot.example:443"
        );
        assert!(Endpoint::from_shared(server_url("[::1]:50051")).is_ok());
    }
}
