//! How journeys walk their experience: order, retries, abandonment, incidents, health, and
//! the demo scenario's alert.

use std::collections::BTreeMap;

use motstream_core::{Classification, Verdict, classify};

use super::*;

/// Per journey key, its events in order.
fn journeys(out: &[SimEvent]) -> BTreeMap<&str, Vec<&SimEvent>> {
    let mut by: BTreeMap<&str, Vec<&SimEvent>> = BTreeMap::new();
    for e in out {
        by.entry(e.key.as_str()).or_default().push(e);
    }
    by
}

#[test]
fn journeys_visit_mots_in_catalog_order() {
    let catalog = airline();
    let out = run(&mut sim(SimConfig::default(), demo()), 5 * MIN, 1000);
    let order = |id: &str| {
        catalog.experiences[0]
            .mots
            .iter()
            .position(|&m| catalog.mot(m).id == id)
    };
    for (key, events) in journeys(&out) {
        let steps: Vec<usize> = events.iter().filter_map(|e| order(mot_of(e))).collect();
        assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{key}: {steps:?}");
        // A MOT repeats only after a failure: a retry.
        for w in events.windows(2) {
            if w[0].event.mot_id == w[1].event.mot_id {
                assert!(failed(w[0]), "{key}: a retry follows a success");
            }
        }
    }
    // Every MOT is channelled as the catalog says.
    for e in &out {
        let mot = catalog.mot(catalog.mot_idx(mot_of(e)).expect("a catalog MOT"));
        assert!(
            mot.channels
                .iter()
                .any(|c| Some(c.as_str()) == e.event.channel.as_deref())
        );
    }
    // The demo sends a fifth of journeys through the lounge.
    let count = |id: &str| out.iter().filter(|e| mot_of(e) == id).count() as f64;
    let lounge = count("lounge-entry") / count("boarding-gate");
    assert!((0.15..0.25).contains(&lounge), "{lounge}");
}

/// Journeys seen whole (no warm-up) that reached the SCO: their number of interactions.
fn interactions_per_sco(scenario: &str, cfg: SimConfig) -> (f64, Simulator) {
    let scenario = Scenario::from_yaml(scenario, "t.yaml", &airline()).expect("valid");
    let mut s = sim(
        SimConfig {
            warm_up: false,
            ..cfg
        },
        scenario,
    );
    let out = run(&mut s, 10 * MIN, 5000);
    let (mut n, mut total) = (0, 0);
    for events in journeys(&out).values() {
        let last = events[events.len() - 1];
        if mot_of(last) == "boarding-gate" && !failed(last) {
            n += 1;
            total += events.len();
        }
    }
    assert!(n > 1000, "{n}");
    (total as f64 / f64::from(n), s)
}

#[test]
fn retries_add_interactions_per_sco() {
    let perfect = "mots:\n".to_owned()
        + &[
            "online-check-in",
            "bag-drop",
            "security",
            "lounge-entry",
            "boarding-gate",
        ]
        .map(|m| format!("  {m}: {{ failure_rate: 0, typical_duration: 10s }}\n"))
        .concat();
    let (base, _) = interactions_per_sco(&perfect, flat(300.0));
    assert_eq!(base, 5.0, "one interaction per MOT without failures");
    let flaky = perfect.replace("failure_rate: 0,", "failure_rate: 0.3,");
    let cfg = SimConfig {
        retry_probability: 0.9,
        abandon_probability: 0.05,
        ..flat(300.0)
    };
    let (more, s) = interactions_per_sco(&flaky, cfg);
    // Per MOT 1 + 0.27 + 0.27^2 attempts when retried, fewer among journeys that got through.
    assert!(more > 6.0, "{more}");
    let st = s.stats();
    assert!(st.journeys_without_sco > 0 && st.journeys_with_sco > st.journeys_without_sco);
}

#[test]
fn abandonment_ends_journeys_without_sco() {
    let scenario = "mots:\n  security: { failure_rate: 0.5 }\n";
    let scenario = Scenario::from_yaml(scenario, "t.yaml", &airline()).expect("valid");
    let cfg = SimConfig {
        retry_probability: 0.0,
        abandon_probability: 1.0,
        ..flat(200.0)
    };
    let mut s = sim(cfg, scenario);
    let out = run(&mut s, 5 * MIN, 1000);
    let mut abandoned = 0;
    for events in journeys(&out).values() {
        if let Some(i) = events
            .iter()
            .position(|e| mot_of(e) == "security" && failed(e))
        {
            assert_eq!(i, events.len() - 1, "nothing follows an abandonment");
            abandoned += 1;
        }
    }
    assert!(abandoned > 500, "{abandoned}");
    assert!(s.stats().journeys_without_sco > 500);
}

