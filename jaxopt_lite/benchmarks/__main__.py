"""``python -m jaxopt_lite.benchmarks``: run the benchmark suite."""

from jaxopt_lite.benchmarks import main

raise SystemExit(main())
