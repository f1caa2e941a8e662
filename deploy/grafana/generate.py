#!/usr/bin/env python3
"""Writes motstream's Grafana dashboards (deploy/grafana/dashboards/*.json).

The JSON files are what Grafana provisions and what is reviewed; this script is how they are
kept consistent (datasource variable, template variables, links, ids, layout). Change a
dashboard here (the Grafana JSON building blocks are in grafana.py) and run
`python3 deploy/grafana/generate.py`; scripts/test.d/10-prometheus-rules.sh
fails when the JSON and this script disagree. Metric names come from
deploy/prometheus/METRICS.md and recording rules (`motstream:*`) from
deploy/prometheus/rules/recording.yml only; the same test checks that.

    python3 deploy/grafana/generate.py           # rewrite the JSON files
    python3 deploy/grafana/generate.py --check   # exit 1 if they are out of date
"""

import json
import sys
from pathlib import Path

# Run as a script, its own directory is first on sys.path.
from grafana import (
    ALL_LINK,
    DS,
    bargauge,
    by_name,
    color_cells,
    dash_link,
    dashboard,
    link,
    row,
    stat,
    state_timeline,
    table,
    target,
    targets,
    thresholds,
    timeseries,
    var_datasource,
    var_query,
)

OUT = Path(__file__).resolve().parent / "dashboards"
WINDOWS = ["5m", "30m", "1h", "2h", "6h", "24h", "3d"]
# (rule, long window, short window), as in the catalog's default alert policy.
BURN_RULES = [
    ("page-fast-burn", "1h", "5m"),
    ("page-slow-burn", "6h", "30m"),
    ("ticket-fast-burn", "24h", "2h"),
    ("ticket-slow-burn", "3d", "6h"),
]
# motstream:mot_burn_state values (recording.yml), shown as text with a colour.
BURN_STATE_MAPPING = [
    {
        "type": "value",
        "options": {
            "0": {"text": "acceptable", "color": "green", "index": 0},
            "1": {"text": "increasing", "color": "orange", "index": 1},
            "2": {"text": "recovering", "color": "yellow", "index": 2},
            "3": {"text": "critical", "color": "red", "index": 3},
        },
    }
]
MOT_SEL = 'experience="$experience", mot="$mot"'
# Table queries drop the metric name and instance labels so that their rows merge by MOT.
MOT_BY = "max by (experience, mot, owner, team)"
EXP_SEL = 'experience="$experience", owner=~"$owner"'
TIME = "${__url_time_range}"
MOT_LINK = "/d/motstream-mot?var-experience=${__data.fields.experience}&var-mot=${__value.raw}&" + TIME
EXP_LINK = "/d/motstream-experience?var-experience=${__value.raw}&" + TIME



# --- template variables ----------------------------------------------------------------------


def var_window(default="1h"):
    return {
        "name": "window",
        "label": "Window",
        "type": "custom",
        "description": "The exporter's and the recording rules' windows.",
        "query": ",".join(WINDOWS),
        "current": {"selected": True, "text": default, "value": default},
        "options": [{"selected": w == default, "text": w, "value": w} for w in WINDOWS],
        "hide": 0,
        "multi": False,
        "includeAll": False,
    }


def var_experience(multi):
    return var_query("experience", "Experience", "label_values(motstream_mot_info, experience)", multi=multi, include_all=multi)


def var_owner():
    return var_query("owner", "Owner", 'label_values(motstream_mot_info{experience=~"$experience"}, owner)', multi=True, include_all=True)


def var_mot():
    return var_query("mot", "MOT", 'label_values(motstream_mot_info{experience=~"$experience", owner=~"$owner"}, mot)')


# --- dashboards ------------------------------------------------------------------------------


def alerts_annotation(selector):
    return {
        "name": "MOT alerts",
        "datasource": DS,
        "enable": True,
        "hide": False,
        "iconColor": "red",
        "expr": f'ALERTS{{alertstate="firing", {selector}}}',
        "step": "60s",
        "titleFormat": "{{alertname}} ({{severity}})",
        "textFormat": "{{experience}} / {{mot}}: {{owner}}, team {{team}}",
        "tagKeys": "severity,team",
        "useValueForTime": False,
    }


PCT_GOOD = thresholds("red", (0.9, "orange"), (0.95, "yellow"), (0.98, "green"))
BURN_THR = thresholds("green", (1, "yellow"), (6, "orange"), (14.4, "red"))


