"""Device payload decoders: one module per format, each turning a message into readings."""
