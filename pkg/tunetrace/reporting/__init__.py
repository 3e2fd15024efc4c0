"""comparison.json and comparison.md from one result."""
