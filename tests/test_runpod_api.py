"""RunPod templates against a real HTTP server on 127.0.0.1 serving RunPod-shaped GraphQL answers:
success, auth errors (HTTP 401 and GraphQL errors), a timeout, garbage and a wrong shape."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gpu_lol.launch import runpod_api
from gpu_lol.launch.runpod_api import RunPodApiError, Template

GOOD_KEY = "rp_test_key_123"

# The shape of RunPod's answer to `myself { podTemplates { ... } }` (values invented).
TEMPLATES_BODY = {"data": {"myself": {"podTemplates": [
    {"id": "abc123", "name": "my-torch291", "imageName": "runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404",
     "isPublic": False, "isRunpod": False, "isServerless": False, "containerDiskInGb": 50,
     "volumeInGb": 20, "ports": "8888/http,22/tcp"},
    {"id": "def456", "name": "old-torch", "imageName": "runpod/pytorch:2.1.0-py3.10-cuda11.8.0-devel-ubuntu22.04",
     "isPublic": True, "isRunpod": True, "isServerless": False, "containerDiskInGb": 20,
     "volumeInGb": 0, "ports": None},
    {"id": "srv789", "name": "a-worker", "imageName": "me/worker:1", "isPublic": False, "isRunpod": False,
     "isServerless": True, "containerDiskInGb": 5, "volumeInGb": 0, "ports": None},
    {"id": "broken"},
]}}}


class _Handler(BaseHTTPRequestHandler):
    mode = "ok"
    seen: list[dict] = []

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):  # noqa: N802 - http.server API
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        type(self).seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        mode = type(self).mode
        if mode == "timeout":
            time.sleep(1.5)
            return self._send(200, TEMPLATES_BODY)
        if self.headers.get("Authorization") != f"Bearer {GOOD_KEY}":
            return self._send(401, {"error": "Unauthorized"})
        if mode == "ok":
            return self._send(200, TEMPLATES_BODY)
        if mode == "graphql-auth":
            return self._send(200, {"errors": [{"message": "Unauthorized request, please check your API key"}]})
        if mode == "graphql-other":
            return self._send(200, {"errors": [{"message": "Something broke\nsecond line"}], "data": None})
        if mode == "garbage":
            return self._send_raw(200, b"<html>Just a moment...</html>", "text/html")
        if mode == "shape":
            return self._send(200, {"data": {"myself": None}})
        if mode == "500":
            return self._send(500, {"error": "oops"})
        raise AssertionError(mode)

    def _send(self, code: int, payload: dict) -> None:
        self._send_raw(code, json.dumps(payload).encode(), "application/json")

    def _send_raw(self, code: int, data: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def runpod_server(monkeypatch):
    _Handler.mode = "ok"
    _Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/graphql"
    monkeypatch.setenv("GPU_LOL_RUNPOD_API_URL", url)
    monkeypatch.setenv("RUNPOD_API_KEY", GOOD_KEY)
    try:
        yield _Handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_lists_templates_with_key_in_header_only(runpod_server):
    templates = runpod_api.list_templates()
    assert [t.id for t in templates] == ["abc123", "def456"]  # serverless and malformed rows left out
    assert templates[0] == Template(id="abc123", name="my-torch291",
                                    image="runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404",
                                    is_public=False, is_runpod=False, is_serverless=False,
                                    container_disk_gb=50, volume_gb=20, ports="8888/http,22/tcp")
    (request,) = runpod_server.seen
    assert request["path"] == "/graphql"  # no key in the URL
    assert GOOD_KEY not in request["path"] and GOOD_KEY not in request["body"]
    assert request["headers"]["Authorization"] == f"Bearer {GOOD_KEY}"
    assert request["headers"]["User-Agent"].startswith("gpu-lol/")
    assert "podTemplates" in json.loads(request["body"])["query"]


def test_key_from_skypilots_runpod_config(runpod_server, monkeypatch, isolated_home):
    monkeypatch.delenv("RUNPOD_API_KEY")
    assert runpod_api.api_key() is None
    with pytest.raises(RunPodApiError) as err:
        runpod_api.list_templates()
    assert "no RunPod API key" in err.value.message
    (isolated_home / ".runpod").mkdir()
    (isolated_home / ".runpod" / "config.toml").write_text(f'[default]\napi_key = "{GOOD_KEY}"\n')
    assert runpod_api.api_key() == GOOD_KEY
    assert len(runpod_api.list_templates()) == 2


@pytest.mark.parametrize("mode,key,expected", [
    ("ok", "wrong-key", "RunPod rejected the API key (HTTP 401)"),
    ("graphql-auth", GOOD_KEY, "RunPod rejected the API key (Unauthorized request, please check your API key)"),
    ("graphql-other", GOOD_KEY, "the RunPod API returned an error: Something broke"),
    ("garbage", GOOD_KEY, "the RunPod API answered with something that is not JSON"),
    ("shape", GOOD_KEY, "the RunPod API answered in an unexpected shape (no podTemplates)"),
    ("500", GOOD_KEY, "the RunPod API answered HTTP 500"),
])
def test_errors_are_one_clear_line(runpod_server, mode, key, expected):
    runpod_server.mode = mode
    with pytest.raises(RunPodApiError) as err:
        runpod_api.list_templates(key=key)
    assert err.value.message == expected
    assert key not in err.value.message and key not in (err.value.hint or "")


def test_timeout(runpod_server):
    runpod_server.mode = "timeout"
    started = time.monotonic()
    with pytest.raises(RunPodApiError) as err:
        runpod_api.list_templates(timeout=0.3)
    assert time.monotonic() - started < 1.4
    assert err.value.message == "the RunPod API did not answer within 0.3 s"


def test_unreachable(monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("GPU_LOL_RUNPOD_API_URL", f"http://127.0.0.1:{port}/graphql")
    with pytest.raises(RunPodApiError) as err:
        runpod_api.list_templates(key=GOOD_KEY, timeout=2)
    assert err.value.message.startswith("cannot reach the RunPod API")


def test_lookup_turns_failures_into_one_warning(runpod_server, monkeypatch):
    found = runpod_api.lookup()
    assert found.has_key and len(found.templates) == 2 and found.warning is None
    runpod_server.mode = "garbage"
    found = runpod_api.lookup()
    assert found.templates == [] and found.warning.startswith("RunPod templates unavailable (")
    assert found.warning.endswith("using the spec's image")
    monkeypatch.delenv("RUNPOD_API_KEY")
    found = runpod_api.lookup()
    assert not found.has_key and found.warning is None  # no key: nothing to warn about


def test_templates_command(runpod_server, run_cli):
    result = run_cli("templates")
    assert result.code == 0, result.err
    assert "my-torch291" in result.out and "2.9.1" in result.out and "12.8" in result.out
    result = run_cli("templates", "--filter", "OLD", "--json")
    data = result.json()
    assert [t["id"] for t in data] == ["def456"]
    assert data[0]["torch"] == "210" and data[0]["cuda"] == "11.8"
    runpod_server.mode = "garbage"
    result = run_cli("templates")
    assert result.code == 1
    assert result.err.startswith("error: the RunPod API answered with something that is not JSON\nhint: ")


def test_up_picks_a_matching_template_over_http(runpod_server, tmp_path, run_cli):
    import shutil
    from pathlib import Path

    import yaml

    repo = tmp_path / "repo"
    shutil.copytree(Path(__file__).parent / "fixtures" / "launch" / "complete", repo)
    data = yaml.safe_load((repo / ".gpu-lol.yaml").read_text())
    data["base_image"] = "runpod/pytorch:1.0.2-cu1281-torch291-ubuntu2204"  # same torch/CUDA, other tag
    (repo / ".gpu-lol.yaml").write_text(yaml.safe_dump(data))
    from gpu_lol import launch
    from gpu_lol.spec import EnvironmentSpec

    plan = launch.build_plan(repo, EnvironmentSpec.from_dict(data), launch.LaunchOptions(), environ={},
                             check_offers=False)
    assert plan.template is not None and plan.template.template.id == "abc123"
    assert plan.task["resources"]["image_id"] == "docker:runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404"
    assert "same torch (2.9.1) and CUDA (12.8)" in plan.template.reason
    # resume launches exactly the file: no automatic template
    result = run_cli("resume", "--dry-run", "--json", cwd=repo)
    assert result.json()["task"]["resources"]["image_id"] == f"docker:{data['base_image']}"


@pytest.mark.parametrize("image,expected", [
    ("runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404", ("291", "12.8")),
    ("runpod/pytorch:0.7.0-cu1241-torch251-ubuntu2204", ("251", "12.4")),
    ("runpod/pytorch:2.1.0-py3.10-cuda11.8.0-devel-ubuntu22.04", ("210", "11.8")),
    ("pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime", ("231", "12.1")),
    ("runpod/base:1.0.2-cuda1281-ubuntu2204", (None, "12.8")),
    ("registry.example.com:5000/team/img:latest", (None, None)),
    ("python:3.11-slim", (None, None)),
])
def test_image_versions(image, expected):
    assert runpod_api.image_versions(image) == expected


def test_best_template_needs_same_torch_and_cuda_and_prefers_the_pattern():
    image = "runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404"
    other_cuda = Template(id="1", name="fast-cu129", image="runpod/pytorch:1.0.3-cu1290-torch291-ubuntu2204")
    public = Template(id="2", name="public-291", image="x/pytorch:cu1281-torch291", is_public=True)
    mine = Template(id="3", name="mine-291", image="y/pytorch:cu1281-torch291")
    salmon = Template(id="4", name="competitive_salmon", image="z/pytorch:cu1281-torch291")
    assert runpod_api.best_template([other_cuda], image, "") is None  # different CUDA never qualifies
    assert runpod_api.best_template([public, mine], image, "").template.id == "3"
    choice = runpod_api.best_template([public, mine, salmon], image, "*salmon*")
    assert choice.template.id == "4" and "name matches" in choice.reason
    exact = Template(id="5", name="exact", image=image)
    assert runpod_api.best_template([mine, exact], image, "").template.id == "5"
    assert runpod_api.best_template([mine], "nvcr.io/nvidia/pytorch:24.05-py3", "") is None


def test_find_and_filter():
    templates = [Template(id="abc", name="Torch-Box", image="a/b:1"), Template(id="xyz", name="other", image="c/d:2")]
    assert runpod_api.find_template(templates, "abc").name == "Torch-Box"
    assert runpod_api.find_template(templates, "torch-box").id == "abc"
    assert runpod_api.find_template(templates, "nope") is None
    assert [t.id for t in runpod_api.filter_templates(templates, "c/d")] == ["xyz"]
    assert [t.id for t in runpod_api.filter_templates(templates, "torch*")] == ["abc"]


# ---- `up --template NAME` that cannot be looked up: an error (exit 1), nothing launched -----------

def _template_repo(tmp_path):
    import shutil
    from pathlib import Path

    repo = tmp_path / "repo"
    shutil.copytree(Path(__file__).parent / "fixtures" / "launch" / "complete", repo)
    return repo


def _refused(result, template: str) -> str:
    assert result.code == 1, result
    lines = [line for line in result.err.splitlines() if line.startswith(("error: ", "hint: ", "warning: "))]
    errors = [line for line in lines if line.startswith("error: ")]
    hints = [line for line in lines if line.startswith("hint: ")]
    assert len(errors) == 1 and len(hints) == 1, result.err
    assert f"'{template}'" in errors[0] and "Traceback" not in result.err
    assert "RunPod templates unavailable" not in result.err  # not a warning any more
    assert "Starting SkyPilot" not in result.err and result.out == ""  # no plan, no launch
    return errors[0] + "\n" + hints[0]


@pytest.mark.parametrize("mode,expected", [
    ("garbage", "error: cannot look up the RunPod template 'my-torch291': the RunPod API answered with "
                "something that is not JSON"),
    ("500", "error: cannot look up the RunPod template 'my-torch291': the RunPod API answered HTTP 500"),
])
def test_up_template_lookup_failure_is_an_error(runpod_server, tmp_path, run_cli, isolated_home, mode, expected):
    runpod_server.mode = mode
    repo = _template_repo(tmp_path)
    text = _refused(run_cli("up", str(repo), "-y", "--no-llm", "--template", "my-torch291"), "my-torch291")
    assert text.splitlines()[0] == expected
    assert "drop --template" in text
    assert not list((isolated_home / ".gpu-lol" / "targets").glob("*.json"))  # nothing recorded
    # --dry-run says the same: a plan with another image than the one asked for is no plan
    assert _refused(run_cli("up", str(repo), "--dry-run", "--no-llm", "--template", "my-torch291"),
                    "my-torch291").splitlines()[0] == expected


def test_up_template_not_found_no_key_unreachable(runpod_server, tmp_path, run_cli, monkeypatch):
    import socket

    repo = _template_repo(tmp_path)
    text = _refused(run_cli("up", str(repo), "-y", "--no-llm", "--template", "nope"), "nope")
    assert text.startswith("error: no RunPod template named or with id 'nope'\n")
    assert "my-torch291" in text  # the hint lists what exists
    # a template that exists still launches from its image (here: the dry-run plan shows it)
    ok = run_cli("up", str(repo), "--dry-run", "--json", "--no-llm", "--template", "abc123")
    assert ok.code == 0, ok
    assert ok.json()["task"]["resources"]["image_id"] == "docker:runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("GPU_LOL_RUNPOD_API_URL", f"http://127.0.0.1:{port}/graphql")  # nobody listens
    text = _refused(run_cli("up", str(repo), "-y", "--no-llm", "--template", "abc123"), "abc123")
    assert text.startswith("error: cannot look up the RunPod template 'abc123': cannot reach the RunPod API")

    monkeypatch.delenv("RUNPOD_API_KEY")
    text = _refused(run_cli("up", str(repo), "-y", "--no-llm", "--template", "abc123"), "abc123")
    assert text.startswith("error: cannot look up the RunPod template 'abc123': no RunPod API key\n")
    assert "RUNPOD_API_KEY" in text
