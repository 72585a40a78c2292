"""Shared by the simple-salesforce checks: the simulator's address from its info file, and a requests.Session
that rewrites simple-salesforce's hard-coded https URLs to it."""
import json
import re

import requests


def load(info_path):
    """The info file's JSON and the simulator's base URL (no trailing slash)."""
    info = json.load(open(info_path))
    return info, info["salesforce_url"].rstrip("/")


def session_class(sim):
    hostport = sim.split("://", 1)[1]

    class ToSim(requests.Session):
        def request(self, method, url, *a, **kw):
            url = re.sub(r"^https://[^/]*\.salesforce\.com", sim, url).replace("https://" + hostport, sim)
            return super().request(method, url, *a, **kw)

    return ToSim
