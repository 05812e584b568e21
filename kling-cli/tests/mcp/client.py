"""Drives `kling --sim mcp` with the Python MCP SDK's stdio client, as an agent
would, and checks every step against the embedded simulator's counters
(`/_sim/stats`, at the address the server says on stderr).

Run by `kling-cli/tests/it/mcp.rs`:
    python client.py KLING_BINARY WORK_DIR
WORK_DIR holds root/ (face.png, hello.wav, a symlink leading outside),
out/, outside.png and state/. Exits non-zero with the failed check.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.request

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
import mcp.types as types

KLING, WORK = sys.argv[1], sys.argv[2]
ROOT, OUT = os.path.join(WORK, "root"), os.path.join(WORK, "out")
FACE, VOICE = os.path.join(ROOT, "face.png"), os.path.join(ROOT, "hello.wav")
ENV = dict(os.environ, KLING_STATE_DIR=os.path.join(WORK, "state"))
TOOLS = {"estimate", "generate", "submit", "status", "wait", "download", "credits", "history"}


def check(ok, what, *detail):
    if not ok:
        print("FAILED:", what, *detail, file=sys.stderr)
        sys.exit(1)
    print("ok:", what)


class Server:
    """One `kling --sim mcp` session; its stderr goes to a file we read."""

    def __init__(self, name, *args):
        self.errlog_path = os.path.join(WORK, f"{name}.stderr")
        self.params = StdioServerParameters(
            command=KLING, args=["--sim", *args[0], "mcp", "--root", ROOT, "--out-dir", OUT, *args[1]], env=ENV
        )

    def stats(self):
        text = open(self.errlog_path).read()
        url = re.search(r"SIMULATED service at (http://[0-9.:]+)", text)
        check(url is not None, "the server says where its simulator is", text)
        with urllib.request.urlopen(url.group(1) + "/_sim/stats") as answer:
            stats = json.load(answer)
        return stats["requests"].get("uploadStream", 0), stats["requests"].get("createTask", 0)


def structured(result):
    return result.structured_content or {}


def video(prompt="A friendly presenter", **extra):
    return dict(image=FACE, audio=VOICE, prompt=prompt, **extra)


async def main_session():
    # Budget 130: one 48-credit video, then room for one of two parallel calls.
    server = Server("main", ["--daily-budget", "130"], ["--approve-above", "1000"])
    with open(server.errlog_path, "w") as errlog:
        async with stdio_client(server.params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                names = {t.name for t in (await s.list_tools()).tools}
                check(names == TOOLS, "the tools are listed", names)
                tools = {t.name: t for t in (await s.list_tools()).tools}
                check("max_credits" in json.dumps(tools["generate"].input_schema), "generate's schema has max_credits")
                check(tools["generate"].output_schema is not None, "generate has an output schema")

                r = await s.call_tool("estimate", video())
                check(not r.is_error and structured(r)["estimatedCredits"] == 48, "estimate prices the video", r)
                check(server.stats() == (0, 0), "estimate uploads and creates nothing", server.stats())

                r = await s.call_tool("generate", video())
                check(r.is_error and structured(r)["code"] == "cap_required", "a paid call without a cap is refused", r)

                progress = []

                async def on_progress(value, total, message):
                    progress.append((value, message))

                r = await s.call_tool("generate", video(max_credits=100), progress_callback=on_progress)
                out = structured(r)
                check(not r.is_error and out["state"] == "success", "generate makes a video", r)
                check(len(progress) >= 2, "generate sends progress notifications", progress)
                check(all(a[0] < b[0] for a, b in zip(progress, progress[1:])), "progress grows", progress)
                with open(out["path"], "rb") as f:
                    head = f.read(12)
                check(head[4:8] == b"ftyp" and os.path.getsize(out["path"]) == out["bytes"], "the MP4 is valid", head)
                check(os.path.dirname(out["path"]) == os.path.realpath(OUT), "it is in the output directory", out)
                check(server.stats() == (2, 1), "one upload per file, one createTask", server.stats())

                r = await s.call_tool("generate", video(max_credits=100))
                again = structured(r)
                check(not r.is_error and again["deduplicated"] and again["taskId"] == out["taskId"],
                      "an identical call returns the first task", r)
                check(server.stats()[1] == 1, "and pays nothing more", server.stats())

                r = await s.call_tool("generate", video(prompt="cheap", max_credits=10))
                check(r.is_error and structured(r)["code"] == "over_cap" and structured(r)["nothingSent"],
                      "a call above its cap is refused", r)
                check(server.stats() == (2, 1), "with nothing uploaded", server.stats())

                r = await s.call_tool("generate", video(prompt="bad name", max_credits=100, file_name="../x.mp4"))
                check(r.is_error and structured(r)["code"] == "invalid_input", "a bad file_name is refused first", r)
                r = await s.call_tool("submit", dict(image=FACE, audio="https://example.com/voice.mp3", max_credits=100))
                check(r.is_error and structured(r)["code"] == "cost_unknown" and structured(r)["countedCredits"] == 4800,
                      "an audio of unknown length is counted at its longest, not at the agent's cap", r)
                check(server.stats() == (2, 1), "nothing sent for them", server.stats())

                for name, path in [("outside", os.path.join(WORK, "outside.png")),
                                   ("symlink", os.path.join(ROOT, "link.png"))]:
                    r = await s.call_tool("estimate", dict(image=path, audio=VOICE))
                    check(r.is_error and structured(r)["code"] == "outside_roots", f"a path outside the roots ({name}) is refused", r)
                check(server.stats() == (2, 1), "nothing sent for them", server.stats())

                # Two calls at once, room for one: the ledger's lock lets one through.
                a, b = await asyncio.gather(
                    s.call_tool("submit", video(prompt="take a", max_credits=100)),
                    s.call_tool("submit", video(prompt="take b", max_credits=100)),
                )
                codes = sorted("ok" if not r.is_error else structured(r)["code"] for r in (a, b))
                check(codes == ["ok", "over_budget"], "the daily budget refuses one of two parallel calls", a, b)
                check(server.stats()[1] == 2, "one more createTask, not two", server.stats())

                r = await s.call_tool("credits", {})
                check(structured(r)["spentToday"] == 96 and structured(r)["dailyBudget"] == 130, "credits shows the budget", r)
                r = await s.call_tool("history", {})
                check(len(structured(r)["entries"]) >= 2, "history lists the paid calls", r)
                r = await s.call_tool("status", dict(task_id=out["taskId"]))
                check(structured(r)["state"] == "success", "status reads a task", r)


def approve_at_terminal(plan, answer):
    """`kling mcp approve PLAN` on a pseudo-terminal, typing `answer`."""
    import pty
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(KLING, [KLING, "mcp", "approve", plan], ENV)
    said = b""
    while b"Type yes" not in said:
        chunk = os.read(fd, 4096)
        check(chunk != b"", "the approval shows the plan and asks", said)
        said += chunk
    os.write(fd, (answer + "\n").encode())
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        said += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), said.decode(errors="replace")


async def approval_sessions():
    # Above the approval threshold, a client without elicitation gets a plan.
    server = Server("plans", [], ["--approve-above", "10", "--max-credits-per-task", "100"])
    with open(server.errlog_path, "w") as errlog:
        async with stdio_client(server.params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                r = await s.call_tool("submit", video(prompt="needs approval"))
                refusal = structured(r)
                check(r.is_error and refusal["code"] == "approval_required", "a call above the threshold needs approval", r)
                check(server.stats() == (0, 0), "nothing sent before approval", server.stats())
                plan = refusal["planId"]
                check(refusal["approveCommand"] == f"kling mcp approve {plan}", "the refusal says the command", refusal)
                r = await s.call_tool("submit", video(prompt="needs approval", plan_id=plan))
                check(r.is_error and structured(r)["code"] == "plan_not_approved", "an unapproved plan is refused", r)
                # An agent with a shell cannot approve its own plan: no terminal.
                agent = subprocess.run([KLING, "mcp", "approve", plan], env=ENV, capture_output=True, text=True)
                check(agent.returncode == 2 and "terminal" in agent.stderr, "approval without a terminal is refused", agent.stderr)
                code, said = approve_at_terminal(plan, "no")
                check(code == 2, "a person who does not type yes approves nothing", said)
                code, said = approve_at_terminal(plan, "yes")
                check(code == 0 and "needs approval" in said, "a person approves the plan after reading it", said)
                r = await s.call_tool("submit", video(prompt="other request", plan_id=plan))
                check(r.is_error and structured(r)["code"] == "plan_mismatch", "a plan approves one exact request", r)
                r = await s.call_tool("submit", video(prompt="needs approval", plan_id=plan))
                check(not r.is_error and structured(r)["taskId"], "the approved call goes through", r)
                r = await s.call_tool("submit", video(prompt="needs approval", plan_id=plan, idempotency_key="again"))
                check(r.is_error and structured(r)["code"] == "plan_used", "a plan pays for one call", r)
                check(server.stats()[1] == 1, "one createTask in all", server.stats())

    # A new simulator (a restart): the first session's video is not returned
    # as if this simulator had it; the call runs here.
    server = Server("restart", [], ["--approve-above", "1000"])
    with open(server.errlog_path, "w") as errlog:
        async with stdio_client(server.params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                r = await s.call_tool("submit", video(max_credits=100))
                check(not r.is_error and not structured(r)["deduplicated"],
                      "after a restart, --sim does not return the old simulator's task", r)
                r = await s.call_tool("submit", video(max_credits=100))
                check(structured(r)["deduplicated"], "within one simulator, a repeat is deduplicated", r)
                check(server.stats()[1] == 1, "one createTask on the new simulator", server.stats())

    # A client that can ask its user: the answer decides.
    answers = []

    async def on_elicit(context, params):
        answers.append(params.message)
        return types.ElicitResult(action="accept", content={"approve": len(answers) == 1})

    server = Server("elicit", [], ["--approve-above", "10", "--max-credits-per-task", "100"])
    with open(server.errlog_path, "w") as errlog:
        async with stdio_client(server.params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, elicitation_callback=on_elicit) as s:
                await s.initialize()
                r = await s.call_tool("submit", video(prompt="asked yes"))
                check(not r.is_error and answers, "the user's yes, asked through the client, lets it through", r)
                r = await s.call_tool("submit", video(prompt="asked no"))
                check(r.is_error and structured(r)["code"] == "declined", "the user's no refuses it", r)
                check(server.stats()[1] == 1, "one createTask", server.stats())


def stdout_is_protocol_only():
    """A raw session: every line on stdout must be a JSON-RPC message."""
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "submit", "arguments": video(prompt="raw", max_credits=100)}},
    ]
    process = subprocess.Popen(
        [KLING, "--sim", "-v", "mcp", "--root", ROOT, "--out-dir", OUT, "--approve-above", "1000"],
        env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    for message in messages:
        process.stdin.write((json.dumps(message) + "\n").encode())
        process.stdin.flush()
    lines, answered = [], set()
    while answered != {1, 2, 3}:
        line = process.stdout.readline()
        check(line != b"", "the server answers every request", lines)
        lines.append(line)
        message = json.loads(line)
        check(message.get("jsonrpc") == "2.0", "a stdout line is a JSON-RPC message", line)
        if "id" in message:
            answered.add(message["id"])
    rest, stderr = process.communicate(timeout=60)
    for line in rest.splitlines():
        check(json.loads(line).get("jsonrpc") == "2.0", "a stdout line is a JSON-RPC message", line)
    check(b"SIMULATED" in stderr, "messages and logs go to stderr", stderr[-500:])
    check(process.returncode == 0, "the server ends when stdin closes", process.returncode)


asyncio.run(main_session())
asyncio.run(approval_sessions())
stdout_is_protocol_only()
print("all MCP checks passed")
