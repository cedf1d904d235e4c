#!/usr/bin/env python3
"""Console latency, driven by bench/console.sh against a running `pacsguard serve`.

Measures over one keep-alive HTTPS connection per client: the anchor (the stylesheet,
a static file served by the same server), sign-in attempts (each one Argon2id hash:
an unknown account costs the same as a wrong password), and the pages a person reads
(overview, alerts, the newest trail page, a trail page deep in the trail, the overview
API). Prints p50/p99 in ms and each one's ratio to the anchor's p50, and the sign-in
throughput with CLIENTS clients in parallel. Environment: BASE, SETUP_LINK, CACERT,
RUNS, CLIENTS, SECONDS, DEEP_SEQ.
"""
import base64, hashlib, hmac, http.client, os, re, ssl, statistics, struct, sys, threading, time, urllib.parse

BASE = os.environ["BASE"]
HOST, PORT = urllib.parse.urlparse(BASE).hostname, urllib.parse.urlparse(BASE).port
CTX = ssl.create_default_context(cafile=os.environ["CACERT"])
CTX.check_hostname = False
RUNS = int(os.environ.get("RUNS", "200"))
CLIENTS = int(os.environ.get("CLIENTS", "4"))
SECONDS = float(os.environ.get("SECONDS", "10"))
DEEP_SEQ = os.environ.get("DEEP_SEQ", "")
PASSWORD = "amber lantern over quiet harbour"


def conn():
    return http.client.HTTPSConnection(HOST, PORT, context=CTX, timeout=60)


def request(c, method, path, form=None, cookie=None):
    headers = {"Host": f"{HOST}:{PORT}"}
    body = None
    if cookie:
        headers["Cookie"] = f"__Host-pacsguard={cookie}"
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    return r.status, r.getheader("Set-Cookie") or "", data.decode("utf-8", "replace")


def totp(secret_b32, step):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = mac[19] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)


def cookie_of(set_cookie):
    m = re.search(r"__Host-pacsguard=([^;]+)", set_cookie)
    return m.group(1) if m else None


def admin_session():
    c = conn()
    token = urllib.parse.parse_qs(urllib.parse.urlparse(os.environ["SETUP_LINK"]).query)["token"][0]
    status, sc, _ = request(c, "POST", "/setup", {"token": token, "name": "admin", "password": PASSWORD})
    assert status == 303, status
    cookie = cookie_of(sc)
    _, _, page = request(c, "GET", "/enrol", cookie=cookie)
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', page).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    status, sc, _ = request(c, "POST", "/enrol", {"csrf": csrf, "code": totp(secret, int(time.time()) // 30)}, cookie)
    assert status == 200, status
    return cookie_of(sc)


def timed(fn, runs):
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main():
    cookie = admin_session()
    c = conn()
    # serve verifies the whole trail at its start: measure after that, not beside it.
    started = time.monotonic()
    while time.monotonic() - started < 900:
        _, _, overview = request(c, "GET", "/api/overview", cookie=cookie)
        if '"trail":{' in overview.replace(" ", ""):
            break
        time.sleep(1)
    print(f"trail verified by serve after {time.monotonic() - started:.0f} s (measured after it)")
    anchor50, anchor99 = timed(lambda: request(c, "GET", "/static/console.css"), RUNS)
    rows = [("anchor: GET /static/console.css", anchor50, anchor99)]
    pages = [("/", "overview"), ("/alerts", "alerts"), ("/trail", "trail, newest page"), ("/api/overview", "overview API")]
    if DEEP_SEQ:
        pages.append((f"/trail?before={DEEP_SEQ}", f"trail, page before seq {DEEP_SEQ}"))
    for path, name in pages:
        def get(path=path):
            status, _, _ = request(c, "GET", path, cookie=cookie)
            assert status == 200, (path, status)
        p50, p99 = timed(get, RUNS)
        rows.append((f"GET {path} ({name})", p50, p99))
    # Sign-in attempts: unknown names, so no account locks and each costs one hash.
    n = [0]
    def attempt():
        n[0] += 1
        request(c, "POST", "/login", {"name": f"nobody{n[0]}", "password": "wrong password here", "code": "000000"})
    p50, p99 = timed(attempt, max(10, RUNS // 10))
    rows.append(("POST /login (one Argon2id)", p50, p99))
    for name, p50, p99 in rows:
        print(f"{name:45s} p50 {p50:8.2f} ms  p99 {p99:8.2f} ms  p50/anchor {p50 / anchor50:7.1f}x")
    # Throughput: CLIENTS connections signing in for SECONDS.
    done = [0]
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS
    def client(i):
        cc = conn()
        k = 0
        while time.monotonic() < stop:
            k += 1
            request(cc, "POST", "/login", {"name": f"t{i}x{k}", "password": "wrong password here", "code": "000000"})
            with lock:
                done[0] += 1
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"sign-in throughput, {CLIENTS} clients for {SECONDS:.0f} s: {done[0] / SECONDS:.1f} attempts/s")


if __name__ == "__main__":
    main()
