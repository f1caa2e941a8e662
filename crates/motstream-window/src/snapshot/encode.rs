//! Writes a partition's state as snapshot bytes (format in [`super`]).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::wire::Out;
use super::{DetailRaw, LabelRaw, MAGIC, VERSION, fingerprint, signed_tag_offset};
use crate::config::Tier;
use crate::partition::{NO_WATERMARK, PartitionState, Stats};
use crate::ring::{CounterSlot, tag_of};
use crate::writer::WriterState;

/// The nine statistics in format order.
pub(crate) fn stats_of(s: &Stats) -> [&AtomicU64; 9] {
    [
        &s.late,
        &s.rejected_future,
        &s.unknown_mot_index,
        &s.unidentified,
        &s.journeys_started,
        &s.journeys_completed,
        &s.journeys_abandoned,
        &s.journeys_overflow,
        &s.journeys_open,
    ]
}

/// Encodes `p`, whose writer state `w` the caller holds locked, as base `base` (a whole
/// snapshot) or, with `delta`, as a delta relative to base `base`: only the ring buckets
/// from the bucket of `delta`'s first time to that of its last (everything else whole).
pub(crate) fn encode(
    p: &PartitionState,
    w: &WriterState,
    stamp: u64,
    now_ms: i64,
    base: u64,
    delta: Option<(i64, i64)>,
) -> Vec<u8> {
    let l = &p.shared.layout;
    let mut o = Out::default();
    o.bytes(MAGIC);
    o.bytes(&[VERSION]);
    o.bytes(&fingerprint(&p.shared).to_le_bytes());
    o.bytes(&stamp.to_le_bytes());
    o.bytes(&base.to_le_bytes());
    opt(&mut o, delta.map(|d| d.0));
    if let Some((_, to)) = delta {
        o.i(to);
    }
    o.i(i64::from(p.id().0));
    opt(&mut o, w.next_offset);
    let ref_ms = if w.watermark != NO_WATERMARK {
        w.watermark
    } else {
        now_ms
    };
    o.i(ref_ms);
    opt(&mut o, (w.watermark != NO_WATERMARK).then_some(w.watermark));
    for s in stats_of(&p.stats) {
        // Relaxed: the writer's own statistics, read under its lock.
        o.u(s.load(Ordering::Relaxed));
    }
    for names in [p.reasons.names(), p.channels.names()] {
        o.u(names.len() as u64);
        for n in &names {
            o.str(n);
        }
    }
    let (unid, overflow) = p.unidentified.raw();
    o.u(unid.len() as u64);
    for e in &unid {
        o.str(&e.id);
        o.u(e.count);
        o.i(e.first_ms);
        o.i(e.last_ms);
        match &e.channel {
            Some(c) => {
                o.u(1);
                o.str(c);
            }
            None => o.u(0),
        }
    }
    o.u(overflow);
    let journeys = w.journeys.raw();
    o.u(journeys.len() as u64);
    for (key, j) in &journeys {
        o.bytes(&key.to_le_bytes());
        o.i(j.last_seen_ms);
        o.u(u64::from(j.exp));
        o.u(u64::from(j.interactions));
        o.u(j.mots_seen);
        o.u(u64::from(j.last_mot));
        o.u(u64::from(j.reached_sco));
        o.u(u64::from(j.last_failed));
    }
    // The in-flight gauges as of the last expiry pass, so that a restored partition reports
    // what the original did until its next pass.
    let gauges = w.journeys.in_flight();
    o.u(gauges.len() as u64);
    for g in gauges {
        o.u(g.in_flight);
        o.u(g.stalled);
    }

    let refs =
        |tiers: &[Tier]| -> Vec<u32> { tiers.iter().map(|t| tag_of(t.index(ref_ms))).collect() };
    let (cref, dref) = (refs(&l.counter), refs(&l.detail));
    let spans = |tiers: &[Tier]| -> Vec<Option<Span>> {
        tiers
            .iter()
            .map(|t| {
                delta.map(|(from, to)| Span {
                    from: t.index(from),
                    to: t.index(to),
                    reference: t.index(ref_ms),
                })
            })
            .collect()
    };
    let (cspan, dspan) = (spans(&l.counter), spans(&l.detail));
    let (cref, dref) = (Refs(&cref, &cspan), Refs(&dref, &dspan));

    let mots: Vec<usize> = (0..p.heads.len())
        .filter(|&i| p.heads[i].touched() || p.mots[i].get().is_some())
        .collect();
    o.u(mots.len() as u64);
    for i in mots {
        o.u(i as u64);
        let head = &p.heads[i];
        o.u(u64::from(head.touched()));
        // Where the MOT's data begins: the alert engine's window coverage.
        o.i(head.earliest_ms().unwrap_or(0));
        for (k, &r) in cref.0.iter().enumerate() {
            let (tag, [s, f]) = head.raw(k);
            o.i(signed_tag_offset(tag, r));
            o.u(u64::from(s));
            o.u(u64::from(f));
        }
        let Some(m) = p.mots[i].get() else {
            o.u(0);
            continue;
        };
        o.u(1);
        // Relaxed: the writer's own totals, read under its lock.
        o.u(m.late_total.load(Ordering::Relaxed));
        o.u(m.future_total.load(Ordering::Relaxed));
        counter_pairs(&mut o, &l.counter, cref, m.counters());
        match m.detail_if_any() {
            None => o.u(0),
            Some(d) => {
                o.u(1);
                tiers(
                    &mut o,
                    &l.detail,
                    dref,
                    d,
                    |s| {
                        let r = s.raw();
                        (!r.is_zero()).then_some((r.tag, r))
                    },
                    detail,
                );
            }
        }
        match m.funnel_if_any() {
            None => o.u(0),
            Some(f) => {
                o.u(1);
                counter_pairs(&mut o, &l.counter, cref, f);
            }
        }
    }

    let exps: Vec<usize> = (0..p.exp_heads.len())
        .filter(|&i| p.exp_heads[i].touched() || p.exps[i].get().is_some())
        .collect();
    o.u(exps.len() as u64);
    for i in exps {
        o.u(i as u64);
        let head = &p.exp_heads[i];
        o.u(u64::from(head.touched()));
        for (k, &r) in cref.0.iter().enumerate() {
            let (tag, wf) = head.raw(k);
            o.i(signed_tag_offset(tag, r));
            o.u(wf);
        }
        let Some(e) = p.exps.get(i).and_then(OnceLock::get) else {
            o.u(0);
            continue;
        };
        o.u(1);
        tiers(
            &mut o,
            &l.counter,
            cref,
            e.counters(),
            |s| {
                let (tag, j, wf) = s.raw();
                (j != [0, 0, 0] || wf != 0).then_some((tag, (j, wf)))
            },
            |o, (j, wf)| {
                for x in j {
                    o.u(u64::from(x));
                }
                o.u(wf);
            },
        );
        tiers(
            &mut o,
            &l.detail,
            dref,
            e.mps(),
            |s| {
                let (tag, max, bins) = s.raw();
                (max != 0 || !bins.is_empty()).then_some((tag, (max, bins)))
            },
            |o, (max, bins)| {
                o.u(u64::from(max));
                o.u(bins.len() as u64);
                let mut prev = 0u64;
                for (b, n) in bins {
                    o.u(u64::from(b) - prev);
                    prev = u64::from(b);
                    o.u(u64::from(n));
                }
            },
        );
    }
    o.buf
}

