"""Grafana dashboard JSON building blocks for deploy/grafana/generate.py: queries, panels,
template variables, the dashboard frame and its grid layout. Nothing here knows motstream's
metrics; generate.py holds the dashboards themselves.
"""

SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}


# --- building blocks -------------------------------------------------------------------------


def target(expr, ref, legend="__auto", instant=False, fmt=None):
    t = {"datasource": DS, "refId": ref, "expr": expr, "legendFormat": legend}
    if instant:
        t.update({"instant": True, "range": False, "format": fmt or "table"})
    else:
        t.update({"instant": False, "range": True, "format": fmt or "time_series"})
    return t


def targets(*specs, instant=False):
    """specs: (expr, legend) pairs or bare exprs; refIds A, B, C..."""
    out = []
    for i, s in enumerate(specs):
        expr, legend = (s, "__auto") if isinstance(s, str) else s
        out.append(target(expr, chr(ord("A") + i), legend, instant=instant))
    return out


def thresholds(*steps):
    """steps: "green", (0.97, "red"), ... -> Grafana absolute thresholds."""
    out = []
    for s in steps:
        if isinstance(s, str):
            out.append({"color": s, "value": None})
        else:
            out.append({"color": s[1], "value": s[0]})
    return {"mode": "absolute", "steps": out}


def field_defaults(unit=None, decimals=None, min_=None, max_=None, thr=None, mappings=None, custom=None, links=None):
    d = {"custom": custom or {}, "mappings": mappings or [], "thresholds": thr or thresholds("green")}
    if unit:
        d["unit"] = unit
    if decimals is not None:
        d["decimals"] = decimals
    if min_ is not None:
        d["min"] = min_
    if max_ is not None:
        d["max"] = max_
    if links:
        d["links"] = links
    return d


def panel(kind, title, tgts, w, h, description="", unit=None, defaults=None, overrides=None, options=None, transformations=None, links=None, **extra):
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": tgts,
        "fieldConfig": {"defaults": defaults or field_defaults(unit), "overrides": overrides or []},
        "options": options or {},
        "_w": w,
        "_h": h,
    }
    if transformations:
        p["transformations"] = transformations
    if links:
        p["links"] = links
    p.update(extra)
    return p


