#!/usr/bin/env python3
"""Deterministic generator of authentik-like NDJSON events for Herald's benchmarks.

    gen_events.py -n 1000000 --seed 42 -o events.ndjson --fixtures fixtures.json

The events have the shape of authentik's event log (see examples/authentik/events.ndjson):
event_uuid, user snapshot, action, app, context, client_ip, created, expires, brand.
The mix is roughly that of a busy instance: mostly `login`, `authorize_application` and
`logout`, some model changes, failed logins and `user_write`, and a few percent of actions
that no example rule names (including actions the schema does not declare). A small share
of the events matches each of the five example rules; most match nothing.

`--fixtures` writes a store to load before the run: the example's fixtures plus the
synthetic users, groups and applications the events refer to, so that the rules' guards
find rows (and fire) for part of the matching events, as they would on a real instance.

The same seed and count always give byte-identical output.
"""

import argparse
import json
import random
import sys

BRAND = '{"app":"authentik_brands","model_name":"brand","pk":"57d84b04aa074fb194f921c8475669ec","name":"Default brand"}'

USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:137.0) Gecko/20100101 Firefox/137.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/135.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Go-http-client/2.0",
    "python-requests/2.32.3",
]

GEOS = [
    {"continent": "EU", "country": "DE", "lat": 52.5196, "long": 13.4069, "city": "Berlin"},
    {"continent": "EU", "country": "FR", "lat": 48.8566, "long": 2.3522, "city": "Paris"},
    {"continent": "NA", "country": "US", "lat": 40.7128, "long": -74.006, "city": "New York"},
    {"continent": "AS", "country": "SG", "lat": 1.2897, "long": 103.8501, "city": ""},
    {"continent": "OC", "country": "AU", "lat": -33.8688, "long": 151.2093, "city": "Sydney"},
]

ASNS = [
    {"asn": 64500, "as_org": "Example Broadband GmbH", "network": "198.51.100.0/24"},
    {"asn": 64511, "as_org": "Example Hosting Ltd", "network": "203.0.113.0/24"},
    {"asn": 64496, "as_org": "Example Mobile", "network": "192.0.2.0/24"},
]

# Actions that no example rule names: the first ones are declared by the built-in schema,
# the `custom_*` ones are not (they match only `match any` rules, of which there are none).
OTHER_ACTIONS = [
    "password_set", "suspicious_request", "email_sent", "policy_execution", "flow_execution",
    "secret_view", "impersonation_started", "impersonation_ended", "system_task_execution",
    "custom_vip_login_outside_hours", "custom_access_review",
]

OTHER_MODELS = [
    ("authentik_core", "token"), ("authentik_flows", "flow"), ("authentik_policies", "policybinding"),
    ("authentik_providers_oauth2", "oauth2provider"), ("authentik_stages_password", "passwordstage"),
    ("authentik_core", "application"), ("authentik_core", "user"), ("authentik_core", "group"),
]


def hexid(rng):
    return "%032x" % rng.getrandbits(128)


def uuid4(rng):
    h = "%032x" % rng.getrandbits(128)
    return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], "89ab"[int(h[16], 16) & 3], h[17:20], h[20:])