def overview():
    sel = 'experience=~"$experience"'
    mot_sel = 'experience=~"$experience", owner=~"$owner"'
    panels = [
        row("Successful Customer Outcomes"),
        stat(
            "SCO rate over $window", targets((f"motstream:experience_sco_ratio:rate${{window}}{{{sel}}}", "{{experience}}")),
            w=12, h=5, unit="percentunit", decimals=1, thr=PCT_GOOD, graph="area",
            description="Share of finished journeys (completed + abandoned) that reached the experience's SCO, per experience. Click an experience for its MOT table.",
            links=link("Experience ${__field.labels.experience}", "/d/motstream-experience?var-experience=${__field.labels.experience}&" + TIME),
        ),
        # clamp_min(..., 1): a journey needs at least one interaction, but histogram_quantile
        # interpolates inside the first bucket (0, 1] and would show values below one.
        bargauge(
            "MOTs per SCO (journeys over the dashboard range)",
            targets(
                (f"clamp_min(histogram_quantile(0.5, sum by (experience, le) (increase(motstream_experience_mots_per_sco_bucket{{{sel}}}[$__range]))), 1)", "{{experience}} p50"),
                (f"clamp_min(histogram_quantile(0.9, sum by (experience, le) (increase(motstream_experience_mots_per_sco_bucket{{{sel}}}[$__range]))), 1)", "{{experience}} p90"),
                (f"sum by (experience) (increase(motstream_experience_mots_per_sco_sum{{{sel}}}[$__range])) / sum by (experience) (increase(motstream_experience_mots_per_sco_count{{{sel}}}[$__range]))", "{{experience}} mean"),
            ),
            w=12, h=5, decimals=1, min_=1, thr=thresholds("green", (2, "yellow"), (4, "red")),
            description="Interactions a journey needed to reach its SCO. The optimum is one: every extra MOT is effort for the customer.",
        ),
        timeseries(
            "SCO rate (1h)", targets((f"motstream:experience_sco_ratio:rate1h{{{sel}}}", "{{experience}}")),
            unit="percentunit", max_=1, description="Rolling 1h SCO rate per experience.",
        ),
        timeseries(
            "Journeys", targets(
                (f"sum by (experience) (rate(motstream_experience_journeys_started_total{{{sel}}}[$__rate_interval]))", "{{experience}} started"),
                (f"sum by (experience) (rate(motstream_experience_journeys_completed_total{{{sel}}}[$__rate_interval]))", "{{experience}} reached SCO"),
                (f"sum by (experience) (rate(motstream_experience_journeys_abandoned_total{{{sel}}}[$__rate_interval]))", "{{experience}} abandoned"),
            ),
            unit="reqps", description="Journeys per second that began, reached the SCO, or timed out before it.",
        ),
        timeseries(
            "MOTs per SCO (p50, p90)", targets(
                (f"clamp_min(histogram_quantile(0.5, motstream:experience_mots_per_sco_bucket:rate1h{{{sel}}}), 1)", "{{experience}} p50"),
                (f"clamp_min(histogram_quantile(0.9, motstream:experience_mots_per_sco_bucket:rate1h{{{sel}}}), 1)", "{{experience}} p90"),
            ),
            w=24, h=7, description="Rolling 1h quantiles of interactions per successful journey.",
        ),
        row("Worst MOTs"),
        table(
            "Worst MOTs by burn rate ($window)",
            targets(
                f"topk(10, {MOT_BY} (motstream:mot_burn_rate:rate${{window}}{{{mot_sel}}}))",
                f"{MOT_BY} (motstream:mot_smoto_target{{{mot_sel}}} and on(experience, mot) topk(10, motstream:mot_burn_rate:rate${{window}}{{{mot_sel}}}))",
                f"{MOT_BY} ((1 - motstream:mot_error_ratio:rate${{window}}{{{mot_sel}}}) and on(experience, mot) topk(10, motstream:mot_burn_rate:rate${{window}}{{{mot_sel}}}))",
                instant=True,
            ),
            w=12, h=9,
            description="MOTs spending their error budget fastest. 1 spends exactly the budget; 14.4 over 1h pages. Click a MOT to drill down.",
            rename={"Value #A": "Burn rate", "Value #B": "Target", "Value #C": "SMOTO rate"},
            order=["mot", "experience", "owner", "team", "Burn rate", "SMOTO rate", "Target"],
            sort_by=("Burn rate", True),
            overrides=[
                by_name("Burn rate", ("decimals", 1), ("thresholds", BURN_THR), color_cells("color-background")),
                by_name("Target", ("unit", "percentunit"), ("decimals", 1)),
                by_name("SMOTO rate", ("unit", "percentunit"), ("decimals", 2)),
                by_name("mot", ("links", link("Drill down into ${__value.raw}", MOT_LINK))),
                by_name("experience", ("links", link("Experience ${__value.raw}", EXP_LINK))),
            ],
        ),
        table(
            "Worst MOTs by impact ($window)",
            targets(
                f'topk(10, {MOT_BY} (motstream_mot_impact{{{mot_sel}, window="$window"}}))',
                f'{MOT_BY} (motstream:mot_failures:increase${{window}}{{{mot_sel}}} and on(experience, mot) topk(10, max by (experience, mot) (motstream_mot_impact{{{mot_sel}, window="$window"}})))',
                instant=True,
            ),
            w=12, h=9,
            description="Share of the experience's weighted failures caused by each MOT (the catalog's impact_weight): where fixing helps customers most.",
            rename={"Value #A": "Impact", "Value #B": "Failures"},
            order=["mot", "experience", "owner", "team", "Impact", "Failures"],
            sort_by=("Impact", True),
            overrides=[
                by_name("Impact", ("unit", "percentunit"), ("decimals", 1), ("custom.cellOptions", {"type": "gauge", "mode": "basic"}), ("min", 0), ("max", 1), ("thresholds", thresholds("green", (0.25, "yellow"), (0.5, "red")))),
                by_name("Failures", ("decimals", 0)),
                by_name("mot", ("links", link("Drill down into ${__value.raw}", MOT_LINK))),
                by_name("experience", ("links", link("Experience ${__value.raw}", EXP_LINK))),
            ],
        ),
        row("Alerts"),
        table(
            "Firing alerts",
            targets(
                f'label_replace(max by (experience, mot, owner, team, alertname, severity) (ALERTS{{alertstate="firing", {sel}}}), "source", "prometheus", "", "")'
                f' or label_replace(max by (experience, mot, owner, team, alertname, severity) (motstream_mot_alert_firing{{{sel}}} == 1), "source", "motstream engine", "", "")',
                instant=True,
            ),
            w=16, h=8, merge=False,
            description="MOT alerts firing now, from Prometheus rules and from motstream's built-in engine.",
            rename={"alertname": "alert"},
            order=["severity", "alert", "mot", "experience", "owner", "team", "source"],
            exclude=["Value"],
            overrides=[
                by_name("severity", ("mappings", [{"type": "value", "options": {"page": {"color": "red", "index": 0}, "ticket": {"color": "orange", "index": 1}}}]), color_cells()),
                by_name("mot", ("links", link("Drill down into ${__value.raw}", MOT_LINK))),
            ],
        ),
        stat(
            "Pages / tickets firing",
            targets(
                (f'count(max by (experience, mot, alertname) (ALERTS{{alertstate="firing", severity="page", {sel}}})) or vector(0)', "pages (Prometheus)"),
                (f'count(max by (experience, mot, alertname) (ALERTS{{alertstate="firing", severity="ticket", {sel}}})) or vector(0)', "tickets (Prometheus)"),
                (f'count(max by (experience, mot, alertname) (motstream_mot_alert_firing{{severity="page", {sel}}} == 1)) or vector(0)', "pages (engine)"),
                (f'count(max by (experience, mot, alertname) (motstream_mot_alert_firing{{severity="ticket", {sel}}} == 1)) or vector(0)', "tickets (engine)"),
            ),
            w=8, h=8, thr=thresholds("green", (1, "red")), color="background",
        ),
        row("Coverage"),
        stat("MOTs watched", targets("count(motstream:mot_info)"), w=6, h=4, thr=thresholds("blue"),
             description="MOTs declared in the catalog and exported."),
        stat("Unidentified MOT ids", targets("max(motstream_unidentified_mots)"), w=6, h=4, thr=thresholds("green", (1, "orange")),
             description="Distinct MOT ids seen in events that the catalog does not declare: do you know how many MOTs there are?"),
        stat("Pipeline ready", targets('min(motstream_ready) or vector(0)'), w=6, h=4,
             mappings=[{"type": "value", "options": {"0": {"text": "NOT READY", "color": "red", "index": 0}, "1": {"text": "ready", "color": "green", "index": 1}}}],
             color="background", links=link("Pipeline", "/d/motstream-pipeline?" + TIME)),
        stat("Interactions / s", targets(f"sum(rate(motstream_mot_interactions_total{{{sel}}}[$__rate_interval]))"), w=6, h=4, unit="reqps", graph="area", thr=thresholds("blue")),
    ]
    return dashboard(
        "motstream-overview",
        "motstream / Corporate overview",
        "Every experience's Successful Customer Outcome rate, MOTs per SCO, the worst MOTs by burn rate and by impact, and the alerts firing now.",
        panels,
        [var_datasource(), var_experience(multi=True), var_owner(), var_window("1h")],
        [dash_link("Experience", "motstream-experience", "The selected experience's MOT table"), ALL_LINK],
        annotations=[alerts_annotation('experience=~"$experience"')],
    )