fn opt(o: &mut Out, v: Option<i64>) {
    match v {
        Some(v) => {
            o.u(1);
            o.i(v);
        }
        None => o.u(0),
    }
}

/// Per tier: the count of non-empty slots, then each as its bucket's offset from the
/// reference bucket and its values.
/// A MOT's two-counter rings on the counter tiers (outcomes, or the funnel's reached and
/// abandoned-here), empty slots left out.
fn counter_pairs(o: &mut Out, counter: &[Tier], refs: Refs<'_>, slots: &[CounterSlot<2>]) {
    tiers(
        o,
        counter,
        refs,
        slots,
        |s| {
            let (tag, v) = s.raw();
            (v != [0, 0]).then_some((tag, v))
        },
        |o, v| {
            o.u(u64::from(v[0]));
            o.u(u64::from(v[1]));
        },
    );
}

/// Per tier: the reference bucket's tag, and for a delta its span (`None`: every bucket).
#[derive(Clone, Copy)]
struct Refs<'a>(&'a [u32], &'a [Option<Span>]);

/// A delta's buckets in one tier: the first and last indices written, and the reference
/// bucket's index (tags are relative to it).
#[derive(Clone, Copy)]
struct Span {
    from: i64,
    to: i64,
    reference: i64,
}

impl Span {
    fn holds(&self, tag: u32) -> bool {
        let i = self
            .reference
            .saturating_add(signed_tag_offset(tag, tag_of(self.reference)));
        (self.from..=self.to).contains(&i)
    }
}

