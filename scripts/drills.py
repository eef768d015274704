#!/usr/bin/env python3
"""Attack and fault drills against the flask-app-rs binary, each printing its
figures and failing (exit 1) when a promise does not hold:

  hostile   clients sending 100 KB tracestates, oversized User-Agent, Host and
            X-Forwarded-Proto, bad X-Forwarded-For, while other clients load
            the service: resident memory stays within 2 MB of the normal
            figure, other clients' throughput is unchanged, every cut header
            counted, no ERROR line.
  exporter  the OTLP collector's port closed, a black hole that accepts and
            never answers, a collector answering 503 slowly: under load, no
            request fails, memory stays bounded, drops are counted and export
            attempts back off (counted at the fake collector).
  sigterm   SIGTERM under load with slow requests in flight: every in-flight
            request is answered, the process exits 0, and every span of every
            answered request is exported.
  soak      every request traced and exported at 18,000 requests/s: no span
            dropped, resident memory flat after warm-up (trend below
            10 KB/min).

  scripts/drills.py [--short] [--binary PATH] [DRILL...]

--short runs each in seconds (the test command's version); without it, the
full drills (60 s per exporter fault, 10,000 hostile requests, a 10-minute
soak). Only loopback traffic, every loop bounded in count and time.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAILURES = []


def check(ok, what):
    print(f"    {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        FAILURES.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Service:
    """flask-app-rs on free loopback ports, its log in a file."""

    def __init__(self, binary, env, workers=2):
        self.port, self.metrics_port = free_port(), free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="drill-", suffix=".log", delete=False)
        full_env = {**os.environ, "PORT": str(self.port), "METRICS_PORT": str(self.metrics_port),
                    "BIND_ADDRESS": "127.0.0.1", "WORKERS": str(workers), "LOG_FORMAT": "json",
                    "RUST_LOG": "info", "ACCESS_LOG": "false", "OTEL_BSP_SCHEDULE_DELAY": "200", **env}
        self.process = subprocess.Popen([binary], env=full_env, stdout=self.log, stderr=self.log)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/healthz", timeout=1).read()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"flask-app-rs did not start:\n{self.output()}")
                time.sleep(0.1)

    def output(self):
        return Path(self.log.name).read_text(errors="replace")

    def rss_kb(self):
        return rss_kb(self.process.pid)

    def metric(self, series):
        """The value of a sample of the scrape (the sum over series starting so)."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(series):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def error_lines(self):
        return [line for line in self.output().splitlines() if '"severity":"ERROR"' in line]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        os.unlink(self.log.name)


def wrk(url, seconds, connections=16, threads=2, headers=()):
    """Runs wrk; returns (requests/s, requests, non-2xx or socket errors)."""
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        args += ["-H", header]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        match = re.search(pattern, out)
        if match:
            errors += sum(int(g) for g in match.groups())
    return rps, total, errors


