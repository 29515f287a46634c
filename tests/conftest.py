import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Kernels compile on first use (seconds), which hypothesis would count against its deadline.
settings.register_profile("rnnjit", deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("rnnjit")


@pytest.fixture
def rng(request):
    """A seeded generator; the seed is printed so a failure can be replayed (RNNJIT_TEST_SEED=...)."""
    seed = int(os.environ.get("RNNJIT_TEST_SEED", np.random.SeedSequence().entropy % (2 ** 32)))
    print(f"[{request.node.nodeid}] seed={seed} (rerun with RNNJIT_TEST_SEED={seed})")
    return np.random.default_rng(seed)
