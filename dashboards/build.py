#!/usr/bin/env python3
"""Generates the Grafana dashboards of connectivity-agent.

    python3 dashboards/build.py           # (re)write the JSON files next to this script
    python3 dashboards/build.py --check   # exit 1 when the committed JSON is not what this writes

The JSON files are generated: edit this script, run it, commit both. Every panel and query uses
the data source variable `datasource` (`${datasource}`), so the JSON imports into any Grafana
(10.x; schemaVersion 38) without an `__inputs` section. Expressions use only plain PromQL and the
variables tests/e2e/dashboard_exprs.py knows how to substitute: $vantage, $instance, $vendor,
$system, $direction, $check, $__rate_interval, $__interval and $__range.
"""

import argparse
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}
JOB = "connectivity-agent"  # the scrape job of deploy/prometheus/prometheus.yml
OVERVIEW_UID = "connectivity-overview"
CHECK_UID = "connectivity-check"
TAGS = ["connectivity-agent"]

UP_DOWN = [{"type": "value", "options": {
    "1": {"text": "UP", "color": "green", "index": 0},
    "0": {"text": "DOWN", "color": "red", "index": 1}}}]
# The check x vantage matrix: "-" where no agent at that vantage runs the check.
UP_DOWN_NOT_RUN = UP_DOWN + [{"type": "special", "options": {
    "match": "null", "result": {"text": "-", "color": "transparent", "index": 2}}}]
# Its columns, inside the campus firewall first and the patrons' side last; a vantage not listed
# here ([agent] vantage set by hand, roles joined with "+") follows them.
VANTAGE_COLUMNS = ["illiad-web-server", "sql-server", "ill-server", "staff-client", "catalogue-host", "outside", "any"]
YES_NO = [{"type": "value", "options": {
    "1": {"text": "required", "color": "orange", "index": 0},
    "0": {"text": "optional", "color": "text", "index": 1}}}]
RELOAD = [{"type": "value", "options": {
    "1": {"text": "applied", "color": "green", "index": 0},
    "0": {"text": "REJECTED", "color": "red", "index": 1}}}]
RESULT_COLOURS = [
    {"type": "value", "options": {"success": {"color": "green", "index": 0}}},
    {"type": "regex", "options": {"pattern": ".+", "result": {"color": "red", "index": 1}}},
]
# Certificate days left: red under 7 days, orange under 21.
CERT_STEPS = [{"color": "red", "value": None}, {"color": "orange", "value": 7}, {"color": "green", "value": 21}]
BAD_IF_ANY = [{"color": "green", "value": None}, {"color": "red", "value": 1}]

CHECK_LINK_TABLE = ("/d/" + CHECK_UID + "/connectivity-check?${datasource:queryparam}"
                    "&var-instance=${__data.fields.instance}&var-check=${__data.fields.check}&${__url_time_range}")
CHECK_LINK_SERIES = ("/d/" + CHECK_UID + "/connectivity-check?${datasource:queryparam}"
                     "&var-instance=${__field.labels.instance}&var-check=${__field.labels.check}&${__url_time_range}")


# --- building blocks -------------------------------------------------------------------------

def target(expr, legend="", instant=False, fmt=None):
    t = {"datasource": DS, "editorMode": "code", "expr": expr, "legendFormat": legend or "__auto",
         "range": not instant, "instant": instant}
    if fmt:
        t["format"] = fmt
    return t


def table_target(expr):
    """An instant query shown as a table: one row per series, its labels as columns."""
    return target(expr, instant=True, fmt="table")


def field_config(unit=None, mappings=None, steps=None, decimals=None, custom=None, color=None,
                 links=None, overrides=None, min_=None, max_=None):
    defaults = {"mappings": mappings or [],
                "thresholds": {"mode": "absolute", "steps": steps or [{"color": "green", "value": None}]}}
    if unit:
        defaults["unit"] = unit
    if decimals is not None:
        defaults["decimals"] = decimals
    if color:
        defaults["color"] = color
    if custom:
        defaults["custom"] = custom
    if links:
        defaults["links"] = links
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    return {"defaults": defaults, "overrides": overrides or []}


def override(name, **properties):
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": key.replace("__", "."), "value": value} for key, value in properties.items()]}


def panel(kind, title, description, targets, fc=None, options=None, transformations=None, interval=None):
    p = {"type": kind, "title": title, "description": description, "datasource": DS,
         "targets": targets, "fieldConfig": fc or field_config(), "options": options or {}}
    if transformations:
        p["transformations"] = transformations
    if interval:
        p["interval"] = interval
    return p


def reduce_options(calcs="lastNotNull", fields=""):
    return {"values": False, "calcs": [calcs], "fields": fields}


