"""A ComfyUI server process for tests and tools, and a small HTTP client for it.

Started from ``COMFYUI_DIR`` with ``--cpu`` and ``--base-directory`` pointing at a folder that
holds ``custom_nodes/``, ``models/``, ``input/``, ``output/``, ``temp/`` and ``user/``. The Python
that runs ComfyUI is ``COMFYUI_PYTHON``, else ``$COMFYUI_DIR/venv/bin/python``, else the current one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACK_DIR_NAME = "ComfyUI-TrajectoryCrafter"
START_TIMEOUT_S = float(os.environ.get("COMFYUI_START_TIMEOUT", "180"))


def comfyui_dir() -> str:
    return os.environ.get("COMFYUI_DIR", "")


def make_base(base: Path) -> Path:
    """ComfyUI's folders under ``base``, with this repository linked as the only custom node."""
    for sub in ("custom_nodes", "models", "input", "output", "temp", "user"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / PACK_DIR_NAME
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    return base


def comfyui_python() -> str:
    explicit = os.environ.get("COMFYUI_PYTHON")
    if explicit:
        return explicit
    venv = Path(comfyui_dir()) / "venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """A running ComfyUI process and a small HTTP client for it."""

    def __init__(self, base: Path, port: int, log_path: Path, extra_args=()):
        self.base, self.port, self.log_path = base, port, log_path
        self.extra_args = list(extra_args)
        self.url = f"http://127.0.0.1:{port}"
        self.process = None
        self.client_id = uuid.uuid4().hex

    # -- process
    def start(self):
        cmd = [
            comfyui_python(), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
            "--disable-auto-launch", "--base-directory", str(self.base),
            "--database-url", "sqlite:///:memory:", "--log-stdout", *self.extra_args,
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(cmd, cwd=comfyui_dir(), stdout=self._log, stderr=subprocess.STDOUT, env=env)
        t0 = time.time()
        while time.time() - t0 < START_TIMEOUT_S:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                self.get("/system_stats", timeout=2)
                self.start_seconds = time.time() - t0
                self.startup_log = self.log()
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        raise RuntimeError(f"ComfyUI did not answer within {START_TIMEOUT_S}s:\n{self.log()[-4000:]}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    # -- HTTP
    def get(self, path: str, timeout: float = 30):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def post(self, path: str, payload=None, timeout: float = 30):
        data = json.dumps(payload or {}).encode()
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                body = r.read()
                return r.status, (json.loads(body) if body else None)
        except urllib.error.HTTPError as e:
            body = e.read()
            return e.code, (json.loads(body) if body else None)

    def object_info(self) -> dict:
        return self.get("/object_info", timeout=60)

    def queue(self, prompt: dict):
        """POST /prompt; returns (http status, response JSON)."""
        return self.post("/prompt", {"prompt": prompt, "client_id": self.client_id})

    def history(self, prompt_id: str):
        return (self.get(f"/history/{prompt_id}") or {}).get(prompt_id)

    def wait(self, prompt_id: str, timeout: float = 300) -> dict:
        """History entry of a finished prompt (success, error or interrupt)."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            entry = self.history(prompt_id)
            if entry and entry.get("status", {}).get("status_str") in ("success", "error"):
                return entry
            if not self.alive():
                raise RuntimeError(f"ComfyUI died while running {prompt_id}:\n{self.log()[-4000:]}")
            time.sleep(0.25)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout}s")

    def run(self, prompt: dict, timeout: float = 300) -> dict:
        status, body = self.queue(prompt)
        assert status == 200, f"/prompt refused the prompt: {json.dumps(body, indent=1)[:3000]}"
        return self.wait(body["prompt_id"], timeout)


def messages(entry: dict, kind: str):
    """Status messages of one kind (``execution_error``, ``execution_interrupted`` ...) of a history entry."""
    return [m[1] for m in entry.get("status", {}).get("messages", []) if m[0] == kind]




class ProgressWatcher:
    """Listens on ComfyUI's websocket (in a thread) and records ``progress`` events per node.

    Use as a context manager *before* queueing the prompt with the same ``client_id``;
    :meth:`wait_for_step` blocks until a node reports at least that many steps.
    """

    def __init__(self, server: "ComfyServer"):
        import threading

        self.server = server
        self.steps: dict = {}
        self.events: list = []
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        if not self._connected.wait(30):
            raise RuntimeError("could not connect to ComfyUI's websocket")
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def _run(self):
        import asyncio

        asyncio.run(self._listen())

    async def _listen(self):
        import aiohttp

        url = self.server.url.replace("http://", "ws://") + f"/ws?clientId={self.server.client_id}"
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url) as ws:
                self._connected.set()
                while not self._stop.is_set():
                    try:
                        msg = await ws.receive(timeout=0.5)
                    except asyncio_timeout():
                        continue
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                            break
                        continue
                    data = json.loads(msg.data)
                    with self._changed:
                        self.events.append(data)
                        if data.get("type") == "progress":
                            d = data["data"]
                            self.steps[str(d.get("node"))] = int(d.get("value", 0))
                        self._changed.notify_all()

    def wait_for_step(self, node_id: str, step: int, timeout: float = 300) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.steps.get(str(node_id), 0) >= step, timeout):
                raise TimeoutError(f"node {node_id} did not reach step {step} in {timeout}s (saw {self.steps})")


def asyncio_timeout():
    import asyncio

    return asyncio.TimeoutError
