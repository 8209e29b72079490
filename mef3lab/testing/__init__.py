"""Recordings made to order, for tests, benchmarks, notebooks and the demo.

`synth` writes MEF 3.0 sessions with known content; `damage` breaks them in known ways;
`demo` is the demo recording and the terminal walkthrough.
"""
