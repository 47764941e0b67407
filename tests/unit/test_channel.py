"""The channel's kept connections, against a small line server (the real worker is in test_warm_worker.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from airflowtask import channel

KEY = b"k" * 32


class LineServer:
    """Answers each verified request with its op and the number of the connection it came on."""

    def __init__(self, one_answer_per_connection: bool = False) -> None:
        self.connections = 0
        self.one_answer_per_connection = one_answer_per_connection

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        while line := await reader.readline():
            request = channel.verify(KEY, line)
            if request["op"] == "slow":
                await asyncio.sleep(0.2)
            writer.write(json.dumps({"op": request["op"], "connection": number}).encode() + b"\n")
            await writer.drain()
            if self.one_answer_per_connection:
                break
        writer.close()


async def _with_server(server: LineServer, body: Callable[[channel.Connections, int], Awaitable[None]]) -> None:
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    connections = channel.Connections(keep=2)
    try:
        await body(connections, port)
    finally:
        connections.close()
        listening.close()


def test_requests_one_after_another_share_one_connection() -> None:
    server = LineServer()

    async def body(connections: channel.Connections, port: int) -> None:
        answers = [await connections.call("127.0.0.1", port, KEY, {"op": f"ping{i}"}) for i in range(5)]
        assert [answer["op"] for answer in answers] == [f"ping{i}" for i in range(5)]
        assert {answer["connection"] for answer in answers} == {1}

    asyncio.run(_with_server(server, body))
    assert server.connections == 1


def test_requests_at_once_each_get_a_connection_and_only_keep_stay_open() -> None:
    server = LineServer()

    async def body(connections: channel.Connections, port: int) -> None:
        answers = await asyncio.gather(*(connections.call("127.0.0.1", port, KEY, {"op": "slow"}) for _ in range(4)))
        assert len({answer["connection"] for answer in answers}) == 4
        again = await asyncio.gather(*(connections.call("127.0.0.1", port, KEY, {"op": "slow"}) for _ in range(4)))
        assert len({answer["connection"] for answer in again} - {1, 2, 3, 4}) == 2  # two kept, two new

    asyncio.run(_with_server(server, body))


def test_a_connection_the_worker_closed_is_replaced_and_the_request_answered() -> None:
    server = LineServer(one_answer_per_connection=True)

    async def body(connections: channel.Connections, port: int) -> None:
        first = await connections.call("127.0.0.1", port, KEY, {"op": "a"})
        await asyncio.sleep(0.05)  # the server has closed the kept connection by now
        second = await connections.call("127.0.0.1", port, KEY, {"op": "b"})
        assert (first["op"], second["op"]) == ("a", "b")
        assert second["connection"] == 2

    asyncio.run(_with_server(server, body))


def test_a_worker_that_refuses_is_an_error_naming_it() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b'{"error": "the request\'s signature does not match this pool\'s key"}\n')
        await writer.drain()
        writer.close()

    async def body() -> None:
        listening = await asyncio.start_server(refuse, "127.0.0.1", 0)
        port = listening.sockets[0].getsockname()[1]
        with pytest.raises(channel.ChannelError, match=f"127.0.0.1:{port} refused the request: the request's sig"):
            await channel.call("127.0.0.1", port, KEY, {"op": "ping"})
        listening.close()

    asyncio.run(body())
