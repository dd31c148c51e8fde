#!/usr/bin/env python3
"""The README's table "Where each check must run" and the built-in profiles agree: every check
and watch of every profile is on exactly one row, with the same run_from roles, and every row
names a check that exists. The table is what a site reads to decide where to put its agents.

Usage: role_table_test.py REPO_ROOT
"""
import fnmatch
import glob
import os
import re
import sys
import tomllib


def readme_rows(readme):
    """(check pattern, roles) for each row of the table whose header is `| vendor's row | check | run_from |`."""
    lines = readme.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| vendor's row | check | run_from |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        pattern = re.sub(r"`|\s*\(watch\)", "", cells[1])
        roles = {r.strip() for r in cells[2].split(",")}
        rows.append((pattern, roles))
    return rows


def profile_entries(repo):
    """(profile, name, roles) for every [[check]] and [[inbound]] of the built-in profiles."""
    out = []
    for path in sorted(glob.glob(os.path.join(repo, "configs", "profiles", "*.toml"))):
        with open(path, "rb") as f:
            profile = tomllib.load(f)
        for kind in ("check", "inbound"):
            for table in profile.get(kind, []):
                out.append((os.path.basename(path), table["name"], set(table.get("run_from", []))))
    return out


def main():
    repo = sys.argv[1]
    with open(os.path.join(repo, "README.md")) as f:
        rows = readme_rows(f.read())
    entries = profile_entries(repo)
    failures = []
    matched_rows = set()
    for profile, name, roles in entries:
        hits = [i for i, (pattern, _) in enumerate(rows) if fnmatch.fnmatchcase(name, pattern)]
        if len(hits) != 1:
            failures.append(f"{profile}: {name} is on {len(hits)} rows of the README's table (expected 1)")
            continue
        matched_rows.add(hits[0])
        if rows[hits[0]][1] != roles:
            failures.append(f"{profile}: {name} runs from {sorted(roles)}, the README says {sorted(rows[hits[0]][1])}")
    for i, (pattern, _) in enumerate(rows):
        if i not in matched_rows:
            failures.append(f"README row `{pattern}` names no check of a built-in profile")
    for failure in failures:
        print("FAIL", failure)
    print(f"{len(entries)} profile checks and watches, {len(rows)} README rows, {len(failures)} disagreements")
    return 1 if failures or not entries or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