def stat(title, description, targets, unit=None, mappings=None, steps=None, color_mode="background",
         text_mode="auto", decimals=None, links=None, display_name=None, orientation="auto"):
    fc = field_config(unit=unit, mappings=mappings, steps=steps, decimals=decimals, links=links,
                      color={"mode": "thresholds"})
    if display_name:
        fc["defaults"]["displayName"] = display_name
    return panel("stat", title, description, targets, fc, {
        "reduceOptions": reduce_options(), "orientation": orientation, "textMode": text_mode,
        "colorMode": color_mode, "graphMode": "none", "justifyMode": "auto"})


def timeseries(title, description, targets, unit=None, stack=False, bars=False, fill=10, min_=None,
               legend_calcs=None, decimals=None):
    custom = {"drawStyle": "bars" if bars else "line", "lineWidth": 1, "fillOpacity": 80 if bars else fill,
              "showPoints": "never", "spanNulls": False, "axisPlacement": "auto",
              "stacking": {"mode": "normal" if stack else "none", "group": "A"},
              "gradientMode": "none", "lineInterpolation": "linear"}
    fc = field_config(unit=unit, custom=custom, color={"mode": "palette-classic"}, min_=min_, decimals=decimals)
    return panel("timeseries", title, description, targets, fc, {
        "legend": {"displayMode": "table" if legend_calcs else "list", "placement": "bottom",
                   "showLegend": True, "calcs": legend_calcs or []},
        "tooltip": {"mode": "multi", "sort": "desc"}})


def state_timeline(title, description, targets, mappings, links=None):
    fc = field_config(mappings=mappings, steps=[{"color": "text", "value": None}], links=links,
                      color={"mode": "thresholds"}, custom={"fillOpacity": 80, "lineWidth": 0})
    return panel("state-timeline", title, description, targets, fc, {
        "mergeValues": True, "showValue": "never", "alignValue": "left", "rowHeight": 0.85,
        "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom"},
        "tooltip": {"mode": "single", "sort": "none"}})


def table(title, description, targets, hide=(), order=(), overrides=None, unit=None, steps=None,
          mappings=None, links=None, sort=None, merge=False):
    """Instant table of label sets. `hide` drops columns, `order` puts these first."""
    excluded = {"Time": True, "__name__": True, "job": True}
    excluded.update({name: True for name in hide})
    transformations = []
    if merge:
        transformations.append({"id": "merge", "options": {}})
    transformations.append({"id": "organize", "options": {
        "excludeByName": excluded, "indexByName": {name: i for i, name in enumerate(order)}, "renameByName": {}}})
    if sort:
        transformations.append({"id": "sortBy", "options": {"fields": {}, "sort": [{"field": sort, "desc": False}]}})
    fc = field_config(unit=unit, steps=steps, mappings=mappings, links=links,
                      custom={"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False, "filterable": True},
                      overrides=overrides)
    return panel("table", title, description, targets, fc,
                 {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""}},
                 transformations)


def dashed(expr):
    """expr with an empty (absent) vendor or direction label set to "-", for legends of hand-written checks."""
    return ('label_replace(label_replace(%s, "vendor", "-", "vendor", ""), "direction", "-", "direction", "")' % expr)


class Board:
    """Lays panels out left to right in rows of 24 grid units, numbering them."""

    def __init__(self):
        self.panels = []
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.line_height = 0
        self.titles = set()

    def _newline(self):
        self.y += self.line_height
        self.x = 0
        self.line_height = 0

    def row(self, title):
        self._newline()
        self.panels.append({"type": "row", "title": title, "id": self.next_id, "collapsed": False, "panels": [],
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}})
        self.next_id += 1
        self.y += 1

    def add(self, p, w, h):
        if p["title"] in self.titles:
            raise SystemExit("build.py: two panels titled %r" % p["title"])
        self.titles.add(p["title"])
        if self.x + w > 24:
            self._newline()
        p["id"] = self.next_id
        self.next_id += 1
        for i, t in enumerate(p.get("targets", [])):
            t.setdefault("refId", chr(ord("A") + i))
        p["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(p)
        self.x += w
        self.line_height = max(self.line_height, h)


def datasource_variable():
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1,
            "regex": "", "skipUrlSync": False}


