"""The warehouse: the KPI history (the hand-off between computing and reporting), the runs that
wrote it, and the delivery intents that make every send happen once."""
