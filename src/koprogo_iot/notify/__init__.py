"""Alert notifications: the outbox of messages about alerts, delivered by email, SMS and push through apprise."""
