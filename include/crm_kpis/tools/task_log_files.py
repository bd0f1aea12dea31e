"""Task logs of an in-process DAG run (`dag.test()`) written where Airflow's UI reads them.

Why: a worker's supervisor writes each try's log to
`<base_log_folder>/<log_filename_template>` (`dag_id=…/run_id=…/task_id=…/attempt=1.log`), one JSON
object per line, and the API server reads that file for the UI's log view. `dag.test()` runs the
tasks in the calling process and writes no file, so after `make demo` every task log in the UI was
"Could not read served logs … port 8793 … Connection refused": the UI, finding no file, asks the
worker's log server, and there is none. While a task runs in this process, this handler appends
its log records to the file that task's worker would have written, in the worker's format. Nothing
is written into Airflow's database.

The console keeps its own level (the demo prints warnings only); the files get the product's
INFO lines (rows read, checks, what was stored and rendered) and Airflow's own task-runner lines
(a failure's traceback), as a worker's log would.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from airflow.listeners import hookimpl

#: the product's loggers, logged at INFO into the task files whatever the console's level
PRODUCT_LOGGER = "crm_kpis"


class TaskLogFiles(logging.Handler):
    """Appends each record logged while a task runs to that task try's log file (JSON lines)."""

    def __init__(self, base_folder: Path, filename_template: str) -> None:
        super().__init__(level=logging.INFO)
        from jinja2 import Template

        self.base_folder = base_folder
        self.template = Template(filename_template)
        self._files: dict[Path, IO[str]] = {}
        self.running: Any | None = None  # the task instance running now (TaskStarts below)
        self._out: IO[str]  # its file, opened by `start`

    def path_for(self, ti: Any) -> Path:
        return self.base_folder / self.template.render(ti=ti, try_number=ti.try_number)

    def start(self, ti: Any) -> None:
        """A task try begins: its file starts empty. `dag.test()` replaces an earlier in-process run
        of the period under the same run id, and its tries count from 1 again, so the file may hold
        a former run's lines; a worker's try, too, writes a file of its own."""
        path = self.path_for(ti)
        if path in self._files:
            self._files.pop(path).close()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._files[path] = self._out = path.open("w", encoding="utf-8")
        self.running = ti

    def written(self, ti: Any) -> bool:
        """Whether this task try's file was written in this process (it ran here)."""
        return self.path_for(ti) in self._files

    def write(self, line: dict[str, Any]) -> None:
        """One line in the running task's file (opened by `start`); nothing between tasks."""
        if self.running is None:
            return
        self._out.write(json.dumps(line, default=str) + "\n")
        self._out.flush()

    def emit(self, record: logging.LogRecord) -> None:
        """The product's own lines (standard logging)."""
        try:
            line = {"timestamp": _iso(datetime.fromtimestamp(record.created, UTC)),
                    "level": record.levelname.lower(), "event": record.getMessage(), "logger": record.name}
            if record.exc_info:
                line["error_detail"] = _error_detail(record.exc_info)
            self.write(line)
        except Exception:  # a log line must never fail the task it describes
            self.handleError(record)

    def __call__(self, logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        """Airflow's own lines (structlog): the task runner's "Task failed with exception" and its
        traceback, which a reader of the failure alert's log link comes for."""
        try:
            line = {k: v for k, v in event_dict.items() if k not in ("exc_info", "stack_info")}
            line.setdefault("timestamp", _iso(datetime.now(UTC)))
            line.setdefault("level", method_name)
            exc_info = event_dict.get("exc_info")
            if exc_info:
                line["error_detail"] = _error_detail(sys.exc_info() if exc_info is True else exc_info)
            self.write(line)
        except Exception:  # a log line must never fail the task it describes
            pass
        return event_dict

    def close(self) -> None:
        for out in self._files.values():
            out.close()
        self._files.clear()
        super().close()


class TaskStarts:
    """An Airflow listener (the task runner calls it in this process) that tells the files which
    task runs: from "running" to its success, skip or failure, which come after the failure's
    traceback and the failure callbacks' lines, so those land in the task's own file too. Each try
    opens and closes its file with a line, so a task that logged nothing still has a log."""

    def __init__(self, files: TaskLogFiles) -> None:
        self.files = files

    def _said(self, event: str, level: str = "info") -> None:
        self.files.write({"timestamp": _iso(datetime.now(UTC)), "level": level, "event": event,
                          "logger": "crm_kpis.tools.task_log_files"})

    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        self.files.start(task_instance)
        self._said(f"running {task_instance.task_id} of {task_instance.run_id} in process {os.getpid()} "
                   f"on {socket.gethostname()} (in-process run: `airflow dags test`, no worker)")

    def _ended(self, state: str, level: str = "info") -> None:
        self._said(f"task ended: {state}", level)
        self.files.running = None

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        self._ended("success")

    @hookimpl
    def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
        self._ended("skipped")

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        self._ended("failed", "error")


def note_tasks_not_run(files: TaskLogFiles, dag_run: Any, why: str) -> int:
    """A line in the log of each task instance the run finished without running it (marked success
    by `mark_success_pattern`), so its log says why instead of "Could not read served logs"."""
    written = 0
    for ti in dag_run.get_task_instances():
        if ti.try_number and not files.written(ti):  # not run here: a former run's file is replaced
            files.start(ti)
            files.write({"timestamp": _iso(datetime.now(UTC)), "level": "info",
                         "event": f"{ti.task_id} did not run: {why}", "logger": "crm_kpis.tools.task_log_files"})
            written += 1
    files.running = None
    return written


def _error_detail(exc_info: Any) -> Any:
    """A traceback as the worker's JSON log has it (`error_detail`, which the UI's log view unfolds)."""
    import structlog

    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    return structlog.tracebacks.ExceptionDictTransformer(use_rich=False, show_locals=False)(exc_info)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@contextmanager
def written_like_a_worker() -> Iterator[TaskLogFiles]:
    """While the block runs, every task of an in-process run logs to its own file, as on a worker:
    the product's INFO lines (standard logging) and Airflow's own (structlog, whose processor chain
    loggers share, so the tee is added to that list in place and taken out after)."""
    import structlog
    from airflow.configuration import conf

    handler = TaskLogFiles(Path(conf.get("logging", "base_log_folder")).expanduser(),
                           conf.get("logging", "log_filename_template"))
    root, product = logging.getLogger(), logging.getLogger(PRODUCT_LOGGER)
    earlier_level, console_level = product.level, root.getEffectiveLevel()
    unset = [h for h in root.handlers if h.level == logging.NOTSET]
    for console in unset:  # the console stays as quiet as the configured level says
        console.setLevel(console_level)
    product.setLevel(min(logging.INFO, console_level))
    root.addHandler(handler)
    from airflow.sdk.listener import get_listener_manager

    listeners = get_listener_manager()
    starts = TaskStarts(handler)
    listeners.add_listener(starts)
    chain = structlog.get_config()["processors"]
    chain.insert(max(len(chain) - 1, 0), handler)  # before the renderer: the event as a dict
    try:
        yield handler
    finally:
        with suppress(ValueError):
            chain.remove(handler)
        listeners.pm.unregister(starts)
        root.removeHandler(handler)
        handler.close()
        product.setLevel(earlier_level)
        for console in unset:
            console.setLevel(logging.NOTSET)
