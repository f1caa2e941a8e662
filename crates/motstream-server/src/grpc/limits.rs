//! Size limits of request fields (documented in proto/motstream/v1/query.proto and the README),
//! checked before any lookup, so that an oversized field is INVALID_ARGUMENT naming the field
//! and its limit, and no error message ever echoes an unbounded value back (a 1 MiB id
//! quoted in `grpc-message` overflowed HTTP/2's header limits: the caller saw a transport
//! error instead of a status).

use motstream_proto::v1 as pb;
use tonic::Status;

use super::convert::MAX_WINDOWS;

/// `mot_id`, `experience_id` and `filter.experience_id`: the event limit for ids.
pub const MAX_ID_BYTES: usize = 128;
/// `filter.owner` and `filter.team`.
pub const MAX_NAME_BYTES: usize = 256;
/// Durations: `windows[i]`, `window`, `min_interval`.
pub const MAX_DURATION_BYTES: usize = 32;
/// `filter.alert_state`.
pub const MAX_STATE_BYTES: usize = 16;
/// `page_token` (the server's own tokens are about 20 bytes).
pub const MAX_PAGE_TOKEN_BYTES: usize = 64;
/// The largest request message the server decodes (tonic's default, set explicitly): requests
/// within it reach the handlers and the limits above; larger ones get tonic's OUT_OF_RANGE.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// INVALID_ARGUMENT when `value` is longer than `max` bytes.
pub fn check(field: &str, value: &str, max: usize) -> Result<(), Status> {
    if value.len() > max {
        return Err(Status::invalid_argument(format!(
            "{field}: {} bytes exceeds the limit of {max}",
            value.len()
        )));
    }
    Ok(())
}

fn filter(f: Option<&pb::MotFilter>) -> Result<(), Status> {
    let Some(f) = f else { return Ok(()) };
    check("filter.experience_id", &f.experience_id, MAX_ID_BYTES)?;
    check("filter.owner", &f.owner, MAX_NAME_BYTES)?;
    check("filter.team", &f.team, MAX_NAME_BYTES)?;
    check("filter.alert_state", &f.alert_state, MAX_STATE_BYTES)
}

pub fn get_mot(r: &pb::GetMotRequest) -> Result<(), Status> {
    check("mot_id", &r.mot_id, MAX_ID_BYTES)?;
    if r.windows.len() > MAX_WINDOWS {
        return Err(Status::invalid_argument(format!(
            "windows: {} windows asked for, at most {MAX_WINDOWS}",
            r.windows.len()
        )));
    }
    for (i, w) in r.windows.iter().enumerate() {
        check(&format!("windows[{i}]"), w, MAX_DURATION_BYTES)?;
    }
    Ok(())
}

pub fn list_mots(r: &pb::ListMotsRequest) -> Result<(), Status> {
    filter(r.filter.as_ref())?;
    check("window", &r.window, MAX_DURATION_BYTES)?;
    check("page_token", &r.page_token, MAX_PAGE_TOKEN_BYTES)
}

pub fn get_experience(r: &pb::GetExperienceRequest) -> Result<(), Status> {
    check("experience_id", &r.experience_id, MAX_ID_BYTES)?;
    check("window", &r.window, MAX_DURATION_BYTES)
}

pub fn watch_mots(r: &pb::WatchMotsRequest) -> Result<(), Status> {
    filter(r.filter.as_ref())?;
    check("window", &r.window, MAX_DURATION_BYTES)?;
    check("min_interval", &r.min_interval, MAX_DURATION_BYTES)
}

pub fn watch_alerts(r: &pb::WatchAlertsRequest) -> Result<(), Status> {
    filter(r.filter.as_ref())
}

pub fn list_alerts(r: &pb::ListAlertsRequest) -> Result<(), Status> {
    filter(r.filter.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_field_is_invalid_argument_naming_the_field_and_the_limit_not_the_value() {
        let big = "m".repeat(1 << 20);
        let e = get_mot(&pb::GetMotRequest {
            mot_id: big.clone(),
            windows: vec![],
        })
        .expect_err("1 MiB id");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            e.message(),
            "mot_id: 1048576 bytes exceeds the limit of 128"
        );
        let e = get_mot(&pb::GetMotRequest {
            mot_id: "bag-drop".into(),
            windows: vec!["5m".into(), big.clone()],
        })
        .expect_err("1 MiB window");
        assert!(e.message().starts_with("windows[1]: "), "{}", e.message());
        let e = list_alerts(&pb::ListAlertsRequest {
            filter: Some(pb::MotFilter {
                team: big,
                ..Default::default()
            }),
            limit: 0,
        })
        .expect_err("1 MiB team");
        assert_eq!(
            e.message(),
            "filter.team: 1048576 bytes exceeds the limit of 256"
        );
        assert!(
            get_mot(&pb::GetMotRequest {
                mot_id: "m".repeat(MAX_ID_BYTES),
                windows: vec!["1h".into(); MAX_WINDOWS],
            })
            .is_ok()
        );
    }

    /// Over the wire: a 1 MiB id reaches the handler and gets its INVALID_ARGUMENT (it was a
    /// transport error), and a request past the decoding limit gets a clean OUT_OF_RANGE.
    #[tokio::test]
    async fn oversized_requests_get_a_status_not_a_transport_error() {
        use motstream_proto::v1::mot_query_client::MotQueryClient;
        let catalog = motstream_core::Catalog::from_yaml(
            motstream_loadgen::files::BUILTIN_CATALOG,
            "airline",
        )
        .expect("catalog");
        let cfg = crate::config::ServiceConfig::defaults();
        let state =
            crate::state::AggregatorState::new(std::sync::Arc::new(catalog), &cfg).expect("state");
        let mut settings = super::super::GrpcSettings::from_config(&cfg);
        settings.listen = ([127, 0, 0, 1], 0).into();
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let (addr, _q, task) = super::super::serve(
            &settings,
            std::sync::Arc::new(state),
            std::sync::Arc::default(),
            std::sync::Arc::default(),
            stopping,
        )
        .await
        .expect("serving");
        let mut c = MotQueryClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let get = |id: String| pb::GetMotRequest {
            mot_id: id,
            windows: vec![],
        };
        let e = c
            .get_mot(get("m".repeat(1 << 20)))
            .await
            .expect_err("1 MiB id");
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert_eq!(
            e.message(),
            "mot_id: 1048576 bytes exceeds the limit of 128"
        );
        let e = c
            .get_mot(get("m".repeat(MAX_REQUEST_BYTES + 1)))
            .await
            .expect_err("past the decoding limit");
        assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
        // The connection is still good.
        assert_eq!(
            c.get_mot(get("nope".into()))
                .await
                .expect_err("unknown")
                .code(),
            tonic::Code::NotFound
        );
        let _ = stop.send(true);
        let _ = task.await;
    }
}
