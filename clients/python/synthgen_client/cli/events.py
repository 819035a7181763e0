"""``synthgen jobs events ID`` (the job's event stream) and ``synthgen webhooks secret``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from synthgen_client.cli import output
from synthgen_client.sdk import Client


def events(client: Client, args: argparse.Namespace) -> int:
    """Print each event as it arrives, until the job ends: one line a person reads, or
    with ``--json`` the event's JSON (the job object plus ``type`` and ``event_id``)."""
    from synthgen_client import events as stream

    for event in stream.iter_events(client.http, args.id, args.last_event_id):
        if args.json:
            print(json.dumps(event.job, default=str), flush=True)
            continue
        job = event.job
        print(f"{event.id:<10} {event.type:<9} {job['status']:<9} {output.progress_text(job)}",
              flush=True)  # fmt: skip
    return 0


def secret(client: Client, args: argparse.Namespace) -> int:
    key = client.webhook_secret(rotate=args.rotate)
    if args.json:
        print(json.dumps({"key": key}))
    else:
        if args.rotate:
            print("new signing secret (deliveries carry the old signature too for 24 h):")
        print(key)
    return 0


def add_parsers(sub: Any, jobs_actions: Any, common: argparse.ArgumentParser) -> None:
    p = jobs_actions.add_parser("events", help="follow a job's events until it ends",
                                parents=[common])  # fmt: skip
    p.add_argument("id", help="job id")
    p.add_argument("--last-event-id", help="resume after this event (evt_…)")
    p.set_defaults(run=events)

    hooks = sub.add_parser("webhooks", help="the webhook signing secret", parents=[common])
    actions = hooks.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("secret", help="print the tenant's secret (whsec_…)",
                           parents=[common])  # fmt: skip
    p.add_argument("--rotate", action="store_true", help="make a new secret first")
    p.set_defaults(run=secret)
