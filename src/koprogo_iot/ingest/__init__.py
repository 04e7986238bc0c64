"""Ingestion: MQTT message -> decode -> validate -> enrich -> rules -> store -> acknowledge."""
