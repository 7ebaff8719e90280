"""The fuzz suite's hypothesis profile: derandomized and database-free, so that CI runs the same
cases every time (a failure reproduces from the test's source alone), with no deadline (the shared
runners' timings are noisy) and no explain phase (it writes patch files into the checkout). Each
test sets its own ``max_examples``; the whole folder is sized to about a minute.

The profile is registered here and applied per test (``settings(FUZZ, max_examples=n)``), not
loaded globally, so hypothesis tests elsewhere keep their own settings.
"""
from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "chainrule-fuzz", derandomize=True, database=None, deadline=None, print_blob=False,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large])
