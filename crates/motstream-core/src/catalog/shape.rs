//! The catalog's shape (which fields exist, which are required, what type each holds), checked
//! on the parsed YAML before serde reads it into [`super::raw`]. Serde stops at the first
//! wrong type or unknown field and words it in Rust's terms ("invalid type: string, expected
//! f64"); this reports every one of them, in the catalog's terms, and hands on a cleaned
//! document (unknown fields dropped, wrong values replaced by placeholders) so that the
//! semantic checks still run on everything else. Must list exactly the fields of `raw.rs`
//! (the tests load a catalog using every field).

use serde_norway::{Mapping, Value};

use super::Problem;
use crate::yaml::{Seg, locate};

#[derive(Debug, Clone, Copy)]
enum Ty {
    Text,
    Number,
    Whole,
    Bool,
    List(&'static Ty),
    Map(&'static [F]),
}

#[derive(Debug, Clone, Copy)]
struct F {
    key: &'static str,
    ty: Ty,
    required: bool,
}

const fn req(key: &'static str, ty: Ty) -> F {
    F {
        key,
        ty,
        required: true,
    }
}

const fn opt(key: &'static str, ty: Ty) -> F {
    F {
        key,
        ty,
        required: false,
    }
}

use Ty::{Bool, List, Map, Number, Text, Whole};

const PERSON: &[F] = &[req("name", Text), req("team", Text), req("contact", Text)];
const SMOTO: &[F] = &[opt("max_duration", Text)];
const BURN_RULE: &[F] = &[
    req("name", Text),
    req("severity", Text),
    req("factor", Number),
    req("long", Text),
    req("short", Text),
];
const FLOOR: &[F] = &[
    opt("enabled", Bool),
    opt("below", Number),
    opt("over", Text),
    opt("min_events", Whole),
    opt("severity", Text),
];
const POLICY: &[F] = &[
    opt("min_events", Whole),
    opt("for", Text),
    opt("burn_rates", List(&Map(BURN_RULE))),
    opt("floor", Map(FLOOR)),
];
const MOT: &[F] = &[
    req("id", Text),
    req("name", Text),
    opt("type", Text),
    opt("channels", List(&Text)),
    opt("owner", Map(PERSON)),
    opt("smoto", Map(SMOTO)),
    opt("target", Number),
    opt("runbook", Text),
    opt("impact_weight", Number),
    opt("alert_policy", Map(POLICY)),
];
const EXPERIENCE: &[F] = &[
    req("id", Text),
    req("name", Text),
    opt("description", Text),
    req("manager", Map(PERSON)),
    req("sco", Text),
    opt("journey_timeout", Text),
    req("mots", List(&Map(MOT))),
];
const DEFAULTS: &[F] = &[
    opt("target", Number),
    opt("impact_weight", Number),
    opt("type", Text),
    opt("smoto", Map(SMOTO)),
    opt("owner", Map(PERSON)),
    opt("alert_policy", Map(POLICY)),
    opt("dashboard_url", Text),
    opt("journey_timeout", Text),
];
const CATALOG: &[F] = &[
    req("version", Whole),
    opt("defaults", Map(DEFAULTS)),
    req("experiences", List(&Map(EXPERIENCE))),
];

/// The shape problems of a parsed catalog, and the document cleaned of them. Each problem's
/// `field` is the path of the offending field; later problems at or under one of these paths
/// are consequences (a placeholder's), see [`is_under`].
pub(super) fn check(doc: &Value, text: &str) -> (Value, Vec<Problem>) {
    let mut c = Shape {
        text,
        problems: Vec::new(),
    };
    let clean = c.value(&mut Vec::new(), doc, Map(CATALOG));
    (clean, c.problems)
}

/// Whether `field` is `bad` or lies under it.
pub(super) fn is_under(field: &str, bad: &str) -> bool {
    field
        .strip_prefix(bad)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

struct Shape<'t> {
    text: &'t str,
    problems: Vec<Problem>,
}

/// How a type is named to the catalog's author.
fn expected(ty: Ty) -> &'static str {
    match ty {
        Text => "text",
        Number => "a number",
        Whole => "a whole number of zero or more",
        Bool => "true or false",
        List(_) => "a list",
        Map(_) => "a set of fields (key: value)",
    }
}

/// How a value found is named, quoting short scalars.
fn found(v: &Value) -> String {
    match v {
        Value::Null => "empty".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() <= 40 => format!("the text {s:?}"),
        Value::String(_) => "text".into(),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a set of fields".into(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

fn field_name(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The closest known key to a misspelt one, if it is close enough to be the intent.
fn suggest(key: &str, fields: &[F]) -> Option<&'static str> {
    fields
        .iter()
        .map(|f| (edit_distance(key, f.key), f.key))
        .filter(|(d, k)| *d <= 2.min(k.len() / 2))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Shape<'_> {
    fn report(&mut self, path: &[Seg<'_>], message: String) {
        self.problems.push(Problem {
            line: locate(self.text, path),
            column: None,
            field: field_name(path),
            message,
        });
    }

    /// `v` checked against `ty`: itself when it fits, else a placeholder of the right type
    /// (the problem reported).
    fn value<'p>(&mut self, path: &mut Vec<Seg<'p>>, v: &'p Value, ty: Ty) -> Value {
        let fits = match (ty, v) {
            (Text, Value::String(_)) | (Bool, Value::Bool(_)) => true,
            (Number, Value::Number(n)) => n.as_f64().is_some(),
            (Whole, Value::Number(n)) => n.as_u64().is_some(),
            (List(item), Value::Sequence(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, x) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    out.push(self.value(path, x, *item));
                    path.pop();
                }
                return Value::Sequence(out);
            }
            (Map(fields), Value::Mapping(m)) => {
                return Value::Mapping(self.mapping(path, m, fields));
            }
            _ => false,
        };
        if fits {
            return v.clone();
        }
        self.report(path, format!("must be {}, not {}", expected(ty), found(v)));
        placeholder(ty)
    }

    fn mapping<'p>(&mut self, path: &mut Vec<Seg<'p>>, m: &'p Mapping, fields: &[F]) -> Mapping {
        let mut out = Mapping::new();
        for (k, v) in m {
            let Some(key) = k.as_str() else {
                self.report(
                    path,
                    format!("has a field named by {}: field names are text", found(k)),
                );
                continue;
            };
            path.push(Seg::Key(key));
            match fields.iter().find(|f| f.key == key) {
                Some(f) if v.is_null() && !f.required => {}
                Some(f) if v.is_null() => {
                    self.report(path, format!("missing: {} is required", expected(f.ty)));
                    out.insert(k.clone(), placeholder(f.ty));
                }
                Some(f) => {
                    let clean = self.value(path, v, f.ty);
                    out.insert(k.clone(), clean);
                }
                None => {
                    let hint = match suggest(key, fields) {
                        Some(s) => format!("; did you mean {s}?"),
                        None => String::new(),
                    };
                    let known: Vec<&str> = fields.iter().map(|f| f.key).collect();
                    self.report(
                        path,
                        format!("unknown field{hint} (known here: {})", known.join(", ")),
                    );
                }
            }
            path.pop();
        }
        for f in fields.iter().filter(|f| f.required) {
            if !out.contains_key(f.key) {
                path.push(Seg::Key(f.key));
                self.report(path, format!("missing: {} is required", expected(f.ty)));
                path.pop();
                out.insert(Value::String(f.key.into()), placeholder(f.ty));
            }
        }
        out
    }
}

/// A value of `ty` that passes serde, for a field whose own value was wrong.
fn placeholder(ty: Ty) -> Value {
    match ty {
        Text => Value::String(String::new()),
        Number => Value::Number(0.5.into()),
        Whole => Value::Number(1.into()),
        Bool => Value::Bool(true),
        List(_) => Value::Sequence(Vec::new()),
        Map(fields) => {
            let mut m = Mapping::new();
            for f in fields.iter().filter(|f| f.required) {
                m.insert(Value::String(f.key.into()), placeholder(f.ty));
            }
            Value::Mapping(m)
        }
    }
}
