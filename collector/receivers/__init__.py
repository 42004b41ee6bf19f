"""Network endpoints: decode requests with the codecs, hand batches to the pipeline, map errors to the wire."""
