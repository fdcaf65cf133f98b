"""The production server: once the app is ready, what startup built is frozen out of the
garbage collector's full collections (which otherwise stall every call's audio)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from core.config import PROJECT_ROOT

# Run in a process of its own: freezing is process-wide and must not touch the test run.
SCRIPT = textwrap.dedent(
    """
    import asyncio, gc, json, sys
    from voice.server import VoiceServer, bound_socket, server_config

    built = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            built.extend({"row": i} for i in range(50_000))  # what a startup loads
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})

    async def main():
        before = gc.get_freeze_count()
        sock = bound_socket()
        server = VoiceServer(server_config(app, port=sock.getsockname()[1], log_level="warning"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        frozen = gc.get_freeze_count()
        server.should_exit = True
        await task
        print(json.dumps({"before": before, "frozen": frozen, "built": len(built)}))

    asyncio.run(main())
    """
)


def test_the_server_freezes_what_startup_built_once_it_serves() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["before"] == 0 and figures["built"] == 50_000
    assert figures["frozen"] > 50_000  # the startup's objects, and the modules' before them