def experience():
    info_sel = EXP_SEL
    panels = [
        stat("SCO rate ($window)", targets('motstream:experience_sco_ratio:rate${window}{experience="$experience"}'), w=5, h=4, unit="percentunit", decimals=1, thr=PCT_GOOD),
        stat("Journeys started ($window)", targets('sum(increase(motstream_experience_journeys_started_total{experience="$experience"}[$window]))'), w=5, h=4, decimals=0, thr=thresholds("blue")),
        stat("Reached SCO ($window)", targets('sum(increase(motstream_experience_journeys_completed_total{experience="$experience"}[$window]))'), w=5, h=4, decimals=0, thr=thresholds("green")),
        stat("Abandoned ($window)", targets('sum(increase(motstream_experience_journeys_abandoned_total{experience="$experience"}[$window]))'), w=5, h=4, decimals=0, thr=thresholds("green", (1, "orange"))),
        stat("MOTs per SCO (p50, 1h)", targets('clamp_min(histogram_quantile(0.5, motstream:experience_mots_per_sco_bucket:rate1h{experience="$experience"}), 1)'), w=4, h=4, decimals=1, thr=thresholds("green", (2, "yellow"), (4, "red"))),
        table(
            "MOTs of $experience ($window)",
            targets(
                f"max by (mot, type, owner, team, runbook) (motstream:mot_info{{{info_sel}}})",
                f"sum by (mot) (motstream:mot_interactions:increase${{window}}{{{info_sel}}})",
                f"max by (mot) (motstream:mot_smoto_target{{{info_sel}}})",
                f"max by (mot) (1 - motstream:mot_error_ratio:rate${{window}}{{{info_sel}}})",
                f"max by (mot) ((1 - motstream:mot_error_ratio:rate${{window}}{{{info_sel}}}) - motstream:mot_smoto_target{{{info_sel}}})",
                f"max by (mot) ((1 - motstream:mot_error_ratio:rate${{window}}{{{info_sel}}}) - (1 - motstream:mot_error_ratio:rate${{window}}{{{info_sel}}} offset $window))",
                f"max by (mot) (motstream:mot_burn_rate:rate${{window}}{{{info_sel}}})",
                f'max by (mot) (motstream_mot_impact{{{info_sel}, window="$window"}})',
                instant=True,
            ),
            h=10,
            description=(
                "One row per MOT. Amount: interactions in the window. Type and Ownership: from the catalog. "
                "Ratio: the SMOTO rate (moments of magic / all interactions). Alignment: SMOTO rate minus target "
                "(negative: the MOT misses its target). Trend: SMOTO rate now minus one window earlier. "
                "Burn: error ratio / error budget (1 spends exactly the budget). Impact: share of the experience's weighted failures. "
                "Click a MOT to drill down; the runbook column links to the owner's runbook."
            ),
            rename={
                "mot": "MOT", "type": "Type", "owner": "Ownership", "team": "Team", "runbook": "Runbook",
                "Value #B": "Amount", "Value #C": "Target", "Value #D": "Ratio", "Value #E": "Alignment",
                "Value #F": "Trend", "Value #G": "Burn", "Value #H": "Impact",
            },
            exclude=["Value #A"],
            order=["MOT", "Amount", "Type", "Ownership", "Team", "Alignment", "Trend", "Ratio", "Target", "Burn", "Impact", "Runbook"],
            overrides=[
                by_name("MOT", ("links", link("Drill down into ${__value.raw}", "/d/motstream-mot?var-experience=$experience&var-mot=${__value.raw}&" + TIME))),
                by_name("Runbook", ("links", link("Runbook", "${__value.raw}", blank=True))),
                by_name("Amount", ("decimals", 0)),
                by_name("Target", ("unit", "percentunit"), ("decimals", 1)),
                by_name("Ratio", ("unit", "percentunit"), ("decimals", 2)),
                by_name("Alignment", ("unit", "percentunit"), ("decimals", 2), ("thresholds", thresholds("red", (0, "green"))), color_cells("color-background")),
                by_name("Trend", ("unit", "percentunit"), ("decimals", 2), ("thresholds", thresholds("red", (-0.001, "text"), (0.001, "green"))), color_cells(),
                        ("mappings", [{"type": "range", "options": {"from": -0.001, "to": 0.001, "result": {"text": "→ steady", "index": 0}}}])),
                by_name("Burn", ("decimals", 1), ("thresholds", BURN_THR), color_cells("color-background")),
                by_name("Impact", ("unit", "percentunit"), ("decimals", 1), ("min", 0), ("max", 1), ("custom.cellOptions", {"type": "gauge", "mode": "basic"}), ("thresholds", thresholds("green", (0.25, "yellow"), (0.5, "red")))),
            ],
        ),
        timeseries(
            "SMOTO rate per MOT (1h)", targets((f"1 - motstream:mot_error_ratio:rate1h{{{info_sel}}}", "{{mot}}")),
            unit="percentunit", max_=1,
        ),
        timeseries(
            "Burn rate per MOT (1h)", targets((f"motstream:mot_burn_rate:rate1h{{{info_sel}}}", "{{mot}}")),
            thr=BURN_THR, thr_style="line", min_=0,
            description="Error ratio over the last hour divided by the error budget. Lines: 1x, 6x, 14.4x.",
        ),
        timeseries(
            "Interactions per MOT", targets((f"sum by (mot) (rate(motstream_mot_interactions_total{{{info_sel}}}[$__rate_interval]))", "{{mot}}")),
            unit="reqps", stack=True,
        ),
        timeseries(
            "SCO rate over windows", targets(*[(f'motstream:experience_sco_ratio:rate{w}{{experience="$experience"}}', w) for w in ("5m", "1h", "24h")]),
            unit="percentunit", max_=1,
        ),
    ]
    return dashboard(
        "motstream-experience",
        "motstream / Experience",
        "One experience: its SCO rate and journeys, and the MOT table (amount, type, ownership, alignment with target, trend, ratio, burn, impact).",
        panels,
        [var_datasource(), var_experience(multi=False), var_owner(), var_window("1h")],
        [dash_link("Corporate overview", "motstream-overview", "Every experience"), dash_link("MOT", "motstream-mot", "The selected MOT"), ALL_LINK],
        annotations=[alerts_annotation('experience="$experience"')],
    )


