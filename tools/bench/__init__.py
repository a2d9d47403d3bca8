"""Benchmarks: fleet scale (`evfleet bench`), launcher memory."""
