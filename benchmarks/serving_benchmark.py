"""Serving benchmark: the same model behind mlops_ci.serving, `mlflow models serve`, a bare
uvicorn + orjson + ONNX Runtime ASGI app (the reference: no features at all), a bare
Starlette + uvicorn + orjson ONNX Runtime server and (when it installs) MLServer, under the
same load generator (wrk, one-row requests, keep-alive) and concurrency, in one run.

Prints throughput, p50/p99 latency, time to ready, resident memory (the server's process
tree) and installed size of each server's dependency set, and the ratios to ours.

    .venv/bin/python benchmarks/serving_benchmark.py                 # ours, mlflow, bare
    .venv/bin/python benchmarks/serving_benchmark.py --mlserver-venv /tmp/mlserver-venv
    .venv/bin/python benchmarks/serving_benchmark.py --servers ours --duration 20
    .venv/bin/python benchmarks/serving_benchmark.py --servers ours bare-uvicorn --duration 5

The model: a 20-feature logistic-regression pipeline (StandardScaler + LogisticRegression),
logged as an MLflow sklearn model and converted with mlops_ci.convert. Ours runs with
every feature on: metrics, signature checks, sampled access log and request log.
Loopback only; every run is bounded in time. Needs `wrk` (apt install wrk).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

FEATURES = 20
ROW = [round(0.1 * i - 1.0, 3) for i in range(FEATURES)]
MODEL_NAME = "bench"


@dataclass
class Result:
    name: str
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    ready_s: float = 0.0
    rss_mb: float = 0.0
    cpu_us: float = 0.0  # server CPU time (user + system, whole process tree) per request
    installed_mb: float | None = None
    errors: int = 0
    note: str = ""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the model -------------------------------------------------------------------------------


def make_models(folder: Path) -> tuple[Path, Path, Path]:
    """An MLflow sklearn model, its ONNX serving folder (ours), and a joblib file (MLServer)."""
    import joblib
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlops_ci.convert.build import convert
    from mlops_ci.convert.loading import load_native_model

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(5000, FEATURES)), columns=[f"f{i}" for i in range(FEATURES)])
    target = (frame["f0"] + frame["f1"] - frame["f2"] > 0).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, target)
    mlflow_dir = folder / "mlflow-model"
    mlflow.sklearn.save_model(
        model,
        str(mlflow_dir),
        signature=infer_signature(frame, model.predict(frame)),
        input_example=frame.head(3),
    )
    native = load_native_model(str(mlflow_dir), store=None, cwd=folder)
    converted = convert(native, name=MODEL_NAME, version="1", opset=None, precision="float32")
    ours = folder / "onnx-model"
    ours.mkdir()
    (ours / "model.onnx").write_bytes(converted.onnx_bytes)
    converted.settings.write(ours)
    mlserver_dir = folder / "mlserver-model"
    mlserver_dir.mkdir()
    joblib.dump(model, mlserver_dir / "model.joblib")
    (mlserver_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": MODEL_NAME,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib"},
            }
        )
    )
    (mlserver_dir / "settings.json").write_text(json.dumps({"metrics_endpoint": None, "parallel_workers": 0}))
    return mlflow_dir, ours, mlserver_dir


BARE_SERVER = textwrap.dedent(
    """
    import sys, numpy as np, onnxruntime as ort, orjson
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    options = ort.SessionOptions(); options.intra_op_num_threads = 1; options.inter_op_num_threads = 1
    session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    async def infer(request):
        body = orjson.loads(await request.body())
        tensor = body["inputs"][0]
        array = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        outputs = session.run(None, {"input": array})
        return Response(orjson.dumps({"outputs": [{"name": n, "shape": list(o.shape), "data": o.ravel().tolist()} for n, o in zip(names, outputs)]}), media_type="application/json")
    async def ready(request):
        return Response(b"{}", media_type="application/json")
    app = Starlette(routes=[Route("/v2/models/bench/infer", infer, methods=["POST"]), Route("/v2/health/ready", ready)])
    if __name__ == "__main__":
        import uvicorn
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
    """
)

# The reference the serving layer must keep up with: a bare ASGI app on uvicorn (httptools,
# uvloop), orjson and ONNX Runtime - no routing library, no checks, no metrics, no limits.
BARE_UVICORN = textwrap.dedent(
    """
    import sys, numpy as np, onnxruntime as ort, orjson, uvicorn
    options = ort.SessionOptions(); options.intra_op_num_threads = 1; options.inter_op_num_threads = 1
    session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]
    HEADERS = [(b"content-type", b"application/json")]
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/v2/health/ready":
            answer = b"{}"
        else:
            tensor = orjson.loads(body)["inputs"][0]
            array = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
            outputs = session.run(None, {input_name: array})
            answer = orjson.dumps(
                {"outputs": [{"name": n, "shape": o.shape, "data": o.ravel()} for n, o in zip(names, outputs)]},
                option=orjson.OPT_SERIALIZE_NUMPY,
            )
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": answer})
    if __name__ == "__main__":
        uvicorn.run(
            app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False,
            http="httptools", loop="uvloop", lifespan="off",
        )
    """
)


# -- servers ---------------------------------------------------------------------------------


def v2_body() -> str:
    return json.dumps(
        {"inputs": [{"name": "input", "shape": [1, FEATURES], "datatype": "FP32", "data": ROW}]}
    )


def servers(
    args: argparse.Namespace, work: Path, mlflow_dir: Path, ours: Path, mlserver_dir: Path
) -> dict[str, dict]:
    python = sys.executable
    bin_dir = Path(python).parent
    v2 = v2_body()
    mlflow_body = json.dumps(
        {"dataframe_split": {"columns": [f"f{i}" for i in range(FEATURES)], "data": [ROW]}}
    )
    bare = work / "bare_server.py"
    bare.write_text(BARE_SERVER)
    bare_uvicorn = work / "bare_uvicorn.py"
    bare_uvicorn.write_text(BARE_UVICORN)
    found = {
        "ours": {
            "command": lambda port: [
                python,
                "-m",
                "mlops_ci.serving",
                str(ours),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--request-log",
                str(work / "requests.jsonl"),
                "--request-log-sample",
                str(args.request_log_sample),
                "--access-log-sample",
                str(args.access_log_sample),
            ],
            "ready": "/v2/health/ready",
            "path": f"/v2/models/{MODEL_NAME}/infer",
            "body": v2,
            "dists": ["onnxruntime", "numpy", "httptools", "orjson", "uvloop"],
        },
        "bare-uvicorn": {
            "command": lambda port: [python, str(bare_uvicorn), str(ours / "model.onnx"), str(port)],
            "ready": "/v2/health/ready",
            "path": f"/v2/models/{MODEL_NAME}/infer",
            "body": v2,
            "dists": ["onnxruntime", "numpy", "uvicorn", "httptools", "uvloop", "orjson"],
        },
        "bare-starlette": {
            "command": lambda port: [python, str(bare), str(ours / "model.onnx"), str(port)],
            "ready": "/v2/health/ready",
            "path": f"/v2/models/{MODEL_NAME}/infer",
            "body": v2,
            "dists": ["onnxruntime", "numpy", "starlette", "uvicorn", "orjson"],
            "closure": True,
        },
        "mlflow": {
            "command": lambda port: [
                str(bin_dir / "mlflow"),
                "models",
                "serve",
                "-m",
                str(mlflow_dir),
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "1",
            ],
            "ready": "/ping",
            "path": "/invocations",
            "body": mlflow_body,
            "dists": ["mlflow", "scikit-learn", "cloudpickle", "numpy", "pandas", "scipy"],
            "closure": True,
        },
    }
    if args.mlserver_venv:
        venv = Path(args.mlserver_venv)
        mlserver = venv / "bin" / "mlserver"
        if not mlserver.exists() and args.install_mlserver:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [
                    str(venv / "bin/pip"),
                    "install",
                    "-q",
                    "mlserver==1.7.1",
                    "mlserver-sklearn==1.7.1",
                    "uvloop<0.22",
                ],
                check=False,
            )
        if mlserver.exists():
            found["mlserver"] = {
                "command": lambda port: [str(mlserver), "start", str(mlserver_dir)],
                "env": {
                    "MLSERVER_HTTP_PORT": "PORT",
                    "MLSERVER_GRPC_PORT": "0",
                    "MLSERVER_HOST": "127.0.0.1",
                    "MLSERVER_METRICS_PORT": "0",
                },
                "ready": "/v2/health/ready",
                "path": f"/v2/models/{MODEL_NAME}/infer",
                "body": v2,
                "python": str(venv / "bin/python"),
                "dists": ["mlserver", "mlserver-sklearn"],
                "closure": True,
            }
        else:
            print(f"MLServer is not installed in {venv}; skipped (add --install-mlserver)", file=sys.stderr)
    return {
        name: spec
        for name, spec in found.items()
        if name in args.servers or (name == "mlserver" and "mlserver" in found)
    }


# -- measuring -------------------------------------------------------------------------------


def wait_ready(url: str, process: subprocess.Popen, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"{url} not ready after {timeout_s} s")


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of the process tree: on a shared machine, CPU per request
    compares servers more steadily than requests per second."""
    ticks = 0
    for current in _tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss_mb(pid: int) -> float:
    total = 0
    for current in _tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def run_wrk(
    url: str, body: str, *, threads: int, connections: int, duration: int, work: Path
) -> tuple[float, float, float, int]:
    script = work / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    text = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = _latency(text, "50%")
    p99 = _latency(text, "99%")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return rps, p50, p99, errors


