"""``AMQPSpace``: classic agents in this process exchanging messages through RabbitMQ.

The package: ``names`` (broker names), ``state`` (what the I/O thread keeps), ``link``
(the connection and its I/O thread) with its mixins ``agents`` and ``messages``, and
``space`` (the ``Space``).

The broker-backed counterpart of ``QueueSpace``: the same ``Space`` API, the same
routing by the classic ``to`` field, but every message (replies included) goes through
an AMQP 0-9-1 broker, so agents in several processes (several ``AMQPSpace`` objects on
one exchange) can talk to each other.

Client library: pika (``pip install dataspace-agency[amqp]``). pika's ``SelectConnection``
is a callback-driven client on an I/O loop we own, which is what a robust transport
needs here: publisher confirms arrive asynchronously (publishes are pipelined instead of
waiting one round trip each, as the blocking clients -- pika's ``BlockingConnection``,
kombu/py-amqp -- do), the loop has one thread-safe entry point
(``add_callback_threadsafe``) to hand work to it, and reconnection is ours to control
(kombu's automatic retries hide exactly the state -- unconfirmed publishes, delivery tags
of the old channel -- that must be handled to lose and duplicate nothing).

Layout on the broker (``exchange`` is a namespace: spaces on different exchanges never
see each other):

* a durable topic exchange named ``exchange``;
* per agent, a durable queue ``<exchange>.<id>`` bound with the routing keys
  ``agent.<id>`` and ``broadcast``, consumed with manual acknowledgements and a bounded
  prefetch; and an exclusive queue ``<exchange>.present.<id>`` held by the owning
  space's connection: declaring it fails with RESOURCE_LOCKED while another space holds
  it, which is how a duplicate id across spaces is refused on ``add``.

In those names ids (and the exchange) are escaped: ``%``, ``.``, ``#`` and ``*`` are
percent-encoded, so an id can never act as a topic wildcard or match another id's key;
a name that would exceed AMQP's 255-byte limit keeps an escaped prefix and gets
``.h-<sha256>`` appended (the ``.`` marks it: an escaped id never contains one).

Delivery guarantees:

* Messages are JSON in the encoding every byte transport shares (``spaces/wire.py``,
  ``classic/wire_json.py``: lossless for every value ``validate_message`` accepts, or a
  request answered ``[error] MessageError: ...`` when a value has no JSON form),
  persistent, and published with publisher confirms. One connection per space, owned by
  one I/O thread; other threads hand it commands through a queue.
* ``send()`` never waits for the broker: the I/O thread pipelines publishes (up to
  ``max_in_flight`` unconfirmed) and tracks each by its delivery tag until the broker
  confirms it (confirms arrive in batches, ``multiple``); a message counts as sent when
  confirmed. :meth:`AMQPSpace.flush` waits until every message sent so far is confirmed
  (or failed, below); ``remove()`` and ``destroy()`` do the same before they return.
* An inbound delivery is acknowledged only when the core calls ``Ticket.handled()``,
  i.e. after the reply was handed to the I/O thread (which publishes in order, so the
  reply goes out before the ack). Acknowledgements handled in order go out as one
  ``multiple`` frame per loop round (``Acks``), never reaching past an unhandled one.
* The connection is re-established after a failure with bounded exponential back-off
  (0.1 s .. 5 s); exchange, queues, bindings, presence and consumers are declared again.
  Publishes made while disconnected wait, publishes not confirmed when the connection
  dropped are sent again; receivers drop duplicates (a bounded window of recent
  ``meta.id`` per agent). A message not confirmed within ``delivery_timeout`` (default
  30 s) is failed: a request/``send()`` gets an ``[error]`` reply
  ``"ConnectionError: ..."`` from its addressee, so ``request()`` raises ``ActionError``
  instead of a silent loss (its sender may still receive a reply if the broker did take
  the message: "delivered or reported", never neither).

As on any queue backend, and unlike the dataspace: a message to an agent that is not
there is dropped by the broker (a ``request()`` to it times out), a departure is noticed
only through timeouts, and ``agents()`` lists the agents of *this* space only: discovery
across spaces is not available (the broker holds queues, not facts about agents).

Threads: ``add()`` blocks the space's runtime thread while the broker declares the agent's
queues (a few round trips; at most ``operation_timeout`` during an outage).
"""

from .names import escape_id
from .space import DEFAULT_URL, AMQPSpace

__all__ = ["AMQPSpace", "DEFAULT_URL", "escape_id"]
