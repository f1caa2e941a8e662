//! Applying a delta snapshot to its base (format and meaning in [`super`]).

use std::collections::HashSet;

use super::{Decoded, Snapshot, SnapshotError, signed_tag_offset};
use crate::aggregator::Aggregator;
use crate::config::Tier;
use crate::ring::tag_of;

impl Aggregator {
    /// `base` (a whole snapshot, or one with deltas applied) with `delta`, a later delta of
    /// the same base and partition, applied: every ring bucket in the span the delta holds,
    /// and everything else, is the delta's; the buckets outside it are the base's.
    /// Refuses a whole snapshot as the delta, another partition's delta or another base's.
    pub fn apply_delta(&self, base: Snapshot, delta: Snapshot) -> Result<Snapshot, SnapshotError> {
        let (mut b, d) = (base.d, delta.d);
        let Some((from, to)) = d.delta else {
            return Err(SnapshotError::NotADelta("a whole snapshot is not a delta"));
        };
        if d.partition != b.partition {
            return Err(SnapshotError::NotADelta("a delta of another partition"));
        }
        if d.base != b.base {
            return Err(SnapshotError::OtherBase {
                found: d.base,
                expected: b.base,
            });
        }
        let tiers = &self.shared().layout;
        let keep = Keep {
            ref_ms: d.ref_ms,
            from,
            to,
        };
        let mut mots = Vec::with_capacity(d.mots.len().max(b.mots.len()));
        let mut old = std::mem::take(&mut b.mots).into_iter().peekable();
        for mut m in d.mots {
            // Both are in increasing index order (the decoder checks).
            while let Some(o) = old.next_if(|o| o.idx < m.idx) {
                mots.push(o);
            }
            if let Some(o) = old.next_if(|o| o.idx == m.idx) {
                match (&mut m.ring, o.ring) {
                    (Some(n), Some(o)) => {
                        keep.merge(&tiers.counter, &mut n.counters, o.counters, |e| (e.0, e.1));
                        match (&mut n.detail, o.detail) {
                            (Some(nd), Some(od)) => {
                                keep.merge(&tiers.detail, nd, od, |e| (e.0, e.1.tag));
                            }
                            (n @ None, od) => *n = od,
                            (Some(_), None) => {}
                        }
                        match (&mut n.funnel, o.funnel) {
                            (Some(nf), Some(of)) => {
                                keep.merge(&tiers.counter, nf, of, |e| (e.0, e.1));
                            }
                            (n @ None, of) => *n = of,
                            (Some(_), None) => {}
                        }
                    }
                    (n @ None, o) => *n = o,
                    (Some(_), None) => {}
                }
            }
            mots.push(m);
        }
        mots.extend(old);

        let mut exps = Vec::with_capacity(d.exps.len().max(b.exps.len()));
        let mut old = std::mem::take(&mut b.exps).into_iter().peekable();
        for mut e in d.exps {
            while let Some(o) = old.next_if(|o| o.idx < e.idx) {
                exps.push(o);
            }
            if let Some(o) = old.next_if(|o| o.idx == e.idx) {
                match (&mut e.ring, o.ring) {
                    (Some(n), Some(o)) => {
                        keep.merge(&tiers.counter, &mut n.counters, o.counters, |c| (c.0, c.1));
                        keep.merge(&tiers.detail, &mut n.mps, o.mps, |c| (c.0, c.1));
                    }
                    (n @ None, o) => *n = o,
                    (Some(_), None) => {}
                }
            }
            exps.push(e);
        }
        exps.extend(old);

        Ok(Snapshot {
            d: Box::new(Decoded {
                mots,
                exps,
                // Whole again: a later delta of the same base applies to it as to the base,
                // since the span written since the base only widens.
                delta: None,
                ..*d
            }),
        })
    }
}

/// Which of the older snapshot's ring buckets survive a delta.
struct Keep {
    ref_ms: i64,
    from: i64,
    to: i64,
}

impl Keep {
    /// Adds to `new` (the delta's buckets of one ring) the buckets of `old` (the same ring in
    /// the older snapshot) that the delta does not cover: outside its span in their tier,
    /// and in a slot the delta leaves empty (else a bucket written since replaced it). `at`
    /// gives an entry's slot and tag.
    fn merge<E>(
        &self,
        tiers: &[Tier],
        new: &mut Vec<E>,
        old: Vec<E>,
        at: impl Fn(&E) -> (usize, u32),
    ) {
        let taken: HashSet<usize> = new.iter().map(|e| at(e).0).collect();
        for e in old {
            let (slot, tag) = at(&e);
            if taken.contains(&slot) {
                continue;
            }
            let Some(t) = tiers
                .iter()
                .find(|t| (t.offset as usize..(t.offset + t.cap) as usize).contains(&slot))
            else {
                continue;
            };
            let r = t.index(self.ref_ms);
            let i = r.saturating_add(signed_tag_offset(tag, tag_of(r)));
            if !(t.index(self.from)..=t.index(self.to)).contains(&i) {
                new.push(e);
            }
        }
    }
}