def query_variable(name, label, query, multi):
    v = {"name": name, "label": label, "type": "query", "datasource": DS, "definition": query,
         "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
         "refresh": 2, "sort": 1, "regex": "", "hide": 0, "skipUrlSync": False, "options": [],
         "multi": multi, "includeAll": multi}
    if multi:
        v["allValue"] = ".*"
        v["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    else:
        v["current"] = {}
    return v


def dashboard(uid, title, description, board, variables, time_from):
    return {
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [{"title": "connectivity-agent", "type": "dashboards", "tags": TAGS, "asDropdown": False,
                   "includeVars": True, "keepTime": True, "icon": "external link", "targetBlank": False,
                   "tooltip": "", "url": ""}],
        "liveNow": False,
        "panels": board.panels,
        "refresh": "1m",
        "schemaVersion": 38,
        "tags": TAGS,
        "templating": {"list": [datasource_variable()] + variables},
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


# --- overview -----------------------------------------------------------------------------------

def overview():
    inst = 'instance=~"$instance"'
    # Check series carry the agent's vantage (its role); the agent's own series (connectivity_agent_*,
    # and Prometheus's up) follow the instance only.
    where = 'vantage=~"$vantage", ' + inst
    scope = where + ', vendor=~"$vendor", system=~"$system", direction=~"$direction"'
    sel = scope + ', check=~"$check"'
    # Inbound watches are not checks: their series have no connectivity_up, so $check (a list
    # of checks) does not filter them; the vendor, system and direction variables do.
    isel = scope

    b = Board()
    b.row("Status")
    down = f"connectivity_up{{{sel}}} == 0"
    b.add(stat("Checks down", "Checks whose last run failed.",
               [target(f"count({down}) or vector(0)")], steps=BAD_IF_ANY), 4, 4)
    b.add(stat("Required checks down", "Failed checks marked required (their failure should page).",
               [target(f"count(({down}) and on(instance, job, check, vantage) (connectivity_check_required{{{sel}}} == 1)) or vector(0)")],
               steps=BAD_IF_ANY), 4, 4)
    b.add(stat("Optional checks down", "Failed checks marked optional.",
               [target(f"count(({down}) and on(instance, job, check, vantage) (connectivity_check_required{{{sel}}} == 0)) or vector(0)")],
               steps=[{"color": "green", "value": None}, {"color": "orange", "value": 1}]), 4, 4)
    b.add(stat("Checks configured", "Checks loaded by the selected agents (all of them, whatever the filters).",
               [target(f"sum(connectivity_agent_checks{{{inst}}})")], color_mode="none"), 4, 4)
    b.add(stat("Certificates under 21 days", "Checks whose earliest certificate in the presented chain expires within 21 days (or has expired).",
               [target(f"count((connectivity_tls_earliest_cert_not_after_timestamp_seconds{{{sel}}} - time()) < 21 * 86400) or vector(0)")],
               steps=[{"color": "green", "value": None}, {"color": "orange", "value": 1}]), 4, 4)
    b.add(stat("Inbound sources down", "Expected inbound sources whose calls are not arriving and being answered.",
               [target(f"count(connectivity_inbound_up{{{isel}}} == 0) or vector(0)")], steps=BAD_IF_ANY), 4, 4)

    b.add(stat("Checks", "Every check's last result, as vendor, direction: check (a dash where the check has no such label). "
               "Click a check for its drill-down.",
               [target(f"max by (instance, vendor, direction, check) ({dashed(f'connectivity_up{{{sel}}}')})",
                       "{{vendor}} {{direction}}: {{check}}")],
               mappings=UP_DOWN, steps=[{"color": "text", "value": None}], text_mode="value_and_name",
               links=[{"title": "Drill down: ${__field.labels.check}", "url": CHECK_LINK_SERIES}]), 24, 6)
    b.add(panel(
        "table", "Checks by vantage",
        "Each check (row) from each vantage (column): DOWN when any agent at that vantage fails it (the worst of "
        "them), UP when every one there passes it, - when none there runs it. A check down in one column and up in "
        "another is blocked on the way from the first (the ConnectivityVantageBlocked alert).",
        [table_target(f'label_replace(min by (check, vantage) (connectivity_up{{{sel}}}), "vantage", "-", "vantage", "")')],
        field_config(mappings=UP_DOWN_NOT_RUN, steps=[{"color": "text", "value": None}],
                     custom={"align": "center", "cellOptions": {"type": "color-background"}, "inspect": False, "filterable": False},
                     overrides=[override("check", custom__align="auto", custom__cellOptions={"type": "auto"})]),
        {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""},
         "sortBy": [{"displayName": "check", "desc": False}]},
        [{"id": "groupingToMatrix", "options": {"columnField": "vantage", "rowField": "check", "valueField": "Value",
                                                "emptyValue": "null"}},
         {"id": "organize", "options": {"excludeByName": {}, "renameByName": {"check\\vantage": "check"},
                                        "indexByName": {name: i for i, name in enumerate(["check\\vantage"] + VANTAGE_COLUMNS)}}}]),
        24, 8)
    b.add(state_timeline(
        "Status over time", "Each check's result over time, by vendor and direction (a dash where the check has no such label).",
        [target(f"max by (instance, vendor, direction, check) ({dashed(f'connectivity_up{{{sel}}}')})",
                "{{vendor}} {{direction}}: {{check}} @ {{instance}}")],
        UP_DOWN, links=[{"title": "Drill down: ${__field.labels.check}", "url": CHECK_LINK_SERIES}]), 24, 10)
    b.add(table(
        "Check details", "Every check with its labels and the reason of its last run. Click a row for the check's drill-down.",
        [table_target(f"connectivity_up{{{sel}}} * on(instance, job, check, vantage) group_left(result) "
                      f"(connectivity_last_result_info{{{sel}}} == 1)")],
        order=["instance", "vantage", "vendor", "system", "direction", "check", "probe", "target", "required", "result", "Value"],
        links=[{"title": "Drill down: ${__data.fields.check}", "url": CHECK_LINK_TABLE}],
        overrides=[override("Value", displayName="status", mappings=UP_DOWN,
                            custom__cellOptions={"type": "color-background"}),
                   override("result", mappings=RESULT_COLOURS, custom__cellOptions={"type": "color-text"})]),
        24, 10)

    b.row("Failures")
    b.add(timeseries("Failures by reason", "Failed runs per interval, by reason (the result label).",
                     [target(f'sum by (result) (increase(connectivity_probes_total{{{sel}, result!="success"}}[$__rate_interval]))',
                             "{{result}}")], stack=True, bars=True, min_=0), 12, 8)
    b.add(table("Failures in the time range", "Failed runs of each check over the dashboard's time range, by reason.",
                [table_target(f'sort_desc(sum by (instance, check, result) (increase(connectivity_probes_total{{{sel}, '
                              f'result!="success"}}[$__range])) > 0)')],
                order=["instance", "check", "result", "Value"],
                overrides=[override("Value", decimals=0, displayName="failed runs")],
                links=[{"title": "Drill down: ${__data.fields.check}", "url": CHECK_LINK_TABLE}]), 6, 8)
    # The counter appears with a check's first contradicted failure: the `or` gives 0 to those with none.
    b.add(timeseries("Transient failures", "Failed runs that a confirmation re-run contradicted (connectivity_transient_failures_total): "
                     "flapping paths, not outages. The counter appears with a check's first such run; a check that has had none shows 0.",
                     [target(f"sum by (check) (increase(connectivity_transient_failures_total{{{sel}}}[$__rate_interval])) "
                             f"or sum by (check) (0 * connectivity_check_required{{{sel}}})",
                             "{{check}}")], stack=True, bars=True, min_=0), 6, 8)

    b.row("Certificates")
    b.add(table("Certificate days left", "Days until the earliest expiry in the chain each TLS-speaking check was presented "
                "(orange under 21 days, red under 7). Reported also when the chain does not verify.",
                [table_target(f"min by (instance, vendor, check, target) ((connectivity_tls_earliest_cert_not_after_timestamp_seconds{{{sel}}} - time()) / 86400)")],
                order=["instance", "vendor", "check", "target", "Value"], sort="Value",
                overrides=[override("Value", displayName="days left", unit="none", decimals=1,
                                    thresholds={"mode": "absolute", "steps": CERT_STEPS},
                                    custom__cellOptions={"type": "color-background"})],
                links=[{"title": "Drill down: ${__data.fields.check}", "url": CHECK_LINK_TABLE}]), 12, 8)
    b.add(table("Certificates that do not verify", "Checks whose last handshake's verification failed, with the reason "
                "(expired, self_signed, unknown_ca, hostname_mismatch, ...).",
                [table_target(f'connectivity_tls_verify_result{{{sel}, reason!="ok"}} == 1')],
                hide=["Value"], order=["instance", "vendor", "check", "target", "reason"],
                links=[{"title": "Drill down: ${__data.fields.check}", "url": CHECK_LINK_TABLE}]), 12, 8)

    b.row("Latency")
    heat = panel("heatmap", "Run latency", "Distribution of run durations of the selected checks (all runs, successful or not).",
                 [target(f"sum by (le) (rate(connectivity_probe_latency_seconds_bucket{{{sel}}}[$__rate_interval]))",
                         "{{le}}", fmt="heatmap")],
                 field_config(custom={"scaleDistribution": {"type": "linear"}, "hideFrom": {"legend": False, "tooltip": False, "viz": False}}),
                 {"calculate": False, "cellGap": 1, "yAxis": {"axisPlacement": "left", "unit": "s", "reverse": False},
                  "rowsFrame": {"layout": "auto"}, "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange",
                                                             "scale": "exponential", "exponent": 0.5, "steps": 64, "reverse": False},
                  "cellValues": {"unit": "short"}, "filterValues": {"le": 1e-9}, "showValue": "never",
                  "tooltip": {"show": True, "yHistogram": False}, "legend": {"show": True},
                  "exemplars": {"color": "rgba(255,0,255,0.7)"}})
    b.add(heat, 12, 9)
    b.add(timeseries("Latency p95 by check", "95th percentile of each check's run duration.",
                     [target(f"histogram_quantile(0.95, sum by (check, le) (rate(connectivity_probe_latency_seconds_bucket{{{sel}}}[$__rate_interval])))",
                             "{{check}}")], unit="s", min_=0), 12, 9)

    b.row("DNS")
    b.add(timeseries("DNS address changes", "Changes of each dns check's address set (a firewall allow-list written by IP breaks when this moves).",
                     [target(f"sum by (check, target) (increase(connectivity_dns_address_changes_total{{{sel}}}[$__rate_interval]))",
                             "{{check}} ({{target}})")], bars=True, min_=0, legend_calcs=["sum"]), 12, 8)
    b.add(table("DNS addresses now", "The addresses each dns check's name resolved to on its last run.",
                [table_target(f"connectivity_dns_address_info{{{sel}}}")],
                hide=["Value"], order=["instance", "check", "target", "address"]), 12, 8)

    b.row("Inbound watch")
    b.add(state_timeline("Inbound calls answered", "Per expected source: UP while its calls arrive and this host answers them "
                         "within expect_within.",
                         [target(f"max by (instance, check, port, source) (connectivity_inbound_up{{{isel}}})",
                                 "{{check}} :{{port}} {{source}}")], UP_DOWN), 12, 8)
    b.add(timeseries("Inbound SYNs and answers", "Per source: SYNs arriving, SYN-ACKs and RSTs this host sent back; "
                     "and SYNs from addresses not in the watch's list. SYNs without SYN-ACKs: dropped here; no SYNs: blocked upstream.",
                     [target(f"sum by (check, source) (rate(connectivity_inbound_syn_total{{{isel}}}[$__rate_interval]))", "{{source}} SYN"),
                      target(f"sum by (check, source) (rate(connectivity_inbound_answered_total{{{isel}}}[$__rate_interval]))", "{{source}} SYN-ACK"),
                      target(f"sum by (check, source) (rate(connectivity_inbound_rejected_total{{{isel}}}[$__rate_interval]))", "{{source}} RST"),
                      target(f"sum by (check) (rate(connectivity_inbound_unexpected_syn_total{{{isel}}}[$__rate_interval]))", "{{check}} other sources SYN")],
                     unit="cps", min_=0), 12, 8)
    b.add(table("Inbound sources: last call", "Seconds since each expected source's last SYN.",
                [table_target(f"time() - max by (instance, check, port, source) (connectivity_inbound_last_seen_timestamp_seconds{{{isel}}})")],
                order=["instance", "check", "port", "source", "Value"],
                overrides=[override("Value", displayName="since last SYN", unit="s")]), 12, 6)
    b.add(table("Inbound watches", "Whether each watch is capturing (0: it could not start, usually no CAP_NET_RAW; the agent log says why).",
                [table_target(f"connectivity_inbound_watch_running{{{isel}}}")],
                order=["instance", "check", "port", "Value"],
                overrides=[override("Value", displayName="capturing", mappings=[{"type": "value", "options": {
                    "1": {"text": "yes", "color": "green", "index": 0}, "0": {"text": "NOT RUNNING", "color": "red", "index": 1}}}],
                    custom__cellOptions={"type": "color-background"})]), 12, 6)

    b.row("Agent health")
    b.add(stat("Agent scraped", f'Prometheus\'s up for the agent (job "{JOB}").',
               [target(f'up{{job="{JOB}", {inst}}}', "{{instance}}")], mappings=UP_DOWN,
               steps=[{"color": "text", "value": None}], text_mode="value_and_name"), 6, 5)
    b.add(stat("Config reload", "Whether the agent's last config (re)load was applied; a rejected one leaves the previous config running.",
               [target(f"connectivity_agent_config_last_reload_successful{{{inst}}}", "{{instance}}")], mappings=RELOAD,
               steps=[{"color": "text", "value": None}], text_mode="value_and_name"), 6, 5)
    b.add(stat("Last applied config", "When the running config was loaded.",
               [target(f"connectivity_agent_config_last_reload_success_timestamp_seconds{{{inst}}} * 1000", "{{instance}}")],
               unit="dateTimeFromNow", color_mode="none", text_mode="value_and_name"), 6, 5)
    b.add(table("Agents", "The version of each agent.",
                [table_target(f"connectivity_agent_build_info{{{inst}}}")], hide=["Value"], order=["instance", "version"]), 6, 5)
    lag = "connectivity_agent_scheduler_lag_seconds_bucket{%s}" % inst
    b.add(timeseries("Scheduler lag", "How late runs start against their schedule (quantiles). A growing lag means the agent is overloaded.",
                     [target(f"histogram_quantile({q}, sum by (instance, le) (rate({lag}[$__rate_interval])))",
                             f"p{int(q * 100)} {{{{instance}}}}") for q in (0.5, 0.9, 0.99)], unit="s", min_=0), 8, 8)
    b.add(timeseries("Probes in flight", "Probes running at once (bounded by max_concurrent_probes).",
                     [target(f"connectivity_agent_probes_in_flight{{{inst}}}", "{{instance}}")], min_=0), 8, 8)
    b.add(timeseries("Skipped runs", "Scheduled runs the agent could not start in time.",
                     [target(f"sum by (instance) (increase(connectivity_agent_skipped_runs_total{{{inst}}}[$__rate_interval]))",
                             "{{instance}}")], bars=True, min_=0), 8, 8)

    variables = [
        query_variable("vantage", "Vantage", "label_values(connectivity_up, vantage)", True),
        query_variable("instance", "Agent", 'label_values(connectivity_up{vantage=~"$vantage"}, instance)', True),
        query_variable("vendor", "Vendor", f'label_values(connectivity_up{{{where}}}, vendor)', True),
        query_variable("system", "System", f'label_values(connectivity_up{{{where}, vendor=~"$vendor"}}, system)', True),
        query_variable("direction", "Direction",
                       f'label_values(connectivity_up{{{where}, vendor=~"$vendor", system=~"$system"}}, direction)', True),
        query_variable("check", "Check", f"label_values(connectivity_up{{{scope}}}, check)", True),
    ]
    return dashboard(OVERVIEW_UID, "Connectivity overview",
                     "connectivity-agent: every network path a library system depends on, by vendor and direction.",
                     b, variables, "now-6h")