def mot():
    s = MOT_SEL
    state_overrides = [by_name("State", ("mappings", BURN_STATE_MAPPING), color_cells("color-background"))]
    burn_long = " or ".join(f'label_replace(motstream:mot_burn_rate:rate{lo}{{{s}}}, "rule", "{r}", "", "")' for r, lo, _ in BURN_RULES)
    burn_short = " or ".join(f'label_replace(motstream:mot_burn_rate:rate{sh}{{{s}}}, "rule", "{r}", "", "")' for r, _, sh in BURN_RULES)
    panels = [
        table(
            "MOT", targets(f"max by (experience, mot, type, owner, team, runbook) (motstream:mot_info{{{s}}})", instant=True),
            w=10, h=4, merge=False,
            rename={"experience": "Experience", "mot": "MOT", "type": "Type", "owner": "Owner", "team": "Team", "runbook": "Runbook"},
            exclude=["Value"], order=["MOT", "Experience", "Type", "Owner", "Team", "Runbook"],
            overrides=[
                by_name("Runbook", ("links", link("Open the runbook", "${__value.raw}", blank=True))),
                by_name("Experience", ("links", link("Experience ${__value.raw}", EXP_LINK))),
            ],
        ),
        stat("SMOTO rate (1h)", targets(f"1 - motstream:mot_error_ratio:rate1h{{{s}}}"), w=4, h=4, unit="percentunit", decimals=2, thr=PCT_GOOD),
        stat("Target", targets(f"motstream:mot_smoto_target{{{s}}}"), w=3, h=4, unit="percentunit", decimals=1, thr=thresholds("blue")),
        stat("Burn rate (1h)", targets(f"motstream:mot_burn_rate:rate1h{{{s}}}"), w=3, h=4, decimals=1, thr=BURN_THR),
        stat("Interactions (1h)", targets(f"motstream:mot_interactions:increase1h{{{s}}}"), w=4, h=4, decimals=0, thr=thresholds("blue")),
        timeseries(
            "SMOTO rate against target",
            targets(
                (f"1 - motstream:mot_error_ratio:rate5m{{{s}}}", "SMOTO rate 5m"),
                (f"1 - motstream:mot_error_ratio:rate1h{{{s}}}", "SMOTO rate 1h"),
                (f'min(motstream_mot_smoto_rate{{{s}, window="5m"}})', "SMOTO rate 5m (engine, event time)"),
                (f"motstream:mot_smoto_target{{{s}}}", "target"),
            ),
            w=16, unit="percentunit", max_=1,
            description="Share of successful interactions. The engine's line is computed by motstream over event time; the others by Prometheus from the counters.",
            overrides=[by_name("target", ("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}), ("color", {"mode": "fixed", "fixedColor": "red"}))],
        ),
        bargauge(
            "Error budget remaining per window (engine)",
            targets((f'min by (window) (motstream_mot_error_budget_remaining{{{s}}})', "{{window}}")),
            w=8, unit="percentunit", min_=-1, max_=1, thr=thresholds("red", (0, "orange"), (0.5, "green")),
            description="1 - burn rate over each window: the share of the window's error budget left. Negative: the window spent more than its budget.",
        ),
        table(
            "Burn-rate rules",
            [
                target(f"max by (rule, long, short) (motstream:mot_burn_state{{{s}}})", "A", instant=True),
                target(f"max by (rule) ({burn_long})", "B", instant=True),
                target(f"max by (rule) ({burn_short})", "C", instant=True),
                target(f"max by (rule) (motstream:mot_burn_threshold{{{s}}})", "D", instant=True),
            ],
            w=12, h=7,
            description=(
                "Each window pair of the alert policy. critical: both windows above the threshold (the alert condition); "
                "recovering: the long window still above, the short one below; increasing: the short window above, the long one "
                "not yet; acceptable: both below. The threshold is the rule's factor, capped for low targets at 90% of the "
                "highest possible burn rate."
            ),
            rename={"rule": "Rule", "long": "Long", "short": "Short", "Value #A": "State", "Value #B": "Long burn", "Value #C": "Short burn", "Value #D": "Threshold"},
            order=["Rule", "State", "Long", "Long burn", "Short", "Short burn", "Threshold"],
            overrides=state_overrides + [
                by_name("Long burn", ("decimals", 2), ("thresholds", BURN_THR), color_cells()),
                by_name("Short burn", ("decimals", 2), ("thresholds", BURN_THR), color_cells()),
                by_name("Threshold", ("decimals", 1)),
            ],
        ),
        timeseries(
            "Burn rates",
            targets(*[(f"motstream:mot_burn_rate:rate{w}{{{s}}}", w) for w in WINDOWS]),
            w=12, h=7, min_=0, thr=BURN_THR, thr_style="line",
            description="Error ratio / error budget over each window. Lines at 1x, 6x and 14.4x.",
        ),
        row("Latency, failures, channels"),
        timeseries(
            "Interaction duration",
            targets(*[(f"histogram_quantile({q}, sum by (le) (rate(motstream_mot_duration_seconds_bucket{{{s}}}[$__rate_interval])))", f"p{int(q * 100)}") for q in (0.5, 0.9, 0.99)]),
            w=8, unit="s", description="Duration quantiles of the MOT's interactions. A success slower than the SMOTO's max duration counts as a failure (reason too_slow).",
        ),
        timeseries(
            "Failures by reason (last hour)",
            targets((f'sum by (reason) (motstream_mot_failure_reasons{{{s}, window="1h"}})', "{{reason}}")),
            w=8, stack=True,
            description="Moments of misery over the trailing hour by failure reason (top ten per MOT; _other for the rest; too_slow is the SMOTO duration limit).",
        ),
        bargauge(
            "Top failure reasons (last hour)",
            targets((f'topk(10, sum by (reason) (motstream_mot_failure_reasons{{{s}, window="1h"}}))', "{{reason}}"), instant=True),
            w=8, decimals=0, thr=thresholds("orange"),
        ),
        timeseries(
            "Interactions by channel (last hour)",
            targets((f'sum by (channel, outcome) (motstream_mot_channel_interactions{{{s}, window="1h"}})', "{{channel}} {{outcome}}")),
            stack=True,
            description="Interactions over the trailing hour by channel (the channels the catalog declares for the MOT; _other for the rest).",
        ),
        timeseries(
            "SMOTO rate by channel (last hour)",
            targets((
                f'sum by (channel) (motstream_mot_channel_interactions{{{s}, window="1h", outcome="success"}})'
                f' / (sum by (channel) (motstream_mot_channel_interactions{{{s}, window="1h"}}) > 0)',
                "{{channel}}",
            )),
            unit="percentunit", max_=1,
        ),
        row("Alerts and data quality"),
        state_timeline(
            "Alert history",
            targets(
                (f"max by (alertname, severity) (motstream_mot_alert_firing{{{s}}})", "engine {{alertname}} ({{severity}})"),
                (f'max by (alertname, severity) (ALERTS{{{s}, alertstate="firing"}})', "prometheus {{alertname}} ({{severity}})"),
            ),
            w=16, h=7,
            mappings=[{"type": "value", "options": {"0": {"text": "ok", "color": "green", "index": 0}, "1": {"text": "firing", "color": "red", "index": 1}}}],
            thr=thresholds("green", (1, "red")),
            description="When each alert of this MOT fired: the built-in engine's (motstream_mot_alert_firing) and Prometheus rules' (ALERTS).",
        ),
        timeseries(
            "Late events and warming",
            targets(
                (f"sum(rate(motstream_mot_late_events_total{{{s}}}[$__rate_interval]))", "late events / s"),
                (f"max(motstream_mot_warming{{{s}}})", "warming (no alert may fire)"),
            ),
            w=8, h=7,
            description="Events later than the allowed lateness (counted, not applied) and whether a partition carrying this MOT is being rebuilt.",
        ),
    ]
    return dashboard(
        "motstream-mot",
        "motstream / MOT",
        "One Moment of Truth: SMOTO rate against target, error budget, burn-rate rules and their state, latency, failure reasons, channels and alert history.",
        panels,
        [var_datasource(), var_experience(multi=False), var_owner(), var_mot()],
        [dash_link("Experience", "motstream-experience", "The MOT table of this experience"), dash_link("Corporate overview", "motstream-overview", "Every experience"), ALL_LINK],
        annotations=[alerts_annotation(s)],
    )


def pipeline():
    inst = 'instance=~"$instance"'
    panels = [
        stat("Ready instances", targets(f'sum(motstream_ready{{{inst}}}) or vector(0)'), w=4, h=4, thr=thresholds("red", (1, "green")),
             description="Instances whose partitions are all live and whose broker is reachable (/readyz)."),
        stat("Targets up", targets(f'sum(up{{job="motstream", {inst}}}) or vector(0)'), w=4, h=4, thr=thresholds("red", (1, "green"))),
        stat("Events / s", targets(f"sum(rate(motstream_ingest_events_total{{{inst}}}[$__rate_interval]))"), w=4, h=4, unit="reqps", graph="area", thr=thresholds("blue")),
        stat("Rejected / s", targets(f"sum(rate(motstream_ingest_rejected_total{{{inst}}}[$__rate_interval])) or vector(0)"), w=4, h=4, unit="reqps", thr=thresholds("green", (0.001, "orange"))),
        stat("Consumer lag", targets(f"sum(motstream_ingest_consumer_lag{{{inst}}}) or vector(0)"), w=4, h=4, decimals=0, thr=thresholds("green", (1000, "orange"), (10000, "red"))),
        stat("Events left to replay", targets(f"sum(motstream_ingest_rebuild_remaining_events{{{inst}}}) or vector(0)"), w=4, h=4, decimals=0, thr=thresholds("green", (1, "orange"))),
        timeseries("Ingest rate", targets(
            (f"sum by (instance) (rate(motstream_ingest_events_total{{{inst}}}[$__rate_interval]))", "{{instance}} live"),
            (f"sum by (instance) (rate(motstream_ingest_replayed_events_total{{{inst}}}[$__rate_interval]))", "{{instance}} replayed"),
        ), unit="reqps", description="Events consumed live and re-applied while rebuilding."),
        timeseries("Ingest bytes", targets((f"sum by (instance) (rate(motstream_ingest_bytes_total{{{inst}}}[$__rate_interval]))", "{{instance}}")), unit="Bps"),
        timeseries("Rejects by reason", targets((f"sum by (reason) (rate(motstream_ingest_rejected_total{{{inst}}}[$__rate_interval]))", "{{reason}}")), unit="reqps", stack=True,
                   description="Events dead-lettered, by reason code (the DLQ header names the field)."),
        timeseries("Dead-letter write failures", targets((f"sum by (instance) (increase(motstream_ingest_dlq_failures_total{{{inst}}}[$__rate_interval]))", "{{instance}}")), draw="bars",
                   description="Should stay at zero: a failure means a rejected event was not kept."),
        timeseries("Consumer lag by partition", targets((f"sum by (topic, partition) (motstream_ingest_consumer_lag{{{inst}}})", "{{topic}}/{{partition}}")),
                   description="Messages behind each partition's high watermark."),
        timeseries("Rebuild: events left to replay", targets((f"sum by (topic, partition) (motstream_ingest_rebuild_remaining_events{{{inst}}})", "{{topic}}/{{partition}}")),
                   description="A partition being rebuilt replays from now - longest window - allowed lateness; its MOTs are warming meanwhile."),
        timeseries("Offset commits", targets((f"sum by (instance) (rate(motstream_ingest_commits_total{{{inst}}}[$__rate_interval]))", "{{instance}}")), unit="ops",
                   description="Commits are sent only after the events they cover are applied (at-least-once)."),
        timeseries("Batch apply time", targets(*[(f"histogram_quantile({q}, sum by (le) (rate(motstream_ingest_batch_apply_seconds_bucket{{{inst}}}[$__rate_interval])))", f"p{int(q * 100)}") for q in (0.5, 0.99)]), unit="s",
                   description="Time to decode, classify and apply one batch."),
        state_timeline("Readiness", targets(
            (f"max by (instance) (motstream_ready{{{inst}}})", "{{instance}} ready"),
            (f'max by (instance) (up{{job="motstream", {inst}}})', "{{instance}} scraped"),
        ), w=12, mappings=[{"type": "value", "options": {"0": {"text": "no", "color": "red", "index": 0}, "1": {"text": "yes", "color": "green", "index": 1}}}],
            thr=thresholds("red", (1, "green"))),
        timeseries("Late events by MOT", targets(("topk(10, sum by (experience, mot) (rate(motstream_mot_late_events_total[$__rate_interval])))", "{{experience}}/{{mot}}")), unit="reqps",
                   description="Events later than the allowed lateness: counted, not applied."),
        timeseries("Unidentified MOT ids", targets(
            ("topk(10, sum by (mot) (motstream_unidentified_mot_interactions))", "{{mot}}"),
        ), description="Interactions held in the windows for MOT ids the catalog does not declare (top twenty per instance; _overflow beyond)."),
        table("Pipeline alerts firing", targets('ALERTS{alertstate="firing", team="motstream-platform"}', instant=True), w=12, h=7, merge=False,
              exclude=["Value", "__name__", "alertstate", "source"],
              rename={"alertname": "Alert", "severity": "Severity", "instance": "Instance", "team": "Team"}),
    ]
    return dashboard(
        "motstream-pipeline",
        "motstream / Pipeline",
        "The ingest pipeline: event and reject rates, consumer lag, rebuilds, commits, batch latency and readiness.",
        panels,
        [var_datasource(), var_query("instance", "Instance", "label_values(motstream_ready, instance)", multi=True, include_all=True)],
        [dash_link("Corporate overview", "motstream-overview", "Every experience"), ALL_LINK],
        time_from="now-3h",
    )


DASHBOARDS = {
    "corporate-overview.json": overview,
    "experience.json": experience,
    "mot.json": mot,
    "pipeline.json": pipeline,
}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv):
    check = "--check" in argv[1:]
    stale = []
    for name, build in DASHBOARDS.items():
        path = OUT / name
        text = render(build)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python3 deploy/grafana/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
