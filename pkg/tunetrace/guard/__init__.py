"""GO/NO-GO gate verdicts and red-flag validation (checks on finished artifacts)."""