# --- drill-down ---------------------------------------------------------------------------------

def check_dashboard():
    s = 'instance="$instance", check="$check"'
    b = Board()
    b.row("Check")
    b.add(stat("Status", "The last run's result.", [target(f"connectivity_up{{{s}}}")], mappings=UP_DOWN,
               steps=[{"color": "text", "value": None}]), 3, 4)
    b.add(stat("Last result", "The reason of the last run (success, or the failure reason).",
               [target(f"connectivity_up{{{s}}} * on(instance, job, check, vantage) group_left(result) (connectivity_last_result_info{{{s}}} == 1)")],
               steps=[{"color": "red", "value": None}, {"color": "green", "value": 1}], text_mode="name",
               display_name="${__field.labels.result}"), 4, 4)
    b.add(stat("Since last run", "Seconds since the last run ended.",
               [target(f"time() - connectivity_last_run_timestamp_seconds{{{s}}}")], unit="s", color_mode="none"), 3, 4)
    b.add(stat("Since last success", "Time since the last successful run (no data: none since the check was loaded).",
               [target(f"time() - connectivity_last_success_timestamp_seconds{{{s}}}")], unit="s", color_mode="none"), 3, 4)
    b.add(stat("Required", "Whether a failure of this check should page.",
               [target(f"connectivity_check_required{{{s}}}")], mappings=YES_NO, color_mode="value",
               steps=[{"color": "text", "value": None}]), 3, 4)
    b.add(stat("Interval", "The check's run interval.", [target(f"connectivity_check_interval_seconds{{{s}}}")],
               unit="s", color_mode="none"), 3, 4)
    b.add(stat("Runs in range", "Runs of this check over the dashboard's time range.",
               [target(f"sum(increase(connectivity_probes_total{{{s}}}[$__range]))")], decimals=0, color_mode="none"), 5, 4)
    b.add(table("Check labels", "The check's labels: probe, target, and vendor, system, direction and the vendor document row for profile checks.",
                [table_target(f"connectivity_check_required{{{s}}}")], hide=["Value"],
                order=["instance", "vantage", "check", "probe", "target", "vendor", "system", "direction", "required", "doc"]), 24, 4)

    b.row("Over time")
    b.add(state_timeline("Up", "The check's result over time.", [target(f"connectivity_up{{{s}}}", "{{check}}")], UP_DOWN), 24, 4)
    b.add(timeseries("Phase durations", "How long each phase of the last run took (resolve, connect, tls, request, ...); "
                     "a timed-out run shows where it spent its time.",
                     [target(f"sum by (phase) (connectivity_probe_duration_seconds{{{s}}})", "{{phase}}")],
                     unit="s", stack=True, fill=40, min_=0), 12, 8)
    b.add(timeseries("Runs by result", "Runs per interval, by result.",
                     [target(f"sum by (result) (increase(connectivity_probes_total{{{s}}}[$__rate_interval])) > 0", "{{result}}")],
                     stack=True, bars=True, min_=0), 12, 8)
    lat = "connectivity_probe_latency_seconds"
    b.add(timeseries("Latency", "Run duration quantiles from the latency histogram, and the mean.",
                     [target(f"histogram_quantile({q}, sum by (le) (rate({lat}_bucket{{{s}}}[$__rate_interval])))", f"p{int(q * 100)}")
                      for q in (0.5, 0.9, 0.99)]
                     + [target(f"sum(rate({lat}_sum{{{s}}}[$__rate_interval])) / sum(rate({lat}_count{{{s}}}[$__rate_interval]))", "mean")],
                     unit="s", min_=0, legend_calcs=["mean", "max"]), 24, 8)

    b.row("TLS (tls, https, tds with tls, ldaps / StartTLS)")
    b.add(stat("Certificate days left", "Days until the earliest expiry in the presented chain (orange under 21, red under 7).",
               [target(f"(connectivity_tls_earliest_cert_not_after_timestamp_seconds{{{s}}} - time()) / 86400")],
               steps=CERT_STEPS, decimals=1), 4, 5)
    b.add(table("TLS session", "Negotiated version and cipher, and the verification result of the last handshake.",
                [table_target(f"connectivity_tls_version_info{{{s}}}"),
                 table_target(f"connectivity_tls_cipher_info{{{s}}}"),
                 table_target(f"connectivity_tls_verify_result{{{s}}} == 1")],
                merge=True, hide=["Value #A", "Value #B", "Value #C", "instance", "vantage", "check", "probe", "target", "vendor",
                                  "system", "direction", "required", "doc"],
                order=["version", "cipher", "reason"],
                overrides=[override("reason", displayName="verification", mappings=[
                    {"type": "value", "options": {"ok": {"color": "green", "index": 0}}},
                    {"type": "regex", "options": {"pattern": ".+", "result": {"color": "red", "index": 1}}}],
                    custom__cellOptions={"type": "color-text"})]), 8, 5)
    b.add(table("Leaf certificate", "The server's certificate: subject, issuer, serial and SHA-256 fingerprint "
                "(a changed fingerprint is a new certificate, or a middlebox swapping it).",
                [table_target(f"connectivity_tls_leaf_cert_info{{{s}}}")],
                hide=["Value", "instance", "vantage", "check", "probe", "target", "vendor", "system", "direction", "required", "doc"],
                order=["subject", "issuer", "serial", "fingerprint_sha256"]), 12, 5)
    b.add(table("Presented chain", "Every certificate the server presented (position 0 is the leaf), with its expiry.",
                [table_target(f"connectivity_tls_cert_not_after_timestamp_seconds{{{s}}} * 1000")],
                hide=["instance", "vantage", "check", "probe", "target", "vendor", "system", "direction", "required", "doc"],
                order=["position", "subject", "issuer", "serial", "Value"], sort="position",
                overrides=[override("Value", displayName="expires", unit="dateTimeAsIso")]), 24, 6)

    facts_hide = ["Value", "instance", "vantage", "check", "probe", "target", "vendor", "system", "direction", "required", "doc"]
    b.row("SQL Server (tds)")
    b.add(table("SQL Server", "The PRELOGIN answer: product, version, encryption, instance check and MARS.",
                [table_target(f"connectivity_tds_server_info{{{s}}}")], hide=facts_hide,
                order=["product", "version", "encryption", "instance_check", "mars"]), 16, 4)
    b.add(table("SQL Server Browser", "The TCP port the SQL Server Browser names for the instance.",
                [table_target(f"connectivity_tds_browser_tcp_port{{{s}}}")], hide=facts_hide[1:],
                order=["sql_instance", "Value"], overrides=[override("Value", displayName="tcp port", decimals=0)]), 8, 4)

    b.row("Z39.50 (z3950) and ISO ILL (isoill)")
    b.add(table("Z39.50 target", "The InitializeResponse: implementation, highest protocol version and options granted.",
                [table_target(f"connectivity_z3950_info{{{s}}}")], hide=facts_hide,
                order=["implementation_name", "implementation_version", "implementation_id", "protocol_version", "options"]), 12, 4)
    b.add(timeseries("Z39.50 search hits", "Hit count of the check's search, per database.",
                     [target(f"connectivity_z3950_search_hits{{{s}}}", "{{database}}")], min_=0, decimals=0), 6, 4)
    b.add(table("ISO ILL reply", "What the ILL responder answered the Status-Query (status_query = true only).",
                [table_target(f"connectivity_isoill_reply_info{{{s}}}")], hide=facts_hide, order=["apdu", "report"]), 6, 4)

    b.row("LDAP (ldap)")
    b.add(table("LDAP RootDSE", "supportedLDAPVersion values of the RootDSE.",
                [table_target(f"connectivity_ldap_root_dse_info{{{s}}}")], hide=facts_hide,
                order=["supported_ldap_versions"]), 6, 5)
    b.add(table("LDAP naming contexts", "The namingContexts the RootDSE lists (the first 8).",
                [table_target(f"connectivity_ldap_naming_context_info{{{s}}}")], hide=facts_hide,
                order=["naming_context"]), 10, 5)
    b.add(table("LDAP result codes", "The resultCode of each operation of the last run (0 is success, 49 invalid credentials).",
                [table_target(f"connectivity_ldap_result_code{{{s}}}")], hide=facts_hide[1:],
                order=["operation", "Value"],
                overrides=[override("Value", displayName="resultCode", decimals=0,
                                    thresholds={"mode": "absolute", "steps": BAD_IF_ANY},
                                    custom__cellOptions={"type": "color-text"})]), 8, 5)

    b.row("HTTP (http)")
    b.add(stat("HTTP status code", "Status of the last response, after redirects.",
               [target(f"connectivity_http_status_code{{{s}}}")], decimals=0,
               steps=[{"color": "text", "value": None}, {"color": "green", "value": 200}, {"color": "blue", "value": 300},
                      {"color": "orange", "value": 400}, {"color": "red", "value": 500}]), 6, 4)
    b.add(stat("HTTP redirects", "Redirects followed on the last run.",
               [target(f"connectivity_http_redirects{{{s}}}")], decimals=0, color_mode="none"), 6, 4)
    b.add(stat("HTTP body size", "Size of the last response body read.",
               [target(f"connectivity_http_body_bytes{{{s}}}")], unit="bytes", color_mode="none"), 6, 4)
    b.add(timeseries("HTTP status over time", "The status code of each run.",
                     [target(f"connectivity_http_status_code{{{s}}}", "status")], decimals=0), 6, 4)

    b.row("DNS (dns)")
    b.add(table("DNS addresses", "The addresses the name resolved to on the last run (at most 32).",
                [table_target(f"connectivity_dns_address_info{{{s}}}")], hide=facts_hide, order=["address"]), 8, 6)
    b.add(stat("DNS address count", "Distinct addresses on the last run (also beyond the 32 listed).",
               [target(f"connectivity_dns_addresses{{{s}}}")], decimals=0, color_mode="none"), 4, 3)
    b.add(stat("DNS answer TTL", "Smallest TTL among the records used.",
               [target(f"connectivity_dns_answer_ttl_seconds{{{s}}}")], unit="s", color_mode="none"), 4, 3)
    b.add(timeseries("DNS changes and ignored replies", "Address set changes, and datagrams dropped because they did not answer "
                     "the query (a rise is a misbehaving server or spoofing).",
                     [target(f"sum(increase(connectivity_dns_address_changes_total{{{s}}}[$__rate_interval]))", "address set changes"),
                      target(f"sum(increase(connectivity_dns_ignored_replies_total{{{s}}}[$__rate_interval]))", "ignored replies")],
                     bars=True, min_=0), 8, 6)

    variables = [
        query_variable("instance", "Agent", "label_values(connectivity_up, instance)", False),
        query_variable("check", "Check", 'label_values(connectivity_up{instance="$instance"}, check)', False),
    ]
    return dashboard(CHECK_UID, "Connectivity check", "connectivity-agent: one check in detail, with the facts its probe learned.",
                     b, variables, "now-3h")


# --- output -------------------------------------------------------------------------------------

OUTPUTS = {"connectivity-overview.json": overview, "connectivity-check.json": check_dashboard}


def render(builder):
    return json.dumps(builder(), indent=2, ensure_ascii=False) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a committed JSON file differs from what would be generated")
    args = parser.parse_args()
    stale = []
    for name, builder in OUTPUTS.items():
        path = HERE / name
        text = render(builder)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print("wrote", path)
    if stale:
        print("build.py --check: out of date (run python3 dashboards/build.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
