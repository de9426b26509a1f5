#!/usr/bin/env python3
"""Cold-start init time of Lambda function binaries against a local Lambda Runtime API emulator.

    scripts/measure-init.py [--runs N] [--json-out FILE] NAME=BINARY...

For each binary, N times (default 20): start a loopback HTTP server that answers the Lambda
Runtime API's `GET /2018-06-01/runtime/invocation/next`, start the binary with
`AWS_LAMBDA_RUNTIME_API` pointing at it, and measure the time from just before the process is
started (fork + exec included) to the moment its first `/next` request arrives: the function's
own initialisation (reading its configuration, building its AWS SDK clients, its providers and
its router), which on Lambda is part of every cold start. The process is then killed; no event
is ever handed to it. This is not Lambda's "Init Duration" (which also counts loading the code
into the sandbox); it is the part the binary controls, measured on this machine.

The binaries get the environment infra/template.yaml gives them (table name, public URL, job
API key, due-timer settings) with fake values, static fake AWS credentials and a region, so no
network call is made. Prints, per function, the p50, min and max in milliseconds of the wall
time, and the p50 of the CPU time the process had used when its first `/next` arrived (summed
over its threads, from /proc/<pid>/task/*/schedstat): on a machine busy with other work the wall
time grows, the CPU time much less.
"""

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time

ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "AKIAMEASUREINIT00000",
    "AWS_SECRET_ACCESS_KEY": "measure-init-secret",
    "AWS_SESSION_TOKEN": "measure-init-token",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/measure-init",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/30/[$LATEST]0000",
    "AWS_EC2_METADATA_DISABLED": "true",
    "PUSHPOOL_TABLE": "pushpool-measure-init",
    "PUSHPOOL_PUBLIC_URL": "https://measure-init.execute-api.us-east-1.amazonaws.com",
    "PUSHPOOL_PROVIDER_RETRY_BUDGET": "3",
    "PUSHPOOL_LOG_RETENTION_DAYS": "30",
    "PUSHPOOL_JOB_API_KEY": "pnu_measureinit",
    "PUSHPOOL_DUE_TIMER_GROUP": "pushpool-measure-init",
    "PUSHPOOL_DUE_TIMER_TARGET_ARN": "arn:aws:lambda:us-east-1:123456789012:function:measure-init-reconciler",
    "PUSHPOOL_DUE_TIMER_ROLE_ARN": "arn:aws:iam::123456789012:role/measure-init-due-timer",
    "PUSHPOOL_EVENT_RETENTION_DAYS": "7",
    "PUSHPOOL_WEBSOCKET_ENDPOINT": "https://measure-init.execute-api.us-east-1.amazonaws.com/events",
    "RUST_LOG": "info",
}


class Emulator(http.server.ThreadingHTTPServer):
    """Records when the first `GET /2018-06-01/runtime/invocation/next` arrives."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.first_next = None
        self.got_next = threading.Event()
        self.done = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        now = time.perf_counter()
        if self.path == "/2018-06-01/runtime/invocation/next":
            if self.server.first_next is None:
                self.server.first_next = now
            self.server.got_next.set()
            # Never answered with an event: the process is killed once the time is taken.
            self.server.done.wait(60)
            return
        self.send_error(404)

    def do_POST(self):  # noqa: N802 (/init/error: the function failed to start)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode(errors="replace")
        sys.stderr.write(f"measure-init: {self.path}: {body}\n")
        self.send_response(202)
        self.end_headers()
        self.server.got_next.set()

    def log_message(self, *args):
        pass


def cpu_ms(pid: int) -> float:
    """CPU time (ms) the process's live threads have run, from /proc/<pid>/task/*/schedstat."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1e6


def once(binary: str, timeout: float) -> tuple[float, float]:
    server = Emulator()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env.update(ENV)
    env["AWS_LAMBDA_FUNCTION_NAME"] = os.path.basename(binary)
    env["AWS_LAMBDA_RUNTIME_API"] = "127.0.0.1:%d" % server.server_address[1]
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        server.got_next.wait(timeout)
        if server.first_next is None:
            proc.kill()
            err = proc.communicate()[1].decode(errors="replace")
            raise SystemExit(f"measure-init: {binary} sent no /next within {timeout} s; its stderr:\n{err}")
        return (server.first_next - start) * 1000, cpu_ms(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        server.done.set()
        server.shutdown()
        server.server_close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--json-out")
    parser.add_argument("functions", nargs="+", metavar="NAME=BINARY")
    args = parser.parse_args()
    results = {}
    print("%-12s %5s %8s %8s %8s %12s" % ("function", "runs", "p50 ms", "min ms", "max ms", "CPU p50 ms"))
    for spec in args.functions:
        name, _, binary = spec.partition("=")
        if not binary or not os.access(binary, os.X_OK):
            raise SystemExit(f"measure-init: {spec}: expected NAME=BINARY, an executable")
        once(binary, args.timeout)  # warm the page cache: every run then reads the file from memory
        runs = [once(binary, args.timeout) for _ in range(args.runs)]
        times = [wall for wall, _ in runs]
        results[name] = {
            "binary": binary,
            "bytes": os.path.getsize(binary),
            "runs": args.runs,
            "p50_ms": statistics.median(times),
            "min_ms": min(times),
            "max_ms": max(times),
            "cpu_p50_ms": statistics.median(cpu for _, cpu in runs),
        }
        r = results[name]
        print(
            "%-12s %5d %8.1f %8.1f %8.1f %12.1f"
            % (name, args.runs, r["p50_ms"], r["min_ms"], r["max_ms"], r["cpu_p50_ms"]),
            flush=True,
        )
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
