"""Container health check for `mox-reconciler watch` (the image's HEALTHCHECK); stdlib only.

Asks the watcher's /healthz when it serves one (--metrics-addr): healthy while the watcher's loop
is alive (a failing reconcile shows in /readyz and the status file, and is no reason to restart
the container). Without a metrics server, falls back to
the status file the watcher rewrites after every run: healthy while it is younger than MAX_AGE
(the resync interval times a margin). Exit 0 healthy, 1 unhealthy, as Docker expects.

Environment: MOX_RECONCILER_HEALTH_URL (default http://127.0.0.1:9090/healthz),
MOX_RECONCILER_STATUS_FILE (default /mox/config/mox-reconciler.status.json),
MOX_RECONCILER_HEALTH_MAX_AGE seconds (default 600).
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request

HEALTH_URL = "http://127.0.0.1:9090/healthz"
STATUS_FILE = "/mox/config/mox-reconciler.status.json"
MAX_AGE = 600.0


def check(url: str, status_file: str, max_age: float) -> tuple[bool, str]:
    """(healthy, why) from /healthz if it answers, else from the status file's age."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200, f"{url}: {resp.status}"
    except urllib.error.HTTPError as e:
        return False, f"{url}: {e.code}"
    except (urllib.error.URLError, OSError):
        pass  # nothing listening: no --metrics-addr; use the status file
    try:
        age = time.time() - os.stat(status_file).st_mtime
    except OSError as e:
        return False, f"{status_file}: {e.strerror}"
    return age <= max_age, f"{status_file}: written {age:.0f}s ago (limit {max_age:.0f}s)"


def main() -> int:
    ok, why = check(
        os.environ.get("MOX_RECONCILER_HEALTH_URL", HEALTH_URL),
        os.environ.get("MOX_RECONCILER_STATUS_FILE", STATUS_FILE),
        float(os.environ.get("MOX_RECONCILER_HEALTH_MAX_AGE", MAX_AGE)),
    )
    print(("healthy: " if ok else "unhealthy: ") + why)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
