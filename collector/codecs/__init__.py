"""Pure codecs: bytes in, model batches out (and back). No sockets, no framework, no logging."""