def raw_request(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


def drill_hostile(binary, short):
    count = 1_000 if short else 10_000
    print(f"hostile: at least {count} hostile requests beside normal load")
    sink = subprocess.Popen([str(binary.parent / "otlp-sink"), str(free_port()), str(sink_http := free_port())],
                            stdout=subprocess.DEVNULL)
    service = Service(binary, {"OTEL_TRACES_SAMPLER": "always_on",
                               "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_http}"})
    try:
        wrk(f"{service.base}/", 3)  # warm up
        normal_rss = service.rss_kb()
        members = ",".join(f"k{i}=v{i}" for i in range(25_000))  # ~200 KB
        tracestate = members[:100_000]
        parent = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        hostile = [
            f"GET / HTTP/1.1\r\nHost: x\r\n{parent}\r\ntracestate: {tracestate}\r\n\r\n",
            f"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: {'u' * 8000}\r\n\r\n",
            f"GET / HTTP/1.1\r\nHost: {'h' * 5000}\r\n\r\n",
            f"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: {'s' * 10000}\r\nX-Forwarded-For: not-an-ip\r\n\r\n",
        ]
        # The control: requests of the same sizes, sent the same way, whose
        # bytes are in a header telemetry never reads. The attackers share
        # the machine with the server and wrk, so "unchanged" means the same
        # throughput as beside these, not as beside nothing.
        padding = [
            f"GET / HTTP/1.1\r\nHost: x\r\n{parent}\r\nx-padding: {tracestate}\r\n\r\n",
            f"GET / HTTP/1.1\r\nHost: x\r\nx-padding: {'u' * 8000}\r\n\r\n",
            f"GET / HTTP/1.1\r\nHost: x\r\nx-padding: {'h' * 5000}\r\n\r\n",
            f"GET / HTTP/1.1\r\nHost: x\r\nx-padding: {'s' * 10000}\r\nx-padding-2: not-an-ip\r\n\r\n",
        ]
        sent = [0]
        statuses = {}

        def beside(families, count):
            """wrk's requests/s while two threads send `families` in turn
            (and go on until `count` are sent)."""
            stop = threading.Event()
            done = [0]

            def attack():
                while not stop.is_set() or done[0] < count:
                    i = done[0]
                    done[0] += 1
                    answer = raw_request(service.port, families[i % len(families)].encode())
                    status = answer[9:12].decode(errors="replace")
                    if families is hostile:
                        sent[0] += 1
                        statuses[status] = statuses.get(status, 0) + 1

            attackers = [threading.Thread(target=attack) for _ in range(2)]
            for a in attackers:
                a.start()
            rps, _, errors = wrk(f"{service.base}/", 5)
            stop.set()
            for a in attackers:
                a.join(timeout=600)
            return rps, errors

        base_rps, _ = beside(padding, 0)
        during_rps, during_errors = beside(hostile, count)
        time.sleep(1)
        after_rss = service.rss_kb()
        oversized = service.metric('http_request_header_rejections_total{header="tracestate",reason="oversized"}')
        print(f"    normal {normal_rss} KB, after {sent[0]} hostile requests {after_rss} KB; "
              f"throughput of others {base_rps:.0f} -> {during_rps:.0f} requests/s; answers {statuses}")
        check(after_rss - normal_rss <= 2048, f"memory within 2 MB of normal ({after_rss - normal_rss:+} KB)")
        check(during_rps >= (0.7 if short else 0.9) * base_rps,
              f"other clients' throughput kept ({during_rps / base_rps:.2f}x of beside harmless "
              "requests of the same sizes)")
        check(during_errors == 0, f"no failed request among the others ({during_errors})")
        check(oversized >= sent[0] // len(hostile), f"oversized tracestates counted ({oversized:.0f})")
        check(not service.error_lines(), f"no ERROR line ({len(service.error_lines())})")
    finally:
        service.stop()
        sink.kill()


class FakeCollector:
    """A collector that is down in one way, counting the attempts it sees."""

    def __init__(self, mode):
        self.mode, self.attempts = mode, 0
        self.port = free_port()
        self.stop = threading.Event()
        if mode == "closed":
            return
        if mode == "blackhole":
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", self.port))
            self.sock.listen(1024)
            self.sock.settimeout(0.2)
            self.held = []
            threading.Thread(target=self._hold, daemon=True).start()
        else:
            collector = self

            class Slow503(BaseHTTPRequestHandler):
                def do_POST(self):
                    collector.attempts += 1
                    self.rfile.read(int(self.headers.get("content-length", 0)))
                    time.sleep(2)
                    self.send_response(503)
                    self.send_header("content-length", "0")
                    self.end_headers()

                def log_message(self, *args):
                    pass

            self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Slow503)
            threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _hold(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.attempts += 1
                self.held.append(conn)  # never read, never answered
            except socket.timeout:
                pass

    def close(self):
        self.stop.set()
        if self.mode == "blackhole":
            self.sock.close()
        elif self.mode == "slow503":
            self.server.shutdown()


def drill_exporter(binary, short):
    seconds = 5 if short else 60
    print(f"exporter: the collector down three ways, {seconds} s each, under load")
    for mode in ("closed", "blackhole", "slow503"):
        collector = FakeCollector(mode)
        service = Service(binary, {"OTEL_TRACES_SAMPLER": "always_on",
                                   "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
                                   "OTEL_EXPORTER_OTLP_TIMEOUT": "2000"})
        try:
            rss_start = service.rss_kb()
            rps, total, errors = wrk(f"{service.base}/", seconds)
            rss_end = service.rss_kb()
            dropped = service.metric("otel_spans_dropped_total")
            attempts = collector.attempts
            if mode == "closed":
                # Nothing listens to count connections: the attempts are
                # those the service's rate-limited failure log reports (all
                # but the last report's window).
                attempts = sum(int(n) for n in re.findall(r"span export failed \((\d+) failure", service.output()))
            attempts_per_s = attempts / seconds
            print(f"    {mode}: {total} requests ({rps:.0f}/s), {errors} failed; {rss_start} -> {rss_end} KB; "
                  f"{dropped:.0f} spans dropped (counted); {attempts} export attempts "
                  f"({attempts_per_s:.1f}/s)")
            check(errors == 0, f"{mode}: no request failed")
            check(rss_end <= max(rss_start, 8192) + 20_480, f"{mode}: memory bounded ({rss_end} KB)")
            check(dropped > 0, f"{mode}: drops counted")
            check(0 < attempts and attempts_per_s <= 3, f"{mode}: export attempts back off ({attempts_per_s:.1f}/s)")
        finally:
            service.stop()
            collector.close()


def loadtester(binary, base, seconds, rate, report):
    return subprocess.Popen([str(binary.parent / "loadtester"), "-H", base, "-u", "32", "-r", "32",
                             "-t", f"{seconds}s", "--max-rps", str(rate), "--json-report", report,
                             "--metrics-port", str(free_port()), "--bind-address", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def drill_sigterm(binary, short):
    seconds = 4 if short else 10
    rate = 6_000 if short else 18_000
    print(f"sigterm: SIGTERM after {seconds} s at {rate} requests/s, 20 slow requests in flight")
    sink_grpc, sink_http = free_port(), free_port()
    # --spans: the sink decodes and counts spans (not bytes), so that every
    # span of every answered request can be checked for.
    sink = subprocess.Popen([str(binary.parent / "otlp-sink"), "--spans", str(sink_grpc), str(sink_http)],
                            stdout=subprocess.PIPE, text=True)
    service = Service(binary, {"OTEL_TRACES_SAMPLER": "always_on",
                               "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                               "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_grpc}"})
    report = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    try:
        load = loadtester(binary, service.base, seconds + 2, rate, report)
        time.sleep(seconds - 1)
        slow_answers = []

        def slow():
            try:
                slow_answers.append(urllib.request.urlopen(f"{service.base}/delay/3000", timeout=20).status)
            except OSError as err:
                slow_answers.append(str(err))

        slows = [threading.Thread(target=slow) for _ in range(20)]
        for t in slows:
            t.start()
        time.sleep(0.5)
        service.process.send_signal(signal.SIGTERM)
        for t in slows:
            t.join()
        code = service.process.wait(timeout=60)
        load.wait(timeout=120)
        result = json.loads(Path(report).read_text())
        time.sleep(1.5)  # the sink prints its count every second
        sink.send_signal(signal.SIGTERM)
        spans = 0
        for line in sink.stdout.read().splitlines():
            match = re.match(r"(\d+) spans$", line)
            if match:
                spans = int(match.group(1))
        # After SIGTERM the listener is closed: the load's later requests
        # are refused, as they are meant to be.
        answered = result["status_codes"].get("200", 0) + slow_answers.count(200)
        print(f"    {result['requests']} requests of the load ({result['failures']} refused after SIGTERM), "
              f"slow ones: {slow_answers.count(200)}/20 answered; exit {code}; "
              f"spans received {spans} for {answered} answered requests")
        check(slow_answers.count(200) == 20, "every in-flight request answered")
        check(code == 0, "exit status 0")
        check(spans >= answered, f"every span exported ({spans} >= {answered})")
    finally:
        sink.kill()
        if service.process.poll() is None:
            service.process.kill()
        os.unlink(service.log.name)
        os.unlink(report)


def drill_soak(binary, short):
    # The short version also runs on a debug build: a lower rate.
    seconds, rate = (20, 6_000) if short else (600, 18_000)
    print(f"soak: {seconds} s at {rate} requests/s, every request traced and exported")
    sink_grpc, sink_http = free_port(), free_port()
    sink = subprocess.Popen([str(binary.parent / "otlp-sink"), str(sink_grpc), str(sink_http)],
                            stdout=subprocess.DEVNULL)
    service = Service(binary, {"OTEL_TRACES_SAMPLER": "always_on",
                               "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_http}",
                               "OTEL_BSP_SCHEDULE_DELAY": "1000"}, workers=1)
    try:
        report = tempfile.NamedTemporaryFile(suffix=".json", delete=False)
        load = loadtester(binary, service.base, seconds, rate, report.name)
        samples = []
        start = time.monotonic()
        while load.poll() is None and time.monotonic() - start < seconds + 60:
            samples.append((time.monotonic() - start, service.rss_kb()))
            time.sleep(1)
        load.wait(timeout=60)
        time.sleep(2)
        result = json.loads(Path(report.name).read_text())
        os.unlink(report.name)
        dropped = service.metric("otel_spans_dropped_total")
        exported = service.metric("otel_spans_exported_total")
        warm = [(t, kb) for t, kb in samples if t >= min(60, seconds / 3)]
        n = len(warm)
        mean_t = sum(t for t, _ in warm) / n
        mean_kb = sum(kb for _, kb in warm) / n
        slope = sum((t - mean_t) * (kb - mean_kb) for t, kb in warm) / max(sum((t - mean_t) ** 2 for t, _ in warm), 1e-9)
        trend = slope * 60
        print(f"    {result['requests']} requests ({result['requests_per_second']:.0f}/s), {result['failures']} failed; "
              f"spans exported {exported:.0f}, dropped {dropped:.0f}; resident {min(kb for _, kb in warm)}-"
              f"{max(kb for _, kb in warm)} KB after warm-up, trend {trend:+.1f} KB/min")
        check(result["failures"] == 0, "no request failed")
        check(dropped == 0, "no span dropped with a healthy receiver")
        if not short:  # a release build's figures (the short run may use a debug build)
            check(max(kb for _, kb in warm) <= 20 * 1024, "resident memory within 20 MB")
            check(abs(trend) < 10, f"memory flat (trend {trend:+.1f} KB/min)")
    finally:
        service.stop()
        sink.kill()


DRILLS = {"hostile": drill_hostile, "exporter": drill_exporter, "sigterm": drill_sigterm, "soak": drill_soak}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="seconds per drill (the test command's version)")
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "flask-app-rs"))
    parser.add_argument("drills", nargs="*", help=f"some of {', '.join(DRILLS)} (all by default)")
    args = parser.parse_args()
    unknown = [d for d in args.drills if d not in DRILLS]
    if unknown:
        parser.error(f"unknown drill(s) {unknown}; there are {list(DRILLS)}")
    binary = Path(args.binary)
    for name in args.drills or list(DRILLS):
        DRILLS[name](binary, args.short)
    if FAILURES:
        print(f"{len(FAILURES)} promise(s) broken: {FAILURES}")
        sys.exit(1)
    print("every drill held")


if __name__ == "__main__":
    main()
