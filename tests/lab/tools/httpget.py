#!/usr/bin/python3
"""GET a URL (inside a lab namespace); print the body; exit 0 on HTTP 200.

  httpget.py [--wait SECONDS] URL
--wait polls (every 50 ms) until a 200 arrives or SECONDS pass.
"""
import sys
import time
import urllib.error
import urllib.request


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (OSError, ValueError) as e:
        return None, str(e)


def main(argv):
    wait = 0.0
    if argv[:1] == ["--wait"]:
        wait = float(argv[1])
        argv = argv[2:]
    url = argv[0]
    deadline = time.monotonic() + wait
    while True:
        status, body = get(url)
        if status == 200:
            sys.stdout.write(body)
            return 0
        if time.monotonic() >= deadline:
            sys.stdout.write("status=%s %s\n" % (status, body))
            return 1
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
