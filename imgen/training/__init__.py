"""Training code: a shared scaffold (data, loop utilities, export) and one trainer per task."""
