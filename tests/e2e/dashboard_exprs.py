#!/usr/bin/env python3
"""The PromQL expressions of Grafana dashboards, with their variables substituted.

    python3 tests/e2e/dashboard_exprs.py list DASHBOARD.json... [--check NAME] [--instance HOST:PORT] [--variables]

prints one JSON object per line: {"dashboard": uid, "panel": title, "refId": ..., "expr": ...}, where
expr is ready for Prometheus's /api/v1/query. From Python:

    import dashboard_exprs
    for e in dashboard_exprs.expressions(paths, check="web-tcp", instance="127.0.0.1:9470"): ...

Substitution (the contract the dashboards are written to):
  $__rate_interval, $__interval  -> 1m
  $__range                        -> 5m
  a multi-value or include-All dashboard variable -> .*   (used as label=~"$name": .* also matches an absent label)
  a single-value variable `check` / `instance`    -> the value of --check / --instance (escaped for a "..." string)
The forms $name and ${name} are accepted; anything else ([[name]], ${name:format}, an unknown $name, the
datasource variable inside an expression) is an error.

It fails (DashboardError; exit 1 from the command line) on: a panel target without expr or refId, a refId used
twice in a panel, a panel or target whose datasource is not {"type": "prometheus", "uid": "${datasource}"}, a
query variable on another datasource, no `datasource` variable of type datasource for prometheus, duplicate or
missing panel ids, library panels, and a variable it does not know.
"""

import argparse
import json
import re
import sys

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
BUILTINS = {"__rate_interval": "1m", "__interval": "1m", "__range": "5m"}
CONCRETE = ("check", "instance")  # single-value variables whose value comes from the caller

# $name, ${name}, ${name:format}, [[name]], [[name:format]]
VARIABLE = re.compile(r"\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)|\[\[([^\]]*)\]\]")


class DashboardError(Exception):
    pass


def _fail(where, message):
    raise DashboardError("%s: %s" % (where, message))


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise DashboardError("%s: cannot read dashboard: %s" % (path, e)) from e


def _walk_panels(panels):
    for p in panels or []:
        yield p
        yield from _walk_panels(p.get("panels"))  # rows (collapsed ones hold their panels)


def _variables(dashboard, where):
    found = {}
    for v in dashboard.get("templating", {}).get("list", []):
        name = v.get("name")
        if not name:
            _fail(where, "a template variable without a name")
        if name in found:
            _fail(where, "template variable %r defined twice" % name)
        found[name] = v
    ds = found.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        _fail(where, 'no template variable "datasource" of type datasource with query "prometheus"')
    for name, v in found.items():
        if v.get("type") == "query" and v.get("datasource") != DATASOURCE:
            _fail(where, "variable %r: datasource %r is not %r" % (name, v.get("datasource"), DATASOURCE))
        if v.get("type") not in ("query", "datasource", "custom", "constant", "interval", "textbox"):
            _fail(where, "variable %r: type %r is not supported here" % (name, v.get("type")))
    return found


def _values(variables, where, check, instance):
    """name -> replacement text, or a callable raising when the variable cannot be substituted."""
    given = {"check": check, "instance": instance}
    values = {}
    for name, v in variables.items():
        if name == "datasource":
            continue
        if v.get("multi") or v.get("includeAll"):
            values[name] = ".*"
        elif name in CONCRETE:
            if given[name] is None:
                values[name] = None  # reported when an expression uses it
            else:
                values[name] = given[name].replace("\\", "\\\\").replace('"', '\\"')
        # other single-value variables stay unknown: an expression using them fails
    return values


def substitute(expr, values, where):
    """expr with every variable replaced; DashboardError for anything this contract does not cover."""
    def replace(m):
        braced, plain, bracket = m.group(1), m.group(2), m.group(3)
        if bracket is not None:
            _fail(where, "[[%s]] syntax is not supported (use $name) in: %s" % (bracket, expr))
        name = braced if braced is not None else plain
        if ":" in name:
            _fail(where, "formatted variable ${%s} is not supported in: %s" % (name, expr))
        if name in BUILTINS:
            return BUILTINS[name]
        if name == "datasource":
            _fail(where, "the datasource variable has no place in an expression: %s" % expr)
        if name not in values:
            _fail(where, "unknown variable $%s in: %s" % (name, expr))
        if values[name] is None:
            _fail(where, "single-value variable $%s needs a value (--%s) for: %s" % (name, name, expr))
        return values[name]
    return VARIABLE.sub(replace, expr)


def _label_values_selector(query):
    """label_values(SELECTOR, label) -> SELECTOR; label_values(label) -> None (no series to test)."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*", query, re.S)
    return m.group(1).strip() if m else None


def dashboard_expressions(dashboard, where="dashboard", check=None, instance=None, include_variables=False):
    """[{"dashboard", "panel", "refId", "expr"}] of one parsed dashboard, validated and substituted."""
    uid = dashboard.get("uid") or where
    variables = _variables(dashboard, where)
    values = _values(variables, where, check, instance)
    out = []
    if include_variables:
        for name, v in variables.items():
            if v.get("type") != "query":
                continue
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            selector = _label_values_selector(q or "")
            if selector is None:
                _fail(where, "variable %r: query %r is not label_values(SELECTOR, label)" % (name, q))
            out.append({"dashboard": uid, "panel": "variable " + name, "refId": name,
                        "expr": substitute(selector, values, "%s: variable %r" % (where, name))})
    ids = set()
    for p in _walk_panels(dashboard.get("panels")):
        title = p.get("title", "")
        pw = "%s: panel %r" % (where, title)
        pid = p.get("id")
        if not isinstance(pid, int):
            _fail(pw, "no numeric panel id")
        if pid in ids:
            _fail(pw, "duplicate panel id %d" % pid)
        ids.add(pid)
        if "libraryPanel" in p:
            _fail(pw, "library panels are not supported")
        targets = p.get("targets") or []
        if (targets or "datasource" in p) and p.get("datasource") != DATASOURCE:
            _fail(pw, "datasource %r is not %r" % (p.get("datasource"), DATASOURCE))
        refs = set()
        for t in targets:
            ref = t.get("refId")
            if not ref:
                _fail(pw, "a target without refId")
            if ref in refs:
                _fail(pw, "refId %r used twice" % ref)
            refs.add(ref)
            tw = "%s refId %s" % (pw, ref)
            if t.get("datasource") != DATASOURCE:
                _fail(tw, "datasource %r is not %r" % (t.get("datasource"), DATASOURCE))
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                _fail(tw, "no expr")
            out.append({"dashboard": uid, "panel": title, "refId": ref, "expr": substitute(expr, values, tw)})
    return out


def expressions(paths, check=None, instance=None, include_variables=False):
    """The expressions of every dashboard file in paths, in file and panel order."""
    out = []
    for path in paths:
        out.extend(dashboard_expressions(load(path), str(path), check, instance, include_variables))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description="List the substituted PromQL expressions of Grafana dashboards.")
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="print one JSON object per expression")
    ls.add_argument("dashboards", nargs="+", metavar="DASHBOARD.json")
    ls.add_argument("--check", help="value of a single-value $check variable")
    ls.add_argument("--instance", help="value of a single-value $instance variable (HOST:PORT)")
    ls.add_argument("--variables", action="store_true",
                    help="also list each query variable's label_values() selector (panel \"variable NAME\")")
    args = parser.parse_args(argv)
    try:
        found = expressions(args.dashboards, args.check, args.instance, args.variables)
    except DashboardError as e:
        print("dashboard_exprs: %s" % e, file=sys.stderr)
        return 1
    for e in found:
        print(json.dumps(e, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
