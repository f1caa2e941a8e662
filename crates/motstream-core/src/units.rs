//! How durations are written for people, in one style everywhere (CLI tables, logs, `config
//! show`, `catalog check`, alert text): whole units, largest first, no spaces (`3d`, `1h30m`,
//! `45s`, `1s250ms`). It is exact, and `humantime` (hence every flag, config key and catalog
//! field) reads it back.

use std::time::Duration;

const UNITS: [(u64, &str); 5] = [
    (86_400_000, "d"),
    (3_600_000, "h"),
    (60_000, "m"),
    (1_000, "s"),
    (1, "ms"),
];

/// `d` in the compact style: `3d`, `1h30m`, `5m`, `45s`, `250ms`, `0s` (to the millisecond).
pub fn short_duration(d: Duration) -> String {
    short_duration_ms(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// [`short_duration`] of a count of milliseconds.
pub fn short_duration_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, name) in UNITS {
        let n = rest / unit;
        if n > 0 {
            out.push_str(&format!("{n}{name}"));
            rest -= n * unit;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_whole_units_largest_first_and_parse_back() {
        let s = |secs: u64| short_duration(Duration::from_secs(secs));
        assert_eq!(s(3 * 86_400), "3d");
        assert_eq!(s(5400), "1h30m");
        assert_eq!(s(300), "5m");
        assert_eq!(s(45), "45s");
        assert_eq!(s(86_400 + 7_200 + 180), "1d2h3m");
        assert_eq!(short_duration(Duration::from_millis(1_250)), "1s250ms");
        assert_eq!(short_duration(Duration::ZERO), "0s");
        for ms in [1, 999, 61_001, 90_061_001, u64::from(u32::MAX)] {
            let d = Duration::from_millis(ms);
            assert_eq!(humantime::parse_duration(&short_duration(d)), Ok(d), "{ms}");
        }
    }
}
