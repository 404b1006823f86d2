"""Tool-using agents without an LLM: a host's file and shell-like actions, a planner, a human.

In the style of agency's demo, with no model and no network:

* `host` offers file actions, confined to a temporary directory it creates (and removes
  when it leaves), and `run`, a few shell-like commands implemented in Python (never a real
  shell). Writing and running are `ACCESS_REQUESTED`: the host asks the human first, with
  a message to "human", and waits for the human to call its `decide` action (which only
  "human" may call).
* `planner` discovers the tools from the dataspace's facts (`<action agent name help>`,
  observed with `@during`), then carries out a fixed plan by calling whichever agent
  offers each tool.
* `human` is not an agent: it is an interactive handle, `space.connect("human")`, used
  from the main thread as a person at a REPL would. It asks the planner to achieve a goal,
  then reads its inbox: permission questions from the host, answered from a policy
  (`--approve all`, `--approve none`, or `--approve ask`: one y/n line per question from
  stdin), and finally the planner's answer.

Run: .venv/bin/python examples/tool_agents.py [--approve all|none|ask] [--inspect HOST:PORT]

Watch it with the inspector (docs/inspect.md): `--approve ask --inspect 127.0.0.1:8080`
serves a live page of this space; open it, and while the host waits for your y/n you see
the three agents, their tools with help, and the planner's request to the host pending
(assertion mode), its age growing, until you answer.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import shutil
import sys
import tempfile
import threading
import uuid

from _backends import msg
from syndicate import patterns as P

from dataspace_agency import ACCESS_REQUESTED, ActionError, Agent, DataspaceSpace, action, during
from dataspace_agency.classic.message import ERROR, RESPONSE
from dataspace_agency.commands.failures import run_command

PATIENCE = 600  # seconds a permission question may wait for a person typing


def say(line: str) -> None:
    print(line, flush=True)  # agents print from their own threads; keep lines whole


class Host(Agent):
    """Tools over a private workspace. Every path is checked to stay inside it."""

    COMMANDS = ("cat", "echo", "grep", "ls", "wc")

    def __init__(self, id: str, human: str = "human") -> None:
        # Two at once: an action waiting for the human's decision must leave room for
        # the human's call to decide() (a blocking self.request() would give its slot
        # back by itself; waiting on an event does not).
        super().__init__(id, max_concurrency=2)
        self.workspace = pathlib.Path(tempfile.mkdtemp(prefix="tool-agents-")).resolve()
        self.human = human
        self.decisions: dict[str, list] = {}  # ticket -> [threading.Event, allowed]
        self.decisions_lock = threading.Lock()

    def before_remove(self) -> None:
        shutil.rmtree(self.workspace, ignore_errors=True)

    def _path(self, path: str) -> pathlib.Path:
        """``path`` inside the workspace, or PermissionError (absolute paths, ``..``,
        and symlinks pointing out are all caught by resolving first)."""
        resolved = (self.workspace / path).resolve()
        if not resolved.is_relative_to(self.workspace):
            raise PermissionError(f"{path} is outside the workspace")
        return resolved

    @action
    def list_files(self) -> list:
        """The files in the workspace."""
        return sorted(p.name for p in self.workspace.iterdir())

    @action
    def read_file(self, path: str) -> str:
        """Read a file of the workspace.

        Args:
            path: Relative to the workspace.
        """
        file = self._path(path)
        if not file.is_file():  # a message without the workspace's location
            raise FileNotFoundError(f"{path} does not exist")
        return file.read_text()

    @action(access_policy=ACCESS_REQUESTED)
    def write_file(self, path: str, content: str) -> str:
        """Write a file in the workspace (asks the human first).

        Args:
            path: Relative to the workspace.
            content: The new content.
        """
        self._path(path).write_text(content)
        return f"wrote {len(content)} characters to {path}"

    @action(access_policy=ACCESS_REQUESTED)
    def run(self, command: str) -> str:
        """Run a shell-like command: ls, cat FILE, wc FILE, grep WORD FILE, echo TEXT.
        Implemented here in Python; there is no shell (asks the human first).

        Args:
            command: The command line.
        """
        name, *args = shlex.split(command) or [""]
        if name not in self.COMMANDS:
            raise ValueError(f"{name!r} is not an available command ({', '.join(self.COMMANDS)})")
        if name == "echo":
            return " ".join(args)
        if name == "ls":
            return "\n".join(self.list_files())
        if name == "grep":
            word, path = args
            return "\n".join(line for line in self.read_file(path).splitlines() if word in line)
        (path,) = args  # cat and wc take one file
        text = self.read_file(path)
        if name == "cat":
            return text
        return f"{len(text.splitlines())} {len(text.split())} {len(text)} {path}"

    def request_permission(self, message: dict) -> bool:
        """ACCESS_REQUESTED actions: ask the human and wait for their decision. This runs
        on a worker thread, so it may block; the host keeps serving other messages
        meanwhile (the human's call to :meth:`decide` among them)."""
        ticket = uuid.uuid4().hex
        decided = threading.Event()
        with self.decisions_lock:
            self.decisions[ticket] = [decided, False]
        try:
            # A message, not a request: a handle receives it in its inbox (and the
            # delivery is acknowledged with None, which handle_action_value ignores).
            self.send(msg(self.human, "approve", ticket=ticket, who=message["from"],
                          action=message["action"]["name"],
                          args=message["action"].get("args", {})))
            decided.wait(PATIENCE)  # no decision in time: refused
            with self.decisions_lock:
                return self.decisions[ticket][1]
        finally:
            with self.decisions_lock:
                del self.decisions[ticket]

    @action
    def decide(self, ticket: str, allow: bool) -> str:
        """The human's answer to a permission question (only the human may call it).

        Args:
            ticket: The ticket of the question.
            allow: Whether the action may run.
        """
        if self.current_message()["from"] != self.human:
            raise PermissionError(f"only {self.human} decides permission requests")
        with self.decisions_lock:
            if ticket not in self.decisions:
                raise LookupError(f"no open question with ticket {ticket!r}")
            self.decisions[ticket][1] = bool(allow)
            self.decisions[ticket][0].set()
        return "noted"


class Planner(Agent):
    """Finds tools in the facts and follows a plan with them. No LLM: the plan is fixed."""

    PLAN = [
        ("list_files", {}),
        ("write_file", {"path": "shopping.txt", "content": "milk\neggs\nbread\n"}),
        ("run", {"command": "wc shopping.txt"}),
        ("run", {"command": "grep egg shopping.txt"}),
        ("read_file", {"path": "../outside.txt"}),  # the workspace confines it
        ("run", {"command": "rm -rf /"}),  # not a shell: not available
        ("decide", {"ticket": "any", "allow": True}),  # approving itself: only the human may
        ("read_file", {"path": "shopping.txt"}),
    ]

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.tools: dict[str, str] = {}  # tool name -> the agent offering it
        self.changed = threading.Condition()

    @during(P.rec("action", P.CAPTURE, P.CAPTURE, P._))
    def offered(self, agent_id, name):
        """An agent offers an action (a fact). Runs on the runtime: only record it."""
        if name == "help" or agent_id == self.id:
            return None
        with self.changed:
            self.tools[name] = agent_id
            self.changed.notify_all()

        def withdrawn() -> None:
            with self.changed:
                if self.tools.get(name) == agent_id:
                    del self.tools[name]
        return withdrawn

    @action
    def achieve(self, goal: str) -> str:
        """Carry out the plan for ``goal``; returns a summary."""
        needed = {name for name, _ in self.PLAN}
        with self.changed:  # the tools may still be arriving: wait for them, bounded
            if not self.changed.wait_for(lambda: needed <= self.tools.keys(), timeout=10):
                raise LookupError(f"no agent offers {sorted(needed - self.tools.keys())}")
            tools = dict(self.tools)
        say(f"planner: goal: {goal}")
        say("planner: tools found in facts: "
            + ", ".join(f"{agent}.{name}" for name, agent in sorted(tools.items())))
        done = 0
        for name, args in self.PLAN:
            call = f"{tools[name]}.{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"
            try:
                result = self.request(msg(tools[name], name, **args), timeout=PATIENCE)
                say(f"planner: {call} -> {result!r}")
                done += 1
            except ActionError as error:
                say(f"planner: {call} -> error: {error}")
        return f"{done} of {len(self.PLAN)} steps succeeded"


def decide(question: dict, policy: str) -> bool:
    """The person's answer to ``{"who", "action", "args"}``: from the policy, or typed."""
    line = f"human: {question['who']} wants host.{question['action']} {json.dumps(question['args'])}"
    if policy != "ask":
        allowed = policy == "all"
        say(f"{line}: {'approved' if allowed else 'refused'}")
        return allowed
    print(f"{line}; allow? [y/N] ", end="", flush=True)
    answer = sys.stdin.readline()
    if not answer:
        print("(no answer: refused)", flush=True)
    elif not sys.stdin.isatty():  # a scripted answer: show it as if typed
        print(answer.strip(), flush=True)
    return answer.strip().lower() in ("y", "yes")


def main(policy: str, inspect: str | None = None) -> None:
    with DataspaceSpace(mode="assertion") as space:
        if inspect:
            say(f"inspector: {space.inspect(http=inspect).url}")
        host = space.add_foreground(Host, "host")  # foreground only to show its workspace
        space.add(Planner, "planner")
        with space.connect("human") as human:  # the person: a handle, not an agent
            goal = human.send("planner", "achieve", goal="keep a shopping list")
            while True:  # the inbox: questions from the host, then the planner's answer
                message = human.receive(timeout=PATIENCE * len(Planner.PLAN))
                name, args = message["action"]["name"], message["action"]["args"]
                if name == "approve":
                    allowed = decide(args, policy)
                    human.request(message["from"], "decide", ticket=args["ticket"],
                                  allow=allowed)
                elif name in (RESPONSE, ERROR) and message["meta"].get("parent_id") == goal:
                    say(f"human: planner answered: {args.get('value', args.get('error'))}")
                    break
                else:
                    say(f"human: unexpected message: {message}")
    say(f"workspace removed with the host: {not host.workspace.exists()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--approve", choices=["all", "none", "ask"], default="all",
                        help="how the human answers permission requests (default: all;"
                             " ask: read y/n lines from stdin)")
    parser.add_argument("--inspect", metavar="HOST:PORT",
                        help="serve the inspector's live page of this space there (e.g."
                             " 127.0.0.1:8080; with --approve ask, watch the requests"
                             " wait for you)")
    args = parser.parse_args()
    # Ctrl-C, or `| head` closing the pipe: one line or none, not a traceback.
    sys.exit(run_command("tool_agents", lambda: main(args.approve, args.inspect)))
