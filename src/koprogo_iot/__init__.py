"""KoproGo IoT: real-time consumption monitoring for condominium buildings."""

__version__ = "0.1.0"
