#!/usr/bin/python3
"""Validates every Vega-Lite spec embedded in gdnv report pages against the Vega-Lite JSON schema
shipped in the pinned npm package (an invalid spec otherwise renders silently wrong or not at all).

    validate_specs.py SCHEMA.json REPORT.html...

The page embeds each spec with the shared datasets merged in (stored compactly, expanded by its
script); so does this check. Prints
"skipped: ..." and exits 0 when the schema (gdnv built without npm) or python3-jsonschema is missing.
"""
import json
import os
import re
import sys


def main():
    schema_path, pages = sys.argv[1], sys.argv[2:]
    if not os.path.exists(schema_path):
        print(f"skipped: no Vega-Lite schema at {schema_path} (gdnv built without the chart libraries)")
        return 0
    try:
        import jsonschema
    except ImportError:
        print("skipped: python3-jsonschema not installed")
        return 0
    with open(schema_path) as f:
        schema = json.load(f)
    validator = jsonschema.Draft7Validator(schema)
    failures = 0
    for page in pages:
        with open(page) as f:
            html = f.read()
        data = re.search(r'<script type="application/json" id="gdnv-datasets">(.*?)</script>', html, re.S)
        specs = re.findall(r'<script type="application/json" id="([^"]+)-spec">(.*?)</script>', html, re.S)
        if not data or not specs:
            print(f"{page}: no specs or no datasets embedded")
            failures += 1
            continue
        stored = json.loads(data.group(1))
        # expanded as the page's script does: fields + rows (+ string lists) -> one object per row
        datasets = {name: [{f: (d["strings"][f][v] if f in d["strings"] and v is not None else v)
                            for f, v in zip(d["fields"], row)} for row in d["rows"]]
                    for name, d in stored.items()}
        for chart_id, text in specs:
            spec = json.loads(text)
            spec["datasets"] = datasets
            errors = sorted(validator.iter_errors(spec), key=lambda e: list(e.absolute_path))
            if errors:
                failures += 1
                print(f"{page}: {chart_id}: {len(errors)} schema error(s)")
                for e in errors[:5]:
                    deep = jsonschema.exceptions.best_match(e.context) if e.context else e
                    print("   at /" + "/".join(map(str, deep.absolute_path)) + ": " + deep.message[:300])
            else:
                print(f"{page}: {chart_id}: valid Vega-Lite")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
