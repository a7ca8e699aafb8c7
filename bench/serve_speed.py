"""Serving speed of the app, printed as one table.

    python bench/serve_speed.py --model-dir runs/<run>     (or model/, the bundled model)

In-process single-name latency (views.analyse without and with the explanation, median of the
per-call times over --calls calls; as served, with the run's model.onnx under ONNX Runtime, beside
PyTorch's nn.GRU on the same calls), the 10,000-name batch (batch tab: predict + table + CSV, both
runtimes; and the /predict_batch REST route), cold start of `python app.py` (process start -> first answer),
gradio_client round trip p50/p99 over --rt-calls calls (default client, and ssl_verify=False),
the same calls against a one-function Gradio app (bench/trivial_app.py: the floor Gradio and its
client set), and the raw REST p50: one POST to /run/predict (the README's form) and the queued
/call/ route. The machine is shared: absolute times drift by 30% or
more between runs; compare rows of one run.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import httpx  # noqa: E402
import torch  # noqa: E402
from gradio_client import Client  # noqa: E402

import app  # noqa: E402
from name_origin import batch as batch_tab  # noqa: E402
from name_origin import views as serving  # noqa: E402
from name_origin.predict import Predictor  # noqa: E402
from trainer import data  # noqa: E402


def test_names() -> list[str]:
    """The test file's names (found as the trainer finds it), else the page's examples."""
    try:
        path = data.locate(None, allow_download=False) / "names_test.csv.gz"
    except data.DataError:
        return list(app.EXAMPLES)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return [row[0] for row in csv.reader(f)]


def timed(fn, args_list) -> list[float]:
    out = []
    for args in args_list:
        start = time.perf_counter()
        fn(*args)
        out.append(time.perf_counter() - start)
    return out


def pctl(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] if q < 100 else max(xs)


def ms(xs: list[float], q: int = 50) -> float:
    """Percentile q of durations in seconds, in milliseconds (q=50: the median)."""
    return (statistics.median(xs) if q == 50 else pctl(xs, q)) * 1e3


def rest_predict(url: str, api_name: str, data: list, http: httpx.Client, session: str | None = None) -> dict:
    """POST then the event stream; without `session` Gradio makes each call a new session."""
    base = f"{url}gradio_api/call/{api_name}"
    event_id = http.post(base, json={"data": data} | ({"session_hash": session} if session else {})).json()["event_id"]
    event = None
    for line in http.get(f"{base}/{event_id}").text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "complete":
            return json.loads(line.split(":", 1)[1])[0]
    raise RuntimeError(f"no answer from {api_name}: last event {event}")


def run_predict(url: str, data: list, http: httpx.Client) -> dict:
    """The README's REST form: one POST to /gradio_api/run/predict (a function served without the queue)."""
    return http.post(f"{url}gradio_api/run/predict", json={"data": data}).json()["data"][0]


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batch_seconds(predictor: Predictor, text: str) -> float:
    """Median of three batch-tab runs (predict + table + CSV): one run on the shared machine can be off by 30%."""
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(3):
            start = time.perf_counter()
            table, path, status = batch_tab.run_batch(predictor, text, None, Path(tmp))
            runs.append(time.perf_counter() - start)
            assert path, status
    return statistics.median(runs)


