"""optax.contrib's names, under ``jaxopt_lite.contrib`` as in optax.

Every name here is also exported at the top level (``jaxopt_lite.muon`` and
``jaxopt_lite.contrib.muon`` are the same function), so code written for
``optax.contrib`` ports by changing the import only.
"""

__all__: list[str] = []
