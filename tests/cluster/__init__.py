"""Tests of several processes behind one address (nginx in front of gateway processes)."""
