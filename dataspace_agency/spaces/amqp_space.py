"""The old home of ``AMQPSpace``, kept so that ``from dataspace_agency.spaces.amqp_space
import AMQPSpace`` still works: the transport now lives in the package ``spaces/amqp/``."""

from .amqp import DEFAULT_URL, AMQPSpace, escape_id
from .amqp.names import Names as _Names
from .amqp.state import Acks as _Acks

__all__ = ["AMQPSpace", "DEFAULT_URL", "escape_id"]
__all__ += ["_Acks", "_Names"]  # what older tests imported
