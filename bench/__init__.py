"""Benchmarks of InfiniRetri: needle in a haystack and HotpotQA retrieval (see bench/README.md)."""
