"""The Redis-protocol (RESP2 and RESP3) front-end of a node.

Start one with :func:`start_resp_server`; see :mod:`.registry` for the command
table (one module per command group) and how Redis data types map onto the
store, :mod:`.errors` for error replies, :mod:`.protocol` for the wire format.
"""

from dynamo_toolkit_server.resp.protocol import ProtocolError, RespParser
from dynamo_toolkit_server.resp.server import RespServer, start_resp_server

__all__ = ["ProtocolError", "RespParser", "RespServer", "start_resp_server"]
