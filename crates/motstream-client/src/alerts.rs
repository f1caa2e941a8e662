//! `motstream alerts`: past transitions, what is active now (`--active`), and new transitions
//! as they happen (`--follow`). Tables read top to bottom in time order, oldest first, so that
//! followed transitions continue the table below its last row, in the same columns.

use std::process::ExitCode;

use motstream_proto::v1 as pb;

use super::{AlertsArgs, Output, connect, print, print_json, render, request, status};

/// Column widths of a followed table: the widest cell seen so far or these, whichever is
/// more, so that streamed rows line up with the history printed above them.
const FOLLOW_MIN_WIDTHS: [usize; 6] = [19, 8, 8, 22, 16, 18];

/// `motstream alerts [--active] [--follow]`.
pub async fn run(a: &AlertsArgs) -> anyhow::Result<ExitCode> {
    let mut c = connect(&a.conn).await?;
    if a.active {
        let req = pb::ListActiveAlertsRequest {
            filter: a.filter.proto(),
        };
        let r = c
            .list_active_alerts(request(&a.conn, req))
            .await
            .map_err(status)?
            .into_inner();
        match a.conn.output {
            Output::Table => {
                let now = crate::now_ms();
                let rows: Vec<_> = r
                    .alerts
                    .iter()
                    .map(|t| render::active_row(t, now))
                    .collect();
                print(&render::table(render::ACTIVE_HEADER, &rows))?;
                if rows.is_empty() {
                    print("(no alert is pending or firing)\n")?;
                }
            }
            Output::Json => print_json(&serde_json::json!({
                "alerts": r.alerts.iter().map(render::alert_json).collect::<Vec<_>>(),
            }))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Subscribe before reading the history, so that nothing falls between the two.
    let mut follow = if a.follow {
        let req = pb::WatchAlertsRequest {
            filter: a.filter.proto(),
        };
        Some(c.watch_alerts(req).await.map_err(status)?.into_inner())
    } else {
        None
    };
    let req = pb::ListAlertsRequest {
        filter: a.filter.proto(),
        limit: a.limit,
    };
    let mut history = c
        .list_alerts(request(&a.conn, req))
        .await
        .map_err(status)?
        .into_inner()
        .transitions;
    let Some(stream) = follow.as_mut() else {
        match a.conn.output {
            Output::Table => {
                history.reverse();
                let rows: Vec<_> = history.iter().map(render::alert_row).collect();
                print(&render::table(render::ALERT_HEADER, &rows))?;
                if rows.is_empty() {
                    print("(no alert transitions yet)\n")?;
                }
            }
            Output::Json => print_json(&serde_json::json!({
                "transitions": history.iter().map(render::alert_json).collect::<Vec<_>>(),
            }))?,
        }
        return Ok(ExitCode::SUCCESS);
    };
    history.reverse();
    let rows: Vec<_> = history.iter().map(render::alert_row).collect();
    let widths = follow_widths(&rows);
    match a.conn.output {
        Output::Table => {
            let header: Vec<String> = render::ALERT_HEADER.iter().map(|h| h.to_string()).collect();
            print(&render::fixed_line(&header, &widths))?;
            for r in &rows {
                print(&render::fixed_line(r, &widths))?;
            }
        }
        Output::Json => {
            for t in &history {
                print(&format!("{}\n", render::alert_json(t)))?;
            }
        }
    }
    loop {
        let next = tokio::select! {
            m = stream.message() => m.map_err(status)?,
            () = crate::signal() => None,
        };
        let Some(t) = next else { break };
        match a.conn.output {
            Output::Table => print(&render::fixed_line(&render::alert_row(&t), &widths))?,
            Output::Json => print(&format!("{}\n", render::alert_json(&t)))?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Widths for a followed table: each column as wide as its header, its widest row so far, and
/// [`FOLLOW_MIN_WIDTHS`].
fn follow_widths(rows: &[Vec<String>]) -> Vec<usize> {
    render::ALERT_HEADER
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let widest = rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0);
            widest
                .max(h.chars().count())
                .max(FOLLOW_MIN_WIDTHS.get(i).copied().unwrap_or(0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transition(at_ms: i64, state: &str, alertname: &str, mot: &str) -> pb::AlertTransition {
        pb::AlertTransition {
            alert_id: format!("{mot}-{alertname}"),
            alertname: alertname.into(),
            severity: "page".into(),
            experience_id: "airline-departure".into(),
            mot_id: mot.into(),
            owner: "Lars Eriksen".into(),
            team: "airport-ground-ops".into(),
            state: state.into(),
            at_ms,
            annotations: Default::default(),
        }
    }

    #[test]
    fn followed_rows_line_up_with_the_header_whatever_their_lengths() {
        let history = [transition(1_000, "firing", "SmotoBurnPage", "bag-drop")];
        let rows: Vec<_> = history.iter().map(render::alert_row).collect();
        let widths = follow_widths(&rows);
        let header: Vec<String> = render::ALERT_HEADER.iter().map(|h| h.to_string()).collect();
        let later = transition(
            2_000,
            "resolved",
            "SmotoFloorPageLongName",
            "online-check-in",
        );
        let lines = [
            render::fixed_line(&header, &widths),
            render::fixed_line(&rows[0], &widths),
            render::fixed_line(&render::alert_row(&later), &widths),
        ];
        // Every column starts at the same offset on every line.
        let starts = |line: &str, cells: &[String]| -> Vec<usize> {
            let mut from = 0;
            cells
                .iter()
                .map(|c| {
                    let at = from + line[from..].find(c.as_str()).unwrap_or(usize::MAX / 2);
                    from = at + c.len();
                    at
                })
                .collect()
        };
        let expect = starts(&lines[0], &header);
        assert_eq!(starts(&lines[1], &rows[0]), expect, "{lines:#?}");
        assert_eq!(
            starts(&lines[2], &render::alert_row(&later)),
            expect,
            "{lines:#?}"
        );
    }
}
