"""The native protocol: msgpack frames over TCP, pipelined, answered out of order.

See :mod:`.protocol` for the frame shapes and error encoding and :mod:`.server`
for the operations and the asyncio server.
"""

from dynamo_toolkit_server.native.protocol import (
    MAX_FRAME_BYTES,
    InvalidRequestError,
    ProtocolError,
)
from dynamo_toolkit_server.native.server import NativeServer, start_native_server

__all__ = [
    "MAX_FRAME_BYTES",
    "InvalidRequestError",
    "NativeServer",
    "ProtocolError",
    "start_native_server",
]
