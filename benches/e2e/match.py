#!/usr/bin/env python3
"""The five examples/authentik rules' match clauses in plain Python: json.loads per
line, then the same conditions as benches/e2e/match.jq. Prints the per-rule counts
as JSON. A pattern `name` or `_` means present and non-null; `known_device: false`
holds only when the field is present and false."""
import json
import sys


def main():
    counts = {"application_without_bindings": 0, "archive_ssh_keys_on_deactivation": 0,
              "group_addition_history": 0, "unknown_device_login": 0, "welcome_email": 0}
    events = 0
    loads = json.loads
    with open(sys.argv[1], "rb") as f:
        for line in f:
            events += 1
            e = loads(line)
            action = e.get("action")
            ctx = e.get("context") or {}
            if action == "model_created" or action == "model_updated":
                m = ctx.get("model") or {}
                if m.get("app") != "authentik_core" or m.get("pk") is None:
                    continue
                name = m.get("model_name")
                if action == "model_created":
                    if name == "application":
                        counts["application_without_bindings"] += 1
                    elif name == "user":
                        counts["welcome_email"] += 1
                elif name == "user":
                    counts["archive_ssh_keys_on_deactivation"] += 1
                elif name == "group":
                    diff = ctx.get("diff")
                    users = diff.get("users") if isinstance(diff, dict) else None
                    if isinstance(users, dict) and users.get("add") is not None:
                        counts["group_addition_history"] += 1
            elif action == "login":
                args = ctx.get("auth_method_args")
                if isinstance(args, dict) and args.get("known_device") is False:
                    counts["unknown_device_login"] += 1
    print(json.dumps({"events": events, "by_rule": counts}, sort_keys=True))


main()
