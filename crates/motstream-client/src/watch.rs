//! `motstream watch`: a live terminal table over WatchMots. Each message replaces its MOT's
//! row; the screen is redrawn at most five times a second. With `--output json` each message
//! is printed as one JSON line instead.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use motstream_proto::v1 as pb;

use super::{Output, WatchArgs, connect, print, render, status};

const REDRAW: Duration = Duration::from_millis(200);

fn screen(rows: &BTreeMap<String, pb::MotStatus>, a: &WatchArgs, updates: u64) -> String {
    let body: Vec<Vec<String>> = rows.values().map(render::status_row).collect();
    format!(
        "\x1b[H\x1b[2J{} — window {}, every {} at most; {} updates; {}\n\n{}",
        a.conn.server,
        a.window,
        a.interval,
        updates,
        render::time(crate::now_ms()),
        render::table(render::STATUS_HEADER, &body)
    )
}

pub async fn run(a: &WatchArgs) -> anyhow::Result<ExitCode> {
    let mut c = connect(&a.conn).await?;
    let req = pb::WatchMotsRequest {
        filter: a.filter.proto(),
        window: a.window.clone(),
        min_interval: a.interval.clone(),
    };
    let mut stream = c.watch_mots(req).await.map_err(status)?.into_inner();
    let mut rows = BTreeMap::new();
    let mut updates = 0u64;
    let mut drawn = Instant::now() - REDRAW;
    let mut dirty = false;
    let until = a.duration.map(|d| tokio::time::Instant::now() + d);
    let stop = async {
        match until {
            Some(t) => tokio::time::sleep_until(t).await,
            None => crate::signal().await,
        }
    };
    tokio::pin!(stop);
    loop {
        let next = tokio::select! {
            m = stream.message() => m.map_err(status)?,
            () = tokio::time::sleep(REDRAW), if dirty => {
                print(&screen(&rows, a, updates))?;
                drawn = Instant::now();
                dirty = false;
                continue;
            }
            () = &mut stop => None,
        };
        let Some(m) = next else { break };
        updates += 1;
        match a.conn.output {
            Output::Json => print(&format!("{}\n", render::status_json(&m)))?,
            Output::Table => {
                rows.insert(m.mot_id.clone(), m);
                if drawn.elapsed() >= REDRAW {
                    print(&screen(&rows, a, updates))?;
                    drawn = Instant::now();
                    dirty = false;
                } else {
                    dirty = true;
                }
            }
        }
    }
    if a.conn.output == Output::Table && dirty {
        print(&screen(&rows, a, updates))?;
    }
    Ok(ExitCode::SUCCESS)
}
