"""The live bus: stored readings fanned out to dashboards (in-process, or Redis Streams across processes)."""