def alternating(fns: dict, args_list, block: int = 100) -> dict[str, list[float]]:
    """Per-call seconds of each fn over the same calls, run in alternating blocks so that a busy
    moment of the shared machine falls on every fn alike."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for start in range(0, len(args_list), block):
        for key, fn in fns.items():
            out[key] += timed(fn, args_list[start : start + block])
    return out


def in_process(model_dir: Path, names: list[str], calls: int, batch: int, workers: int) -> list[tuple]:
    torch.set_num_threads(1)  # as app.main does
    predictor = Predictor.from_dir(model_dir, workers=workers)  # as served: model.onnx when it agrees
    pytorch = Predictor.from_dir(model_dir, workers=workers, onnx=False)  # nn.GRU alone, side by side
    args = [(names[i % len(names)], False, False) for i in range(calls)]
    runs = {"served": predictor, "pytorch": pytorch}
    fns = {k: (lambda n, u, e, p=p: serving.analyse(p, n, u, e)) for k, p in runs.items()}
    alternating(fns, args[:50])  # warm-up
    plain = alternating(fns, args)
    explained = timed(lambda n, u, e: serving.analyse(predictor, n, u, True), args)
    text = "\n".join(names[i % len(names)] for i in range(batch))
    predictor.workers = 1
    one = batch_seconds(predictor, text)  # side by side: the same names on one thread
    predictor.workers = workers
    batch_s = batch_seconds(predictor, text)
    batch_torch = batch_seconds(pytorch, text)
    p50, p99 = ms(plain["served"]), ms(plain["served"], 99)
    extra = ms(explained) - p50
    return [
        (f"runtime served: {predictor.runtime.split(' (')[0]}", "", "", None),
        (f"in-process single name p50 ({calls} calls)", f"{p50:.3f} ms", "≤ 5 ms", p50 <= 5),
        (f"in-process single name p99 ({calls} calls)", f"{p99:.3f} ms", "", None),
        ("  same calls, PyTorch nn.GRU (no model.onnx), alternating: p50", f"{ms(plain['pytorch']):.3f} ms", "", None),
        ("  same calls, PyTorch nn.GRU: p99", f"{ms(plain['pytorch'], 99):.3f} ms", "", None),
        ("explanation added latency (p50)", f"{extra:.3f} ms", "≤ 20 ms", extra <= 20),
        (f"{batch:,}-name batch, batch tab, 1 worker, median of 3", f"{one:.2f} s", "", None),
        (
            f"{batch:,}-name batch, batch tab (predict + table + CSV), {workers} workers, median of 3",
            f"{batch_s:.2f} s",
            "≤ 3 s",
            batch_s <= 3,
        ),
        (f"  same batch, PyTorch nn.GRU, {workers} workers, median of 3", f"{batch_torch:.2f} s", "", None),
    ]


def start_app(script: str, model_dir: Path, log, workers: int = 1) -> tuple[subprocess.Popen, str, float]:
    """`python <script>` on a free loopback port: (process, URL, seconds from start to first answer)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "NAME_ORIGIN_WORKERS": str(workers),
    }
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, script], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    with httpx.Client(timeout=30) as http:
        while proc.poll() is None and time.perf_counter() - start < 120:
            try:
                rest_predict(url, "predict", ["Nakamura", "equal"], http)
                return proc, url, time.perf_counter() - start
            except (httpx.HTTPError, KeyError, ValueError, RuntimeError):
                time.sleep(0.05)
    proc.kill()
    log.seek(0)
    raise RuntimeError(f"{script} did not answer within 120 s:\n{log.read().decode()[-2000:]}")


def client_round_trips(url: str, picks: list[tuple[str]], ssl_verify: bool) -> list[float]:
    """Seconds per gradio_client predict call. With ssl_verify=True (the default) the client loads
    the CA bundle for every request it sends, even to a plain-http address."""
    client = Client(url, verbose=False, analytics_enabled=False, download_files=False, ssl_verify=ssl_verify)
    timed(lambda n: client.predict(n, api_name="/predict"), picks[:10])  # warm-up
    return timed(lambda n: client.predict(n, api_name="/predict"), picks)


