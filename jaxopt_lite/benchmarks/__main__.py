"""``python -m jaxopt_lite.benchmarks``: run the benchmark suite."""

from jaxopt_lite.benchmarks import main

if __name__ == "__main__":
    raise SystemExit(main())
