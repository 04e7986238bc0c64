"""Analytics: rollups, time series, consumption aggregates and comparisons, ISTA cross-validation, insights."""