def trivial_round_trips(picks: list[tuple[str]]) -> tuple[dict[bool, list[float]], dict[str, list[float]]]:
    """The same client calls and raw REST calls against bench/trivial_app.py: what Gradio and its
    client cost alone."""
    with tempfile.TemporaryFile() as log:
        proc, url, _ = start_app("bench/trivial_app.py", ROOT, log)
        try:
            rt = {verify: client_round_trips(url, picks, verify) for verify in (True, False)}
            with httpx.Client(timeout=60) as http:
                rest = {
                    "run": timed(lambda n: run_predict(url, [n, "equal"], http), picks),
                    "call": timed(lambda n: rest_predict(url, "predict", [n, "equal"], http), picks),
                }
            return rt, rest
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def served(model_dir: Path, names: list[str], rt_calls: int, batch: int, workers: int) -> list[tuple]:
    picks = [(names[i % len(names)],) for i in range(rt_calls)]
    with tempfile.TemporaryFile() as log:
        proc, url, cold = start_app("app.py", model_dir, log, workers)
        try:
            rt = {verify: client_round_trips(url, picks, verify) for verify in (True, False)}
            with httpx.Client(timeout=60) as http:
                before = rss_mib(proc.pid)
                run = timed(lambda n: run_predict(url, [n, "equal"], http), picks)
                rest = timed(lambda n: rest_predict(url, "predict", [n, "equal"], http), picks)
                grown = rss_mib(proc.pid) - before
                rest_session = timed(lambda n: rest_predict(url, "predict", [n, "equal"], http, "bench"), picks)
                many = [names[i % len(names)] for i in range(batch)]
                start = time.perf_counter()
                assert len(rest_predict(url, "predict_batch", [many, "equal"], http)["results"]) == batch
                api_batch = time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    floor, floor_rest = trivial_round_trips(picks)
    rows = [(f"{batch:,}-name batch, /predict_batch REST round trip", f"{api_batch:.2f} s", "", None)]
    for verify, how in ((True, "default client"), (False, "ssl_verify=False")):
        rows += [
            (f"gradio_client round trip p50, {how} ({rt_calls} calls)", f"{ms(rt[verify]):.1f} ms", "", None),
            (f"gradio_client round trip p99, {how}", f"{ms(rt[verify], 99):.1f} ms", "", None),
            ("  same client, trivial one-function app: p50", f"{ms(floor[verify]):.1f} ms", "", None),
        ]  # fmt: skip
    return rows + [
        (
            f"raw REST /predict p50, one POST to /run/predict ({rt_calls} calls)",
            f"{ms(run):.1f} ms",
            "≤ 30 ms",
            ms(run) <= 30,
        ),
        ("  same route, trivial one-function app: p50", f"{ms(floor_rest['run']):.1f} ms", "", None),
        ("queued REST /call/predict + event stream p50", f"{ms(rest):.1f} ms", "", None),
        ("  same route, trivial one-function app: p50", f"{ms(floor_rest['call']):.1f} ms", "", None),
        # Diagnostic, not a way to call: calls sharing a session_hash can read each other's events.
        (
            "  same calls, one session for all (Gradio's per-session page cost gone): p50",
            f"{ms(rest_session):.1f} ms",
            "",
            None,
        ),
        (f"  server memory kept by the {rt_calls} queued calls (a session each)", f"{grown:.0f} MiB", "", None),
        ("cold start: process start -> first answer", f"{cold:.1f} s", "≤ 15 s", cold <= 15),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", ROOT / "model")))
    p.add_argument("--calls", type=int, default=1000, help="in-process single-name calls")
    p.add_argument("--rt-calls", type=int, default=200, help="gradio_client and REST round trips")
    p.add_argument("--batch", type=int, default=10_000, help="names in the batch measurement")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="as NAME_ORIGIN_WORKERS")
    args = p.parse_args(argv)
    names = test_names()
    rows = in_process(args.model_dir, names, args.calls, args.batch, args.workers)
    rows += served(args.model_dir.resolve(), names, args.rt_calls, args.batch, args.workers)
    width = max(len(r[0]) for r in rows)
    cpus, version = os.cpu_count(), torch.__version__
    print(f"serving speed of {args.model_dir} ({cpus} CPUs, torch {version}, 1 thread, {args.workers} workers)\n")
    print(f"| {'measure':<{width}} | {'value':>10} | {'target':>7} | ok  |")
    print(f"| {'-' * width} | {'-' * 10} | {'-' * 7} | --- |")
    for name, value, target, ok in rows:
        print(f"| {name:<{width}} | {value:>10} | {target:>7} | {'' if ok is None else 'yes' if ok else 'NO':<3} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
