//! RFC 3339 event times (`event_time` in JSON), parsed with the `time` crate's strict RFC 3339
//! parser: the offset is honoured (`09:41:41+02:00` is 07:41:41Z), and anything the RFC's
//! grammar rejects is an error: offsets beyond ±23:59 (`+25:00`, `+99:99`), missing offsets,
//! out-of-range fields, trailing text. Borrowed parsing, no allocation unless it fails.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::EventError;

/// The field an RFC 3339 time is read from, as error messages name it.
pub(crate) const FIELD: &str = "event.event_time";

/// Milliseconds since the Unix epoch of an RFC 3339 date-time, rounded down (toward the past)
/// to the millisecond.
pub(crate) fn parse_ms(text: &str) -> Result<i64, EventError> {
    let bad = |why: &dyn std::fmt::Display| EventError::BadTimestamp {
        field: FIELD,
        detail: format!(
            "{text:?} is not an RFC 3339 time such as 2026-11-23T09:30:00.250Z or \
             2026-11-23T10:30:00.250+01:00: {why}"
        ),
    };
    // The `time` crate accepts any byte between date and time; RFC 3339 has `T` (either case)
    // and, in its section 5.6 note, a space.
    match text.as_bytes().get(10) {
        Some(b'T' | b't' | b' ') | None => {}
        Some(_) => return Err(bad(&"the date and time must be separated by \"T\"")),
    }
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| bad(&e))?;
    let ms = at.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(ms).map_err(|_| bad(&"out of range"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::UtcOffset;

    use super::*;

    #[test]
    fn offsets_are_honoured() {
        let utc = parse_ms("2026-12-02T07:41:41.704Z").expect("valid");
        assert_eq!(parse_ms("2026-12-02T09:41:41.704+02:00"), Ok(utc));
        assert_eq!(parse_ms("2026-12-02T02:11:41.704-05:30"), Ok(utc));
        assert_eq!(parse_ms("2026-12-02t07:41:41.704z"), Ok(utc));
        assert_eq!(parse_ms("2026-12-02 07:41:41.704+00:00"), Ok(utc));
        // More digits than milliseconds round toward the past.
        assert_eq!(parse_ms("2026-12-02T07:41:41.704999999Z"), Ok(utc));
        assert_eq!(parse_ms("1969-12-31T23:59:59.9995Z"), Ok(-1));
    }

    #[test]
    fn what_rfc_3339_rejects_is_a_bad_timestamp_naming_the_field_and_the_value() {
        for t in [
            "2026-12-02T09:41:41.704+25:00",
            "2026-12-02T09:41:41.704+99:99",
            "2026-12-02T09:41:41.704+02:60",
            "2026-12-02T09:41:41.704+0200",
            "2026-12-02T09:41:41.704",
            "2026-12-02",
            "2026-12-02X09:41:41Z",
            "2026-13-02T09:41:41Z",
            "2026-02-30T09:41:41Z",
            "2026-12-02T24:00:00Z",
            "2026-12-02T09:41:41.Z",
            "2026-12-02T09:41:41Z trailing",
            " 2026-12-02T09:41:41Z",
            "yesterday",
            "",
        ] {
            let e = parse_ms(t).expect_err(t);
            assert_eq!(e.reason(), "bad_timestamp", "{t}");
            let msg = e.to_string();
            assert!(
                msg.starts_with("event.event_time: ") && msg.contains(&format!("{t:?}")),
                "{msg}"
            );
        }
    }

    proptest! {
        /// Any instant in any valid offset, as the crate itself formats it, parses back to
        /// that instant's millisecond.
        #[test]
        fn parses_what_the_crates_formatter_writes(
            secs in -2_208_988_800i64..4_102_444_800, // 1900 to 2100
            nanos in 0u32..1_000_000_000,
            offset_min in -(23 * 60 + 59)..=(23 * 60 + 59i32),
        ) {
            let offset = UtcOffset::from_whole_seconds(offset_min * 60).expect("within ±23:59");
            let at = OffsetDateTime::from_unix_timestamp(secs)
                .expect("in range")
                .replace_nanosecond(nanos)
                .expect("valid nanosecond")
                .to_offset(offset);
            let text = at.format(&Rfc3339).expect("formattable");
            let want = secs * 1_000 + i64::from(nanos / 1_000_000);
            prop_assert_eq!(parse_ms(&text), Ok(want), "{}", text);
        }
    }
}