/// A ring slot's tag, read before its values: a delta skips most slots, and reading a
/// detail slot's values allocates.
trait Tagged {
    fn raw_tag(&self) -> u32;
}

impl<const N: usize> Tagged for CounterSlot<N> {
    fn raw_tag(&self) -> u32 {
        self.raw().0
    }
}

impl Tagged for crate::bucket::DetailSlot {
    fn raw_tag(&self) -> u32 {
        self.raw_tag()
    }
}

impl Tagged for crate::bucket::ExpSlot {
    fn raw_tag(&self) -> u32 {
        self.raw_tag()
    }
}

impl Tagged for crate::bucket::MpsSlot {
    fn raw_tag(&self) -> u32 {
        self.raw_tag()
    }
}

fn tiers<S: Tagged, V>(
    o: &mut Out,
    tiers: &[Tier],
    refs: Refs<'_>,
    slots: &[S],
    raw: impl Fn(&S) -> Option<(u32, V)>,
    mut put: impl FnMut(&mut Out, V),
) {
    for ((t, &r), &span) in tiers.iter().zip(refs.0).zip(refs.1) {
        let range = t.offset as usize..(t.offset + t.cap) as usize;
        let ring = slots.get(range).unwrap_or(&[]);
        let found: Vec<(u32, V)> = match span {
            Some(s) if s.to < s.from => Vec::new(),
            // A delta shorter than the ring visits only its buckets' slots.
            Some(s) if s.to.saturating_sub(s.from) < i64::from(t.cap) => (s.from..=s.to)
                .filter_map(|i| slots.get(t.slot(i)).filter(|x| x.raw_tag() == tag_of(i)))
                .filter_map(&raw)
                .collect(),
            Some(s) => ring
                .iter()
                .filter(|x| s.holds(x.raw_tag()))
                .filter_map(&raw)
                .collect(),
            None => ring.iter().filter_map(&raw).collect(),
        };
        o.u(found.len() as u64);
        for (tag, v) in found {
            o.i(signed_tag_offset(tag, r));
            put(o, v);
        }
    }
}

fn detail(o: &mut Out, d: DetailRaw) {
    o.u(u64::from(d.late));
    o.u(u64::from(d.future));
    o.u(u64::from(d.max_ms));
    o.u(d.hist.len() as u64);
    let mut prev = 0u64;
    for (b, n) in d.hist {
        o.u(u64::from(b) - prev);
        prev = u64::from(b);
        o.u(u64::from(n));
    }
    labels(o, &d.reasons);
    labels(o, &d.channels);
}

fn labels<const V: usize>(o: &mut Out, l: &LabelRaw<V>) {
    o.u(l.ids.len() as u64);
    for (id, counts) in &l.ids {
        o.u(u64::from(*id));
        for c in counts {
            o.u(u64::from(*c));
        }
    }
    for c in l.other {
        o.u(u64::from(c));
    }
}
