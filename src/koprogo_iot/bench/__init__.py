"""Benchmarks and the throwaway services they (and the fault tests) run against."""
