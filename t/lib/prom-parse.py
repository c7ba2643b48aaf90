#!/usr/bin/python3
"""t/lib/prom-parse.py: parses Prometheus text (stdin) with the reference
Python client's parser (Debian's python3-prometheus-client) and prints it as
JSON: [{"name", "type", "help", "samples": [[name, {labels}, value]]}].
Exits 1 with the parser's error on stderr if the text does not parse."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    out = []
    try:
        for f in text_string_to_metric_families(text):
            out.append({
                'name': f.name,
                'type': f.type,
                'help': f.documentation,
                'samples': [[s.name, s.labels, s.value] for s in f.samples],
            })
    except Exception as e:  # the parser raises ValueError and others
        sys.stderr.write('parse error: %r\n' % (e,))
        sys.exit(1)
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main()
