"""What a notebook shows: the HTML summaries of runtimes, tasks, futures and groups
(rendered, well formed, escaped), and progress bars for transfers."""

from __future__ import annotations

import importlib.util
import io
import socket
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from actorcluster import Runtime, RuntimeGroup, RuntimeTask
from actorcluster.futures import ActorFuture
from actorcluster.notebook import ProgressBar, start_cluster


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _text(html: str) -> str:
    """The rendered text of a summary (it must be well-formed markup)."""
    return "".join(ET.fromstring(html).itertext())


@pytest.fixture
def local():
    with Runtime("localhost") as runtime:
        yield runtime


def test_a_runtime_shows_its_host_state_tasks_tunnels_and_facts(local):
    local.execute_task(RuntimeTask("t").run_command("true"), execute_async=False)
    busy = local.execute_task(RuntimeTask("busy").run_command("sleep 30"))
    port = local.get_free_port(list(range(18200, 18300)))
    key = local.expose_port_from_runtime(port, _free_port())
    text = _text(local._repr_html_())
    assert "Runtime" in text and "localhost" in text and "ready" in text
    assert local.working_dir in text
    assert "2 run here, 1 running" in text
    assert "cpu cores" in text and local.python_version in text
    assert key and key in text
    busy.cancel()


def test_a_stopped_runtime_says_so_without_asking_its_host():
    runtime = Runtime("localhost")
    runtime.cleanup()
    text = _text(runtime._repr_html_())
    assert "stopped" in text and "cpu cores" not in text


def test_a_task_shows_its_steps_state_and_escaped_output(local):
    task = RuntimeTask("risky").run_command("echo '<script>alert(1)</script> & more'; exit 3")
    assert "not run" in _text(task._repr_html_())
    local.execute_task(task).exception(30)
    html = task._repr_html_()
    assert "<script>" not in html  # the host's output is escaped
    text = _text(html)
    assert "failed: TaskExecutionError" in text
    assert "<script>alert(1)</script> & more" in text  # shown as text
    assert "0: echo" in text and "localhost" in text


def test_futures_show_pending_done_failed_and_cancelled():
    pending: ActorFuture[int] = ActorFuture("the answer")
    assert "pending" in _text(pending._repr_html_())
    pending.set(42)
    assert "done" in _text(pending._repr_html_()) and "42" in _text(pending._repr_html_())
    failed: ActorFuture[int] = ActorFuture("a failure")
    failed.fail(ValueError("no <good>"))
    text = _text(failed._repr_html_())
    assert "failed: ValueError" in text and "no <good>" in text


def test_a_cancelled_task_future_says_cancelled(local):
    future = local.execute_task(RuntimeTask("long").run_command("sleep 30"))
    future.cancel()
    future.exception(30)
    assert "cancelled" in _text(future._repr_html_())


def test_a_group_shows_a_row_per_host(ssh_bed):
    with RuntimeGroup(
        hosts=["host-1", "host-2"], connection_kwargs=ssh_bed.connection_kwargs
    ) as group:
        text = _text(group._repr_html_())
    assert "RuntimeGroup" in text and "2 runtime(s)" in text
    assert "host-1" in text and "host-2" in text and "ready" in text and "GiB" in text


def test_a_progress_bar_follows_a_transfer(local, tmp_path):
    source = tmp_path / "data.bin"
    source.write_bytes(b"x" * 3_000_000)
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False, force_jupyter=False)
    with ProgressBar("data.bin -> localhost", console=console) as bar:
        local.send_file(str(source), progress=bar)
    assert "data.bin -> localhost" in out.getvalue()
    assert "3.0/3.0 MB" in out.getvalue()
    assert "3000000/3000000" in repr(bar)


def test_a_progress_bar_of_unknown_total_shows_the_bytes_moved(tmp_path):
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False, force_jupyter=False)
    with ProgressBar("folder", console=console) as bar:
        bar(1_500_000, None)
    assert "1.5/? MB" in out.getvalue()


# --- clusters ----------------------------------------------------------------------


needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None, reason="needs distributed"
)


@needs_dask
def test_a_cluster_start_shows_a_bar_and_the_cluster_a_summary():
    from actorcluster.cluster.dask_cluster import DaskCluster

    cluster = DaskCluster(RuntimeGroup(hosts=["localhost"]))
    assert "not started" in _text(cluster._repr_html_())
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False, force_jupyter=False)
    try:
        start_cluster(cluster, worker_count=2, console=console)
        assert f"{cluster.name}: ready" in out.getvalue() and "3/3" in out.getvalue()
        text = _text(cluster._repr_html_())
        assert "DaskCluster" in text and "running" in text
        assert cluster.scheduler_address in text
        assert "workers (2)" in text and text.count("on localhost: running") == 2
    finally:
        cluster.cleanup()
    assert "stopped" in _text(cluster._repr_html_())


@pytest.mark.skipif(
    importlib.util.find_spec("ipywidgets") is not None, reason="ipywidgets is installed"
)
def test_without_ipywidgets_a_notebooks_bar_is_plain_text_and_says_what_to_install():
    out = io.StringIO()
    notebook = Console(file=out, width=120, force_jupyter=True)
    assert notebook.is_jupyter
    with ProgressBar("data.bin -> host-1", total=2_000_000, console=notebook) as bar:
        bar(2_000_000, 2_000_000)
    shown = out.getvalue()
    assert "pip install 'actorcluster[notebook]'" in shown
    assert "data.bin -> host-1" in shown and "2.0/2.0 MB" in shown
