"""Imitations of the providers' APIs: real HTTP on loopback, for tests, benchmarks and the demo."""
