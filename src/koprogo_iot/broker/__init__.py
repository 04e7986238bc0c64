"""The embedded MQTT broker used when no external broker is configured."""
