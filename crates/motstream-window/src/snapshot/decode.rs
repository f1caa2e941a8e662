//! Reads and validates snapshot bytes against an aggregator's layout (format in [`super`]).

use std::collections::HashSet;
use std::sync::Arc;

use super::wire::In;
use super::{
    Decoded, DetailRaw, ExpRaw, ExpRingRaw, JourneyRaw, LabelRaw, MAGIC, MotRaw, MotRingRaw,
    SnapshotError, UnidentifiedRaw, VERSION, fingerprint,
};
use crate::config::Tier;
use crate::histogram::{LATENCY_BINS, MPS_BINS};
use crate::labels::LABEL_SLOTS;
use crate::partition::{NO_WATERMARK, PartitionId, Shared};
use crate::ring::tag_of;

fn bad(r: &In<'_>, field: &'static str, why: &'static str) -> SnapshotError {
    SnapshotError::Malformed {
        field,
        offset: r.position(),
        why,
    }
}

/// Decodes `bytes` for an aggregator with `shared`'s layout, expecting `stamp`.
pub(crate) fn decode(shared: &Shared, bytes: &[u8], stamp: u64) -> Result<Decoded, SnapshotError> {
    let l = &shared.layout;
    let c = &l.config;
    let mut r = In::new(bytes);
    let magic = r
        .take(4, "magic")
        .map_err(|_| SnapshotError::NotASnapshot)?;
    let version = r
        .take(1, "version")
        .map_err(|_| SnapshotError::NotASnapshot)?;
    if magic != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    if version != [VERSION] {
        return Err(SnapshotError::OtherVersion {
            found: version.first().copied().unwrap_or(0),
            expected: VERSION,
        });
    }
    let expected = fingerprint(shared);
    let found = r.fixed64("fingerprint")?;
    if found != expected {
        return Err(SnapshotError::OtherLayout { found, expected });
    }
    let found = r.fixed64("stamp")?;
    if found != stamp {
        return Err(SnapshotError::OtherStamp {
            found,
            expected: stamp,
        });
    }
    let base = r.fixed64("base")?;
    let delta = match opt(&mut r, "delta_from")? {
        Some(from) => Some((from, r.i("delta_to")?)),
        None => None,
    };
    let partition =
        i32::try_from(r.i("partition")?).map_err(|_| bad(&r, "partition", "not a 32-bit id"))?;
    let next_offset = opt(&mut r, "next_offset")?;
    if next_offset.is_some_and(|o| o < 0) {
        return Err(bad(&r, "next_offset", "negative"));
    }
    let ref_ms = r.i("ref_ms")?;
    // Bucket indices are computed around the reference time: keep it where they cannot
    // overflow (±2^61 ms is ~73 million years).
    if ref_ms.unsigned_abs() > 1 << 61 {
        return Err(bad(&r, "ref_ms", "out of range"));
    }
    let watermark = match opt(&mut r, "watermark")? {
        Some(w) if w == NO_WATERMARK => return Err(bad(&r, "watermark", "reserved value")),
        Some(w) => w,
        None => NO_WATERMARK,
    };
    let mut stats = [0u64; 9];
    for s in &mut stats {
        *s = r.u("stats")?;
    }
    let reasons = names(
        &mut r,
        c.max_reasons_per_partition,
        c.max_label_bytes,
        "reasons",
    )?;
    let channels = names(
        &mut r,
        c.max_channels_per_partition,
        c.max_label_bytes,
        "channels",
    )?;

    let n = r.count(c.max_unidentified_per_partition, 5, "unidentified")?;
    let mut unidentified = Vec::with_capacity(n);
    let mut seen = HashSet::with_capacity(n);
    for _ in 0..n {
        let id: Arc<str> = Arc::from(r.str(c.max_label_bytes, "unidentified.id")?);
        if !seen.insert(Arc::clone(&id)) {
            return Err(bad(&r, "unidentified.id", "duplicate id"));
        }
        let count = r.u("unidentified.count")?;
        let first_ms = r.i("unidentified.first_seen_ms")?;
        let last_ms = r.i("unidentified.last_seen_ms")?;
        if first_ms > last_ms {
            return Err(bad(&r, "unidentified.first_seen_ms", "after last_seen_ms"));
        }
        let channel = if r.flag("unidentified.channel")? {
            Some(Arc::from(r.str(c.max_label_bytes, "unidentified.channel")?))
        } else {
            None
        };
        unidentified.push(UnidentifiedRaw {
            id,
            count,
            first_ms,
            last_ms,
            channel,
        });
    }
    let unidentified_overflow = r.u("unidentified_overflow")?;

    let exp_count = shared.topology.experience_count();
    let mot_count = shared.topology.mot_count();
    let n = r.count(c.max_journeys_per_partition, 14, "journeys")?;
    let mut journeys = Vec::with_capacity(n);
    for _ in 0..n {
        let key = r.fixed64("journeys.key")?;
        if journeys.last().is_some_and(|(k, _)| *k >= key) {
            return Err(bad(&r, "journeys.key", "not in increasing order"));
        }
        let last_seen_ms = r.i("journeys.last_seen_ms")?;
        let exp = r.upto(exp_count.saturating_sub(1) as u64, "journeys.experience")? as u32;
        if exp_count == 0 {
            return Err(bad(
                &r,
                "journeys.experience",
                "the topology has no experiences",
            ));
        }
        let interactions = r.u32("journeys.interactions")?;
        let mots_seen = r.u("journeys.mots_seen")?;
        let last_mot = r.upto(mot_count.saturating_sub(1) as u64, "journeys.last_mot")? as u32;
        if shared
            .topology
            .mot(crate::topology::MotIdx(last_mot))
            .map(|m| m.experience.0)
            != Some(exp)
        {
            return Err(bad(
                &r,
                "journeys.last_mot",
                "not a MOT of the journey's experience",
            ));
        }
        let reached_sco = r.flag("journeys.reached_sco")?;
        let last_failed = r.flag("journeys.last_failed")?;
        journeys.push((
            key,
            JourneyRaw {
                last_seen_ms,
                exp,
                interactions,
                mots_seen,
                last_mot,
                reached_sco,
                last_failed,
            },
        ));
    }
    let n = r.count(exp_count, 2, "journeys.in_flight")?;
    let mut in_flight = Vec::with_capacity(n);
    for _ in 0..n {
        in_flight.push(crate::journey::InFlight {
            in_flight: r.u("journeys.in_flight.count")?,
            stalled: r.u("journeys.in_flight.stalled")?,
        });
    }

    let ctx = Ctx {
        ref_ms,
        reasons: reasons.len(),
        channels: channels.len(),
    };
    let n = r.count(mot_count, 3, "mots")?;
    let mut mots = Vec::with_capacity(n);
    for _ in 0..n {
        let idx = r.upto(mot_count.saturating_sub(1) as u64, "mots.index")? as u32;
        if mots.last().is_some_and(|m: &MotRaw| m.idx >= idx) {
            return Err(bad(&r, "mots.index", "not in increasing order"));
        }
        let touched = r.flag("mots.touched")?;
        let earliest_ms = r.i("mots.earliest_ms")?;
        let mut head = Vec::with_capacity(l.counter.len());
        for t in &l.counter {
            let tag = ctx.head_tag(&mut r, t, "mots.head.bucket")?;
            head.push((
                tag,
                [r.u32("mots.head.successes")?, r.u32("mots.head.failures")?],
            ));
        }
        let ring = if r.flag("mots.ring")? {
            let late_total = r.u("mots.late_total")?;
            let future_total = r.u("mots.future_total")?;
            let counters = ctx.tiers(&mut r, &l.counter, 3, "mots.counters", |r| {
                Ok([
                    r.u32("mots.counters.successes")?,
                    r.u32("mots.counters.failures")?,
                ])
            })?;
            let detail = if r.flag("mots.detail")? {
                let d = ctx.tiers(&mut r, &l.detail, 6, "mots.detail", |r| ctx.detail(r))?;
                Some(
                    d.into_iter()
                        .map(|(slot, tag, mut d)| {
                            d.tag = tag;
                            (slot, d)
                        })
                        .collect(),
                )
            } else {
                None
            };
            let funnel = if r.flag("mots.funnel")? {
                Some(ctx.tiers(&mut r, &l.counter, 3, "mots.funnel", |r| {
                    Ok([
                        r.u32("mots.funnel.reached")?,
                        r.u32("mots.funnel.abandoned_here")?,
                    ])
                })?)
            } else {
                None
            };
            Some(MotRingRaw {
                late_total,
                future_total,
                counters,
                detail,
                funnel,
            })
        } else {
            None
        };
        mots.push(MotRaw {
            idx,
            touched,
            earliest_ms,
            head,
            ring,
        });
    }

    let n = r.count(exp_count, 3, "experiences")?;
    let mut exps = Vec::with_capacity(n);
    for _ in 0..n {
        let idx = r.upto(exp_count.saturating_sub(1) as u64, "experiences.index")? as u32;
        if exps.last().is_some_and(|e: &ExpRaw| e.idx >= idx) {
            return Err(bad(&r, "experiences.index", "not in increasing order"));
        }
        let touched = r.flag("experiences.touched")?;
        let mut head = Vec::with_capacity(l.counter.len());
        for t in &l.counter {
            let tag = ctx.head_tag(&mut r, t, "experiences.head.bucket")?;
            head.push((tag, r.u("experiences.head.weighted_failures")?));
        }
        let ring = if r.flag("experiences.ring")? {
            let counters = ctx
                .tiers(&mut r, &l.counter, 5, "experiences.counters", |r| {
                    Ok((
                        [
                            r.u32("experiences.counters.started")?,
                            r.u32("experiences.counters.completed")?,
                            r.u32("experiences.counters.abandoned")?,
                        ],
                        r.u("experiences.counters.weighted_failures")?,
                    ))
                })?
                .into_iter()
                .map(|(s, t, (j, w))| (s, t, j, w))
                .collect();
            let mps = ctx
                .tiers(&mut r, &l.detail, 3, "experiences.mps", |r| {
                    let max = r.u32("experiences.mps.max")?;
                    let bins = bins(r, MPS_BINS, "experiences.mps.bins")?;
                    Ok((max, bins.into_iter().map(|(b, n)| (b as u8, n)).collect()))
                })?
                .into_iter()
                .map(|(s, t, (max, b))| (s, t, max, b))
                .collect();
            Some(ExpRingRaw { counters, mps })
        } else {
            None
        };
        exps.push(ExpRaw {
            idx,
            touched,
            head,
            ring,
        });
    }
    r.end()?;
    Ok(Decoded {
        partition: PartitionId(partition),
        base,
        delta,
        next_offset,
        ref_ms,
        watermark,
        stats,
        reasons,
        channels,
        unidentified,
        unidentified_overflow,
        journeys,
        in_flight,
        mots,
        exps,
    })
}

