"""Old name of ``dltl_core.job_runner``: an alias kept only while branches written before the rename
still import it (remove once none does).

The module object itself is handed on, so a name set on either (a test's monkeypatch)
is seen by both.
"""

import sys

from dltl_core import job_runner as _new

sys.modules[__name__] = _new
