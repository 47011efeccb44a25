"""Submission records kept on this machine (the RunRecords port)."""
