"""Start-up errors: what stops a service before it runs, as one line that says what to fix.

Every service's `run(settings)` raises StartupError for a configuration it cannot start
with (a bad rules file, an unreadable topics.yaml, a refused secret...); `muster run`
prints the message on one line and exits 1, with no traceback.
"""

from __future__ import annotations


class StartupError(RuntimeError):
    """A service cannot start; the message names what is wrong and how to fix it."""
