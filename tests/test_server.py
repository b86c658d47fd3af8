"""Real `moderation serve` processes (gunicorn) answering real HTTP: restarts keep data, hosts share PostgreSQL,
two servers on one machine keep their control sockets apart, slow clients do not take the server offline."""

from __future__ import annotations

import stat
import time

import httpx
import pytest
from gunicorn.ctl.client import ControlClient

from benchmarks.bench_slow_clients import SlowClients
from benchmarks.live_server import new_site_key, serve, service_env

HAM = {"content": "Thanks for the write-up, the second chart cleared it up for me.", "author_name": "Dana"}


@pytest.mark.slow
def test_first_serve_trains_a_model_and_data_survives_a_restart(tmp_path):
    """With no model the first serve trains one; a checked comment and its label survive a restart (SQLite file)."""
    url = f"sqlite:///{tmp_path / 'moderation.sqlite3'}"
    key = new_site_key(url)
    headers = {"Authorization": f"Bearer {key}"}
    models = tmp_path / "models"
    trains = service_env(tmp_path, url, models, TRAIN_ON_START="true")
    with serve(trains, tmp_path / "first.log", ready_timeout=600) as live:
        base = live.base
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["ok"] is True and ready["checks"]["model"]
        checked = httpx.post(f"{base}/api/v1/comments/check", json=HAM, headers=headers).json()
        assert checked["model_version"] == ready["checks"]["model"]
        httpx.post(f"{base}/api/v1/comments/{checked['id']}/feedback", json={"label": "ham"}, headers=headers)
    trained = sorted(p.name for p in models.iterdir())
    with serve(trains, tmp_path / "second.log", ready_timeout=120) as live:
        base = live.base
        shown = httpx.get(f"{base}/api/v1/comments/{checked['id']}", headers=headers).json()
        metrics = httpx.get(f"{base}/metrics").text
    assert sorted(p.name for p in models.iterdir()) == trained  # no second training
    assert (shown["status"], [lab["label"] for lab in shown["labels"]]) == ("approve", ["ham"])
    assert shown["decision"] == checked["decision"]
    assert "moderation_http_requests_total" in metrics


@pytest.mark.postgres
@pytest.mark.slow
def test_two_hosts_share_one_postgres_database(tmp_path, postgres_url, model_dir):
    """A comment checked through one server is visible and labelled through another on the same PostgreSQL."""
    key = new_site_key(postgres_url)
    headers = {"Authorization": f"Bearer {key}"}
    with (
        serve(service_env(tmp_path / "a", postgres_url, model_dir), tmp_path / "a.log", workers=1) as host_a,
        serve(service_env(tmp_path / "b", postgres_url, model_dir), tmp_path / "b.log", workers=1) as host_b,
    ):
        first, second = host_a.base, host_b.base
        assert first != second
        checked = httpx.post(f"{first}/api/v1/comments/check", json=HAM, headers=headers).json()
        seen = httpx.get(f"{second}/api/v1/comments/{checked['id']}", headers=headers).json()
        assert seen["id"] == checked["id"] and seen["decision"] == checked["decision"]
        labelled = httpx.post(
            f"{second}/api/v1/comments/{checked['id']}/feedback", json={"label": "spam"}, headers=headers
        ).json()
        assert labelled["status"] == "spam"
        back = httpx.get(f"{first}/api/v1/comments/{checked['id']}", headers=headers).json()
        assert back["status"] == "spam" and [lab["label"] for lab in back["labels"]] == ["spam"]


@pytest.mark.slow
def test_two_servers_on_one_machine_share_no_control_socket(tmp_path, model_dir):
    """One server's control socket is at MODERATION_CONTROL_SOCKET, the other has none, neither uses ~/.gunicorn."""
    home = tmp_path / "home"
    home.mkdir()
    url = f"sqlite:///{tmp_path / 'moderation.sqlite3'}"
    new_site_key(url)
    control = tmp_path / "a.ctl"
    machine = {"HOME": str(home), "XDG_RUNTIME_DIR": ""}
    env_a = {**service_env(tmp_path / "a", url, model_dir, CONTROL_SOCKET=str(control)), **machine}
    env_b = {**service_env(tmp_path / "b", url, model_dir), **machine}
    with (
        serve(env_a, tmp_path / "a.log", workers=1) as host_a,
        serve(env_b, tmp_path / "b.log", workers=1) as host_b,
    ):
        assert stat.S_ISSOCK(control.stat().st_mode)
        with ControlClient(str(control), timeout=5) as client:
            bound = client.send_command("show config")["bind"]
        assert host_a.base.removeprefix("http://") in str(bound)
        assert httpx.get(f"{host_b.base}/healthz").status_code == 200
        assert not (home / ".gunicorn").exists()
    assert not control.exists()  # removed on shutdown


@pytest.mark.slow
def test_fifty_slow_clients_do_not_take_the_default_server_offline(tmp_path, model_dir):
    """With 50 connections open on the default server (2 workers), each trickling a request's header lines,
    /healthz answers within 2 s every time and comment checks go on (2 sync workers answered nothing)."""
    url = f"sqlite:///{tmp_path / 'moderation.sqlite3'}"
    headers = {"Authorization": f"Bearer {new_site_key(url)}"}
    with (
        serve(service_env(tmp_path, url, model_dir), tmp_path / "server.log") as live,
        SlowClients(live.base, 50, interval=0.5) as slow,
    ):
        time.sleep(1.5)  # every slow connection is accepted and has sent several header lines
        for _ in range(10):
            assert httpx.get(f"{live.base}/healthz", timeout=2).status_code == 200
            checked = httpx.post(f"{live.base}/api/v1/comments/check", json=HAM, headers=headers, timeout=2)
            assert checked.status_code == 200
            time.sleep(0.3)
        assert slow.open_count() == 50  # the slow clients were still holding their connections all along