def _latency(text: str, label: str) -> float:
    match = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)", text)
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def installed_mb(dists: list[str], *, closure: bool, python: str | None = None) -> float:
    """Installed size (files in RECORD) of the distributions, with their dependency closure
    when ``closure`` (what pip would install), in the given interpreter's environment."""
    code = textwrap.dedent(
        f"""
        import json, re
        from importlib import metadata
        seen, todo, total = set(), {dists!r}, 0
        while todo:
            name = re.split(r"[ ;<>=!~\\[(]", todo.pop())[0].lower().replace("_", "-")
            if not name or name in seen:
                continue
            seen.add(name)
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                continue
            for file in dist.files or []:
                try:
                    total += file.locate().stat().st_size
                except OSError:
                    pass
            if {closure!r}:
                todo += [r for r in (dist.requires or []) if "extra ==" not in r]
        print(total)
        """
    )
    done = subprocess.run([python or sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.strip()) / 1e6


def measure(name: str, spec: dict, args: argparse.Namespace, work: Path) -> Result:
    port = free_port()
    env = dict(os.environ)
    # `mlflow models serve` runs `uvicorn` from PATH.
    env["PATH"] = str(Path(spec.get("python") or sys.executable).parent) + os.pathsep + env.get("PATH", "")
    for key, value in (spec.get("env") or {}).items():
        env[key] = str(port) if value == "PORT" else value
    log = (work / f"{name}.log").open("wb")
    process = subprocess.Popen(
        spec["command"](port), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=work
    )
    result = Result(name)
    try:
        result.ready_s = wait_ready(f"http://127.0.0.1:{port}{spec['ready']}", process, 120)
        url = f"http://127.0.0.1:{port}{spec['path']}"
        run_wrk(
            url, spec["body"], threads=args.threads, connections=args.connections, duration=2, work=work
        )  # warm-up
        cpu_before = tree_cpu_s(process.pid)
        result.rps, result.p50_ms, result.p99_ms, result.errors = run_wrk(
            url,
            spec["body"],
            threads=args.threads,
            connections=args.connections,
            duration=args.duration,
            work=work,
        )
        result.cpu_us = (tree_cpu_s(process.pid) - cpu_before) / max(1.0, result.rps * args.duration) * 1e6
        result.rss_mb = tree_rss_mb(process.pid)
    except (RuntimeError, TimeoutError, AttributeError) as exc:
        result.note = f"failed: {exc}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
    result.installed_mb = installed_mb(
        spec["dists"], closure=spec.get("closure", False), python=spec.get("python")
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--servers",
        nargs="+",
        default=["ours", "bare-uvicorn", "bare-starlette", "mlflow"],
        choices=["ours", "bare-uvicorn", "bare-starlette", "mlflow"],
    )
    parser.add_argument(
        "--mlserver-venv", help="virtualenv with mlserver + mlserver-sklearn (benchmarked when present)"
    )
    parser.add_argument("--install-mlserver", action="store_true", help="create --mlserver-venv when missing")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--request-log-sample", type=float, default=0.01)
    parser.add_argument("--access-log-sample", type=float, default=0.01)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="mlops-ci-bench-"))
    mlflow_dir, ours, mlserver_dir = make_models(work)
    load = os.getloadavg()[0]
    print(
        f"load average before: {load:.2f}; {os.cpu_count()} cores; {args.connections} connections, {args.duration} s each, one-row requests"
    )
    results = [
        measure(name, spec, args, work)
        for name, spec in servers(args, work, mlflow_dir, ours, mlserver_dir).items()
    ]
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    header = f"{'server':16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ready s':>8} {'RSS MB':>8} {'deps MB':>8} {'CPU us/req':>10} {'errors':>7}"
    print(header)
    print("-" * len(header))
    for r in results:
        deps = f"{r.installed_mb:8.0f}" if r.installed_mb is not None else f"{'-':>8}"
        print(
            f"{r.name:16} {r.rps:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.ready_s:8.2f} {r.rss_mb:8.0f} {deps} {r.cpu_us:10.0f} {r.errors:7d} {r.note}"
        )
    ours_result = next((r for r in results if r.name == "ours" and r.rps), None)
    if ours_result:
        print("\nratios (ours vs other):")
        for r in results:
            if r is ours_result or not r.rps:
                continue
            print(
                f"  vs {r.name:14} throughput x{ours_result.rps / r.rps:.1f}, p50 x{r.p50_ms / ours_result.p50_ms:.1f} lower, "
                f"ready x{r.ready_s / ours_result.ready_s:.1f} sooner, RSS x{r.rss_mb / ours_result.rss_mb:.1f} smaller"
                + (
                    f", deps x{r.installed_mb / ours_result.installed_mb:.1f} smaller"
                    if r.installed_mb and ours_result.installed_mb
                    else ""
                )
            )
    reference = next((r for r in results if r.name == "bare-uvicorn" and r.rps), None)
    if ours_result and reference:
        print(
            f"\nours / bare uvicorn + orjson + ONNX Runtime: throughput {ours_result.rps / reference.rps:.2f}, "
            f"p99 {ours_result.p99_ms / reference.p99_ms:.2f}, server CPU per request "
            f"{ours_result.cpu_us / reference.cpu_us:.2f} (the goal: throughput at least 1, the others at most 1)"
        )
    print(
        f"\nversions: mlops-ci serving with onnxruntime {metadata.version('onnxruntime')}; mlflow {metadata.version('mlflow')}; logs in {work}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