fn opt(r: &mut In<'_>, what: &'static str) -> Result<Option<i64>, SnapshotError> {
    Ok(if r.flag(what)? {
        Some(r.i(what)?)
    } else {
        None
    })
}

fn names(
    r: &mut In<'_>,
    max: usize,
    max_bytes: usize,
    what: &'static str,
) -> Result<Vec<Arc<str>>, SnapshotError> {
    let n = r.count(max, 1, what)?;
    let mut v: Vec<Arc<str>> = Vec::with_capacity(n);
    let mut seen = HashSet::with_capacity(n);
    for _ in 0..n {
        let s = r.str(max_bytes, what)?;
        if !seen.insert(s) {
            return Err(bad(r, what, "duplicate label"));
        }
        v.push(Arc::from(s));
    }
    Ok(v)
}

/// Non-zero bins as `(bin delta, count)`, bins strictly increasing and below `limit`.
fn bins(
    r: &mut In<'_>,
    limit: usize,
    what: &'static str,
) -> Result<Vec<(u16, u32)>, SnapshotError> {
    let n = r.count(limit, 2, what)?;
    let mut v = Vec::with_capacity(n);
    let mut prev: Option<u64> = None;
    for _ in 0..n {
        let d = r.upto(limit as u64, what)?;
        let b = match prev {
            None => d,
            Some(_) if d == 0 => return Err(bad(r, what, "bins not increasing")),
            Some(p) => p + d,
        };
        if b >= limit as u64 {
            return Err(bad(r, what, "bin out of range"));
        }
        let count = r.u32(what)?;
        if count == 0 {
            return Err(bad(r, what, "empty bin listed"));
        }
        prev = Some(b);
        v.push((b as u16, count));
    }
    Ok(v)
}

