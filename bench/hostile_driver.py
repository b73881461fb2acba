"""Sends every hostile request of issue 22 anonymously, at a fixed total rate, for a while, and
reports each one's latency percentiles and the codes it was answered with.

    python3 bench/hostile_driver.py URL RATE SECONDS   (prints one JSON object)

Each request is timed from sending to the last byte of the answer, on its own connection (as an
attacker would send it). A request counts as refused when its answer carries the expected code.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor


def nested_not(levels):
    return "{leads(filter:" + "{not:" * levels + '{firstName:{eq:"x"}}' + "}" * levels + "){totalCount}}"


def variable_filter(levels):
    f = {"firstName": {"eq": "x"}}
    for _ in range(levels):
        f = {"not": f}
    return f


def fragment_bomb(levels):
    q = "query{me{...F0}}"
    for n in range(levels):
        q += f" fragment F{n} on User{{id ...F{n + 1} ...F{n + 1}}}"
    return q + f" fragment F{levels} on User{{id}}"


def cases():
    """(name, method, path, body or None, expected code)"""
    gql = lambda query, variables=None: json.dumps({"query": query, "variables": variables or {}})
    aliases = "mutation {" + "".join(
        f' l{n}: createLead(input: {{firstName: "L{n}"}}) {{ lead {{ id }} }}' for n in range(1000)) + "}"
    stats = "{" + "".join(f" s{n}: leadStats {{ total }}" for n in range(1000)) + "}"
    ands = [{"firstName": {"eq": f"n{n}"}} for n in range(20000)]
    ors = [{"custom": [{"key": "k", "eq": f"v{n}"}]} for n in range(15000)]
    return [
        ("nested filter, GET, 120 levels", "GET",
         "/graphql?" + urllib.parse.urlencode({"query": nested_not(120)}), None, "BAD_USER_INPUT"),
        ("nested filter, POST, 100,000 levels", "POST", "/graphql",
         gql(nested_not(100_000)), "BAD_USER_INPUT"),
        ("nested filter variable, 120 levels", "POST", "/graphql",
         gql("query($f: LeadFilter) { leads(filter: $f) { totalCount } }", {"f": variable_filter(120)}),
         "BAD_USER_INPUT"),
        ("selections nested 10,000 deep", "POST", "/graphql",
         gql("{a" * 10_000 + "}" * 10_000), "QUERY_TOO_DEEP"),
        ("fragment chain doubling 30 times", "POST", "/graphql", gql(fragment_bomb(30)), "QUERY_TOO_COMPLEX"),
        ("fragment chain, GET", "GET",
         "/graphql?" + urllib.parse.urlencode({"query": fragment_bomb(30)}), None, "QUERY_TOO_COMPLEX"),
        ("1,000 aliased createLead", "POST", "/graphql", gql(aliases), "QUERY_TOO_COMPLEX"),
        ("1,000 leadStats aliases", "POST", "/graphql", gql(stats), "QUERY_TOO_COMPLEX"),
        ("20,000 and conditions (700 KB)", "POST", "/graphql",
         gql("query($f: LeadFilter) { leads(filter: $f) { totalCount } }", {"f": {"and": ands}}),
         "BAD_USER_INPUT"),
        ("15,000 custom-field or conditions", "POST", "/graphql",
         gql("query($f: ContactFilter) { contacts(filter: $f) { totalCount } }", {"f": {"or": ors}}),
         "BAD_USER_INPUT"),
        ("NUL in login", "POST", "/graphql",
         gql('mutation($e: String!) { login(email: $e, password: "x") { accessToken } }', {"e": "a\u0000b"}),
         "BAD_USER_INPUT"),
    ]


def send(host, port, case):
    name, method, path, body, expected = case
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        headers = {"content-type": "application/json"} if body else {}
        conn.request(method, path, body=body.encode() if body else None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        try:
            answer = json.loads(data)
            code = (answer.get("errors") or [{}])[0].get("extensions", {}).get("code") \
                or (answer.get("error") or {}).get("code")
        except ValueError:
            code = f"HTTP {response.status}"
        return name, elapsed, code, expected
    except Exception as e:  # a dropped connection is a finding, not a crash of the driver
        return name, (time.perf_counter() - started) * 1000, f"failed: {e}", expected
    finally:
        conn.close()


def percentile(values, p):
    values = sorted(values)
    if not values:
        return 0.0
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def main():
    url, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    parsed = urllib.parse.urlparse(url)
    all_cases = cases()
    results = {c[0]: [] for c in all_cases}
    codes = {c[0]: {} for c in all_cases}
    lock = threading.Lock()

    def record(future):
        name, elapsed, code, expected = future.result()
        with lock:
            results[name].append(elapsed)
            codes[name][code] = codes[name].get(code, 0) + 1

    deadline = time.perf_counter() + seconds
    n = 0
    with ThreadPoolExecutor(max_workers=16) as pool:
        start = time.perf_counter()
        while time.perf_counter() < deadline:
            case = all_cases[n % len(all_cases)]
            pool.submit(send, parsed.hostname, parsed.port, case).add_done_callback(record)
            n += 1
            next_at = start + n / rate
            time.sleep(max(0.0, next_at - time.perf_counter()))
    report = []
    for name, _, _, _, expected in all_cases:
        values = results[name]
        report.append({
            "request": name,
            "sent": len(values),
            "p50_ms": round(percentile(values, 50), 2),
            "p99_ms": round(percentile(values, 99), 2),
            "max_ms": round(max(values), 2) if values else 0,
            "expected": expected,
            "codes": codes[name],
        })
    print(json.dumps(report))


if __name__ == "__main__":
    main()
