"""The dataspace transport of classic agents, beside the other transports (``amqp/``, the
queue and process spaces): how classic messages become dataspace facts and messages
(``adapter.py``), the records they are written in (``vocabulary.py``), and capabilities
that let a remote peer speak only as its own agents (``caps.py``). The spaces built on it
are ``dataspace_space.py`` (in process), ``remote_space.py`` (a server) and
``zenoh_space.py`` (Zenoh routers)."""
