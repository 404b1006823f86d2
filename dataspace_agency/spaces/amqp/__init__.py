"""The AMQP (RabbitMQ) transport of classic agents: ``AMQPSpace`` and its parts."""

from .link import DEFAULT_URL, AMQPSpace, escape_id

__all__ = ["AMQPSpace", "DEFAULT_URL", "escape_id"]
