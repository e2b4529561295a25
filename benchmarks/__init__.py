"""Harnesses that time or load the whole app from outside (not part of the package).

    python -m benchmarks.app_startup [--warm]          # cold start and memory of `python app.py`
    python -m benchmarks.explore_speed [--model M]     # one sample, a 16-grid, slider changes through the app (p95)
    python -m benchmarks.load_test --users 16 --requests 6   # bounded load test on 127.0.0.1
"""
