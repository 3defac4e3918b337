"""`lift.checkWorkspace` cancelled from the editor's progress UI, over stdio: the server whose workspace check holds
each file's check until the test lets it through (tests/held_check_server.py --workspace), so that the cancel lands
mid-check however fast or slow the machine is."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from lift_lsp.lsp.server import CHECK_WORKSPACE_COMMAND
from tests.held_check_server import CHECKS_STARTED_COMMAND, LET_CHECKS_RUN_COMMAND, LET_ONE_CHECK_RUN_COMMAND
from tests.lsp_util import hover, hover_text, open_doc, start

HELD_WORKSPACE = ClientServerConfig(
    server_command=[sys.executable, str(Path(__file__).parent / "held_check_server.py"), "--workspace"]
)
FILES = 8
MODULE = '''def double(x: int) -> int:
    """Double a number.

    >>> double(2)
    4
    """
    return x * 2
'''


@pytest_lsp.fixture(config=HELD_WORKSPACE)
async def client(lsp_client: LanguageClient, tmp_path: Path):  # type: ignore[no-untyped-def]
    for index in range(FILES):
        (tmp_path / f"m{index}.py").write_text(MODULE)
    # one file at a time, so that how many were checked once cancelled is known
    await start(lsp_client, options={"diagnostics": {"onOpen": False}, "sandbox": {"workers": 1}}, root=tmp_path)
    yield
    await lsp_client.shutdown_session()


async def command(client: LanguageClient, name: str, *arguments: object) -> Any:
    params = types.ExecuteCommandParams(command=name, arguments=list(arguments))
    return await client.workspace_execute_command_async(params)


async def test_a_workspace_check_cancelled_from_its_progress_answers_what_it_checked(
    client: LanguageClient, tmp_path: Path
) -> None:
    """Two files checked, the third held: cancel. The held one finishes, no further file starts; the command answers
    the three files' totals and says it was cancelled, the progress ends, and the server still answers a hover."""
    uri = open_doc(client, tmp_path / "m0.py")
    answer = asyncio.ensure_future(command(client, CHECK_WORKSPACE_COMMAND))
    for _ in range(2):
        await command(client, LET_ONE_CHECK_RUN_COMMAND)
    assert await command(client, CHECKS_STARTED_COMMAND, 3)
    (token,) = client.progress_reports
    begin = client.progress_reports[token][0]
    assert isinstance(begin, types.WorkDoneProgressBegin) and begin.cancellable
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    await command(client, LET_CHECKS_RUN_COMMAND)  # a check that did not stop would now check every file
    totals = await asyncio.wait_for(answer, timeout=120)
    assert totals["cancelled"] is True and totals["message"] == "cancelled"
    assert totals["files"] == 3 < FILES and totals["findings"] == 0
    assert len(client.diagnostics) == 3  # the files checked are published
    end = client.progress_reports[token][-1]
    assert isinstance(end, types.WorkDoneProgressEnd) and end.message == "cancelled"
    assert "def double(x: int) -> int" in hover_text(await hover(client, uri, 0, 5))
    assert any("workspace check cancelled; 3 file(s) checked" in m.message for m in client.messages)


async def test_a_workspace_check_not_cancelled_checks_every_file(client: LanguageClient) -> None:
    """The peer of the test above, on the same server: let through, the check answers every file, not cancelled."""
    await command(client, LET_CHECKS_RUN_COMMAND)
    totals = await asyncio.wait_for(command(client, CHECK_WORKSPACE_COMMAND), timeout=120)
    assert totals == {"files": FILES, "findings": 0, "errors": 0}
    (reports,) = client.progress_reports.values()
    assert isinstance(reports[-1], types.WorkDoneProgressEnd) and reports[-1].message is None