def ts(micros):
    """RFC 3339 UTC timestamp from microseconds since 2026-04-14T00:00:00Z (first 30 days)."""
    s, us = divmod(micros, 1_000_000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    d, h = divmod(h, 24)
    return "2026-04-%02dT%02d:%02d:%02d.%06dZ" % (14 + d % 16, h, m, s, us), "2027-04-%02dT%02d:%02d:%02d.%06dZ" % (
        14 + d % 16, h, m, s, us)


def dumps(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


class World:
    """Users, groups, applications and IPs the events refer to."""

    def __init__(self, rng, base):
        self.base = base
        self.users = []  # (pk, username, email, active, has_ssh)
        for u in base["User"]:
            has_ssh = bool(u.get("attributes", {}).get("sshPublicKey"))
            self.users.append((u["pk"], u["username"], u["email"], u["is_active"], has_ssh))
        self.synthetic_users = []
        for i in range(3000):
            pk = 1000 + i
            name = "user%04d" % i
            email = "" if i % 20 == 0 else "%s@example.com" % name  # some service accounts
            active = i % 10 != 0
            has_ssh = i % 7 == 0
            self.synthetic_users.append((pk, name, email, active, has_ssh))
        self.users += self.synthetic_users
        self.groups = [(g["pk"], g["name"]) for g in base["Group"]]
        self.synthetic_groups = [(hexid(rng), "team-%03d" % i) for i in range(120)]
        self.groups += self.synthetic_groups
        self.apps = [(a["pk"], a["name"]) for a in base["Application"]]
        self.synthetic_apps = [(hexid(rng), "app-%02d" % i) for i in range(40)]
        self.apps += self.synthetic_apps
        self.ips = (["192.0.2.%d" % i for i in range(1, 255)] + ["198.51.100.%d" % i for i in range(1, 255)]
                    + ["203.0.113.%d" % i for i in range(1, 255)] + ["10.%d.%d.%d" % (a, b, c)
                                                                    for a in range(2) for b in range(4)
                                                                    for c in range(1, 60)])

    def fixtures(self):
        out = {k: list(v) for k, v in self.base.items()}
        for pk, name, email, active, has_ssh in self.synthetic_users:
            attrs = {}
            if has_ssh:
                attrs["sshPublicKey"] = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA%s %s@laptop" % (name, name)]
            out["User"].append({"pk": pk, "username": name, "name": name.capitalize(), "email": email,
                                "is_active": active, "attributes": attrs, "type": "internal", "path": "users"})
        for i, (pk, name) in enumerate(self.synthetic_groups):
            members = [1000 + (i * 13 + k) % 3000 for k in range(i % 5)]
            out["Group"].append({"pk": pk, "name": name, "attributes": {}, "is_superuser": False, "users": members})
        for i, (pk, name) in enumerate(self.synthetic_apps):
            out["Application"].append({"pk": pk, "name": name, "slug": name})
            if i % 2 == 0:  # every other synthetic app has a binding: only the others fire
                out["PolicyBinding"].append({"pk": "%032x" % (0xb1d << 100 | i), "target": pk, "enabled": True,
                                             "order": 0, "negate": False})
        return out


def http_request(rng, path, method):
    return {"path": path, "method": method, "args": {}, "user_agent": rng.choice(USER_AGENTS),
            "request_id": hexid(rng)}


def model_ref(app, model, pk, name):
    return {"app": app, "model_name": model, "pk": pk, "name": name}


def gen(n, seed, out, world):
    rng = random.Random(seed)
    micros = 0
    write = out.write
    for _ in range(n):
        micros += rng.randint(1, 2_000_000) // 20  # ~50 ms apart on average
        created, expires = ts(micros)
        r = rng.random()
        actor = rng.choice(world.users)
        ip = rng.choice(world.ips)
        app = "authentik.events.signals"
        geo = rng.choice(GEOS)
        if r < 0.40:
            action = "login"
            k = rng.random()
            if k < 0.70:
                # ~2% of password logins come from an unknown device: unknown_device_login fires.
                known = rng.random() >= 0.02
                ctx = {"auth_method": "password", "auth_method_args": {"known_device": known}}
            elif k < 0.80:
                ctx = {"auth_method": "auth_mfa", "auth_method_args": {
                    "mfa_devices": [model_ref("authentik_stages_authenticator_totp", "totpdevice",
                                              rng.randint(1, 500), "phone")],
                    "known_device": rng.random() >= 0.02}}
            elif k < 0.90:
                src = rng.choice(["GitHub", "Google", "Azure AD"])
                ctx = {"source": model_ref("authentik_sources_oauth", "oauthsource", hexid(rng), src)}
            else:
                ctx = {"auth_method": "token", "auth_method_args": {
                    "token": model_ref("authentik_core", "token", hexid(rng), "app-password")}}
            ctx["http_request"] = http_request(rng, "/api/v3/flows/executor/default-authentication-flow/", "POST")
            ctx["geo"] = geo
            ctx["asn"] = rng.choice(ASNS)
        elif r < 0.60:
            action = "authorize_application"
            app = "authentik.providers.oauth2.views.authorize"
            apk, aname = rng.choice(world.apps)
            ctx = {"authorized_application": model_ref("authentik_core", "application", apk, aname),
                   "flow": "78c0b0d035f94977ba4fc361c13f3d52", "scopes": "openid email profile",
                   "http_request": http_request(rng, "/application/o/authorize/", "GET"), "geo": geo}
        elif r < 0.75:
            action = "logout"
            ctx = {"http_request": http_request(rng, "/flows/-/default/invalidation/", "GET"), "geo": geo}
        elif r < 0.81:
            action = "login_failed"
            ctx = {"username": rng.choice(world.users)[1], "password": "********************",
                   "stage": model_ref("authentik_stages_password", "passwordstage",
                                      "953f6baf3c7d428083707ecc2c1cc818", "default-authentication-password"),
                   "http_request": http_request(rng, "/api/v3/flows/executor/default-authentication-flow/", "POST"),
                   "geo": geo}
        elif r < 0.85:
            action = "user_write"
            ctx = {"email": actor[2], "name": actor[1], "username": actor[1],
                   "http_request": http_request(rng, "/api/v3/flows/executor/default-user-settings-flow/", "POST")}
        elif r < 0.965:
            app = "authentik.events.middleware"
            actor = world.users[1]  # akadmin
            k = rng.random()
            if k < 0.25:
                action = "model_created"
                m = rng.random()
                if m < 0.4:  # a new user: welcome_email (fires when the user has an address)
                    pk, name = rng.choice(world.users)[:2]
                    ctx = {"model": model_ref("authentik_core", "user", pk, name)}
                elif m < 0.6:  # a new application: application_without_bindings
                    pk, name = rng.choice(world.apps)
                    ctx = {"model": model_ref("authentik_core", "application", pk, name)}
                else:
                    a, mdl = rng.choice(OTHER_MODELS[:5])
                    ctx = {"model": model_ref(a, mdl, hexid(rng), "%s-%d" % (mdl, rng.randint(1, 999)))}
                ctx["http_request"] = http_request(rng, "/api/v3/core/", "POST")
            elif k < 0.85:
                action = "model_updated"
                m = rng.random()
                if m < 0.35:  # archive_ssh_keys_on_deactivation
                    u = rng.choice(world.users)
                    ctx = {"model": model_ref("authentik_core", "user", u[0], u[1]),
                           "diff": {"is_active": {"previous_value": True, "new_value": False}}}
                elif m < 0.55:  # group_addition_history (only with diff.users.add)
                    gpk, gname = rng.choice(world.groups)
                    ctx = {"model": model_ref("authentik_core", "group", gpk, gname)}
                    d = rng.random()
                    if d < 0.6:
                        ctx["diff"] = {"users": {"add": sorted({rng.choice(world.users)[0]
                                                                for _ in range(rng.randint(1, 3))})}}
                    elif d < 0.8:
                        ctx["diff"] = {"users": {"remove": [rng.choice(world.users)[0]]}}
                    elif d < 0.9:
                        ctx["diff"] = {"name": {"previous_value": gname, "new_value": gname + "-2"}}
                else:
                    a, mdl = rng.choice(OTHER_MODELS[:5])
                    ctx = {"model": model_ref(a, mdl, hexid(rng), mdl),
                           "diff": {"name": {"previous_value": "a", "new_value": "b"}}}
                ctx["http_request"] = http_request(rng, "/api/v3/core/", "PATCH")
            else:
                action = "model_deleted"
                a, mdl = rng.choice(OTHER_MODELS)
                pk = rng.randint(1, 99999) if mdl == "user" else hexid(rng)
                ctx = {"model": model_ref(a, mdl, pk, "%s-%d" % (mdl, rng.randint(1, 999))),
                       "http_request": http_request(rng, "/api/v3/core/", "DELETE")}
        else:
            action = rng.choice(OTHER_ACTIONS)
            ctx = {"message": "%s %d" % (action, rng.randint(1, 10**6)),
                   "http_request": http_request(rng, "/api/v3/", "GET")}
        user = {"username": actor[1], "pk": actor[0], "email": actor[2]}
        write('{"event_uuid":"%s","user":%s,"action":"%s","app":"%s","context":%s,"client_ip":"%s",'
              '"created":"%s","expires":"%s","brand":%s}\n'
              % (uuid4(rng), dumps(user), action, app, dumps(ctx), ip, created, expires, BRAND))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=1_000_000, help="number of events (default 1,000,000)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("-o", "--output", default="-", help="NDJSON output file (default stdout)")
    p.add_argument("--fixtures", help="also write the store's fixtures (JSON) here")
    p.add_argument("--base-fixtures", default="examples/authentik/fixtures.json")
    a = p.parse_args()
    with open(a.base_fixtures) as f:
        base = json.load(f)
    # The world comes from its own stream so that -n does not change it.
    world = World(random.Random(a.seed * 7919 + 1), base)
    if a.fixtures:
        with open(a.fixtures, "w") as f:
            json.dump(world.fixtures(), f, indent=0)
    out = sys.stdout if a.output == "-" else open(a.output, "w", buffering=1 << 20)
    gen(a.n, a.seed, out, world)
    out.close()


if __name__ == "__main__":
    main()