def timeseries(title, tgts, w=12, h=8, unit=None, description="", stack=False, min_=None, max_=None, thr=None, overrides=None, thr_style="off", draw="line"):
    custom = {
        "drawStyle": draw,
        "lineWidth": 1,
        "fillOpacity": 20 if stack else 8,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": thr_style},
    }
    return panel(
        "timeseries", title, tgts, w, h, description,
        defaults=field_defaults(unit, min_=min_, max_=max_, thr=thr, custom=custom),
        overrides=overrides,
        options={
            "legend": {"displayMode": "table", "placement": "bottom", "showLegend": True, "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def stat(title, tgts, w=4, h=4, unit=None, description="", thr=None, decimals=None, mappings=None, graph="none", color="value", links=None, text_mode="auto"):
    return panel(
        "stat", title, tgts, w, h, description,
        defaults=field_defaults(unit, decimals=decimals, thr=thr, mappings=mappings, links=links),
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": color,
            "graphMode": graph,
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": text_mode,
            "wideLayout": True,
            "showPercentChange": False,
        },
    )


def bargauge(title, tgts, w=8, h=8, unit=None, description="", thr=None, min_=None, max_=None, decimals=None):
    return panel(
        "bargauge", title, tgts, w, h, description,
        defaults=field_defaults(unit, decimals=decimals, min_=min_, max_=max_, thr=thr),
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "displayMode": "basic",
            "orientation": "horizontal",
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
            "sizing": "auto",
            "minVizHeight": 16,
            "minVizWidth": 8,
            "maxVizHeight": 300,
        },
    )


def table(title, tgts, w=24, h=8, description="", rename=None, order=None, exclude=None, overrides=None, sort_by=None, merge=True):
    """A table of instant queries merged into one row per key (the labels all queries share).

    `exclude` and the keys of `rename` are the queries' field names (labels, "Value #A"...);
    `order`, `sort_by` and the overrides use the renamed column titles, as Grafana shows them.
    """
    exclude = {"Time": True, "__name__": True, **{k: True for k in (exclude or [])}}
    original = {new: old for old, new in (rename or {}).items()}
    transformations = []
    if merge:
        transformations.append({"id": "merge", "options": {}})
    transformations.append(
        {
            "id": "organize",
            "options": {
                "excludeByName": exclude,
                "renameByName": rename or {},
                # organize orders fields before renaming them: index by the original names.
                "indexByName": {original.get(name, name): i for i, name in enumerate(order or [])},
            },
        }
    )
    options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "countRows": False}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by[0], "desc": sort_by[1]}]
    return panel(
        "table", title, tgts, w, h, description,
        defaults=field_defaults(custom={"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False}),
        overrides=overrides,
        options=options,
        transformations=transformations,
    )


def state_timeline(title, tgts, w=24, h=6, description="", mappings=None, thr=None):
    return panel(
        "state-timeline", title, tgts, w, h, description,
        defaults=field_defaults(thr=thr, mappings=mappings, custom={"fillOpacity": 80, "lineWidth": 0}),
        options={
            "mergeValues": True,
            "showValue": "auto",
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "single", "sort": "none"},
        },
    )


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_w": 24, "_h": 1}


def by_name(name, *props):
    return {"matcher": {"id": "byName", "options": name}, "properties": [{"id": k, "value": v} for k, v in props]}


def color_cells(mode="color-text"):
    return ("custom.cellOptions", {"type": mode})


def link(title, url, blank=False):
    return [{"title": title, "url": url, "targetBlank": blank}]


def layout(panels):
    """Places panels left to right, wrapping at 24 columns; a row starts a new line."""
    x = y = row_h = 0
    out = []
    for i, p in enumerate(panels, start=1):
        w, h = p.pop("_w"), p.pop("_h")
        if p["type"] == "row" or x + w > 24:
            y += row_h
            x = row_h = 0
        p["id"] = i
        p["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        x += w
        row_h = max(row_h, h)
        if p["type"] == "row":
            y += h
            x = row_h = 0
        out.append(p)
    return out


# --- template variables ----------------------------------------------------------------------


def var_datasource():
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {"selected": False, "text": "Prometheus", "value": "motstream-prometheus"},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "includeAll": False,
        "multi": False,
        "options": [],
    }


def var_query(name, label, query, multi=False, include_all=False):
    v = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        # A plain label_values() string: every Grafana version since 7 reads it the same way.
        "query": query,
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "hide": 0,
        "multi": multi,
        "includeAll": include_all,
        "current": {},
        "options": [],
    }
    if include_all:
        v["allValue"] = ".*"
        v["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {"selected": True, "text": "All", "value": "$__all"}
    return v


# --- dashboards ------------------------------------------------------------------------------


def dashboard(uid, title, description, panels, variables, links, annotations=None, time_from="now-6h"):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["motstream"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "id": None,
        "templating": {"list": variables},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
            + (annotations or [])
        },
        "links": links,
        "panels": layout(panels),
    }


def dash_link(title, uid, tooltip):
    # includeVars carries experience, owner, mot and the datasource; keepTime the time range.
    return {"title": title, "type": "link", "url": f"/d/{uid}", "tooltip": tooltip, "icon": "dashboard", "includeVars": True, "keepTime": True, "targetBlank": False, "asDropdown": False, "tags": []}


ALL_LINK = {"title": "motstream", "type": "dashboards", "tags": ["motstream"], "asDropdown": True, "includeVars": True, "keepTime": True, "targetBlank": False, "icon": "external link", "tooltip": "", "url": ""}
