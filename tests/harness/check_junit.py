#!/usr/bin/env python3
"""Structural check of a JUnit XML file written by `gdnv baseline compare --junit`.

Usage: check_junit.py FILE
Parses FILE (well-formedness), then checks that the root is <testsuites>, that every <testsuite> has a
name and that its tests/failures/errors/skipped attributes equal the counts of its <testcase>,
<failure>, <error> and <skipped> children, that the root's totals are the sums, and that every
<failure> has a non-empty one-line message. Prints one line "tests=N failures=F skipped=S suites=K" and
then one line per failure "FAIL <classname> <name>: <message>"; exit 0 when consistent, 1 otherwise.
"""
import sys
import xml.etree.ElementTree as ET


def main(path):
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        print(f"not well-formed: {e}")
        return 1
    problems = []
    if root.tag != "testsuites":
        problems.append(f"root is <{root.tag}>, expected <testsuites>")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failures = []
    suites = root.findall("testsuite")
    for s in suites:
        name = s.get("name")
        if not name:
            problems.append("a testsuite without a name")
        cases = s.findall("testcase")
        counts = {
            "tests": len(cases),
            "failures": sum(len(c.findall("failure")) for c in cases),
            "errors": sum(len(c.findall("error")) for c in cases),
            "skipped": sum(len(c.findall("skipped")) for c in cases),
        }
        for k, v in counts.items():
            if s.get(k) is None or int(s.get(k)) != v:
                problems.append(f"testsuite {name}: {k}={s.get(k)} but {v} found")
            totals[k] += v
        for c in cases:
            if not c.get("name") or not c.get("classname"):
                problems.append(f"testsuite {name}: a testcase without name or classname")
            for f in c.findall("failure"):
                msg = f.get("message") or ""
                if not msg.strip() or "\n" in msg:
                    problems.append(f"{c.get('name')}: failure message empty or not one line")
                failures.append(f"FAIL {c.get('classname')} {c.get('name')}: {msg}")
    for k, v in totals.items():
        if root.get(k) is None or int(root.get(k)) != v:
            problems.append(f"testsuites: {k}={root.get(k)} but {v} found")
    print(f"tests={totals['tests']} failures={totals['failures']} skipped={totals['skipped']} suites={len(suites)}")
    for f in failures:
        print(f)
    for p in problems:
        print(f"PROBLEM {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
