"""Alerting adapters around the pure rules of `domain.detection`: the periodic window-rule evaluator."""
