"""The real `python app.py` in a subprocess on 127.0.0.1 with MODEL_DIR = the tiny run:
gradio_client calls /predict and /predict_batch, the raw REST route, 32 concurrent clients x 25
requests, a clear start-up error when no model can be found, and an import without side effects.
All of it starts processes that import gradio (5-6 s each), hence `slow`."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from gradio_client import Client
from gradio_client.exceptions import AppError

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 120  # s; `import gradio` alone takes 5-6 s on a quiet 2-core machine
NAMES = ["Nakamura", "Müller", "De la Fuente", "O'Brien", "Kowalski", "Nguyen", "Ivanov", "Rossi"]


def app_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "GRADIO_SERVER_"))}
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1", PYTHONUNBUFFERED="1")
    env.update(HF_ENDPOINT="http://127.0.0.1:9")  # nothing may reach the real Hub
    return {**env, **extra}


@contextmanager
def launch_app(model_dir: Path, log_path: Path):
    """`python app.py` on a free port; yields its base URL once the page answers (bounded wait)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=ROOT,
            env=app_env(MODEL_DIR=str(model_dir), GRADIO_SERVER_PORT=str(port)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"app.py did not answer within {START_TIMEOUT} s:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    with launch_app(tiny_run, log_path) as url:
        yield url, log_path


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client(server[0], verbose=False, analytics_enabled=False, download_files=False)


def test_serves_on_loopback_by_default_and_logs_the_model(server):
    url, log_path = server
    log = log_path.read_text()
    assert f"Running on local URL:  {url.rstrip('/')}" in log
    assert "model loaded and page built in" in log
    page = httpx.get(url, timeout=10).text
    assert "Name origin" in page


def test_api_lists_exactly_the_named_endpoints(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/predict", "/predict_batch"}


def test_client_predict(client):
    out = client.predict("Nakamura", api_name="/predict")
    assert out["name"] == "Nakamura" and out["language"] in out["probabilities"]
    assert len(out["probabilities"]) == 18 and abs(sum(out["probabilities"].values()) - 1) < 1e-3
    assert client.predict("  Müller ", api_name="/predict")["transliterated"] is True


@pytest.mark.parametrize("raw, needle", [("", "type a surname"), ("😀", "Latin letters"), ("x" * 60, "at most 50")])
def test_client_predict_bad_input_is_a_clear_error(client, raw, needle):
    with pytest.raises(AppError, match=needle):
        client.predict(raw, api_name="/predict")


def test_client_predict_batch(client):
    answer = client.predict(["Nakamura", "12345", "De la Fuente"], api_name="/predict_batch")
    out = answer["results"]
    assert answer["prior"]["name"] == "equal"
    assert [o["name"] for o in out] == ["Nakamura", "12345", "De la Fuente"]
    assert "error" in out[1] and "language" in out[0] and "language" in out[2]
    with pytest.raises(AppError, match="limit is 10,000"):
        client.predict(["Rossi"] * 10_001, api_name="/predict_batch")


def rest_call(
    url: str, api_name: str, data: list, timeout: float = 30, session: str | None = None
) -> tuple[str, object]:
    """POST /gradio_api/call/<api_name> (with a session_hash, as the README shows), then read its
    event stream: (last event, its data)."""
    base = f"{url}gradio_api/call/{api_name}"
    body = {"data": data} if session is None else {"data": data, "session_hash": session}
    event_id = httpx.post(base, json=body, timeout=timeout).json()["event_id"]
    event, payload = None, None
    with httpx.stream("GET", f"{base}/{event_id}", timeout=timeout) as r:
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = json.loads(line.split(":", 1)[1])
                break
    return event, payload


def test_raw_rest_route(server):
    url = server[0]
    event, payload = rest_call(url, "predict", ["Nakamura", "equal"])  # raw REST sends every input
    assert event == "complete" and payload[0]["language"] in payload[0]["probabilities"]
    event, payload = rest_call(url, "predict", ["12345", "equal"])
    assert event == "error" and "Latin letters" in json.dumps(payload)
    assert "Traceback" not in json.dumps(payload)
    event, payload = rest_call(url, "predict_batch", [["Rossi", ""], "equal"])
    assert event == "complete" and "error" in payload[0]["results"][1]
    event, payload = rest_call(url, "predict", ["Nakamura", "training"])
    assert event == "complete" and payload[0]["prior"]["name"] == "training"
    event, payload = rest_call(url, "predict", ["Nakamura", {"Japanese": 1, "Russian": 1}])
    assert event == "complete" and set(payload[0]["prediction_set"]) <= {"Japanese", "Russian"}
    event, payload = rest_call(url, "predict", ["Nakamura", "Klingon"])
    assert event == "error" and "prior must be one of" in json.dumps(payload)


def test_the_readme_single_post_route(server):
    """/predict is served without the queue: one POST to /gradio_api/run/predict answers, as the
    README shows; a bad name is the same one-line error, with no traceback."""
    url = server[0]
    answer = httpx.post(f"{url}gradio_api/run/predict", json={"data": ["Nakamura", "equal"]}, timeout=30)
    assert answer.status_code == 200 and answer.json()["data"][0]["name"] == "Nakamura"
    assert answer.json()["data"][0] == rest_call(url, "predict", ["Nakamura", "equal"])[1][0]  # both routes agree
    bad = httpx.post(f"{url}gradio_api/run/predict", json={"data": ["12345", "equal"]}, timeout=30)
    assert bad.status_code == 500 and "Latin letters" in bad.json()["error"] and "Traceback" not in bad.text


def test_32_concurrent_clients_x_25_requests(server):
    url = server[0]

    def one_client(i: int) -> list:
        c = Client(url, verbose=False, analytics_enabled=False, download_files=False)
        out = []
        for j in range(25):
            name = NAMES[(i + j) % len(NAMES)]
            try:
                out.append(c.predict(name, api_name="/predict")["language"])
            except Exception as e:  # noqa: BLE001 - counted, then asserted to be none
                out.append(e)
        return out

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = [a for got in pool.map(one_client, range(32)) for a in got]
    errors = [a for a in answers if not isinstance(a, str)]
    assert len(answers) == 800 and not errors, errors[:3]


def test_clear_startup_error_without_any_model(tmp_path):
    """MODEL_DIR unset, no MODEL_REPO and no bundled model/ next to app.py: exit 2 with a clear line."""
    shutil.copy(ROOT / "app.py", tmp_path / "app.py")  # its bundled folder tmp_path/model does not exist
    env = app_env(PYTHONPATH=str(ROOT), GRADIO_SERVER_PORT=str(free_port()))
    out = subprocess.run(
        [sys.executable, "app.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=START_TIMEOUT
    )
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Cannot start:" in out.stderr
    assert "MODEL_DIR" in out.stderr and str(tmp_path / "model") in out.stderr
    assert "Traceback" not in out.stderr


def test_import_has_no_side_effects_and_no_training_code():
    """`import app` loads no module of the trainer package (nor matplotlib, which only plots training runs)."""
    no_ui = "import sys, name_origin.views; assert 'gradio' not in sys.modules, 'name_origin.views imports gradio'"
    bad = "[m for m in sys.modules if m == 'trainer' or m.startswith(('trainer.', 'matplotlib'))]"
    code = f"{no_ui}; import app; bad = {bad}; assert not bad, bad; print('ok')"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=app_env(), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
