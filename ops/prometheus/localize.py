#!/usr/bin/env python3
"""Derive the local configuration from ops/prometheus/prometheus.yml.

Usage: localize.py CONFIG_IN CONFIG_OUT [SCRAPE_INTERVAL]

Replaces the `kubernetes_sd_configs` block of the `kubernetes-pods` job with
`file_sd_configs` reading `targets/*.json` beside CONFIG_OUT, and optionally
shortens the scrape and evaluation intervals (tests use 1s). Everything else,
the relabelling and rule files included, is kept byte for byte: the script
fails if the text it replaces is not exactly where it expects it.
"""
import re
import sys

K8S_SD = "    kubernetes_sd_configs:\n      - role: pod\n"
FILE_SD = "    file_sd_configs:\n      - files: [targets/*.json]\n        refresh_interval: 1s\n"


def localize(text: str, interval: str | None) -> str:
    if text.count(K8S_SD) != 1:
        sys.exit("localize.py: expected exactly one `kubernetes_sd_configs: [{role: pod}]` block")
    text = text.replace(K8S_SD, FILE_SD)
    if interval:
        for key in ("scrape_interval", "evaluation_interval", "scrape_timeout"):
            text, n = re.subn(rf"^(  {key}: )\S+$", rf"\g<1>{interval}", text, flags=re.M)
            if n != 1:
                sys.exit(f"localize.py: expected one global `{key}`")
    return text


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    interval = sys.argv[3] if len(sys.argv) == 4 else None
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(localize(text, interval))


if __name__ == "__main__":
    main()