struct Ctx {
    ref_ms: i64,
    reasons: usize,
    channels: usize,
}

impl Ctx {
    /// A bucket given as an offset from the reference bucket in tier `t`: its index.
    fn index(&self, r: &mut In<'_>, t: &Tier, what: &'static str) -> Result<i64, SnapshotError> {
        let d = r.i(what)?;
        if !(-(1 << 30)..(1 << 30)).contains(&d) {
            return Err(bad(r, what, "bucket offset out of range"));
        }
        Ok(t.index(self.ref_ms) + d)
    }

    fn head_tag(&self, r: &mut In<'_>, t: &Tier, what: &'static str) -> Result<u32, SnapshotError> {
        Ok(tag_of(self.index(r, t, what)?))
    }

    /// Per tier, the listed buckets: `(slot, tag, value)`, each slot at most once.
    fn tiers<V>(
        &self,
        r: &mut In<'_>,
        tiers: &[Tier],
        min_bytes: usize,
        what: &'static str,
        mut value: impl FnMut(&mut In<'_>) -> Result<V, SnapshotError>,
    ) -> Result<Vec<(usize, u32, V)>, SnapshotError> {
        let mut out = Vec::new();
        for t in tiers {
            let n = r.count(t.cap as usize, min_bytes, what)?;
            let mut used = vec![false; t.cap as usize];
            for _ in 0..n {
                let index = self.index(r, t, what)?;
                let slot = t.slot(index);
                let rel = slot - t.offset as usize;
                match used.get_mut(rel) {
                    Some(u) if !*u => *u = true,
                    _ => return Err(bad(r, what, "two buckets in one ring slot")),
                }
                out.push((slot, tag_of(index), value(r)?));
            }
        }
        Ok(out)
    }

    fn detail(&self, r: &mut In<'_>) -> Result<DetailRaw, SnapshotError> {
        let late = r.u32("mots.detail.late")?;
        let future = r.u32("mots.detail.rejected_future")?;
        let max_ms = r.u32("mots.detail.max_latency_ms")?;
        let hist = bins(r, LATENCY_BINS, "mots.detail.latency")?;
        let reasons = labels::<1>(r, self.reasons, "mots.detail.reasons")?;
        let channels = labels::<2>(r, self.channels, "mots.detail.channels")?;
        Ok(DetailRaw {
            tag: 0,
            late,
            future,
            max_ms,
            hist,
            reasons,
            channels,
        })
    }
}

fn labels<const V: usize>(
    r: &mut In<'_>,
    interned: usize,
    what: &'static str,
) -> Result<LabelRaw<V>, SnapshotError> {
    let n = r.count(LABEL_SLOTS, 1 + V, what)?;
    let mut ids: Vec<(u16, [u32; V])> = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.u(what)?;
        if id >= interned as u64 {
            return Err(bad(r, what, "label id not interned"));
        }
        let id = id as u16;
        if ids.iter().any(|(i, _)| *i == id) {
            return Err(bad(r, what, "duplicate label id"));
        }
        let mut counts = [0u32; V];
        for c in &mut counts {
            *c = r.u32(what)?;
        }
        ids.push((id, counts));
    }
    let mut other = [0u32; V];
    for c in &mut other {
        *c = r.u32(what)?;
    }
    Ok(LabelRaw { ids, other })
}