#[test]
fn incident_raises_the_failure_rate_of_its_mot_only_while_active() {
    let out = run(&mut sim(flat(200.0), demo()), 8 * MIN, 1000);
    let share = |mot: &str, channel: Option<&str>, from: i64, until: i64| {
        let sel: Vec<_> = out
            .iter()
            .filter(|e| {
                mot_of(e) == mot && (T0 + from..T0 + until).contains(&e.event.event_time_ms)
            })
            .filter(|e| channel.is_none_or(|c| e.event.channel.as_deref() == Some(c)))
            .collect();
        assert!(sel.len() > 300, "{mot} {channel:?}: {}", sel.len());
        sel.iter().filter(|e| failed(e)).count() as f64 / sel.len() as f64
    };
    let kiosk = Some("kiosk");
    assert!(share("bag-drop", kiosk, 0, 2 * MIN) < 0.03);
    assert!((share("bag-drop", kiosk, 2 * MIN, 4 * MIN) - 0.8).abs() < 0.04);
    assert!(share("bag-drop", kiosk, 4 * MIN, 8 * MIN) < 0.03);
    assert!(share("bag-drop", Some("desk"), 2 * MIN, 4 * MIN) < 0.03);
    assert!(share("security", None, 2 * MIN, 4 * MIN) < 0.05);
    for e in out
        .iter()
        .filter(|e| e.event.failure_reason.as_deref() == Some("kiosk-offline"))
    {
        assert_eq!(e.event.channel.as_deref(), kiosk);
        assert!((T0 + 2 * MIN..T0 + 4 * MIN).contains(&e.event.event_time_ms));
    }
}

#[test]
fn healthy_run_keeps_every_mot_above_its_target_with_some_too_slow() {
    let catalog = airline();
    let out = run(&mut sim(flat(300.0), Scenario::none()), 10 * MIN, 5000);
    let mut tally: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    let mut slow = 0;
    for e in &out {
        let Ok(Classification::Known { verdict, why, .. }) = classify(&e.event, &catalog) else {
            panic!("{e:?} does not classify");
        };
        let t = tally.entry(mot_of(e)).or_default();
        t.0 += u32::from(verdict == Verdict::Magic);
        t.1 += 1;
        slow += u32::from(matches!(why, motstream_core::Why::TooSlow { .. }));
    }
    for (mot, (magic, n)) in tally {
        let target = catalog.mot(catalog.mot_idx(mot).expect("known")).target;
        let rate = f64::from(magic) / f64::from(n);
        assert!(rate > target && rate < 1.0, "{mot}: {rate} for {target}");
    }
    assert!(slow > 50, "{slow}");
}

#[test]
fn journeys_complete_within_a_minute_or_two_at_the_default_speed() {
    let out = run(&mut sim(SimConfig::default(), demo()), 6 * MIN, 1000);
    let mut spans: Vec<i64> = journeys(&out)
        .values()
        .filter(|ev| {
            mot_of(ev[0]) == "online-check-in" && mot_of(ev[ev.len() - 1]) == "boarding-gate"
        })
        .map(|ev| ev[ev.len() - 1].event.event_time_ms - ev[0].event.event_time_ms)
        .collect();
    spans.sort_unstable();
    let median = spans[spans.len() / 2];
    assert!((30_000..120_000).contains(&median), "{median} ms");
}

#[test]
fn airline_demo_fires_the_bag_drop_floor_alert_during_the_incident_and_resolves_after() {
    let catalog = airline();
    let bag = catalog.mot_idx("bag-drop").expect("declared");
    let floor = catalog
        .mot(bag)
        .alert_policy
        .floor
        .clone()
        .expect("a floor rule");
    let over = i64::try_from(floor.over.as_millis()).expect("minutes");
    let out = run(&mut sim(SimConfig::default(), demo()), 12 * MIN, 1000);
    let drops: Vec<(i64, bool)> = out
        .iter()
        .filter(|e| mot_of(e) == "bag-drop")
        .map(|e| {
            let magic = matches!(
                classify(&e.event, &catalog),
                Ok(Classification::Known {
                    verdict: Verdict::Magic,
                    ..
                })
            );
            (e.event.event_time_ms, magic)
        })
        .collect();
    // The floor rule, recounted naively every second: fewer than `below` magic over `over`,
    // given `min_events`.
    let firing: Vec<i64> = (1..=12 * 60)
        .map(|s| T0 + s * 1000)
        .filter(|&now| {
            let w: Vec<_> = drops
                .iter()
                .filter(|(t, _)| (now - over..=now).contains(t))
                .collect();
            let magic = w.iter().filter(|(_, m)| *m).count() as f64;
            w.len() as u64 >= floor.min_events && magic / (w.len() as f64) < floor.below
        })
        .collect();
    let (Some(&first), Some(&last)) = (firing.first(), firing.last()) else {
        panic!("the floor alert never fires");
    };
    // The incident runs from minute 2 to 4; the floor looks at the last minute.
    assert!(
        (T0 + 2 * MIN..T0 + 3 * MIN).contains(&first),
        "fires at {}s",
        (first - T0) / 1000
    );
    assert!(
        (T0 + 4 * MIN..T0 + 5 * MIN).contains(&last),
        "resolves at {}s",
        (last - T0) / 1000
    );
    assert_eq!(
        firing.len() as i64,
        (last - first) / 1000 + 1,
        "fires once, without flapping"
    );
}
