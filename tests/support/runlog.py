"""A local HTTP server that task Pods report their runs to, so that a task run twice is visible.

``POST /runs`` with the run's name as the body appends it; :attr:`RunLog.names` lists them in arrival order.
:func:`reporting_command` is a bash command that reports one run, then works for a while.
"""

from __future__ import annotations

import threading
from collections import Counter

from local_http import JsonHandler, LocalServer


class RunLog:
    """The run log; use as a context manager."""

    def __init__(self) -> None:
        self.names: list[str] = []
        lock = threading.Lock()
        log = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                name = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                with lock:
                    log.names.append(name)
                self.reply(201, {"runs": log.names.count(name)})

        self.server = LocalServer(Handler)

    @property
    def url(self) -> str:
        return self.server.url

    def counts(self) -> Counter[str]:
        return Counter(self.names)

    def __enter__(self) -> RunLog:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


def reporting_command(run_log: RunLog, name: str, seconds: int) -> str:
    """Report run ``name`` to ``run_log``, sleep ``seconds``, print ``name`` (the task's result)."""
    report = f"import urllib.request; urllib.request.urlopen('{run_log.url}/runs', data=b'{name}', timeout=10)"
    return f'python -c "{report}" && sleep {seconds} && echo {name}'
