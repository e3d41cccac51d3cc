"""Admission for Wukongs: pure defaulting and validation, and the thin HTTP shell that serves them."""
