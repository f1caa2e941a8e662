//! Prometheus text exposition format (0.0.4), written by hand for the series derived from the
//! aggregator: they are computed whole at scrape time, so they need no registry, only escaping.

use std::fmt::Write;

/// Label pairs of one series.
pub(crate) type Labels<'a> = [(&'a str, &'a str)];

/// A scrape's text, family by family.
#[derive(Debug, Default)]
pub(crate) struct Text {
    pub out: String,
}

/// Escapes a label value: backslash, double quote and line feed, as the format requires.
fn escape(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value as the format spells it (`+Inf`, `-Inf`, `NaN`; Rust's `inf` is not valid).
pub(crate) fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

impl Text {
    /// Starts a metric family: `# HELP` and `# TYPE`. `help` must be one line.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample: `name{base..., extra...} value`.
    pub fn sample(&mut self, name: &str, base: &Labels<'_>, extra: &Labels<'_>, value: &str) {
        self.out.push_str(name);
        let mut first = true;
        for (k, v) in base.iter().chain(extra) {
            self.out.push(if first { '{' } else { ',' });
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape(v, &mut self.out);
            self.out.push('"');
        }
        if !first {
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(value);
        self.out.push('\n');
    }

    /// A sample with an integer value.
    pub fn int(&mut self, name: &str, base: &Labels<'_>, extra: &Labels<'_>, value: u64) {
        self.sample(name, base, extra, &value.to_string());
    }

    /// A sample with a float value.
    pub fn num(&mut self, name: &str, base: &Labels<'_>, extra: &Labels<'_>, value: f64) {
        self.sample(name, base, extra, &float(value));
    }

    /// A histogram's `_bucket` (cumulative, with `+Inf`), `_sum` and `_count` samples, from
    /// per-bucket counts (`counts.len() == bounds.len() + 1`, the last being `+Inf`).
    pub fn histogram(
        &mut self,
        name: &str,
        base: &Labels<'_>,
        bounds: &[String],
        counts: &[u64],
        sum: f64,
    ) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, c) in counts.iter().enumerate() {
            cumulative += c;
            let le = bounds.get(i).map_or("+Inf", String::as_str);
            self.int(&bucket, base, &[("le", le)], cumulative);
        }
        self.num(&format!("{name}_sum"), base, &[], sum);
        self.int(&format!("{name}_count"), base, &[], cumulative);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_infinities_spelled_as_prometheus_does() {
        let mut t = Text::default();
        t.sample("m", &[("a", "x\"y\\z\nw")], &[], &float(f64::INFINITY));
        t.num("n", &[], &[], -0.5);
        assert_eq!(t.out, "m{a=\"x\\\"y\\\\z\\nw\"} +Inf\nn -0.5\n");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let mut t = Text::default();
        let bounds = vec!["1".to_owned(), "2".to_owned()];
        t.histogram("h", &[("k", "v")], &bounds, &[1, 0, 2], 7.0);
        assert_eq!(
            t.out,
            "h_bucket{k=\"v\",le=\"1\"} 1\nh_bucket{k=\"v\",le=\"2\"} 1\n\
             h_bucket{k=\"v\",le=\"+Inf\"} 3\nh_sum{k=\"v\"} 7\nh_count{k=\"v\"} 3\n"
        );
    }
}
