"""An opt-in ``eval`` action: run Python code inside a running agent, with ``self`` bound.

::

    class Worker(EvalMixin, Agent):
        def request_permission(self, message: dict) -> bool:
            return message["from"] == "admin"     # decide who may run code here

    me.request("worker", "eval", code="len(self._message_log)")   # -> 3, if permitted

**The risk, plainly**: whoever may call ``eval`` can do anything the agent's process can
do: read and change the agent's state, read files and secrets, start processes, reach the
network, and stop the process. It is a remote shell. That is why it is off by default
(only agents that mix in :class:`EvalMixin` have it) and why its access policy is
``ACCESS_REQUESTED``: the agent's ``request_permission(message)`` decides each call, and
the base implementation refuses everything. Allow only senders you trust as much as your
own shell; on a shared dataspace or broker, anyone who can claim that sender's id can use
it, since ``from`` is not authenticated.

What it does: the code runs on a worker thread of the agent (like any plain action), in a
namespace kept per agent between calls, where ``self`` is the agent. If the last statement
is an expression its value is the answer (``None`` otherwise); it must be JSON-like
(``str``, numbers, booleans, ``None``, lists, dicts with string keys), else the answer is
an ``[error]``. Any exception comes back as ``[error]`` with ``"ExcClass: message"``.
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

from .agent import ACCESS_REQUESTED, Agent, action


class EvalMixin:
    """Gives an agent the ``eval`` action (see the module docstring for the risk).

    Put it before ``Agent`` in the bases: ``class MyAgent(EvalMixin, Agent)``."""

    @action(access_policy=ACCESS_REQUESTED)
    def eval(self, code: str) -> Any:
        """Run Python code in this agent, with self bound; needs permission.

        Args:
            code: Statements; if the last one is an expression, its value is returned.

        Returns:
            The value of the last expression (JSON-like), or None.
        """
        if not isinstance(code, str):
            raise TypeError(f"code must be a string, got {type(code).__name__}")
        namespace = self.__dict__.setdefault("_eval_namespace", {"__builtins__": builtins})
        namespace["self"] = self
        tree = ast.parse(code, filename=f"<eval in {self.id}>", mode="exec")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, f"<eval in {self.id}>", "exec"), namespace)
        if last is None:
            return None
        expression = ast.Expression(last.value)
        return eval(compile(expression, f"<eval in {self.id}>", "eval"), namespace)


class EvalAgent(EvalMixin, Agent):
    """An agent with nothing but the ``eval`` action (and ``help``); subclass it and
    override ``request_permission`` to let anyone use it."""
