"""What the business services share: fault injection, the SQLite helper, dependency calls and the process runner."""
